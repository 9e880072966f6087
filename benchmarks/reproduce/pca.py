"""Item 1: linear and tied autoencoders reach PCA's residual and subspace on MNIST (Baldi & Hornik 1989)."""

import dataclasses
import math
import time

import keras
import numpy as np
import scipy.linalg
import tensorflow as tf
from matplotlib.figure import Figure

from benchmarks.reproduce.common import first_dense_kernel, mnist, run_record, save_figure, set_seed, write_json
from keras_ae import get_model
from keras_ae.images import tile

MODELS = {"linear": "`linear` (untied, h = Ux + b, x~ = Wh + c)", "tied": "`tied` (x~ = Wᵀh + c)"}


@dataclasses.dataclass(frozen=True)
class Config:
    dims: tuple = (2, 10, 50)
    models: tuple = ("linear", "tied")
    learning_rate: float = 0.05
    steps: int = 4000
    final_lr_fraction: float = 1e-3  # CosineDecay's alpha
    fit_epochs: int = 20  # the steps run as this many `fit` epochs: the points of the loss curve
    train_images: int | None = None  # None: all 50k
    seed: int = 0


QUICK = {"dims": (2, 10), "steps": 100, "train_images": 2000}


def add_arguments(parser):
    parser.add_argument("--dims", type=int, nargs="+", default=list(Config.dims), help="code sizes d")
    parser.add_argument("--models", nargs="+", default=list(Config.models), choices=tuple(MODELS))
    parser.add_argument("--lr", type=float, default=Config.learning_rate, help="Adam's initial learning rate")


def configure(args):
    config = Config(dims=tuple(args.dims), models=tuple(args.models), learning_rate=args.lr, seed=args.seed)
    if args.quick:
        config = dataclasses.replace(config, **QUICK)
    return dataclasses.replace(config, steps=args.epochs) if args.epochs else config


def result_name(config):
    """ "pca" for the default run (any seed); else a name that says what differs."""
    if dataclasses.replace(config, seed=Config.seed) == Config():
        return "pca"
    lr = f"_lr{config.learning_rate:g}" if config.learning_rate != Config.learning_rate else ""
    return f"pca_{'_'.join(config.models)}_d{'_'.join(map(str, config.dims))}_{config.steps}steps{lr}"


def residual(model, x):
    """The mean over examples of ||x - x~||²."""
    return float(model.evaluate(x, batch_size=10000, verbose=0, return_dict=True)["reconstruction"])


def fitted_pca(x, d, seed):
    set_seed(seed)
    pca = get_model("pca", input_shape=(x.shape[1],), latent_dim=d)
    pca.fit(x, verbose=0)
    return pca


def covariance_rows(x):
    """2·D rows with mean 0 and the covariance C = xᵀx/n of the centred (n, D) data x: ±√D·C^{1/2}.

    The mean squared error of an affine AE on centred data depends on the data only through C, so a
    full-batch step on these rows is exactly the full-batch step on all n rows of x, at a fraction of the cost.
    """
    covariance = x.T @ x / len(x)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    root = (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T  # C^{1/2}
    rows = math.sqrt(x.shape[1]) * root  # (rowsᵀrows + (−rows)ᵀ(−rows)) / 2D = 2D·C / 2D = C
    return np.concatenate([rows, -rows]).astype(np.float32)


def train(name, x_cov, d, config):
    """An AE `name` trained by full-batch Adam on the covariance rows; (model, loss curve, seconds)."""
    set_seed(config.seed)
    model = get_model(name, input_shape=(x_cov.shape[1],), latent_dim=d, seed=config.seed)
    schedule = keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=config.steps, alpha=config.final_lr_fraction
    )
    model.compile(optimizer=keras.optimizers.Adam(schedule))
    start = time.time()
    # The full batch, repeated: each `fit` epoch runs steps/fit_epochs Adam steps, with no per-step Python.
    full_batch = tf.data.Dataset.from_tensors(x_cov).repeat()
    history = model.fit(
        full_batch, epochs=config.fit_epochs, steps_per_epoch=config.steps // config.fit_epochs, verbose=0
    )
    return model, [float(v) for v in history.history["loss"]], time.time() - start


