"""Item 3: Kingma & Welling's 2-D latent manifolds (MNIST, Frey Face) and MNIST samples for d = 2, 5, 10, 20."""

import dataclasses
import time

import keras
import numpy as np
from matplotlib.figure import Figure

from benchmarks.reproduce.common import (
    mnist,
    mnist_binarized_once,
    run_record,
    save_figure,
    set_seed,
    write_json,
)
from keras_ae import data, get_model
from keras_ae.images import tile

FREY_EPOCHS_PER_MNIST_EPOCH = 30  # --epochs N: N epochs on MNIST, 30·N on the (30x smaller) Frey Face


@dataclasses.dataclass(frozen=True)
class Config:
    latent_dims: tuple = (2, 5, 10, 20)  # MNIST; Frey Face: 2
    mnist_hidden_units: int = 500
    mnist_epochs: int = 10
    frey_hidden_units: int = 200
    frey_epochs: int = 300
    learning_rate: float = 1e-3
    batch_size: int = 100
    samples: int = 100
    train_images: int | None = None  # MNIST; None: all 50k
    seed: int = 0


QUICK = {"mnist_epochs": 1, "frey_epochs": 2, "train_images": 2000}


def configure(args):
    config = Config(seed=args.seed)
    if args.quick:
        config = dataclasses.replace(config, **QUICK)
    if args.epochs:
        config = dataclasses.replace(
            config, mnist_epochs=args.epochs, frey_epochs=args.epochs * FREY_EPOCHS_PER_MNIST_EPOCH
        )
    return config


def train_vae(x, epochs, config, **options):
    """A tanh MLP `vae` on x, Adam; (model, seconds)."""
    set_seed(config.seed)
    model = get_model("vae", input_shape=(x.shape[1],), activation="tanh", seed=config.seed, **options)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    start = time.time()
    model.fit(x, epochs=epochs, batch_size=config.batch_size, shuffle=True, verbose=0)
    return model, time.time() - start


def image_figure(image, title, out, name, dpi, figsize, **imshow):
    fig = Figure(figsize=figsize)
    ax = fig.subplots()
    ax.imshow(image, cmap="gray", **imshow)
    ax.set_title(title, fontsize=8)
    ax.axis("off")
    return save_figure(fig, out, name, dpi=dpi)


def manifold_figure(model, n, image_shape, title, out, name, figsize):
    """The decoder means over an n×n grid of the 2-D latent space, one figure (K&W 2014, fig. 4)."""
    grid = np.clip(model.latent_grid(n).numpy().reshape(-1, *image_shape), 0, 1)
    return image_figure(tile(grid, n, pad=0), title, out, name, dpi=110, figsize=figsize, vmin=0, vmax=1)


def run(args):
    config = configure(args)
    t0 = time.time()
    results = {"protocol": {}, "seed": config.seed}
    figures = []

    x_train = mnist(args.data_dir, "train")[: config.train_images]
    (x_valid,) = mnist_binarized_once(args.data_dir, ("validation",))
    results["protocol"]["mnist"] = (
        f"`vae`, 784-{config.mnist_hidden_units}-d tanh MLP (K&W appendix C), Bernoulli likelihood, dynamic "
        f"binarization, Adam {config.learning_rate:g}, batch {config.batch_size}, {config.mnist_epochs} epochs on the "
        f"{len(x_train)} training images; validation ELBO on a fixed binarization"
    )
    results["mnist"], samples = [], {}
    for d in config.latent_dims:
        model, seconds = train_vae(
            x_train,
            config.mnist_epochs,
            config,
            latent_dim=d,
            hidden_units=[config.mnist_hidden_units],
            likelihood="bernoulli",
            dynamic_binarization=True,
        )
        val_elbo = float(model.elbo(x_valid).mean())
        print(f"manifold: MNIST VAE d={d}: validation ELBO {val_elbo:.2f} ({seconds:.0f}s)", flush=True)
        results["mnist"].append(
            {
                "latent_dim": d,
                "epochs": config.mnist_epochs,
                "train_seconds": round(seconds, 1),
                "validation_elbo": val_elbo,
                "active_units": model.active_units(x_valid),
            }
        )
        samples[d] = model.sample(config.samples, seed=config.seed).numpy().reshape(-1, 28, 28)
        if d == 2:
            figures.append(
                manifold_figure(
                    model,
                    20,
                    (28, 28),
                    "MNIST, 2-D latent manifold (K&W 2014, fig. 4b)",
                    args.out,
                    "manifold_mnist",
                    figsize=(5, 5),
                )
            )
    fig = Figure(figsize=(3 * len(samples), 3.4))
    for ax, (d, images) in zip(fig.subplots(1, len(samples), squeeze=False)[0], samples.items(), strict=True):
        ax.imshow(tile(images, 10), cmap="gray")
        ax.set_title(f"{d}-D latent space", fontsize=9)
        ax.axis("off")
    fig.suptitle("Random samples p(x|z), z ~ N(0, I), decoder means (K&W 2014, fig. 5)", fontsize=9)
    figures.append(save_figure(fig, args.out, "samples_mnist", dpi=90))

    frey = data.load("frey_face", split="train", data_dir=args.data_dir).reshape(-1, 560)
    frey_valid = data.load("frey_face", split="validation", data_dir=args.data_dir).reshape(-1, 560)
    model, seconds = train_vae(
        frey,
        config.frey_epochs,
        config,
        latent_dim=2,
        hidden_units=[config.frey_hidden_units],
        likelihood="gaussian",
        decoder_scale="learned",
    )
    val_elbo = float(model.elbo(frey_valid).mean())
    print(f"manifold: Frey Face VAE d=2: validation ELBO {val_elbo:.1f} ({seconds:.0f}s)", flush=True)
    results["frey_face"] = {
        "latent_dim": 2,
        "epochs": config.frey_epochs,
        "train_seconds": round(seconds, 1),
        "validation_elbo_nats": val_elbo,
        "note": "continuous pixels in [0, 1]: the ELBO is a density, positive values are expected",
    }
    results["protocol"]["frey_face"] = (
        f"`vae`, 560-{config.frey_hidden_units}-2 tanh MLP, Gaussian likelihood with a learned per-pixel σ, pixels in "
        f"[0, 1], Adam {config.learning_rate:g}, batch {config.batch_size}, {config.frey_epochs} epochs on the "
        f"{len(frey)} training frames (keras_ae.data's fixed 80/10/10 split)"
    )
    figures.append(
        manifold_figure(
            model,
            12,
            (28, 20),
            "Frey Face, 2-D latent manifold (K&W 2014, fig. 4a)",
            args.out,
            "manifold_frey",
            figsize=(4.2, 5.5),
        )
    )
    results.update(figures=figures, wall_seconds=round(time.time() - t0, 1), **run_record())
    write_json(args.out, "manifold", results)
    return results
