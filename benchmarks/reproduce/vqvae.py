"""VQ-VAE on MNIST with a PixelCNN prior, in keras-io's setting: reconstruction loss and the prior's nats per code.

keras-io's "Vector-Quantized Variational Autoencoders" (Sayak Paul, 2021) trains a VQ-VAE (two stride-2
convolutions of 32 and 64 filters, D = 16, K = 128 codes, β = 0.25, Adam 1e-3, batch 128, 30 epochs) on
MNIST scaled to x / 255 − 0.5 and reports the reconstruction loss normalized by the pixels' variance,
mean (x − x~)² / Var(x), 0.0444 at its last epoch (on the training batches); then a PixelCNN (a 7x7 mask-A
convolution, two residual blocks, two 1x1 layers, 128 filters; Adam 3e-4, batch 128, 30 epochs) on the
training set's 7x7 code grids, whose validation cross-entropy reaches 1.03 nats per code.

Here: the same networks and optimizers (`vqvae`, codebook_update="loss", linear output), on keras_ae's
MNIST splits (the first 50,000 training images; keras-io trains on all 60,000 and validates the prior on
the last tenth of their codes, here on the 10,000 validation images' codes). keras-io's objective is
mean (x − x~)² / Var(x) + the VQ terms averaged over the code grid's 784 elements; ours sums each term per
example. The inputs are therefore standardized, x' = (x − 0.5) / σ with σ² the training pixels' variance,
so that Σ (x' − x~')² = 784 · keras-io's normalized loss and our objective is 784 times keras-io's: the
normalized reconstruction loss is the mean over pixels of (x' − x~')². Reported on the training split
(as keras-io's last epoch, though after training rather than averaged over it) and the validation split,
with the codebook's perplexity, the codes in use and the prior's nats per code on both splits.
"""

import dataclasses
import time

import keras
import numpy as np
from matplotlib.figure import Figure

from benchmarks.reproduce.common import run_record, save_figure, set_seed, timed_fit, write_json
from keras_ae import data, get_model, images

NAME = "vqvae"
PUBLISHED = {"normalized_reconstruction_loss": 0.0444, "prior_validation_nats_per_code": 1.03}


@dataclasses.dataclass(frozen=True)
class Config:
    latent_dim: int = 16
    num_codes: int = 128
    commitment_weight: float = 0.25
    filters: tuple = (32, 64)
    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 1e-3
    prior_epochs: int = 30
    prior_learning_rate: float = 3e-4
    prior_filters: int = 128
    train_examples: int | None = None  # all
    validation_examples: int | None = None
    seed: int = 0


def configure(args):
    config = Config(seed=args.seed)
    if args.epochs is not None:
        config = dataclasses.replace(config, epochs=args.epochs, prior_epochs=args.epochs)
    if args.quick:
        config = dataclasses.replace(config, epochs=1, prior_epochs=1, train_examples=1024, validation_examples=256)
    return config


def normalized_reconstruction_loss(model, x):
    """The mean over examples and pixels of (x' − x~')², x' standardized: keras-io's mean (x − x~)² / Var(x)."""
    return float(np.mean((x - model.predict(x, batch_size=1000, verbose=0)) ** 2))


def run(args):
    config = configure(args)
    start = time.time()
    raw = {split: data.load("mnist", split, data_dir=args.data_dir) for split in ("train", "validation")}
    raw = {
        "train": raw["train"][: config.train_examples],
        "validation": raw["validation"][: config.validation_examples],
    }
    sigma = float(np.std(raw["train"]))
    x = {split: ((pixels - 0.5) / sigma).astype(np.float32) for split, pixels in raw.items()}

    set_seed(config.seed)
    model = get_model(
        "vqvae",
        input_shape=(28, 28, 1),
        latent_dim=config.latent_dim,
        num_codes=config.num_codes,
        filters=list(config.filters),
        commitment_weight=config.commitment_weight,
        codebook_update="loss",
        output_activation=None,
        prior_filters=config.prior_filters,
        seed=config.seed,
    )
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    history, seconds = timed_fit(model, x["train"], config)
    prior_start = time.time()
    prior_history = model.fit_prior(
        x["train"],
        epochs=config.prior_epochs,
        batch_size=config.batch_size,
        validation_data=x["validation"],
        learning_rate=config.prior_learning_rate,
        verbose=0,
    )
    prior_seconds = time.time() - prior_start
    evaluation = {split: model.evaluate(x[split], batch_size=1000, verbose=0, return_dict=True) for split in x}
    results = {
        "normalized_reconstruction_loss": {split: normalized_reconstruction_loss(model, x[split]) for split in x},
        "last_epoch_normalized_reconstruction_loss": history.history["reconstruction"][-1] / 784,
        "perplexity": {split: evaluation[split]["perplexity"] for split in x},
        "codes_used": {split: evaluation[split]["codes_used"] for split in x},
        "prior_nats_per_code": {split: model.prior_nats_per_code(model.codes(x[split], 1000), 1000) for split in x},
        "prior_validation_curve": prior_history.history.get("val_loss"),
        "train_seconds": round(seconds, 1),
        "prior_train_seconds": round(prior_seconds, 1),
    }
    samples = model.sample(64, seed=config.seed) * sigma + 0.5
    figure = save_figure(_samples_figure(samples), args.out, f"{NAME}_samples")
    payload = {
        "protocol": {
            "data": f"keras_ae MNIST splits, x' = (x − 0.5) / σ, σ = {sigma:.4f} the training pixels' std; "
            f"{len(raw['train'])} training and {len(raw['validation'])} validation images",
            "model": model.get_config(),
            "training": f"Adam {config.learning_rate:g}, batch {config.batch_size}, {config.epochs} epochs; "
            f"prior: Adam {config.prior_learning_rate:g}, batch {config.batch_size}, {config.prior_epochs} epochs",
            "published": {"source": "keras-io, Vector-Quantized Variational Autoencoders (Paul 2021)", **PUBLISHED},
            "config": dataclasses.asdict(config),
        },
        **run_record(),
        "results": results,
        "figures": [figure],
        "wall_seconds": round(time.time() - start, 1),
    }
    write_json(args.out, NAME, payload)
    print(
        f"{NAME}: normalized reconstruction loss {results['normalized_reconstruction_loss']['train']:.4f} "
        f"(keras-io {PUBLISHED['normalized_reconstruction_loss']}), prior "
        f"{results['prior_nats_per_code']['validation']:.3f} nats per code on validation "
        f"(keras-io {PUBLISHED['prior_validation_nats_per_code']})",
        flush=True,
    )


def _samples_figure(samples):
    fig = Figure(figsize=(4, 4))
    ax = fig.subplots()
    ax.imshow(images.tile(np.clip(samples, 0, 1)[..., 0], 8), cmap="gray")
    ax.set_axis_off()
    ax.set_title("decoded PixelCNN samples")
    return fig