def run(args):
    config = configure(args)
    name = result_name(config)
    t0 = time.time()
    x = mnist(args.data_dir, "train").astype(np.float64)[: config.train_images]
    mean = x.mean(axis=0)
    x = x - mean
    x_test = (mnist(args.data_dir, "test") - mean).astype(np.float32)
    x_cov = covariance_rows(x)
    x = x.astype(np.float32)
    results = []
    for d in config.dims:
        pca = fitted_pca(x, d, config.seed)
        pca_train, pca_test = residual(pca, x), residual(pca, x_test)
        for model_name in config.models:
            model, loss_curve, seconds = train(model_name, x_cov, d, config)
            train_residual, test_residual = residual(model, x), residual(model, x_test)
            # The span of the decoder's columns: W (784, d) for tied (the decoder is Wᵀ), the decoder kernel's rows.
            basis = model.kernel.numpy() if model_name == "tied" else first_dense_kernel(model.decoder).T
            angles = scipy.linalg.subspace_angles(np.float64(basis), np.float64(pca.components.numpy().T))
            cosines = np.cos(angles)[::-1]  # descending
            row = {
                "model": model_name,
                "d": d,
                "pca_residual_train": pca_train,
                "ae_residual_train": train_residual,
                "relative_gap_train": (train_residual - pca_train) / pca_train,
                "pca_residual_test": pca_test,
                "ae_residual_test": test_residual,
                "relative_gap_test": (test_residual - pca_test) / pca_test,
                "min_cosine": float(cosines.min()),
                "mean_cosine": float(cosines.mean()),
                "cosines": cosines.tolist(),
                "steps": config.steps,
                "train_seconds": round(seconds, 1),
                f"loss_curve_every_{config.steps // config.fit_epochs}_steps": loss_curve,
            }
            print(
                f"pca d={d} {model_name}: residual {train_residual:.5f} vs PCA {pca_train:.5f} "
                f"({100 * row['relative_gap_train']:+.4f}%), min cos {row['min_cosine']:.6f} ({seconds:.0f}s)",
                flush=True,
            )
            results.append(row)
    features = x.shape[1]
    payload = {
        "protocol": {
            "data": f"MNIST, the {len(x)} images of the training split (unit scale, centred with their mean); "
            f"test: the {len(x_test)} MNIST test images centred with the same mean",
            "full_batch": "each step is the exact full-batch gradient on all training images, computed on the "
            f"2x{features} rows ±√{features}·C^{{1/2}} (zero mean, covariance C of the training images), on which "
            "the squared error of an affine AE is the same function of its weights",
            "residuals_measured_on": "the real training images and test images",
            "models": " and ".join(MODELS[m] for m in config.models) + ", squared error",
            "optimizer": f"full-batch Adam, lr {config.learning_rate} with CosineDecay to "
            f"{config.final_lr_fraction:g} of it over {config.steps} steps",
            "pca": "keras_ae `pca` (closed-form eigendecomposition) on the same data",
            "residual": "per-example ||x - x~||², mean over examples (pixels in [0, 1])",
            "subspace": "cosines of the principal angles between the span of the decoder's columns "
            "(the decoder kernel's rows for linear, W for tied) and the top-d PCA eigenvectors",
            "seed": config.seed,
        },
        "goal": "relative residual gap within 0.5%, all cosines > 0.999",
        "results": results,
        "wall_seconds": round(time.time() - t0, 1),
        **run_record(),
    }
    write_json(args.out, name, payload)
    if name == "pca" and 10 in config.dims:
        payload["figures"] = [components_figure(x[:10000], config.seed, args.out)]
        write_json(args.out, name, payload)
    return payload


def components_figure(x, seed, out):
    """The top-10 PCA eigenvectors: the subspace the linear AEs recover."""
    pca = fitted_pca(x, 10, seed)
    fig = Figure(figsize=(6, 1.5))
    ax = fig.subplots()
    ax.imshow(
        tile(pca.components.numpy().reshape(-1, 28, 28), 10, normalize="symmetric"), cmap="RdBu_r", vmin=0, vmax=1
    )
    ax.set_title("top-10 PCA eigenvectors of MNIST (the subspace the linear AEs recover)", fontsize=8)
    ax.axis("off")
    return save_figure(fig, out, "pca_components", gray=False)
