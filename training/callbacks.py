"""Training callbacks: TensorBoard images, code histograms and hparams, and a
NaN stop that says what likely went wrong."""

import json
import math

import keras
import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api

MAX_FILTERS = 100


# ------------------------------------------------------------------ images
def display_shape(feature_shape):
    """(H, W, C) to show one example: images as they are, (H, W) with a
    channel, a flat vector of s*s features as s x s (patches), any other as 1 x D."""
    if len(feature_shape) == 3:
        return tuple(feature_shape)
    if len(feature_shape) == 2:
        return (*feature_shape, 1)
    size = int(np.prod(feature_shape))
    side = math.isqrt(size)
    return (side, side, 1) if side * side == size else (1, size, 1)


def _unit(images, each):
    """Maps values into [0, 1] for display: each image by its own min and max
    (each=True, for filters), else all together, and only when they leave [0, 1]."""
    axes = tuple(range(1, images.ndim)) if each else None
    low, high = images.min(axis=axes, keepdims=True), images.max(axis=axes, keepdims=True)
    if not each and low.min() >= 0 and high.max() <= 1:
        return images
    return (images - low) / np.maximum(high - low, 1e-12)


def tile(images, columns, normalize_each=False):
    """One grid image (1, H', W', C) of n images, `columns` across, 1-pixel gaps.

    Args:
        images: (n, h, w, c) with c in {1, 3}.
        columns: images per row.
        normalize_each: scale each image to [0, 1] on its own (filters);
            otherwise all share one scale (data and reconstructions).
    """
    images = _unit(np.asarray(images, np.float32), normalize_each)
    n, h, w, c = images.shape
    rows = math.ceil(n / columns)
    grid = np.ones((rows * (h + 1) - 1, columns * (w + 1) - 1, c), np.float32)
    for i, image in enumerate(images):
        top, left = (i // columns) * (h + 1), (i % columns) * (w + 1)
        grid[top : top + h, left : left + w] = image
    return grid[None]


def first_layer_filters(model):
    """The first encoder layer's filters as images (n, h, w, c), or None.

    A Dense kernel (features, units) gives one image of the input's shape per
    unit; a Conv2D kernel (k, k, channels, filters) one k x k image per filter.
    """
    for layer in getattr(getattr(model, "encoder", None), "layers", []):
        if isinstance(layer, keras.layers.Dense):
            kernel = keras.ops.convert_to_numpy(layer.kernel).T
            return kernel[:MAX_FILTERS].reshape((-1,) + display_shape(model.feature_shape))
        if isinstance(layer, keras.layers.Conv2D):
            kernel = np.transpose(keras.ops.convert_to_numpy(layer.kernel), (3, 0, 1, 2))
            # One channel, or RGB, can be shown; any other count shows its first channel.
            return kernel[:MAX_FILTERS] if kernel.shape[-1] in (1, 3) else kernel[:MAX_FILTERS, ..., :1]
    return None


class ImageSummaries(keras.callbacks.Callback):
    """Every `every` epochs (and after the last) writes to TensorBoard:

    - "reconstructions": validation inputs, each beside its reconstruction;
    - "codes": a histogram of the codes `model.encode(x)` of the examples;
    - "filters": the first encoder layer's filters as tiles (Dense or Conv2D);
    - "prior_samples": decoded prior samples, for models with `sample` (VAE);
    - "latent_manifold": decodes over a 2-D latent grid, for models with
      `latent_grid` and a 2-D code (VAE).

    Args:
        log_dir: the folder of this writer's event file.
        examples: validation examples; the first 16 are shown, all of them
            (keep it to a thousand or so) feed the histogram.
        every: epochs between writes; 0 writes nothing.
    """

    num_shown = 16
    grid_size = 10

    def __init__(self, log_dir, examples, every):
        super().__init__()
        self.log_dir = log_dir
        self.examples = np.asarray(examples, np.float32)
        self.every = every
        self.writer = None

    def on_train_begin(self, logs=None):
        self.writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_end(self, epoch, logs=None):
        last = epoch + 1 == self.params.get("epochs")
        if self.every and ((epoch + 1) % self.every == 0 or last):
            self.write(epoch)

    def on_train_end(self, logs=None):
        self.writer.close()

    def write(self, step):
        model = self.model
        shape = display_shape(model.feature_shape)
        shown = self.examples[: self.num_shown]
        reconstructions = keras.ops.convert_to_numpy(model(shown, training=False)).astype(np.float32)
        pairs = np.stack([shown.reshape((-1,) + shape), reconstructions.reshape((-1,) + shape)], axis=1)
        codes = keras.ops.convert_to_numpy(model.encode(self.examples, training=False)).astype(np.float32)
        with self.writer.as_default(step=step):
            tf.summary.image("reconstructions", tile(pairs.reshape((-1,) + shape), columns=8))
            tf.summary.histogram("codes", codes)
            filters = first_layer_filters(model)
            if filters is not None:
                tf.summary.image("filters", tile(filters, math.ceil(math.sqrt(len(filters))), normalize_each=True))
            if hasattr(model, "sample"):
                samples = keras.ops.convert_to_numpy(model.sample(self.num_shown, seed=0))
                tf.summary.image("prior_samples", tile(samples.reshape((-1,) + shape), columns=8))
            if hasattr(model, "latent_grid") and model.latent_dim == 2:
                grid = keras.ops.convert_to_numpy(model.latent_grid(self.grid_size))
                tf.summary.image("latent_manifold", tile(grid.reshape((-1,) + shape), columns=self.grid_size))
        self.writer.flush()


# ------------------------------------------------------------------ hparams
def _hparam_value(value):
    """A value TensorBoard's hparams plugin takes: bool, int, float or str."""
    if value is None:
        return "none"
    if isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value)


