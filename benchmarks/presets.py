"""The presets shipped in `keras_ae/preset_files`: each one a `python -m training.train` command a user can
rerun, its validation-selected model (`best.keras`) measured on the test split and saved with
`keras_ae.presets.save_preset`.

    python -m benchmarks.presets train vae_mnist     # runs the preset's command into runs/presets/vae_mnist
    python -m benchmarks.presets make vae_mnist      # measures runs/presets/vae_mnist/best.keras, writes the preset
    python -m benchmarks.presets measure vae_mnist   # re-measures the shipped preset, as its metadata says

Data: the checksummed copies in ../shared/data (see its README).
"""

import argparse
import dataclasses
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np

from benchmarks.reproduce.common import DEFAULT_DATA_DIR, mnist_binarized_once, mnist_labels

DATA_DIR = os.path.normpath(DEFAULT_DATA_DIR)
RUNS = os.path.join("runs", "presets")
SHIPPED = os.path.join(os.path.dirname(__file__), os.pardir, "keras_ae", "preset_files")
NLL_EXAMPLES, NLL_SAMPLES = 1000, 5000  # the IWAE paper's k, on a fixed subset of the test set


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A preset: what it is, the training flags, what is measured, and how its weights are stored."""

    description: str
    dataset: str
    flags: tuple
    measure: Callable  # (model) -> {metric: {"value", "tolerance"}}
    weights_dtype: str = "float32"

    def command(self, name):
        out = os.path.join(RUNS, name)
        base = ["python", "-m", "training.train", "--dataset", self.dataset, "--data-dir", "../shared/data"]
        return [*base, *self.flags, "--seed", "0", "--out", out, "--no-export", "--verbose", "2"]


def _test_images(dataset, binarized=False):
    from keras_ae import data

    if binarized:  # held-out MNIST binarized once, as the reproductions score it (benchmarks/reproduce)
        return mnist_binarized_once(DATA_DIR, ("validation", "test"))[1].reshape(-1, 28, 28, 1)
    return data.load(dataset, "test", data_dir=DATA_DIR)


def _vae_scores(model):
    """The IWAE paper's measure: −log p(x) by importance sampling, k = 5000, on 1000 test images; and the ELBO."""
    x = _test_images("mnist", binarized=True)
    subset = np.sort(np.random.default_rng(0).choice(len(x), NLL_EXAMPLES, replace=False))
    ll = model.log_likelihood(x[subset], num_samples=NLL_SAMPLES, batch_size=50, chunk_size=500)
    return {
        "test_nll_k5000_1000_images": {"value": float(-ll.mean()), "tolerance": 0.3, "unit": "nats"},
        "test_elbo": _elbo_metric(model, x),
        "active_units": {"value": int(model.active_units(x)), "tolerance": 1},
    }


def _elbo_metric(model, x):
    """The test ELBO, a one-sample estimate per image. Its tolerance is four standard errors of the Monte Carlo
    noise alone: the spread of the difference of two evaluations, not of the images' ELBOs."""
    first, second = np.asarray(model.elbo(x)), np.asarray(model.elbo(x))
    noise = np.std(first - second) / np.sqrt(2 * len(first))  # the standard error of one evaluation's mean
    return {"value": float(first.mean()), "tolerance": float(max(4 * noise, 0.01)), "unit": "nats"}


def _elbo(dataset):
    def measure(model):
        return {"test_elbo": _elbo_metric(model, _test_images(dataset))}

    return measure


def _probe(model):
    """A linear probe (multinomial logistic regression) on the 1000-unit codes, as the probe study."""
    from benchmarks.reproduce.probe import Config, encode, logistic_probe
    from keras_ae import data

    codes = {s: encode(model, data.load("mnist", s, data_dir=DATA_DIR)) for s in ("train", "validation", "test")}
    probe = logistic_probe(codes, mnist_labels(DATA_DIR), Config())
    x = _test_images("mnist")
    mse = float(np.mean(np.sum((np.asarray(model.predict(x, verbose=0)) - x) ** 2, axis=(1, 2, 3))))
    return {
        "probe_test_accuracy": {"value": probe["test_accuracy"], "tolerance": 0.003},
        "test_squared_error": {"value": mse, "tolerance": 0.05 * mse, "unit": "summed over pixels"},
    }


def _pca(model):
    x = _test_images("mnist")
    residual = np.sum((np.asarray(model.predict(x, verbose=0)) - x) ** 2, axis=(1, 2, 3))
    total = np.sum((x - x.mean(axis=0)) ** 2, axis=(1, 2, 3))
    return {
        "test_squared_error": {"value": float(residual.mean()), "tolerance": 0.01, "unit": "summed over pixels"},
        "test_explained_variance": {"value": float(1 - residual.sum() / total.sum()), "tolerance": 0.001},
    }


