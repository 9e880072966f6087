"""Checks on user input, data and model arguments: one-line `ValueError`s before any weight changes."""

import math
import re
from collections.abc import Iterable

import keras
import numpy as np
import tensorflow as tf

from keras_ae import layers


def _describe(feature_shape):
    return "(batch, " + ", ".join(str(d) for d in feature_shape) + ")"


def check_feature_shape(shape, feature_shape):
    """Raises if `shape` (with the batch axis) is not (batch, *feature_shape)."""
    shape = tuple(shape)
    expected = _describe(feature_shape)
    if len(shape) != len(feature_shape) + 1:
        raise ValueError(
            f"Wrong rank: inputs must have rank {len(feature_shape) + 1} {expected}, "
            f"got rank {len(shape)} with shape {shape}."
        )
    for got, want in zip(shape[1:], feature_shape, strict=True):
        if got is not None and got != want:
            raise ValueError(f"Wrong feature shape: inputs must have shape {expected}, got {shape}.")


def check_dtype(dtype, feature_shape):
    """Raises if `dtype` (numpy or TF) cannot be cast to float."""
    dtype = tf.as_dtype(dtype) if not isinstance(dtype, np.dtype) or dtype.kind != "O" else None
    if dtype is None or not (dtype.is_floating or dtype.is_integer or dtype.is_bool):
        raise ValueError(
            f"Inputs must be numbers castable to float32 with shape {_describe(feature_shape)}; "
            f"got dtype {dtype.name if dtype is not None else 'object'}."
        )


def _range_message(value_range, low, high):
    """The error for data in [low, high] given to a model whose loss is defined on `value_range`."""
    expected = "[{:g}, {:g}]".format(*value_range)
    return (
        f"Inputs must lie in {expected}, where this model's loss is defined (input_range()); got values in "
        f'[{low}, {high}]. Scale the data into {expected}, e.g. keras_ae.data.load(..., scale="unit") or --scale unit.'
    )


def check_inputs(x, feature_shape, num_classes=None):
    """Checks what `encode`, `decode` or `model(x)` is given: an array or eager tensor
    whole (`check_array`); in a traced function (a training step, an export) the tensor's
    dtype and static shape, at trace time, adding no op to the graph. With `num_classes`
    (a conditional model's `model((x, labels))`), x is the pair, its labels checked too
    (`check_labels`)."""
    if num_classes is not None:
        if not isinstance(x, (tuple, list)) or len(x) != 2:
            raise ValueError(f"{LABELS_MESSAGE} Call it on the pair (x, labels); got {type(x).__name__}.")
        check_inputs(x[0], feature_shape)
        check_labels(x[1], num_classes, _batch_size(x[0]))
        return
    if _symbolic(x):
        check_dtype(x.dtype, feature_shape)
        if tf.TensorShape(x.shape).rank is not None:
            check_feature_shape(x.shape, feature_shape)
    else:
        check_array(x, feature_shape)


def _symbolic(x):
    return tf.is_symbolic_tensor(x) or isinstance(x, keras.KerasTensor)


def _batch_size(x):
    """The number of examples of x when known now (None in a traced function's dynamic batch)."""
    return x.shape[0] if hasattr(x, "shape") else len(x)


def _check_label_spec(dtype, shape):
    """Raises unless a traced batch of labels is ints of shape (batch,)."""
    dtype, shape = tf.as_dtype(dtype), tf.TensorShape(shape)
    if not dtype.is_integer or shape.rank not in (None, 1):
        raise ValueError(
            f"Labels must be int class indices of shape (batch,); got dtype {dtype.name} and shape {tuple(shape)}."
        )


def check_labels(labels, num_classes, count=None):
    """Checks the class labels y of `count` examples (None: any count): one int in
    [0, num_classes) per example. An array or eager tensor whole, returned as int32
    numpy; a traced tensor's dtype and rank at trace time, returned unchanged."""
    if _symbolic(labels):
        _check_label_spec(labels.dtype, labels.shape)
        return labels
    array = np.asarray(labels)
    if array.dtype.kind not in "iu":
        raise ValueError(f"Labels must be int class indices in [0, {num_classes}); got dtype {array.dtype}.")
    if array.ndim != 1 or (count is not None and len(array) != count):
        expected = "(batch,)" if count is None else f"({count},), one per example"
        raise ValueError(f"Labels must have shape {expected}; got shape {array.shape}.")
    if len(array) and (array.min() < 0 or array.max() >= num_classes):
        raise ValueError(
            f"Labels must lie in [0, {num_classes}) (num_classes={num_classes}); "
            f"got values in [{array.min()}, {array.max()}]."
        )
    return array.astype(np.int32)


