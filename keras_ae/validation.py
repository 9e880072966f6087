"""Checks on user input: clear `ValueError`s before any weight changes."""

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
