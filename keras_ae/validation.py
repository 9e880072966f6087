"""Checks on user input, data and model arguments: one-line `ValueError`s before any weight changes."""

from collections.abc import Iterable

import numpy as np
import tensorflow as tf


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
    for got, want in zip(shape[1:], feature_shape):
        if got is not None and got != want:
            raise ValueError(
                f"Wrong feature shape: inputs must have shape {expected}, got {shape}."
            )


def check_dtype(dtype, feature_shape):
    """Raises if `dtype` (numpy or TF) cannot be cast to float."""
    dtype = tf.as_dtype(dtype) if not isinstance(dtype, np.dtype) or dtype.kind != "O" else None
    if dtype is None or not (dtype.is_floating or dtype.is_integer or dtype.is_bool):
        raise ValueError(
            f"Inputs must be numbers castable to float32 with shape {_describe(feature_shape)}; "
            f"got dtype {dtype if dtype is not None else 'object'}."
        )


def check_array(x, feature_shape):
    """Checks a whole in-memory array: shape, dtype, NaN and Inf. Returns it as float32."""
    if isinstance(x, (list, tuple)):
        x = np.asarray(x)
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise ValueError(
            f"Inputs must be an array or a tf.data.Dataset of shape {_describe(feature_shape)}; "
            f"got {type(x).__name__}."
        )
    try:
        check_dtype(x.dtype, feature_shape)
    except TypeError:
        check_dtype(np.dtype("O"), feature_shape)
    check_feature_shape(x.shape, feature_shape)
    x = np.asarray(x, dtype=np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        first = int(np.argwhere(bad.reshape(len(x), -1).any(axis=1))[0, 0])
        kind = "NaN" if np.isnan(x).any() else "Inf"
        raise ValueError(
            f"Inputs contain {kind} (first in example {first}): every value must be finite."
        )
    return x


def check_dataset(dataset, feature_shape):
    """Checks a dataset's spec now and each batch's values as it streams.

    Elements may be `x` or tuples whose first item is `x`. A non-finite batch
    stops the input pipeline before the step that would consume it runs.
    """
    spec = dataset.element_spec
    x_spec = spec[0] if isinstance(spec, tuple) else spec
    if not isinstance(x_spec, tf.TensorSpec):
        raise ValueError(
            f"Dataset elements must be tensors of shape {_describe(feature_shape)}; got {spec}."
        )
    check_dtype(x_spec.dtype, feature_shape)
    check_feature_shape(x_spec.shape, feature_shape)

    def assert_finite(*element):
        x = tf.cast(element[0], tf.float32)
        x = tf.debugging.assert_all_finite(x, NON_FINITE_MESSAGE)
        return (x,) + element[1:] if len(element) > 1 else x

    return dataset.map(assert_finite)


NON_FINITE_MESSAGE = "Inputs contain NaN or Inf: every value must be finite."


# ------------------------------------------------------- model arguments
def _is_integral(value):
    """An int, or a float with an integral value (4.0), but not a bool."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    return float(value).is_integer()


def check_positive_int(**values):
    """The one value given, e.g. check_positive_int(latent_dim=4), as an int >= 1, or raises."""
    ((name, value),) = values.items()
    if not _is_integral(value) or value < 1:
        raise ValueError(f"{name} must be an int >= 1; got {value!r}.")
    return int(value)


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
    """Raises for any negative weight, e.g. check_non_negative(weight=λ)."""
    for name, value in values.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0 or value != value:
            raise ValueError(f"{name} must be a number >= 0; got {value!r}.")


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
