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

import functools
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


@functools.cache
def _teach_tf2onnx():
    """Registers, once, with tf2onnx (1.17) a conversion into standard ONNX ops of the four
    TensorFlow ops it has none for that TFP's log-densities and KLs use (a VAE's
    anomaly score): Log1p as Log(1 + x) and Expm1 as Exp(x) - 1 (the same within
    float32 rounding of 1 + x, 6e-8, in absolute terms), MulNoNan as
    Where(y == 0, 0, x * y), and BroadcastArgs as the shape of the sum of zero
    tensors of the two shapes. The export checks every file against Keras."""
    from onnx import TensorProto
    from tf2onnx import utils
    from tf2onnx.handler import tf_op

    def constant(ctx, like, value, dtype=None):
        dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(like)) if dtype is None else dtype
        return ctx.make_const(utils.make_name("constant"), np.array(value, dtype)).output[0]

    @tf_op("Log1p")
    class Log1p:
        @classmethod
        def version_1(cls, ctx, node, **kwargs):
            one_plus = ctx.make_node("Add", [node.input[0], constant(ctx, node.input[0], 1)])
            ctx.replace_inputs(node, [one_plus.output[0]])
            node.type = "Log"

    @tf_op("Expm1")
    class Expm1:
        @classmethod
        def version_1(cls, ctx, node, **kwargs):
            node.type = "Exp"
            one = constant(ctx, node.input[0], 1)
            ctx.insert_new_node_on_output("Sub", node.output[0], inputs=[node.output[0], one])

    @tf_op("MulNoNan")
    class MulNoNan:
        @classmethod
        def version_9(cls, ctx, node, **kwargs):
            node.type = "Mul"
            zero = constant(ctx, node.input[1], 0)
            y_is_zero = ctx.make_node("Equal", [node.input[1], zero]).output[0]
            ctx.insert_new_node_on_output("Where", node.output[0], inputs=[y_is_zero, zero, node.output[0]])

    @tf_op("BroadcastArgs")
    class BroadcastArgs:
        @classmethod
        def version_9(cls, ctx, node, **kwargs):
            int64, dtype = TensorProto.INT64, ctx.get_dtype(node.output[0])
            zeros = [
                ctx.make_node("ConstantOfShape", [ctx.make_node("Cast", [shape], attr={"to": int64}).output[0]])
                for shape in node.input
            ]
            ctx.replace_inputs(node, [ctx.make_node("Add", [zero.output[0] for zero in zeros]).output[0]])
            node.type = "Shape"
            ctx.set_dtype(node.output[0], int64)
            if dtype != int64:
                ctx.insert_new_node_on_output("Cast", node.output[0], to=dtype)


def convert_signature(signature, opset=None):
    """The ONNX `ModelProto` of one SavedModel signature (a `ConcreteFunction` of
    `tf.saved_model.load(...).signatures`): graph inputs and outputs named as
    the signature's, variables folded into constants."""
    tf2onnx, _ = require_onnx()
    _teach_tf2onnx()
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
