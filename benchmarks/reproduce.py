"""Reproductions of the papers behind the zoo, on real data: numbers to JSON, figures to PNG.

    python -m benchmarks.reproduce pca        # linear/tied AE vs PCA on MNIST (issue item 1)
    python -m benchmarks.reproduce vae --variant vae --binarization dynamic --minutes 35
    python -m benchmarks.reproduce manifold   # Kingma & Welling's 2-D manifolds and samples (item 3)
    python -m benchmarks.reproduce probe      # logistic-regression probe on codes (item 4)
    python -m benchmarks.reproduce filters    # denoising vs weight decay filters; KL-sparse (item 5)
    python -m benchmarks.reproduce all --quick

Common flags: --data-dir (default ../shared/data), --out (default docs/results),
--seed, --quick (a smoke run in seconds; its numbers mean nothing), --epochs.
Each subcommand writes OUT/<name>.json (with its wall time and the protocol)
and OUT/<name>_*.png. Model weights go to runs/reproduce/ (git-ignored).
Hyperparameters were fixed in advance or chosen on the validation split;
the test split is only scored.
"""

import argparse
import json
import math
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DEFAULT_DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data")
WORK_DIR = os.path.join("runs", "reproduce")


# --------------------------------------------------------------------- helpers
def _tf():
    import keras
    import tensorflow as tf

    import keras_ae  # noqa: F401  (registers the models)

    return keras, tf


def _seed(seed):
    keras, _ = _tf()
    keras.utils.set_random_seed(seed)  # no op determinism: it would turn XLA off


def _machine():
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "load_average_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def _versions():
    keras, tf = _tf()
    return {"tensorflow": tf.__version__, "keras": keras.__version__}


def write_json(out, name, payload):
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, f"{name}.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=False, default=_json_default)
        f.write("\n")
    os.replace(tmp, path)
    print(f"wrote {path}", flush=True)
    return path


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(type(value))


