"""ONNX files of an exported SavedModel's signatures, converted with tf2onnx and run with onnxruntime.

    model = OnnxModel("runs/vae-digits/export/onnx")
    model.signatures["encode"](x=batch)  # {"mean": ..., "log_variance": ...}, as a SavedModel's signatures

Both packages are the optional extra `onnx` (`pip install 'keras-ae[onnx]'`), imported only when an
ONNX export is asked for (`require_onnx`). `export.export` converts every signature to its own file,
`onnx/<signature>.onnx`: one graph input and the signature's named outputs, a dynamic batch axis named
"batch" and the fixed feature shape, at tf2onnx's default opset (15 with tf2onnx 1.17) unless one is
given. onnxruntime checks every input's name, dtype and fixed dimensions before it runs.

Named onnx_export, not onnx: a module onnx.py beside export.py would shadow the onnx package whenever
export/ is on sys.path.
"""

import pathlib

import numpy as np
import tensorflow as tf

MISSING_EXTRA = "--onnx needs the onnx extra: pip install 'keras-ae[onnx]' (or pip install tf2onnx onnxruntime)"
# Op domains of the ONNX standard: any other names a custom op, which a stock runtime does not have.
STANDARD_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")


class OnnxUnavailableError(ImportError):
    """tf2onnx or onnxruntime is not installed (the optional extra `onnx`)."""


def require_onnx():
    """(tf2onnx, onnxruntime), or `OnnxUnavailableError` with the one line that says how to install them."""
    try:
        import onnxruntime
        import tf2onnx
    except ImportError as error:
        raise OnnxUnavailableError(f"{MISSING_EXTRA} ({error})") from error
    return tf2onnx, onnxruntime


def _name_batch_axis(proto):
    """Names the dynamic leading axis of every graph input and output "batch" (tf2onnx leaves "unk__N")."""
    for value in [*proto.graph.input, *proto.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_param"):
            dims[0].dim_param = "batch"


def convert_signature(signature, opset=None):
    """The ONNX `ModelProto` of one SavedModel signature (a `ConcreteFunction` of
    `tf.saved_model.load(...).signatures`): graph inputs and outputs named as
    the signature's, variables folded into constants."""
    tf2onnx, _ = require_onnx()
    _, specs = signature.structured_input_signature
    names = sorted(specs)
    input_signature = [tf.TensorSpec(specs[name].shape, specs[name].dtype, name=name) for name in names]

    def call(*inputs):
        return signature(**dict(zip(names, inputs, strict=True)))

    proto, _ = tf2onnx.convert.from_function(tf.function(call), input_signature=input_signature, opset=opset)
    _name_batch_axis(proto)
    return proto


def opset(proto):
    """The ONNX (default domain) opset a model imports."""
    return next(entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx"))


def onnx_ops(protos):
    """Sorted op types over the graphs of ONNX `ModelProto`s; an op of a
    domain other than the standard ones is named "<domain>:<op>"."""
    ops = set()
    for proto in protos:
        for node in proto.graph.node:
            ops.add(node.op_type if node.domain in STANDARD_DOMAINS else f"{node.domain}:{node.op_type}")
    return sorted(ops)


class OnnxSignature:
    """One ONNX file as a signature, called with its inputs by name: {output name: array}."""

    def __init__(self, key, session):
        self.key = key
        self.session = session
        self.output_names = [output.name for output in session.get_outputs()]

    def __call__(self, **inputs):
        outputs = self.session.run(self.output_names, {name: np.asarray(value) for name, value in inputs.items()})
        return dict(zip(self.output_names, outputs, strict=True))


class OnnxModel:
    """The `<signature>.onnx` files of a directory, each run by an onnxruntime session.

    Args:
        directory: the folder `export.export` writes, `DIR/onnx`.
        providers: onnxruntime execution providers; the CPU one by default,
            which the export's parity check runs on.

    Attributes:
        signatures: {signature key (the file's stem): `OnnxSignature`}.
    """

    def __init__(self, directory, providers=("CPUExecutionProvider",)):
        _, onnxruntime = require_onnx()
        paths = sorted(pathlib.Path(directory).glob("*.onnx"))
        if not paths:
            raise ValueError(f"No .onnx file in {directory}.")
        self.signatures = {
            path.stem: OnnxSignature(path.stem, onnxruntime.InferenceSession(str(path), providers=list(providers)))
            for path in paths
        }
