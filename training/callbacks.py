"""Training callbacks: TensorBoard images, code histograms and hparams, and a
NaN stop that says what likely went wrong. They ask the model what it offers
(`summary_images`, `output_range`), so they work for any keras-ae model."""

import json
import os
import signal

import keras
import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api


class ImageSummaries(keras.callbacks.Callback):
    """Every `every` epochs (and after the last) writes to TensorBoard the
    model's `summary_images` of the validation examples (inputs beside their
    reconstructions, filters, and a generative model's samples) and "codes",
    a histogram of the codes `model.encode(x)` of the examples.

    Args:
        log_dir: the folder of this writer's event file.
        examples: validation examples, or for a conditional model the pair (x,
            labels); the first 16 are shown, all of them (keep it to a thousand
            or so) feed the histogram.
        every: epochs between writes; 0 writes nothing.
    """

    def __init__(self, log_dir, examples, every):
        super().__init__()
        self.log_dir = log_dir
        self.examples = examples if isinstance(examples, tuple) else np.asarray(examples, np.float32)
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
        arguments = self.examples if isinstance(self.examples, tuple) else (self.examples,)  # x, or x and labels
        codes = keras.ops.convert_to_numpy(self.model.encode(*arguments, training=False)).astype(np.float32)
        with self.writer.as_default(step=step):
            for name, picture in self.model.summary_images(self.examples).items():
                tf.summary.image(name, picture[None])
            tf.summary.histogram("codes", codes)
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
    output_range = model.output_range()
    if output_range is not None and (low < output_range[0] or high > output_range[1]):
        return (
            f"Likely cause: the data lie in [{low:g}, {high:g}], but the decoder models "
            f"[{output_range[0]:g}, {output_range[1]:g}] (a sigmoid or Bernoulli one): scale the data "
            f"(--scale unit) or use a linear decoder; else {lower}."
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


# ----------------------------------------------------------- fault injection
FAULT_VARIABLE = "KERAS_AE_FAULT"


def _kill():
    os.kill(os.getpid(), signal.SIGKILL)


def fault_for_tests(point):
    """SIGKILLs this process at `point` when the environment variable
    KERAS_AE_FAULT names it: how the tests kill a run where they choose."""
    if os.environ.get(FAULT_VARIABLE) == point:
        _kill()


class _KillAt(keras.callbacks.Callback):
    """SIGKILLs the process once the optimizer reaches step `step` (at the end
    of that execution), or at the end of epoch `epoch`, after every other callback."""

    def __init__(self, step=None, epoch=None):
        super().__init__()
        self.step, self.epoch = step, epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.step is not None and int(self.model.optimizer.iterations) >= self.step:
            _kill()

    def on_epoch_end(self, epoch, logs=None):
        if self.epoch is not None and epoch + 1 == self.epoch:
            _kill()


def faults_for_tests():
    """[a callback that SIGKILLs the run] when KERAS_AE_FAULT is "step:N" or
    "epoch:N" (put it last, so that every other callback has run); else []."""
    kind, _, value = os.environ.get(FAULT_VARIABLE, "").partition(":")
    if kind in ("step", "epoch") and value.isdigit():
        return [_KillAt(**{kind: int(value)})]
    return []