_TIED = ("--model-option", "activation=sigmoid", "--model-option", "output_activation=sigmoid")
_TIED += ("--model-option", "reconstruction_loss=bce", "--model-option", "tied_weights=true")
RECIPES = {
    "vae_mnist": Recipe(
        "The IWAE paper's one-stochastic-layer VAE (784-200-200-50 tanh, Bernoulli), dynamically binarized MNIST",
        "mnist",
        ("--model", "vae", "--latent-dim", "50", "--binarize", "dynamic", "--batch-size", "100")
        + ("--learning-rate", "1e-3", "--epochs", "100", "--model-option", "hidden_units=[200,200]")
        + ("--model-option", "activation=tanh", "--model-option", "scale_activation=exp"),
        _vae_scores,
    ),
    "dae_mnist": Recipe(
        "Tied 1000-unit denoising autoencoder (Gaussian noise σ = 0.25, sigmoid, cross-entropy), MNIST",
        "mnist",
        ("--model", "denoising", "--latent-dim", "1000", *_TIED, "--model-option", "corruption=gaussian")
        + ("--model-option", "noise_level=0.25", "--learning-rate", "1e-2", "--batch-size", "100", "--epochs", "30"),
        _probe,
        "float16",
    ),
    "cae_mnist": Recipe(
        "Tied 1000-unit contractive autoencoder (λ = 1, analytic Jacobian, sigmoid, cross-entropy), MNIST",
        "mnist",
        ("--model", "contractive", "--latent-dim", "1000", *_TIED, "--model-option", "contractive_weight=1.0")
        + ("--model-option", "jacobian=analytic", "--learning-rate", "1e-3", "--batch-size", "100", "--epochs", "30"),
        _probe,
        "float16",
    ),
    "vae_frey_2d": Recipe(
        "Kingma & Welling's 2-D VAE of the Frey Face (560-200-2 tanh, Gaussian decoder with a learned scale)",
        "frey_face",
        ("--model", "vae", "--latent-dim", "2", "--model-option", "hidden_units=[200]", "--model-option")
        + ("activation=tanh", "--model-option", "likelihood=gaussian", "--model-option", "decoder_scale=learned")
        + ("--batch-size", "100", "--learning-rate", "1e-3", "--epochs", "300"),
        _elbo("frey_face"),
    ),
    "conv_vae_fashion": Recipe(
        "Convolutional VAE (32-64 stride-2 convolutions, 16-D latent, Bernoulli), Fashion-MNIST intensities",
        "fashion_mnist",
        ("--model", "conv_vae", "--latent-dim", "16", "--batch-size", "100", "--learning-rate", "1e-3")
        + ("--epochs", "15"),
        _elbo("fashion_mnist"),
    ),
    "pca_mnist_50": Recipe(
        "PCA of MNIST, 50 components (closed form)", "mnist", ("--model", "pca", "--latent-dim", "50"), _pca
    ),
}


def train(name):
    command = RECIPES[name].command(name)
    print(shlex.join(command), flush=True)
    subprocess.run([sys.executable, *command[1:]], check=True)


def make(name):
    import keras

    from keras_ae import presets

    recipe = RECIPES[name]
    model = keras.saving.load_model(os.path.join(RUNS, name, "best.keras"))
    if recipe.weights_dtype == "float16":  # measured as shipped
        model.set_weights([np.asarray(w).astype(np.float16).astype(w.dtype) for w in model.get_weights()])
    start = time.time()
    metrics = recipe.measure(model)
    measure_command = f"python -m benchmarks.presets measure {name}"
    for value in metrics.values():
        value["command"] = measure_command
    split = "the test split" if recipe.dataset != "frey_face" else "the test split (a fixed 10% of the frames)"
    metadata = {
        "name": name,
        "description": recipe.description,
        "dataset": {"name": recipe.dataset, "split": split, "selection": "best validation loss (best.keras)"},
        "command": shlex.join(recipe.command(name)),
        "metrics": metrics,
        "measure_seconds": round(time.time() - start, 1),
    }
    if recipe.weights_dtype == "float16":
        metadata["weights_note"] = "weights stored as float16; the metrics were measured with them"
    presets.save_preset(model, os.path.join(SHIPPED, name), metadata, weights_dtype=recipe.weights_dtype)
    print(name, {k: v["value"] for k, v in metadata["metrics"].items()}, flush=True)


def measure(name):
    from keras_ae import presets

    model = presets.from_preset(name)
    recorded = model.preset_metadata["metrics"]
    for metric, value in RECIPES[name].measure(model).items():
        print(f"{name} {metric}: {value['value']:.6g} (recorded {recorded[metric]['value']:.6g})")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.presets", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("train", "make", "measure"))
    parser.add_argument("names", nargs="+", choices=sorted(RECIPES))
    args = parser.parse_args(argv)
    for name in args.names:
        {"train": train, "make": make, "measure": measure}[args.action](name)


if __name__ == "__main__":
    main()