def write_hparams(log_dir, config, loss_names):
    """Writes the run's hparams entry: every option of `config` (mappings such
    as model_options flattened to "model_options.key"), with the train and
    validation value of each loss as its metrics."""
    values = {}
    for key, value in config.items():
        if isinstance(value, dict):
            values.update({f"{key}.{k}": _hparam_value(v) for k, v in value.items()})
        else:
            values[key] = _hparam_value(value)
    metrics = [
        hparams_api.Metric(f"epoch_{name}", group=group, display_name=f"{name} ({group})")
        for name in loss_names
        for group in ("train", "validation")
    ]
    with tf.summary.create_file_writer(log_dir).as_default() as writer:
        hparams_api.hparams_config(hparams=[hparams_api.HParam(key) for key in values], metrics=metrics)
        hparams_api.hparams(values)
        writer.flush()


# --------------------------------------------------------------------- NaN
def nan_hint(model, x, learning_rate):
    """The likely cause of a NaN loss, as one sentence."""
    low, high = float(np.min(x)), float(np.max(x))
    lower = f"lower the learning rate (now {learning_rate:g}; try --learning-rate {learning_rate / 10:g})"
    unit_decoder = (
        getattr(model, "output_activation", None) == "sigmoid"
        or getattr(model, "reconstruction_loss", None) == "bce"
        or getattr(model, "likelihood", None) in ("bernoulli", "continuous_bernoulli")
    )
    if unit_decoder and (low < 0 or high > 1):
        return (
            f"Likely cause: the data lie in [{low:g}, {high:g}], but the decoder is a sigmoid or Bernoulli one, "
            "which models [0, 1]: scale the data (--scale unit) or use a linear decoder; else "
            f"{lower}."
        )
    return f"Likely cause: the learning rate; {lower}. Check too that the data are scaled (now in [{low:g}, {high:g}])."


class TerminateOnNaN(keras.callbacks.TerminateOnNaN):
    """Keras' `TerminateOnNaN`, which also prints `hint` (see `nan_hint`) once
    and records that the run failed in `stopped`."""

    def __init__(self, hint):
        super().__init__()
        self.hint = hint
        self.epoch = 0
        self.stopped = False

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        super().on_batch_end(batch, logs)
        if self.model.stop_training and not self.stopped:
            self.stopped = True
            print(f"The loss became NaN or Inf in epoch {self.epoch + 1}, batch {batch + 1}. {self.hint}")
