"""The presets shipped in the package load by name and their recorded numbers are true: each cheap one is
measured again here (the test ELBO of a VAE, the squared error of an autoencoder or PCA, the test accuracy of
a sample-quality classifier) within its tolerance, and a classifier tells data from noise."""

import os

import numpy as np
import pytest

from benchmarks import classifiers
from benchmarks import presets as recipes
from keras_ae import presets

SHIPPED = {metadata["name"]: metadata for metadata in presets.list_presets()}
CHEAP = ("test_elbo", "test_squared_error", "test_explained_variance")  # seconds each; NLL and probes take minutes
CLASSIFIERS = {classifiers.preset_name(dataset): dataset for dataset in classifiers.DATASETS}
needs_data = pytest.mark.skipif(
    not os.path.exists(os.path.join(recipes.DATA_DIR, "mnist.npz")),
    reason=f"needs the checksummed data sets in {recipes.DATA_DIR}",
)


def test_every_recipe_is_shipped_with_its_command_and_numbers():
    assert sorted(SHIPPED) == sorted([*recipes.RECIPES, *CLASSIFIERS])
    for name in recipes.RECIPES:
        metadata = SHIPPED[name]
        assert (
            metadata["command"].startswith("python -m training.train") and f"runs/presets/{name}" in metadata["command"]
        )
        assert set(metadata["metrics"]) & set(CHEAP)
    for name, dataset in CLASSIFIERS.items():
        assert SHIPPED[name]["command"].startswith(f"python -m benchmarks.classifiers train {dataset}")
        assert {"test_accuracy", "fd_test_train", "fd_noise_test"} <= set(SHIPPED[name]["metrics"])
    size = sum(f.stat().st_size for f in presets.shipped_folder().rglob("*") if f.is_file())
    assert size < 20e6  # the whole package stays small


@needs_data
@pytest.mark.parametrize("name", sorted(set(SHIPPED) & set(recipes.RECIPES)))
def test_a_shipped_preset_measures_what_its_metadata_records(name):
    model = presets.from_preset(name)
    recorded = model.preset_metadata["metrics"]
    dataset = model.preset_metadata["dataset"]["name"]
    x = recipes._test_images(dataset, binarized=name == "vae_mnist")
    for metric in set(recorded) & set(CHEAP):
        if metric == "test_elbo":
            value = float(model.elbo(x).mean())
        else:
            error = np.sum((np.asarray(model.predict(x, verbose=0)) - x) ** 2, axis=tuple(range(1, x.ndim)))
            if metric == "test_squared_error":
                value = float(error.mean())
            else:
                value = float(1 - error.sum() / np.sum((x - x.mean(axis=0)) ** 2))
        assert abs(value - recorded[metric]["value"]) <= recorded[metric]["tolerance"], (metric, value)


@needs_data
@pytest.mark.parametrize("name", sorted(set(SHIPPED) & set(CLASSIFIERS)))
def test_a_shipped_classifier_classifies_and_tells_data_from_noise_as_recorded(name):
    """The test accuracy, on the whole test split, within its tolerance (the logits from the features: one pass);
    the Fréchet distance of 2,000 training images to the test split far below that of 2,000 noise images."""
    from keras_ae import data, sample_quality

    model = presets.from_preset(name, compile=False)
    recorded, dataset = model.preset_metadata["metrics"], CLASSIFIERS[name]
    x, y = data.load(dataset, "test", data_dir=recipes.DATA_DIR), data.labels(dataset, "test", recipes.DATA_DIR)
    test = model.features(x)
    logits = np.asarray(model.head(test.astype(np.float32), training=False))
    accuracy = float(np.mean(np.argmax(logits, axis=1) == y))
    assert abs(accuracy - recorded["test_accuracy"]["value"]) <= recorded["test_accuracy"]["tolerance"], accuracy
    rows = np.random.default_rng(0).choice(50_000, 2000, replace=False)
    train = model.features(data.load(dataset, "train", data_dir=recipes.DATA_DIR)[np.sort(rows)])
    noise = model.features(np.random.default_rng(0).uniform(size=(2000, *x.shape[1:])).astype(np.float32))
    fd_train, fd_noise = sample_quality.frechet_distance(train, test), sample_quality.frechet_distance(noise, test)
    assert fd_train < 0.05 * fd_noise, (fd_train, fd_noise)
