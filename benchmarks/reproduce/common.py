"""What several studies share: the common flags, MNIST, the training-time budget, JSON and PNG output."""

import json
import os
import platform
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from keras_ae import data

DEFAULT_DATA_DIR = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, os.pardir, "shared", "data")
WORK_DIR = os.path.join("runs", "reproduce")  # model weights (git-ignored)
BINARIZATION_SEED = 1234  # the numpy seed of the held-out splits' one binarization


def add_common_arguments(parser):
    parser.add_argument("--data-dir", default=os.path.normpath(DEFAULT_DATA_DIR), help="the shared .npz files")
    parser.add_argument("--out", default=os.path.join("docs", "results"), help="folder of the JSON and PNG files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a smoke run on tiny data; its numbers mean nothing")
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="override the study's epochs (pca: Adam steps; manifold: MNIST epochs, Frey Face 30x)",
    )


def set_seed(seed):
    keras.utils.set_random_seed(seed)  # no op determinism: it would turn XLA off


def mnist(data_dir, split):
    """One MNIST split as (N, 784) intensities in [0, 1] (keras_ae.data: first 50k train, last 10k validation)."""
    return data.load("mnist", split=split, data_dir=data_dir).reshape(-1, 784)


def mnist_labels(data_dir):
    """MNIST labels aligned with `mnist`'s splits."""
    with np.load(os.path.join(data_dir, "mnist.npz"), allow_pickle=False) as f:
        y_train, y_test = f["y_train"].astype(np.int64), f["y_test"].astype(np.int64)
    return {"train": y_train[:50000], "validation": y_train[50000:], "test": y_test}


def mnist_binarized_once(data_dir, splits):
    """Held-out MNIST splits binarized once, the fixed sets scored under dynamic binarization.

    Each pixel is 1 with probability its intensity, x ~ Bernoulli(p), drawn
    from one generator seeded BINARIZATION_SEED, split after split in the order given.
    """
    rng = np.random.default_rng(BINARIZATION_SEED)
    binarized = []
    for split in splits:
        p = mnist(data_dir, split)
        binarized.append((rng.random(p.shape) < p).astype(np.float32))
    return binarized


def timed_fit(model, x_train, config, validation_data=None):
    """`model.fit` for `config.epochs` epochs of `config.batch_size`, shuffled, silent; (history, seconds)."""
    start = time.time()
    history = model.fit(
        x_train,
        epochs=config.epochs,
        batch_size=config.batch_size,
        shuffle=True,
        verbose=0,
        validation_data=validation_data,
    )
    return history, time.time() - start


def first_dense_kernel(network):
    """The kernel (inputs, units) of the first Dense layer of `network`."""
    return next(layer for layer in network.layers if isinstance(layer, keras.layers.Dense)).kernel.numpy()


class TimeBudget(keras.callbacks.Callback):
    """Stops training after `seconds`; multiplies the learning rate by `decay` once, for the last `tail`
    fraction of the budget; records the curve (one row of logs per epoch, `learning_rate` where it changed).

    With `select_on_validation`, it keeps the weights of the epoch with the lowest `val_loss` (on the
    epochs that have one) and restores them when training ends; after `patience` validations without a
    new best it multiplies the learning rate by `decay`, and at plateau `max_plateaus` it stops: model
    selection on the validation split, never on test.

    Not Keras' ReduceLROnPlateau + EarlyStopping: the stop counts plateaus over the whole run (new bests
    between them do not reset it), which EarlyStopping's patience cannot say, and both warn on every
    epoch without `val_loss` (validation runs every few epochs).
    """

    def __init__(
        self, seconds, tail=0.2, decay=0.3, on_epoch=None, select_on_validation=False, patience=4, max_plateaus=3
    ):
        super().__init__()
        self.seconds, self.tail, self.decay, self.on_epoch = seconds, tail, decay, on_epoch
        self.select_on_validation, self.patience, self.max_plateaus = select_on_validation, patience, max_plateaus

    def on_train_begin(self, logs=None):
        self.start = time.time()
        self.decayed = False
        self.curve = []
        self.best = None  # (val_loss, epoch, weights)
        self.validations_since_best = 0
        self.plateaus = 0

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.time() - self.start
        self.curve.append(
            {"epoch": epoch + 1, "seconds": round(elapsed, 1), **{k: float(v) for k, v in (logs or {}).items()}}
        )
        if self.on_epoch:
            self.on_epoch(self.curve)
        if not self.decayed and elapsed > (1 - self.tail) * self.seconds:
            self._decay_learning_rate()
            self.decayed = True
        if self.select_on_validation and "val_loss" in (logs or {}):
            self._select(epoch + 1, float(logs["val_loss"]))
        if elapsed > self.seconds:
            self.model.stop_training = True

    def _select(self, epoch, val_loss):
        if self.best is None or val_loss < self.best[0]:
            self.best = (val_loss, epoch, self.model.get_weights())
            self.validations_since_best = 0
            return
        self.validations_since_best += 1
        if self.validations_since_best >= self.patience:  # a plateau: a lower learning rate, or the end
            self.plateaus += 1
            self.validations_since_best = 0
            if self.plateaus == self.max_plateaus:
                self.model.stop_training = True
            else:
                self._decay_learning_rate()

    def _decay_learning_rate(self):
        lr = self.model.optimizer.learning_rate
        lr.assign(float(lr.numpy()) * self.decay)
        self.curve[-1]["learning_rate"] = float(lr.numpy())

    @property
    def selected_epoch(self):
        return self.best[1] if self.best else None

    def on_train_end(self, logs=None):
        if self.best is not None:
            self.model.set_weights(self.best[2])


def run_record():
    """The machine and the versions a result was computed with."""
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "load_average_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        },
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }


def read_json(out, name):
    with open(os.path.join(out, f"{name}.json")) as f:
        return json.load(f)


def write_json(out, name, payload):
    """Writes OUT/<name>.json atomically (a temporary file, then a rename), so a reader never sees half of it."""
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, f"{name}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(payload, f, indent=2, default=_json_default)
        f.write("\n")
    os.replace(path + ".tmp", path)
    print(f"wrote {path}", flush=True)
    return path


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(type(value))


def save_figure(fig, out, name, dpi=100, gray=True):
    """Saves OUT/<name>.png; grey-level figures as 8-bit greyscale, which keeps them small. Returns the file name."""
    from PIL import Image

    path = os.path.join(out, f"{name}.png")
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    if gray:
        Image.open(path).convert("L").save(path, optimize=True)
    print(f"wrote {path} ({os.path.getsize(path) // 1024} KB)", flush=True)
    return os.path.basename(path)