def check_array(x, feature_shape, value_range=None):
    """Checks a whole in-memory array: shape, dtype, at least one example, NaN and Inf, and
    with `value_range` (low, high) its values. Returns it as float32."""
    if isinstance(x, (list, tuple)):
        x = np.asarray(x)
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise ValueError(
            f"Inputs must be an array or a tf.data.Dataset of shape {_describe(feature_shape)}; got {type(x).__name__}."
        )
    try:
        check_dtype(x.dtype, feature_shape)
    except TypeError:
        check_dtype(np.dtype("O"), feature_shape)
    check_feature_shape(x.shape, feature_shape)
    if x.shape[0] == 0:
        raise ValueError(f"Inputs hold no examples: give at least one, of shape {_describe(feature_shape)}.")
    x = np.asarray(x, dtype=np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        first = int(np.argwhere(bad.reshape(len(x), -1).any(axis=1))[0, 0])
        kind = "NaN" if np.isnan(x).any() else "Inf"
        raise ValueError(f"Inputs contain {kind} (first in example {first}): every value must be finite.")
    if value_range is not None:
        low, high = x.min(), x.max()
        if low < value_range[0] or high > value_range[1]:
            raise ValueError(_range_message(value_range, f"{low:.4g}", f"{high:.4g}"))
    return x


def check_dataset(dataset, feature_shape, value_range=None, num_classes=None):
    """Checks a dataset's spec now and each batch's values as it streams:
    NaN and Inf, and with `value_range` (low, high) the range.

    Elements are `x` alone (or `(x,)`): an autoencoder takes no targets; with
    `num_classes` (a conditional model) they are (x, labels) pairs, the labels
    one int in [0, num_classes) per example. A bad batch stops the input
    pipeline before the step that would consume it runs, with an error
    `failed_check` reads. Returns the dataset of checked float32 x (and int32 labels).
    """
    spec = dataset.element_spec
    pairs = isinstance(spec, tuple) and len(spec) == 2
    if num_classes is None and isinstance(spec, tuple) and len(spec) > 1:
        raise ValueError(
            f"{TARGETS_MESSAGE} Give a dataset of x alone, not of {len(spec)}-tuples "
            "(e.g. dataset.map(lambda x, y: x))."
        )
    if num_classes is not None and not (pairs and isinstance(spec[1], tf.TensorSpec)):
        raise ValueError(f"{LABELS_MESSAGE} Give a dataset of (x, labels) pairs; got elements {spec}.")
    x_spec = spec[0] if isinstance(spec, tuple) else spec
    if not isinstance(x_spec, tf.TensorSpec):
        raise ValueError(f"Dataset elements must be tensors of shape {_describe(feature_shape)}; got {spec}.")
    check_dtype(x_spec.dtype, feature_shape)
    check_feature_shape(x_spec.shape, feature_shape)
    if num_classes is not None:
        _check_label_spec(spec[1].dtype, spec[1].shape)

    def check_batch(*element):
        x = tf.cast(element[0], tf.float32)
        finite = tf.reduce_all(tf.math.is_finite(x))
        checks = [tf.debugging.Assert(finite, [NON_FINITE_MESSAGE])]
        if value_range is not None:
            low, high = tf.reduce_min(x), tf.reduce_max(x)
            inside = tf.logical_and(low >= value_range[0], high <= value_range[1])
            message = tf.strings.format(_range_message(value_range, "{}", "{}"), (low, high))
            checks.append(tf.debugging.Assert(tf.logical_or(inside, tf.logical_not(finite)), [message]))
        if num_classes is None:
            with tf.control_dependencies(checks):
                return tf.identity(x)
        labels = tf.cast(element[1], tf.int32)
        one_each = tf.equal(tf.size(labels), tf.shape(x)[0])
        inside = tf.reduce_all((labels >= 0) & (labels < num_classes))
        message = f"Inputs need one label in [0, {num_classes}) per example (num_classes={num_classes})."
        checks.append(tf.debugging.Assert(one_each & inside, [message]))
        with tf.control_dependencies(checks):
            return tf.identity(x), tf.identity(labels)

    return dataset.map(check_batch)


NON_FINITE_MESSAGE = "Inputs contain NaN or Inf: every value must be finite."
TARGETS_MESSAGE = "Autoencoders take inputs only: their target is the input."
LABELS_MESSAGE = "This model is conditional: it takes class labels with its inputs."
# A failed `check_dataset` check, as a graph error reports it.
_FAILED_CHECK = re.compile(r"assertion failed: \[(Inputs [^\n]*)\]")


class BadBatchError(ValueError):
    """A batch of a dataset failed a check of `check_dataset` as it streamed."""


def failed_check(error):
    """The message of the `check_dataset` check that raised `error` (a graph error, or a
    `BadBatchError` made of one), or None."""
    if isinstance(error, BadBatchError):
        return str(error)
    found = _FAILED_CHECK.search(str(error))
    return re.sub(r"\\(.)", r"\1", found.group(1)) if found else None  # the graph escapes quotes


# ------------------------------------------------------- model arguments
def _is_integral(value):
    """An int, or a float with an integral value (4.0), but not a bool."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    return float(value).is_integer()


def check_int(minimum, **values):
    """The one value given, e.g. check_int(0, kl_warmup_steps=100), as an int >= `minimum`, or raises."""
    ((name, value),) = values.items()
    if not _is_integral(value) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}.")
    return int(value)


def check_positive_int(**values):
    """The one value given, e.g. check_positive_int(latent_dim=4), as an int >= 1, or raises."""
    return check_int(1, **values)


def check_input_shape(input_shape):
    """The shape of one example, without the batch axis, as a tuple of positive ints, or raises."""
    try:
        dims = tuple(input_shape)
    except TypeError:
        dims = None
    if not dims or not all(_is_integral(d) and d >= 1 for d in dims):
        raise ValueError(
            f"input_shape must be a non-empty tuple of positive ints without the batch axis; got {input_shape!r}."
        )
    return tuple(int(d) for d in dims)


def check_hidden_units(hidden_units):
    """Returns hidden_units as a list of positive ints, or raises."""
    sequence = not isinstance(hidden_units, (str, bytes, dict)) and isinstance(hidden_units, Iterable)
    units = list(hidden_units) if sequence else [None]
    if not all(_is_integral(size) and size >= 1 for size in units):
        raise ValueError(f"hidden_units must be a list of positive ints; got {hidden_units!r}.")
    return [int(size) for size in units]


def check_non_negative(**values):
    """Raises for any negative or infinite weight, e.g. check_non_negative(weight=λ)."""
    for name, value in values.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < math.inf:
            raise ValueError(f"{name} must be a number >= 0, not inf or NaN; got {value!r}.")


def check_choice(**values_and_choices):
    """Raises unless each value is one of its choices, e.g. check_choice(penalty=(penalty, PENALTIES))."""
    for name, (value, choices) in values_and_choices.items():
        if value not in choices:
            raise ValueError(f"{name} must be one of {choices}; got {value!r}.")


def check_conv_filters(input_shape, filters, model):
    """Checks a conv model's (H, W, C) input and filters; returns the filters as a list."""
    if len(input_shape) != 3:
        raise ValueError(
            f"{model} needs image inputs of shape (height, width, channels); got input_shape={tuple(input_shape)}."
        )
    filters = check_hidden_units(filters)
    if not filters:
        raise ValueError("filters must name at least one convolution.")
    return filters


def check_conv_network(input_shape, filters, batch_norm, residual_blocks, model):
    """Checks a conv model's network arguments; returns (filters as a list, batch_norm,
    residual_blocks). filters="auto" takes the stages `layers.auto_filters` chooses from
    the image size."""
    if isinstance(filters, str):
        if filters != "auto":
            raise ValueError(f'filters must be "auto" or a list of positive ints; got {filters!r}.')
        if len(input_shape) == 3:  # else check_conv_filters names the wrong shape
            filters = layers.auto_filters(input_shape)
    filters = check_conv_filters(input_shape, filters, model)
    if not isinstance(batch_norm, (bool, np.bool_)):
        raise ValueError(f"batch_norm must be True or False; got {batch_norm!r}.")
    return filters, bool(batch_norm), check_int(0, residual_blocks=residual_blocks)
