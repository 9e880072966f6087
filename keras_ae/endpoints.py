"""What a model serves once exported: named functions of one input, x or a code, and
for a conditional model a second one, the class label (`Input`, `label_input`).

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


def max_abs_diff(got, want):
    """{output: max |got - want|}: how far an exported function's outputs are from the model's."""
    return {name: float(np.max(np.abs(np.asarray(got[name]) - want[name]))) for name in want}


@dataclasses.dataclass(frozen=True)
class Input:
    """An endpoint's input after its first one, e.g. a conditional model's class label.

    Args:
        name: the input's name in the signature, e.g. "label".
        shape: its shape without the batch axis; () for one value an example.
        dtype: its dtype, e.g. "int32".
        example: held-out inputs x (N, *feature_shape) -> this input for them (N, *shape), numpy.
    """

    name: str
    shape: tuple
    dtype: str
    example: Callable


def label_input(num_classes):
    """The "label" input of a conditional model's endpoints: one int32 class a row; the held-out
    examples are given every class in turn, 0, 1, ..., num_classes - 1, 0, ..."""

    def example(x):
        return (np.arange(len(x)) % num_classes).astype(np.int32)

    return Input("label", (), "int32", example)


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """One exported function.

    Args:
        name: the signature key, e.g. "encode".
        input_name: the name of its one input, e.g. "x".
        input_shape: the input's shape without the batch axis.
        fn: the model's math, a tensor (batch, *input_shape), then one a further
            input (`more_inputs`) -> {output name: tensor}.
        example: held-out inputs x (N, *feature_shape) -> this endpoint's
            inputs for them (N, *input_shape), numpy: what `export` checks the
            exported function on.
        dtype: the input's dtype.
        same_as: the name of an earlier endpoint computing the same function
            under other input and output names (`renames`: ((its name, this
            one's name), ...)); in TFLite the two signatures share one subgraph.
        compare: (exported outputs, the model's outputs) -> {output: difference},
            each held to the export format's bound (`max_abs_diff` by default).
        more_inputs: the `Input`s after the first, in the order `fn` takes them.
    """

    name: str
    input_name: str
    input_shape: tuple
    fn: Callable
    example: Callable = _same_input
    dtype: str = "float32"
    same_as: str = None
    renames: tuple = ()
    compare: Callable = max_abs_diff
    more_inputs: tuple = ()

    @property
    def inputs(self):
        """Every input, the first one included: (`Input`, ...) in `fn`'s order."""
        return (Input(self.input_name, self.input_shape, self.dtype, self.example), *self.more_inputs)

    def specs(self):
        """The input signature: per input a dynamic batch axis and its fixed shape."""
        return [tf.TensorSpec((None, *i.shape), i.dtype, name=i.name) for i in self.inputs]

    def examples(self, x):
        """{input name: array} of this endpoint for held-out inputs x (each input's `example`), in its dtype."""
        return {i.name: np.asarray(i.example(x), i.dtype) for i in self.inputs}


def standard_normal_example(latent_dim, seed=0):
    """An `example` for an endpoint whose input is eps ~ N(0, I): one draw per
    held-out example, the same for every call (a fixed numpy seed)."""

    def example(x):
        return np.random.default_rng(seed).standard_normal((len(x), latent_dim)).astype(np.float32)

    return example


def sample_endpoint(latent_dim, sample, **kwargs):
    """A generative model's `sample` endpoint: eps ~ N(0, I), drawn by the caller, -> the decoder mean at
    z = eps; the `decode` signature's graph under the names eps and sample. `kwargs`: more `Endpoint` fields."""
    return Endpoint(
        "sample",
        "eps",
        (latent_dim,),
        sample,
        example=standard_normal_example(latent_dim),
        same_as="decode",
        renames=(("z", "eps"), ("reconstruction", "sample")),
        **kwargs,
    )


def anomaly_differences(num_terms, threshold=None):
    """The `compare` of an anomaly endpoint. Its score is a sum of `num_terms`
    terms (one per feature), each rounded differently in each format, so its
    difference is counted per term, |Δ score| / num_terms: one bound then holds
    at any input size. A flag (score > `threshold`) differing from the model's
    counts as the model's |score - threshold| / num_terms: a flip is within the
    bound only where the score lies within the score's bound of the threshold."""

    def compare(got, want):
        score = want["anomaly_score"]
        differences = {"anomaly_score": float(np.max(np.abs(np.asarray(got["anomaly_score"]) - score))) / num_terms}
        if "is_anomaly" in want:
            flipped = np.asarray(got["is_anomaly"]) != want["is_anomaly"]
            differences["is_anomaly"] = float(np.max(np.abs(score - threshold)[flipped], initial=0.0)) / num_terms
        return differences

    return compare
