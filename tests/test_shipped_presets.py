"""The presets shipped in the package load by name and their recorded numbers are true: each cheap one is
measured again here (the test ELBO of a VAE, the squared error of an autoencoder or PCA) within its tolerance."""

import os

import numpy as np
import pytest

from benchmarks import presets as recipes
from keras_ae import presets

SHIPPED = {metadata["name"]: metadata for metadata in presets.list_presets()}
CHEAP = ("test_elbo", "test_squared_error", "test_explained_variance")  # seconds each; NLL and probes take minutes


def test_every_recipe_is_shipped_with_its_command_and_numbers():
    assert sorted(SHIPPED) == sorted(recipes.RECIPES)
    for name, metadata in SHIPPED.items():
        assert (
            metadata["command"].startswith("python -m training.train") and f"runs/presets/{name}" in metadata["command"]
        )
        assert set(metadata["metrics"]) & set(CHEAP)
    size = sum(f.stat().st_size for f in presets.shipped_folder().rglob("*") if f.is_file())
    assert size < 20e6  # the whole package stays small


@pytest.mark.skipif(
    not os.path.exists(os.path.join(recipes.DATA_DIR, "mnist.npz")),
    reason=f"needs the checksummed data sets in {recipes.DATA_DIR}",
)
@pytest.mark.parametrize("name", sorted(SHIPPED))
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
