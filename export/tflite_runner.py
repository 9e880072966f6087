"""Run an exported TFLite file by signature, each input checked before it runs.

    model = TFLiteModel("runs/vae-digits/export/model_float32.tflite")
    model.signatures["encode"](x=batch)  # {"mean": ..., "log_variance": ...}, as a SavedModel's signatures

LiteRT's signature runners do not check an input against its signature: a
batch of another feature shape is resized into the graph and fails inside a
kernel ("XNNPack delegate failed to reshape runtimeNode number 19"), and a
wrong dtype fails on setting the tensor. `TFLiteModel` checks every input's
names, shape and dtype first and raises a one-line `ValueError` naming what
the signature expects.
"""

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def _fits(shape, actual):
    """Whether an array of shape `actual` fits `shape`, whose None axes take any size."""
    return len(actual) == len(shape) and all(d in (None, n) for d, n in zip(shape, actual, strict=True))


class TFLiteSignature:
    """One signature of a TFLite model, called with its inputs by name: {output name: array}."""

    def __init__(self, key, runner):
        self.key = key
        self._runner = runner
        # {input name: (shape with None for a dynamic axis, numpy dtype)}
        self.inputs = {
            name: (tuple(None if d < 0 else int(d) for d in detail["shape_signature"]), np.dtype(detail["dtype"]))
            for name, detail in runner.get_input_details().items()
        }

    def __call__(self, **inputs):
        if set(inputs) != set(self.inputs):
            raise ValueError(f"Signature {self.key!r} takes inputs {sorted(self.inputs)}; got {sorted(inputs)}.")
        for name, value in inputs.items():
            shape, dtype = self.inputs[name]
            value = np.asarray(value)
            if not _fits(shape, value.shape) or value.dtype != dtype:
                raise ValueError(
                    f"Signature {self.key!r} expects {name} of shape {shape} and dtype {dtype}; "
                    f"got shape {value.shape} and dtype {value.dtype}."
                )
        return self._runner(**inputs)


class TFLiteModel:
    """The signatures of a TFLite flatbuffer, checked (`TFLiteSignature`).

    Args:
        model: the path of a `.tflite` file, or its bytes.

    Attributes:
        signatures: {signature key: `TFLiteSignature`}.
    """

    def __init__(self, model):
        if isinstance(model, bytes):
            self.interpreter = Interpreter(model_content=model)
        else:
            self.interpreter = Interpreter(model_path=str(model))
        self.signatures = {
            key: TFLiteSignature(key, self.interpreter.get_signature_runner(key))
            for key in self.interpreter.get_signature_list()
        }