def tile(images, rows, cols, pad=1, normalize="global"):
    """(N, H, W) images -> one (rows*(H+pad), cols*(W+pad)) array; missing tiles are blank."""
    images = np.asarray(images, np.float64)
    n, h, w = images.shape
    if normalize == "each":
        lo = images.reshape(n, -1).min(axis=1)[:, None, None]
        hi = images.reshape(n, -1).max(axis=1)[:, None, None]
        images = (images - lo) / np.maximum(hi - lo, 1e-12)
        background = 1.0
    elif normalize == "symmetric":  # each tile scaled by its own max |value|, 0 -> grey
        scale = np.abs(images).reshape(n, -1).max(axis=1)[:, None, None]
        images = 0.5 + 0.5 * images / np.maximum(scale, 1e-12)
        background = 1.0
    else:
        background = float(images.max())
    grid = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad), background)
    for k in range(min(n, rows * cols)):
        r, c = divmod(k, cols)
        grid[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = images[k]
    return grid


def save_figure(fig, out, name, dpi=100, gray=True):
    """Saves a PNG; grey-level figures as 8-bit greyscale, which keeps them small."""
    path = os.path.join(out, f"{name}.png")
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    if gray:
        from PIL import Image

        Image.open(path).convert("L").save(path, optimize=True)
    print(f"wrote {path} ({os.path.getsize(path) // 1024} KB)", flush=True)
    return os.path.basename(path)


def _mnist(args, split, **kwargs):
    from keras_ae import data

    return data.load("mnist", split=split, data_dir=args.data_dir, **kwargs)


def _mnist_labels(args):
    """MNIST labels aligned with keras_ae.data's splits (first 50k train, last 10k validation)."""
    with np.load(os.path.join(args.data_dir, "mnist.npz"), allow_pickle=False) as f:
        y_train, y_test = f["y_train"].astype(np.int64), f["y_test"].astype(np.int64)
    return {"train": y_train[:50000], "validation": y_train[50000:], "test": y_test}


class TimeBudget:
    """A Keras callback: stops training after `seconds`; drops the learning
    rate by `decay` for the last `tail` fraction of the budget; records the curve.

    With `select_on_validation`, it keeps the weights of the epoch with the
    lowest `val_loss` (on the epochs that have one) and restores them when
    training ends; after `patience` validations without a new best it
    multiplies the learning rate by `decay`, and the third time it stops:
    model selection on the validation split, never on test.
    """

    def __new__(cls, *args, **kwargs):
        keras, _ = _tf()

        class _Budget(keras.callbacks.Callback):
            def __init__(self, seconds, tail=0.2, decay=0.3, on_epoch=None, select_on_validation=False,
                         patience=4):
                super().__init__()
                self.seconds, self.tail, self.decay, self.on_epoch = seconds, tail, decay, on_epoch
                self.select_on_validation, self.patience = select_on_validation, patience
                self.start = time.time()
                self.decayed = False
                self.curve = []
                self.best = None  # (val_loss, epoch, weights)
                self.validations_since_best = 0
                self.plateaus = 0

            def on_epoch_end(self, epoch, logs=None):
                elapsed = time.time() - self.start
                row = {"epoch": epoch + 1, "seconds": round(elapsed, 1)}
                row.update({k: float(v) for k, v in (logs or {}).items()})
                self.curve.append(row)
                if self.on_epoch:
                    self.on_epoch(self.curve)
                if not self.decayed and elapsed > (1 - self.tail) * self.seconds:
                    self._decay_learning_rate()
                    self.decayed = True
                if self.select_on_validation and "val_loss" in row:
                    if self.best is None or row["val_loss"] < self.best[0]:
                        self.best = (row["val_loss"], epoch + 1, self.model.get_weights())
                        self.validations_since_best = 0
                    else:
                        self.validations_since_best += 1
                    if self.validations_since_best >= self.patience:  # a plateau: a lower lr, or stop
                        self.plateaus += 1
                        self.validations_since_best = 0
                        if self.plateaus == 3:
                            self.model.stop_training = True
                        else:
                            self._decay_learning_rate()
                if elapsed > self.seconds:
                    self.model.stop_training = True

            def _decay_learning_rate(self):
                lr = self.model.optimizer.learning_rate
                lr.assign(float(lr.numpy()) * self.decay)
                row = self.curve[-1]
                row["learning_rate"] = float(lr.numpy())

            @property
            def selected_epoch(self):
                return self.best[1] if self.best else None

            def on_train_end(self, logs=None):
                if self.best is not None:
                    self.model.set_weights(self.best[2])

        return _Budget(*args, **kwargs)


# ------------------------------------------------------------------------ PCA
def principal_cosines(basis_a, basis_b):
    """Cosines of the principal angles between span(columns of a) and span(columns of b), descending."""
    qa, _ = np.linalg.qr(np.asarray(basis_a, np.float64))
    qb, _ = np.linalg.qr(np.asarray(basis_b, np.float64))
    return np.clip(np.linalg.svd(qa.T @ qb, compute_uv=False), 0.0, 1.0)


def run_pca(args):
    """Item 1: linear and tied AEs reach PCA's residual and subspace on MNIST."""
    keras, tf = _tf()
    from keras_ae import get_model

    t0 = time.time()
    dims = [2, 10] if args.quick else args.pca_dims
    name_out = "pca" if (dims == [2, 10, 50] and args.pca_models == ["linear", "tied"] and not args.epochs) else (
        f"pca_{'_'.join(args.pca_models)}_d{'_'.join(map(str, dims))}_{args.epochs}steps"
        + (f"_lr{args.pca_lr:g}" if args.pca_lr != 0.05 else ""))
    steps = 100 if args.quick else (args.epochs or 4000)
    x = _mnist(args, "train").reshape(-1, 784).astype(np.float64)
    if args.quick:
        x = x[:2000]
    n_train = len(x)
    mean = x.mean(axis=0)
    x = x - mean
    x_test = (_mnist(args, "test").reshape(-1, 784) - mean).astype(np.float32)
    # The mean squared error of a linear (affine) AE on centred data depends on
    # the data only through its covariance C. The 2x784 rows ±√784·C^{1/2}
    # have mean 0 and covariance C, so a full-batch step on them is exactly
    # the full-batch step on all n_train images, at a fraction of the cost.
    covariance = x.T @ x / n_train
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    root = (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T
    rows = math.sqrt(784) * root
    x_cov = np.concatenate([rows, -rows]).astype(np.float32)
    x = x.astype(np.float32)
    rows = []
    for d in dims:
        _seed(args.seed)
        pca = get_model("pca", input_shape=(784,), latent_dim=d)
        pca.fit(x, verbose=0)
        pca_train = float(pca.evaluate(x, batch_size=10000, verbose=0, return_dict=True)["reconstruction"])
        pca_test = float(pca.evaluate(x_test, batch_size=10000, verbose=0, return_dict=True)["reconstruction"])
        pca_basis = pca.components.numpy().T  # (784, d)
        for name in args.pca_models:
            _seed(args.seed)
            model = get_model(name, input_shape=(784,), latent_dim=d, seed=args.seed)
            schedule = keras.optimizers.schedules.CosineDecay(args.pca_lr, decay_steps=steps, alpha=1e-3)
            model.compile(optimizer=keras.optimizers.Adam(schedule))
            start = time.time()
            # The full batch, repeated: one `fit` epoch is steps/20 Adam steps (no per-step Python overhead).
            full_batch = tf.data.Dataset.from_tensors(x_cov).repeat()
            history = model.fit(full_batch, epochs=20, steps_per_epoch=steps // 20, verbose=0)
            seconds = time.time() - start
            train = float(model.evaluate(x, batch_size=10000, verbose=0, return_dict=True)["reconstruction"])
            test = float(model.evaluate(x_test, batch_size=10000, verbose=0, return_dict=True)["reconstruction"])
            if name == "tied":
                basis = model.kernel.numpy()  # W (784, d): the decoder is Wᵀ
            else:
                basis = [layer for layer in model.decoder.layers if isinstance(layer, keras.layers.Dense)][0].kernel.numpy().T
            cos = principal_cosines(basis, pca_basis)
            loss_curve = history.history["loss"]
            row = {
                "model": name,
                "d": d,
                "pca_residual_train": pca_train,
                "ae_residual_train": train,
                "relative_gap_train": (train - pca_train) / pca_train,
                "pca_residual_test": pca_test,
                "ae_residual_test": test,
                "relative_gap_test": (test - pca_test) / pca_test,
                "min_cosine": float(cos.min()),
                "mean_cosine": float(cos.mean()),
                "cosines": cos.tolist(),
                "steps": steps,
                "train_seconds": round(seconds, 1),
                f"loss_curve_every_{steps // 20}_steps": [float(v) for v in loss_curve],
            }
            print(
                f"pca d={d} {name}: residual {train:.5f} vs PCA {pca_train:.5f} "
                f"({100 * row['relative_gap_train']:+.4f}%), min cos {row['min_cosine']:.6f} ({seconds:.0f}s)",
                flush=True,
            )
            rows.append(row)
    payload = {
        "protocol": {
            "data": f"MNIST, the {n_train} images of the training split (unit scale, centred with their mean); "
            "test: the 10k MNIST test images centred with the same mean",
            "full_batch": "each step is the exact full-batch gradient on all training images, computed on the "
            "2x784 rows ±√784·C^{1/2} (zero mean, covariance C of the training images), on which the squared "
            "error of an affine AE is the same function of its weights",
            "residuals_measured_on": "the real training images and test images",
            "models": "`linear` (untied, h = Ux + b, x~ = Wh + c) and `tied` (x~ = Wᵀh + c), squared error",
            "optimizer": f"full-batch Adam, lr {args.pca_lr} with CosineDecay to 1e-3 of it over {steps} steps",
            "pca": "keras_ae `pca` (closed-form eigendecomposition) on the same data",
            "residual": "per-example ||x - x~||², mean over examples (pixels in [0, 1])",
            "subspace": "cosines of the principal angles between the span of the decoder's columns "
            "(the decoder kernel's rows for linear, W for tied) and the top-d PCA eigenvectors",
            "seed": args.seed,
        },
        "goal": "relative residual gap within 0.5%, all cosines > 0.999",
        "results": rows,
        "wall_seconds": round(time.time() - t0, 1),
        "machine": _machine(),
        "versions": _versions(),
    }
    write_json(args.out, name_out, payload)
    # Figure: PCA eigenvectors vs the learned tied basis' top directions for d=10.
    row10 = [r for r in rows if r["d"] == 10]
    if row10 and name_out == "pca":
        _seed(args.seed)
        pca = get_model("pca", input_shape=(784,), latent_dim=10)
        pca.fit(x[:10000], verbose=0)
        fig, axes = plt.subplots(1, 1, figsize=(6, 1.5))
        axes.imshow(tile(pca.components.numpy().reshape(-1, 28, 28), 1, 10, normalize="symmetric"), cmap="RdBu_r",
                    vmin=0, vmax=1)
        axes.set_title("top-10 PCA eigenvectors of MNIST (the subspace the linear AEs recover)", fontsize=8)
        axes.axis("off")
        payload["figures"] = [save_figure(fig, args.out, "pca_components", gray=False)]
        write_json(args.out, name_out, payload)
    return payload


# ------------------------------------------------------------------------ VAE
VAE_PUBLISHED = {
    ("vae", "dynamic"): 86.76,
    ("iwae", "dynamic"): 84.78,
    ("vae", "static"): 89.9,
}
VAE_GOALS = {("vae", "dynamic"): 86.5, ("iwae", "dynamic"): 84.5}


def _vae_data(args):
    """(train, validation, test): intensities for dynamic binarization (validation and
    test binarized once with a fixed seed), or Larochelle's fixed binarization."""
    from keras_ae import data

    if args.binarization == "static":
        return tuple(
            data.load("binarized_mnist", split=s, data_dir=args.data_dir).reshape(-1, 784)
            for s in ("train", "validation", "test")
        )
    rng = np.random.default_rng(1234)
    train = _mnist(args, "train").reshape(-1, 784)
    valid = (rng.random((10000, 784)) < _mnist(args, "validation").reshape(-1, 784)).astype(np.float32)
    test = (rng.random((10000, 784)) < _mnist(args, "test").reshape(-1, 784)).astype(np.float32)
    return train, valid, test


def _vae_model(args):
    from keras_ae import get_model

    return get_model(
        "vae",
        input_shape=(784,),
        latent_dim=50,
        hidden_units=[200, 200],
        activation="tanh",
        likelihood="bernoulli",
        num_samples=50 if args.variant == "iwae" else 1,
        dynamic_binarization=args.binarization == "dynamic",
        scale_activation="exp",
        seed=args.seed,
    )


def run_vae(args):
    """Item 2: the IWAE paper's one-stochastic-layer VAE/IWAE, NLL with k=5000."""
    keras, tf = _tf()
    t0 = time.time()
    _seed(args.seed)
    name = f"vae_{args.variant}_{args.binarization}"
    prior = None
    if args.resume:  # continue a finished run from its saved weights (a fresh Adam), as a new result
        with open(os.path.join(args.out, f"{name}.json")) as f:
            prior = json.load(f)
        prior_weights = os.path.join(WORK_DIR, f"{name}.weights.h5")
        name += "_continued"
    x_train, x_valid, x_test = _vae_data(args)
    if args.quick:
        x_train, x_valid = x_train[:2000], x_valid[:500]
    model = _vae_model(args)
    model.compile(optimizer=keras.optimizers.Adam(args.vae_lr, epsilon=1e-4))
    weights = os.path.join(WORK_DIR, f"{name}{'_quick' if args.quick else ''}.weights.h5")
    minutes = 0.3 if args.quick else args.minutes
    epochs = args.epochs or (1 if args.quick else 100000)
    protocol = {
        "architecture": "784-200-200-50 tanh encoder (μ, log σ²), mirrored decoder, Bernoulli likelihood; "
        "one stochastic layer (IWAE paper, §5)",
        "objective": "IWAE bound, k=50" if args.variant == "iwae" else "ELBO (k=1), analytic KL",
        "binarization": (
            "dynamic: a fresh Bernoulli draw of the training intensities at every step; validation and test "
            "binarized once (numpy seed 1234)"
            if args.binarization == "dynamic"
            else "fixed (Larochelle & Murray 2011) binarized MNIST, 50k/10k/10k"
        ),
        "optimizer": f"Adam lr {args.vae_lr} (eps 1e-4), batch {args.batch_size}; lr x0.3 for the last 20% of the "
        f"time budget ({minutes} min); the paper: batch 20, 3280 epochs with lr 1e-3·10^(-i/7)",
        "seed": args.seed,
        "model_selection": (
            "the weights of the epoch with the best validation ELBO (checked every 5 epochs); after 4 checks "
            "without a new best the lr is multiplied by 0.3, and the third time training stops"
            if args.select_on_validation
            else "none: the last weights (validation ELBO reported every 5 epochs)"
        ),
    }
    if prior is not None:
        protocol["continued"] = (
            f"continued from the {len(prior['curve'])}-epoch weights of {name[:-len('_continued')]}.json with a "
            f"fresh Adam at lr {args.vae_lr} (x0.3 for the last 20% of {minutes} more minutes); the curve joins both"
        )
    state = {"protocol": protocol, "published_nll": VAE_PUBLISHED.get((args.variant, args.binarization)),
             "goal_nll": VAE_GOALS.get((args.variant, args.binarization)), "machine": _machine(),
             "versions": _versions()}

    def joined(curve):
        if prior is None:
            return curve
        n, t = len(prior["curve"]), prior["train_seconds"]
        return prior["curve"] + [dict(r, epoch=r["epoch"] + n, seconds=round(r["seconds"] + t, 1)) for r in curve]

    def on_epoch(curve):
        state["curve"] = joined(curve)
        state["status"] = "training"
        state["wall_seconds"] = round(time.time() - t0, 1)
        if len(curve) % 5 == 0 or len(curve) == 1:
            write_json(args.out, name, state)

    if args.eval_only:
        model.load_weights(weights)
        with open(os.path.join(args.out, f"{name}.json")) as f:
            state.update({k: v for k, v in json.load(f).items() if k in ("curve", "train_seconds", "protocol")})
        state["protocol"]["evaluation"] = "scored in a separate process (--eval-only) from the saved weights"
    else:
        if prior is not None:
            model.load_weights(prior_weights)
        budget = TimeBudget(minutes * 60, on_epoch=on_epoch, select_on_validation=args.select_on_validation)
        start = time.time()
        model.fit(
            x_train,
            epochs=epochs,
            batch_size=args.batch_size,
            shuffle=True,
            validation_data=x_valid,
            validation_freq=5,
            verbose=0,
            callbacks=[budget],
        )
        state["train_seconds"] = round(time.time() - start + (prior["train_seconds"] if prior else 0), 1)
        state["curve"] = joined(budget.curve)
        if budget.selected_epoch is not None:
            state["selected_epoch"] = budget.selected_epoch + (len(prior["curve"]) if prior else 0)
        os.makedirs(WORK_DIR, exist_ok=True)
        model.save_weights(weights)
    state["epochs"] = len(state["curve"])
    state["status"] = "evaluating"
    write_json(args.out, name, state)

    n_eval = 200 if args.quick else args.nll_examples
    k = 100 if args.quick else args.nll_samples
    rng = np.random.default_rng(0)
    subset = np.sort(rng.choice(len(x_test), size=min(n_eval, len(x_test)), replace=False))
    start = time.time()
    ll = model.log_likelihood(x_test[subset], num_samples=k, batch_size=50, chunk_size=500)
    eval_seconds = time.time() - start
    elbo = model.elbo(x_test)
    state.update(
        status="done",
        test_nll=float(-ll.mean()),
        test_nll_stderr=float(ll.std(ddof=1) / math.sqrt(len(ll))),
        nll_samples=k,
        nll_examples=int(len(subset)),
        nll_subset="all 10k test images" if len(subset) == len(x_test)
        else f"{len(subset)} test images drawn without replacement (numpy seed 0)",
        nll_seconds=round(eval_seconds, 1),
        nll_full_test_set_estimated_seconds=round(eval_seconds * len(x_test) / len(subset), 0),
        test_elbo=float(elbo.mean()),
        test_elbo_on_nll_subset=float(elbo[subset].mean()),
        active_units=model.active_units(x_test),
        latent_dim=50,
        wall_seconds=round(time.time() - t0, 1),
    )
    print(f"{name}: test NLL {state['test_nll']:.2f} ± {state['test_nll_stderr']:.2f} (k={k}, n={len(subset)}), "
          f"ELBO {state['test_elbo']:.2f}, active units {state['active_units']}", flush=True)
    write_json(args.out, name, state)
    _vae_curve_figure(args.out)
    return state


def _vae_curve_figure(out):
    runs = []
    for variant, binarization, suffix in (("vae", "dynamic", ""), ("vae", "dynamic", "_continued"),
                                          ("iwae", "dynamic", ""), ("vae", "static", "")):
        path = os.path.join(out, f"vae_{variant}_{binarization}{suffix}.json")
        if os.path.exists(path):
            with open(path) as f:
                runs.append((f"{variant.upper()} ({binarization}{', continued' if suffix else ''})", json.load(f)))
    if not runs:
        return
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for label, run in runs:
        curve = run.get("curve", [])
        ep = [r["epoch"] for r in curve]
        line, = ax.plot(ep, [-r["elbo"] for r in curve], lw=1, label=f"{label}: train −ELBO")
        val = [(r["epoch"], -r["val_elbo"]) for r in curve if "val_elbo" in r]
        if val:
            ax.plot(*zip(*val), "o", ms=3, color=line.get_color(), label=f"{label}: valid −ELBO")
        if "test_nll" in run:
            ax.axhline(run["test_nll"], color=line.get_color(), ls="--", lw=0.8,
                       label=f"{label}: test NLL (k={run['nll_samples']}) {run['test_nll']:.2f}")
        if run.get("published_nll"):
            ax.axhline(run["published_nll"], color=line.get_color(), ls=":", lw=0.8,
                       label=f"{label}: published {run['published_nll']}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats")
    ax.set_ylim(80, 130)
    ax.legend(fontsize=6)
    ax.set_title("784-200-200-50 VAE/IWAE on MNIST", fontsize=9)
    save_figure(fig, out, "vae_curves", gray=False)


# ------------------------------------------------------------------- manifold
def run_manifold(args):
    """Item 3: Kingma & Welling's 2-D manifolds (MNIST, Frey Face) and samples for d = 2, 5, 10, 20."""
    keras, tf = _tf()
    from keras_ae import data, get_model

    t0 = time.time()
    results = {"protocol": {}, "seed": args.seed}
    figures = []
    mnist_epochs = 1 if args.quick else (args.epochs or 10)
    frey_epochs = 2 if args.quick else (args.epochs and args.epochs * 30 or 300)
    x_train = _mnist(args, "train").reshape(-1, 784)
    x_valid = (np.random.default_rng(1234).random((10000, 784)) < _mnist(args, "validation").reshape(-1, 784)).astype(
        np.float32
    )
    if args.quick:
        x_train = x_train[:2000]

    def mnist_vae(d):
        _seed(args.seed)
        model = get_model("vae", input_shape=(784,), latent_dim=d, hidden_units=[500], activation="tanh",
                          likelihood="bernoulli", dynamic_binarization=True, seed=args.seed)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        start = time.time()
        model.fit(x_train, epochs=mnist_epochs, batch_size=100, shuffle=True, verbose=0)
        seconds = time.time() - start
        val_elbo = float(model.elbo(x_valid).mean())
        print(f"manifold: MNIST VAE d={d}: validation ELBO {val_elbo:.2f} ({seconds:.0f}s)", flush=True)
        return model, {"latent_dim": d, "epochs": mnist_epochs, "train_seconds": round(seconds, 1),
                       "validation_elbo": val_elbo, "active_units": model.active_units(x_valid)}

    results["protocol"]["mnist"] = (
        f"`vae`, 784-500-d tanh MLP (K&W appendix C), Bernoulli likelihood, dynamic binarization, Adam 1e-3, "
        f"batch 100, {mnist_epochs} epochs on the 50k training images; validation ELBO on a fixed binarization"
    )
    samples = {}
    results["mnist"] = []
    for d in (2, 5, 10, 20):
        model, info = mnist_vae(d)
        results["mnist"].append(info)
        samples[d] = model.sample(100, seed=args.seed).numpy().reshape(-1, 28, 28)
        if d == 2:
            grid = model.latent_grid(20).numpy().reshape(-1, 28, 28)
            fig, ax = plt.subplots(figsize=(5, 5))
            ax.imshow(tile(grid, 20, 20, pad=0), cmap="gray")
            ax.set_title("MNIST, 2-D latent manifold (K&W 2014, fig. 4b)", fontsize=8)
            ax.axis("off")
            figures.append(save_figure(fig, args.out, "manifold_mnist", dpi=110))
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.4))
    for ax, d in zip(axes, (2, 5, 10, 20)):
        ax.imshow(tile(samples[d], 10, 10, pad=1), cmap="gray")
        ax.set_title(f"{d}-D latent space", fontsize=9)
        ax.axis("off")
    fig.suptitle("Random samples p(x|z), z ~ N(0, I), decoder means (K&W 2014, fig. 5)", fontsize=9)
    figures.append(save_figure(fig, args.out, "samples_mnist", dpi=90))

    # Frey Face with a Gaussian decoder.
    _seed(args.seed)
    frey = data.load("frey_face", split="train", data_dir=args.data_dir).reshape(-1, 560)
    frey_valid = data.load("frey_face", split="validation", data_dir=args.data_dir).reshape(-1, 560)
    model = get_model("vae", input_shape=(560,), latent_dim=2, hidden_units=[200], activation="tanh",
                      likelihood="gaussian", decoder_scale="learned", seed=args.seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    start = time.time()
    model.fit(frey, epochs=frey_epochs, batch_size=100, shuffle=True, verbose=0)
    seconds = time.time() - start
    val_elbo = float(model.elbo(frey_valid).mean())
    print(f"manifold: Frey Face VAE d=2: validation ELBO {val_elbo:.1f} ({seconds:.0f}s)", flush=True)
    results["frey_face"] = {"latent_dim": 2, "epochs": frey_epochs, "train_seconds": round(seconds, 1),
                            "validation_elbo_nats": val_elbo,
                            "note": "continuous pixels in [0, 1]: the ELBO is a density, positive values are expected"}
    results["protocol"]["frey_face"] = (
        f"`vae`, 560-200-2 tanh MLP, Gaussian likelihood with a learned per-pixel σ, pixels in [0, 1], "
        f"Adam 1e-3, batch 100, {frey_epochs} epochs on the 1572 training frames (keras_ae.data's fixed 80/10/10 split)"
    )
    grid = np.clip(model.latent_grid(12).numpy().reshape(-1, 28, 20), 0, 1)
    fig, ax = plt.subplots(figsize=(4.2, 5.5))
    ax.imshow(tile(grid, 12, 12, pad=0), cmap="gray", vmin=0, vmax=1)
    ax.set_title("Frey Face, 2-D latent manifold (K&W 2014, fig. 4a)", fontsize=8)
    ax.axis("off")
    figures.append(save_figure(fig, args.out, "manifold_frey", dpi=110))
    results.update(figures=figures, wall_seconds=round(time.time() - t0, 1), machine=_machine(), versions=_versions())
    write_json(args.out, "manifold", results)
    return results


# ---------------------------------------------------------------------- probe
PROBE_TRAINING_OPTIONS = ("learning_rate", "learning_rate_decay")  # candidate keys for the optimizer, not the model


def _logistic_probe(train, y_train, valid, y_valid, test, y_test, l2_grid, epochs):
    """Multinomial logistic regression (one Dense softmax layer, Keras, Adam) on fixed features.

    The L2 weight and the epoch are chosen by validation accuracy (early
    stopping, best weights restored); the test split is scored once, with
    the chosen model. Features are used as they are (no standardization).
    """
    keras, tf = _tf()
    best = None
    scores = {}
    for l2 in l2_grid:
        keras.utils.set_random_seed(0)
        clf = keras.Sequential([
            keras.Input((train.shape[1],)),
            keras.layers.Dense(10, kernel_regularizer=keras.regularizers.L2(l2) if l2 else None),
        ])
        clf.compile(optimizer=keras.optimizers.Adam(3e-3),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    metrics=["accuracy"], jit_compile=True)
        stop = keras.callbacks.EarlyStopping("val_accuracy", patience=5, restore_best_weights=True, mode="max")
        history = clf.fit(train, y_train, epochs=epochs, batch_size=500, validation_data=(valid, y_valid),
                          callbacks=[stop], verbose=0)
        val = float(max(history.history["val_accuracy"]))
        scores[l2] = {"validation_accuracy": val, "epochs_run": len(history.history["val_accuracy"])}
        if best is None or val > best[0]:
            best = (val, l2, clf)
    val, l2, clf = best
    return {"l2": l2, "by_l2": {str(k): v for k, v in scores.items()}, "validation_accuracy": val,
            "train_accuracy": float(clf.evaluate(train, y_train, batch_size=1000, verbose=0)[1]),
            "test_accuracy": float(clf.evaluate(test, y_test, batch_size=1000, verbose=0)[1])}


def run_probe(args):
    """Item 4: linear probe on the codes of PCA and of 1000-unit autoencoders, beside raw pixels.

    Where a model has several candidate options (noise level, contractive
    weight), each is trained and probed, and the one with the best probe
    validation accuracy is the model's result.
    """
    keras, tf = _tf()
    from keras_ae import get_model

    t0 = time.time()
    labels = _mnist_labels(args)
    x = {s: _mnist(args, s).reshape(-1, 784) for s in ("train", "validation", "test")}
    y = dict(labels)
    n_train = 2000 if args.quick else args.probe_train
    x["train"], y["train"] = x["train"][:n_train], y["train"][:n_train]
    if args.quick:
        x["validation"], y["validation"] = x["validation"][:1000], y["validation"][:1000]
    epochs = 1 if args.quick else (args.epochs or 30)
    units = 100 if args.quick else 1000
    l2_grid = [0.0, 1e-4] if args.quick else [0.0, 1e-5, 1e-4]
    probe_epochs = 3 if args.quick else 60
    # Rifai et al. 2011 and Vincent et al. 2010: tied weights, x~ = σ(Wᵀh + c).
    common = dict(input_shape=(784,), latent_dim=units, activation="sigmoid", output_activation="sigmoid",
                  reconstruction_loss="bce", tied_weights=True, seed=args.seed)
    specs = {
        "autoencoder": [{}],
        "sparse": [{"penalty": "kl", "target_rate": 0.05, "sparsity_weight": 0.1}],
        # Gaussian noise and Adam 1e-2: a 10-epoch screen on the validation split (docs/results.md, section 4);
        # then σ = 0.25 and a cosine learning-rate decay.
        "denoising": [{"corruption": "gaussian", "noise_level": sigma, "learning_rate": 1e-2, **decay}
                      for sigma, decay in [(0.2, {}), (0.25, {}), (0.3, {})]
                      + [(sigma, {"learning_rate_decay": "cosine"}) for sigma in (0.25, 0.3)]],
        "contractive": [{"contractive_weight": weight, "jacobian": "analytic"} for weight in (1.0, 3.0)],
    }
    if args.probe_options:  # one candidate instead of the list, for every model named
        specs = {name: [json.loads(args.probe_options)] for name in specs}
    specs = {name: specs[name] for name in args.probe_models if name in specs}
    rows = []
    filters = {}

    def probe(name, codes, extra):
        start = time.time()
        result = _logistic_probe(codes["train"], y["train"], codes["validation"], y["validation"],
                                 codes["test"], y["test"], l2_grid, probe_epochs)
        result.update(features=name, size=int(codes["train"].shape[1]), probe_seconds=round(time.time() - start, 1),
                      **extra)
        print(f"probe {name} {extra.get('options', '')} ({result['size']}): test accuracy "
              f"{100 * result['test_accuracy']:.2f}%, validation {100 * result['validation_accuracy']:.2f}% "
              f"(L2={result['l2']})", flush=True)
        rows.append(result)
        write_json(args.out, "probe", {**payload, "results": rows, "wall_seconds": round(time.time() - t0, 1)})
        return result

    payload = {
        "protocol": {
            "data": f"MNIST pixels in [0, 1]; models and probes trained on the first {n_train} of the 50k training "
            "images, the probe's L2 weight and epoch chosen on the 10k validation images, scored on the 10k test images",
            "models": f"one hidden layer of {units} sigmoid units, tied weights (Rifai 2011), sigmoid output, "
            f"cross-entropy; Adam (lr 1e-3 unless an option names another; learning_rate_decay='cosine': "
            f"cosine decay to 0 over the run), batch 100, {epochs} epochs; "
            f"options: {json.dumps(specs)}; of several "
            "options, the one with the best probe validation accuracy is chosen",
            "probe": "multinomial logistic regression: one Dense(10) softmax layer on the fixed codes, Adam 3e-3, "
            f"batch 500, up to {probe_epochs} epochs with early stopping (patience 5) on validation accuracy; "
            f"L2 weight in {l2_grid} chosen by validation accuracy; codes used as they are",
            "seed": args.seed,
        },
        "goal": "denoising and contractive codes ≥ 98% test accuracy, above raw pixels and PCA",
        "machine": _machine(),
        "versions": _versions(),
    }
    if "baselines" in args.probe_models:
        probe("raw pixels", x, {})
        for d in (50, 784):
            pca = get_model("pca", input_shape=(784,), latent_dim=d)
            pca.fit(x["train"], verbose=0)
            probe(f"PCA-{d}", {s: pca.encode(v).numpy() for s, v in x.items()}, {})
    for name, candidates in specs.items():
        best = None
        for options in candidates:
            _seed(args.seed)
            model_options = {k: v for k, v in options.items() if k not in PROBE_TRAINING_OPTIONS}
            model = get_model(name, **common, **model_options)
            learning_rate = options.get("learning_rate", 1e-3)
            if options.get("learning_rate_decay") == "cosine":  # lr·½(1 + cos(π t/T)) over the T steps of the run
                learning_rate = keras.optimizers.schedules.CosineDecay(
                    learning_rate, decay_steps=epochs * math.ceil(len(x["train"]) / 100))
            model.compile(optimizer=keras.optimizers.Adam(learning_rate))
            start = time.time()
            history = model.fit(x["train"], epochs=epochs, batch_size=100, shuffle=True, verbose=0,
                                validation_data=x["validation"])
            seconds = time.time() - start
            print(f"probe: trained {name} {options} in {seconds:.0f}s, val loss {history.history['val_loss'][-1]:.2f}",
                  flush=True)
            codes = {s: np.concatenate([model.encode(v[i : i + 5000]).numpy() for i in range(0, len(v), 5000)])
                     for s, v in x.items()}
            result = probe(name, codes, {"options": options, "train_seconds": round(seconds, 1),
                                         "validation_reconstruction": float(history.history["val_reconstruction"][-1]),
                                         "mean_activation": float(codes["test"].mean())})
            if best is None or result["validation_accuracy"] > best[0]["validation_accuracy"]:
                best = (result, model.encoder.layers[-1].kernel.numpy())
        if len(candidates) > 1:  # the choice, by validation accuracy only
            best[0]["chosen_on_validation"] = True
        filters[name] = best
    payload.update(results=rows, wall_seconds=round(time.time() - t0, 1))
    shown = [name for name in ("denoising", "contractive") if name in filters]
    if shown:
        fig, axes = plt.subplots(1, len(shown), figsize=(5 * len(shown), 5.3), squeeze=False)
        for ax, name in zip(axes[0], shown):
            result, kernel = filters[name]
            ax.imshow(tile(kernel.T[:100].reshape(-1, 28, 28), 10, 10, normalize="symmetric"), cmap="gray",
                      vmin=0, vmax=1)
            ax.set_title(f"{name} {json.dumps(result['options'])}\nfirst 100 of {units} filters (W's columns), "
                         f"probe test {100 * result['test_accuracy']:.2f}%", fontsize=8)
            ax.axis("off")
        payload["figures"] = [save_figure(fig, args.out, "probe_filters", dpi=72)]
    write_json(args.out, "probe", payload)
    return payload


# -------------------------------------------------------------------- filters
def minimize_lbfgs(model, x, max_iterations):
    """Full-batch L-BFGS on the model's own loss (`total_loss(loss_terms(x))`), as
    Ng (2011) trains the sparse autoencoder (minFunc). Returns the loss after
    each iteration."""
    import scipy.optimize

    keras, tf = _tf()
    variables = model.trainable_variables
    sizes = [int(np.prod(v.shape)) for v in variables]
    x = tf.constant(x)

    @tf.function
    def loss_and_gradient(flat):
        for variable, part in zip(variables, tf.split(flat, sizes)):
            variable.assign(tf.reshape(part, variable.shape))
        with tf.GradientTape() as tape:
            loss = model.total_loss(model.loss_terms(x, training=True))
        return loss, tf.concat([tf.reshape(g, [-1]) for g in tape.gradient(loss, variables)], axis=0)

    def objective(flat):
        loss, gradient = loss_and_gradient(tf.constant(flat, tf.float32))
        return float(loss), gradient.numpy().astype(np.float64)

    curve = []
    start = np.concatenate([v.numpy().ravel() for v in variables]).astype(np.float64)
    result = scipy.optimize.minimize(objective, start, jac=True, method="L-BFGS-B",
                                     options={"maxiter": max_iterations},
                                     callback=lambda intermediate_result: curve.append(intermediate_result.fun))
    objective(result.x)  # leave the model at the solution
    return curve


def dc_fraction(kernel):
    """The share of each filter's energy in its mean: Σw² = d·mean(w)² + Σ(w − mean(w))²; kernel (d, units)."""
    return kernel.shape[0] * kernel.mean(axis=0) ** 2 / np.sum(kernel**2, axis=0)


def run_filters(args):
    """Item 5: denoising vs weight-decay filters on 12x12 patches (Vincent 2010);
    the KL-sparse 64-25-64 AE on 8x8 patches (Ng 2011)."""
    keras, tf = _tf()
    from keras_ae import data, get_model

    t0 = time.time()
    n = 2000 if args.quick else 20000
    epochs = 2 if args.quick else (args.epochs or 100)
    figures, results = [], {}

    # Vincent et al. (2010), fig. 6: 12x12 patches, 200 sigmoid hidden units, tied weights, linear decoder,
    # squared error. The patches keep the whitened images' scale (std ≈ 0.3, as Olshausen's IMAGES, variance
    # 0.1), so σ = 0.5 is noise stronger than the signal, as in the paper.
    x12 = {s: data.load("patches", split=s, scale="raw", patch_size=12, num_patches=n) for s in ("train", "validation")}
    panels = {}
    vincent = [
        ("weight decay λ=0.005", "autoencoder", {"weight_decay": 0.005}),
        ("Gaussian noise σ=0.5", "denoising", {"corruption": "gaussian", "noise_level": 0.5}),
    ]
    results["vincent"] = []
    for label, name, options in vincent:
        _seed(args.seed)
        model = get_model(name, input_shape=(144,), latent_dim=200, activation="sigmoid", output_activation=None,
                          reconstruction_loss="mse", tied_weights=True, seed=args.seed, **options)
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        start = time.time()
        history = model.fit(x12["train"], epochs=epochs, batch_size=100, shuffle=True, verbose=0,
                            validation_data=x12["validation"])
        seconds = time.time() - start
        panels[label] = model.encoder.layers[-1].kernel.numpy().T.reshape(-1, 12, 12)
        results["vincent"].append({
            "model": label, "registry": name, "options": options, "epochs": epochs, "train_seconds": round(seconds, 1),
            "validation_reconstruction": float(history.history["val_reconstruction"][-1]),
            "validation_input_energy": float(np.mean(np.sum(x12["validation"] ** 2, axis=1))),
        })
        print(f"filters: {label}: val reconstruction {results['vincent'][-1]['validation_reconstruction']:.3f} "
              f"({seconds:.0f}s)", flush=True)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.9))
    for ax, (label, filters) in zip(axes, panels.items()):
        ax.imshow(tile(filters[:64], 8, 8, normalize="symmetric"), cmap="gray", vmin=0, vmax=1)
        ax.set_title(label, fontsize=9)
        ax.axis("off")
    fig.suptitle("First 64 of 200 tied filters on 12x12 whitened natural-image patches (Vincent et al. 2010, fig. 6)",
                 fontsize=9)
    figures.append(save_figure(fig, args.out, "filters_vincent", dpi=72))

    # Ng (2011): 64-25-64, sigmoid everywhere, data in [0.1, 0.9], ρ = 0.01, β = 3, λ = 1e-4. The photographs
    # at half size (downsample=2): at full size half of the 8x8 patches are nearly flat, and the L-BFGS run
    # leaves some or all units flat and unused, depending on the seed (docs/results.md, section 5).
    iterations = 20 if args.quick else 400

    def ng_patches(downsample):
        return {s: data.load("patches", split=s, scale="unit", patch_size=8, num_patches=max(n // 2, 2000),
                             downsample=downsample) for s in ("train", "validation", "test")}

    def ng_sparse(x_train, seed):
        """(model, L-BFGS loss curve, seconds, encoder kernel (64, 25))."""
        _seed(seed)
        model = get_model("sparse", input_shape=(64,), latent_dim=25, penalty="kl", target_rate=0.01,
                          sparsity_weight=6.0, activation="sigmoid", output_activation="sigmoid",
                          reconstruction_loss="mse", weight_decay=1e-4, seed=seed)
        model.compile()  # for `evaluate`; L-BFGS trains it
        start = time.time()
        curve = minimize_lbfgs(model, x_train, iterations)
        kernel = [layer for layer in model.encoder.layers if isinstance(layer, keras.layers.Dense)][0].kernel
        return model, curve, time.time() - start, kernel.numpy()

    x8 = ng_patches(2)
    model, curve, seconds, w = ng_sparse(x8["train"], args.seed)
    h = model.encode(x8["test"]).numpy()
    ev = model.evaluate(x8["test"], batch_size=len(x8["test"]), verbose=0, return_dict=True)
    results["ng_sparse"] = {
        "protocol": "`sparse` 64-25-64, sigmoid hidden and output, squared error, penalty='kl', ρ=0.01, "
        "sparsity_weight=6 (our reconstruction is Σ(x−x~)², Ng's is ½Σ(x−x~)², so 6 here is Ng's β=3), "
        "weight_decay=1e-4 (λΣW², Ng's λ/2·ΣW² at his scale), full-batch L-BFGS (scipy L-BFGS-B) for up to "
        f"{iterations} iterations on {len(x8['train'])} patches of the sample images at half size (Ng: minFunc's "
        "L-BFGS, 400 iterations, 10k patches of Olshausen's images); flat_filters: units whose filter has more "
        "than half of its energy in its mean (DC), which sees only the constant patch mean",
        "target_rate": 0.01,
        "flat_filters": int(np.sum(dc_fraction(w) > 0.5)),
        "mean_activation_test": float(h.mean()),
        "per_unit_mean_activation_test_min_max": [float(h.mean(axis=0).min()), float(h.mean(axis=0).max())],
        "test_reconstruction": float(ev["reconstruction"]),
        "test_sparsity_term": float(ev["sparsity"]),
        "test_weight_decay_term": float(ev["weight_decay"]),
        "iterations": len(curve),
        "train_seconds": round(seconds, 1),
        "loss_curve_every_10_iterations": [float(v) for v in curve[::10]] + [float(curve[-1])],
    }
    print(f"filters: KL-sparse mean activation {h.mean():.4f} (target 0.01), {results['ng_sparse']['flat_filters']} "
          f"flat filters ({seconds:.0f}s)", flush=True)
    # How many units stay flat, over seeds, with the photographs at full and at half size.
    seeds = range(args.seed, args.seed + (2 if args.quick else 5))
    results["ng_sparse"]["flat_filters_by_downsample_and_seed"] = {
        str(downsample): {str(seed): int(np.sum(dc_fraction(ng_sparse(x_train, seed)[3]) > 0.5)) for seed in seeds}
        for downsample, x_train in ((1, ng_patches(1)["train"]), (2, x8["train"]))
    }
    print(f"filters: flat filters by downsample and seed {results['ng_sparse']['flat_filters_by_downsample_and_seed']}",
          flush=True)
    fig, ax = plt.subplots(figsize=(3.5, 3.8))
    ax.imshow(tile(w.T.reshape(-1, 8, 8), 5, 5, normalize="symmetric"), cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"KL-sparse 64-25-64 (ρ=0.01): mean activation {h.mean():.4f}\n"
                 f"{results['ng_sparse']['flat_filters']} of 25 filters flat", fontsize=8)
    ax.axis("off")
    figures.append(save_figure(fig, args.out, "filters_sparse", dpi=100))
    results.update(
        protocol_vincent=f"{n} random 12x12 patches of the whitened scikit-learn sample images (80/10/10 split), "
        "at the whitened images' scale (std ≈ 0.3); one layer of 200 sigmoid units, tied weights, linear decoder, "
        f"squared error; Adam 1e-2, batch 100, {epochs} epochs. Weight decay: the loss term λΣ||W||², λ=0.005, "
        "the one value tried; denoising: additive Gaussian noise σ=0.5, no weight decay",
        figures=figures, wall_seconds=round(time.time() - t0, 1), seed=args.seed,
        machine=_machine(), versions=_versions(),
    )
    write_json(args.out, "filters", results)
    return results


# ------------------------------------------------------------------------ CLI
COMMANDS = {"pca": run_pca, "vae": run_vae, "manifold": run_manifold, "probe": run_probe, "filters": run_filters}


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reproduce", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=sorted(COMMANDS) + ["all"])
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="folder of the shared .npz files")
    parser.add_argument("--out", default=os.path.join("docs", "results"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny data, one epoch")
    parser.add_argument("--epochs", type=int, default=None, help="override each subcommand's epochs/steps")
    parser.add_argument("--pca-lr", type=float, default=0.05)
    parser.add_argument("--pca-dims", type=int, nargs="+", default=[2, 10, 50])
    parser.add_argument("--pca-models", nargs="+", default=["linear", "tied"], choices=("linear", "tied"))
    parser.add_argument("--variant", choices=("vae", "iwae"), default="vae")
    parser.add_argument("--binarization", choices=("dynamic", "static"), default="dynamic")
    parser.add_argument("--minutes", type=float, default=30.0, help="vae: training time budget")
    parser.add_argument("--batch-size", type=int, default=100, help="vae: batch size")
    parser.add_argument("--vae-lr", type=float, default=1e-3)
    parser.add_argument("--nll-samples", type=int, default=5000)
    parser.add_argument("--nll-examples", type=int, default=1000, help="vae: test images scored (10000: all)")
    parser.add_argument("--resume", action="store_true",
                        help="vae: continue a finished run from runs/reproduce weights, written as <name>_continued")
    parser.add_argument("--select-on-validation", action="store_true",
                        help="vae: keep the epoch with the best validation ELBO; lr x0.3 after 4 checks (every 5 "
                        "epochs) without a new best, and stop the third time")
    parser.add_argument("--eval-only", action="store_true", help="vae: load runs/reproduce weights, score only")
    parser.add_argument("--probe-train", type=int, default=50000, help="probe: training images used")
    probe_models = ("baselines", "autoencoder", "sparse", "denoising", "contractive")
    parser.add_argument("--probe-models", nargs="+", default=list(probe_models), choices=probe_models,
                        help="probe: the features probed (baselines: raw pixels and PCA)")
    parser.add_argument("--probe-options", default=None,
                        help='probe: one JSON candidate for the models named, e.g. \'{"noise_level": 0.3, '
                        '"learning_rate": 0.01, "learning_rate_decay": "cosine"}\'')
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    args.data_dir = os.path.normpath(args.data_dir)
    os.makedirs(args.out, exist_ok=True)
    commands = ["pca", "filters", "manifold", "probe", "vae"] if args.command == "all" else [args.command]
    for command in commands:
        start = time.time()
        COMMANDS[command](args)
        print(f"{command}: {time.time() - start:.0f}s", flush=True)


if __name__ == "__main__":
    main()
