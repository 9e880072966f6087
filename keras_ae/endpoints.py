"""What a model serves once exported: named functions with one input each.

A model lists its endpoints (`Autoencoder.export_endpoints`); `export`
writes each as a SavedModel signature and a TFLite signature, and checks it
against the model, without knowing what kind of model it has.
"""

import dataclasses
from collections.abc import Callable

import numpy as np
import tensorflow as tf


def _same_input(x):
    return x


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """One exported function.

    Args:
        name: the signature key, e.g. "encode".
        input_name: the name of its one input, e.g. "x".
        input_shape: the input's shape without the batch axis.
        fn: the model's math, a tensor (batch, *input_shape) -> {output name: tensor}.
        example: held-out inputs x (N, *feature_shape) -> this endpoint's
            inputs for them (N, *input_shape), numpy: what `export` checks the
            exported function on.
        dtype: the input's dtype.
        same_as: the name of an earlier endpoint computing the same function
            under other input and output names (`renames`: ((its name, this
            one's name), ...)); in TFLite the two signatures share one subgraph.
    """

    name: str
    input_name: str
    input_shape: tuple
    fn: Callable
    example: Callable = _same_input
    dtype: str = "float32"
    same_as: str = None
    renames: tuple = ()

    def spec(self):
        """The input signature: a dynamic batch axis, the fixed input shape."""
        return tf.TensorSpec((None, *self.input_shape), self.dtype, name=self.input_name)


def standard_normal_example(latent_dim, seed=0):
    """An `example` for an endpoint whose input is eps ~ N(0, I): one draw per
    held-out example, the same for every call (a fixed numpy seed)."""

    def example(x):
        return np.random.default_rng(seed).standard_normal((len(x), latent_dim)).astype(np.float32)

    return example
