"""Export a keras-ae model as a SavedModel, as TFLite and as ONNX, verified against Keras.

    python -m export.export RUN_DIR_or_MODEL.keras --out DIR [--tflite float32[,float16,dynamic,int8]|all|none]
                                                   [--onnx] [--data TRAIN_INPUTS.npy]

writes

- `DIR/saved_model/`: a SavedModel (through `keras.export.ExportArchive`) with
  one signature per endpoint the model lists (`Autoencoder.export_endpoints`):
  every model has `serving_default` and `reconstruct` (x -> reconstruction),
  `encode`, `decode` and `anomaly_score` (x -> anomaly_score, the model's
  `anomaly_score`), and once `fit_anomaly_threshold` has stored a threshold,
  `is_anomaly` (x -> is_anomaly, a bool: anomaly_score > the threshold, and
  anomaly_score); a VAE's `encode` gives mean and log_variance, and it adds
  `sample` (eps -> sample, the decoder mean at z = eps ~ N(0, I) drawn by the
  caller); a conditional model's (`cvae`) endpoints take the class `label`
  (int32, one a row) as a second input, checked on every class in turn. Inputs
  have a dynamic batch axis and a fixed feature shape; no
  endpoint holds a random op, so every endpoint is deterministic. What a model
  cannot serve is left out and named, with the reason, in one warning line and
  the report's `omitted_endpoints`: a VAE's anomaly endpoints under
  `anomaly_score_method="negative_log_likelihood"`, a random estimate. It loads
  with `tf.saved_model.load` alone, without keras-ae or custom objects.
- `DIR/model_<format>.tflite`: every endpoint as a signature, builtin ops only
  (no Flex). `dynamic` stores int8 weights; `int8` also quantizes the
  activations, calibrated on `representative_data`, and keeps float32 inputs
  and outputs.
- `DIR/onnx/<signature>.onnx` (`--onnx`, `export_model(onnx=True)`): every
  signature of the SavedModel converted by tf2onnx to a file of its own, at
  tf2onnx's default opset (15 with tf2onnx 1.17), with the signature's input
  and output names and a dynamic axis "batch"; standard ONNX ops only, no
  random op (a VAE's `sample` takes eps, as in the other formats). Checked in
  onnxruntime's CPU provider within `BOUNDS["onnx"]`, the report naming the
  opset, the versions and the ops. tf2onnx and onnxruntime are the optional
  extra `onnx` (`pip install 'keras-ae[onnx]'`); without them `--onnx` stops
  with a one-line error before anything is written. Run the files with
  `export.onnx_export.OnnxModel`, or with any onnxruntime (C++, C#, Java, JS).
- `DIR/report.json`: for every format and endpoint the maximum absolute
  difference from the Keras model on held-out inputs (`Endpoint.compare`: an
  anomaly score, a sum over the features, per feature; a flag differing from
  the model's as the distance of its score from the threshold, per feature),
  the file size and the latency of a batch of 64. Float formats must stay
  within `BOUNDS`, else `export_model` raises after writing the report;
  quantized formats are reported beside the Keras model's own reconstruction
  error.

Every output is float32 but `is_anomaly`, a bool in all three formats (TFLite
and ONNX have bool tensors; a flag typed as a number would invite arithmetic on it),
and a VQ-VAE's code indices, int32 (its `decode` takes them).

A mixed-precision model (dtype policy mixed_float16) is exported from a float32
copy with its weights: every signature takes float32 and returns float32 (and
`is_anomaly`'s bool), and the
TFLite file needs no float16 kernel. It is checked against the mixed model
within `MIXED_PRECISION_BOUND`, and the report says which bound applied and why.
The ONNX files are converted from the same float32 SavedModel.
Run a TFLite file with `export.tflite_runner.TFLiteModel`, which checks inputs
against the signatures.
"""

import argparse
import copy
import json
import os
import pathlib
import shutil
import sys
import time
import warnings
import zipfile

# TensorFlow's C++ INFO and WARNING lines would bury the report table; set the variable to see them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import flatbuffers  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from ai_edge_litert import schema_py_generated as schema  # noqa: E402

import keras_ae  # noqa: E402, F401  (registers the models, for loading)
from keras_ae import validation  # noqa: E402

from . import onnx_export  # noqa: E402  (imports tf2onnx and onnxruntime only when called)
from .tflite_runner import TFLiteModel  # noqa: E402

TFLITE_FORMATS = ("float32", "float16", "dynamic", "int8")
# Maximum absolute difference from the Keras model allowed per format; the
# quantized formats have none and are reported instead.
BOUNDS = {"saved_model": 1e-5, "tflite_float32": 1e-5, "tflite_float16": 1e-2, "onnx": 1e-5}
# The bound of every float format of a mixed-precision model. Its Keras outputs
# went through float16 activations and weights (relative precision 2^-11, about
# 5e-4), the export's through float32: they differ by about 1e-3 of the outputs'
# scale (1.5e-3 on codes up to 2.6 of a VAE trained on digits).
MIXED_PRECISION_BOUND = 1e-2
LATENCY_BATCH = 64
MAX_HELDOUT = 256  # parity inputs taken from representative_data
MAX_CALIBRATION = 200  # int8 calibration examples per signature
# Outputs exported in their own type, not as float32: a flag (is_anomaly) and indices (a VQ-VAE's codes).
KEPT_DTYPES = (tf.bool, tf.int32)
SEED = 0


class ExportMismatchError(RuntimeError):
    """An exported format differs from the Keras model by more than its bound."""


def _shape_checked(x, shape):
    """x, unchanged, through ops that fail on any other feature shape.

    Neither runtime checks a signature's input against its declared shape:
    without them a (8, 32) batch given to a (None, 64) signature is silently
    reshaped into (4, 64). `ensure_shape` fails in the SavedModel with a line
    naming the expected shape ("Shape of tensor x [8,32] is not compatible
    with expected shape [?,64]"); TFLite drops it, and the concatenation, which
    needs equal rank and non-batch dims and never broadcasts, fails there.
    `TFLiteModel` checks inputs before they reach it.
    """
    x = tf.ensure_shape(x, (None, *shape))
    return tf.concat([x, tf.zeros((1, *shape), x.dtype)], axis=0)[:-1]


def _exported_fn(endpoint):
    def fn(*inputs):
        outputs = endpoint.fn(*(_shape_checked(x, i.shape) for x, i in zip(inputs, endpoint.inputs, strict=True)))
        return {name: v if v.dtype in KEPT_DTYPES else tf.cast(v, tf.float32) for name, v in outputs.items()}

    return fn


def _as_exported(value):
    """A Keras output as the export types it: a flag stays bool, an index int32, a number becomes float32."""
    value = keras.ops.convert_to_numpy(value)
    return value if tf.as_dtype(value.dtype) in KEPT_DTYPES else value.astype(np.float32)


# ------------------------------------------------------------------- writing
def write_saved_model(model, directory, model_endpoints):
    """Writes the endpoints as SavedModel signatures with `ExportArchive`."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    for endpoint in model_endpoints:
        archive.add_endpoint(endpoint.name, _exported_fn(endpoint), input_signature=endpoint.specs())
    archive.write_out(str(directory), verbose=False)


def convert_tflite(saved_model_dir, model_endpoints, fmt, calibration=None):
    """The TFLite flatbuffer (bytes) of the endpoints' SavedModel signatures, builtin ops only.

    An endpoint that is `same_as` another one is converted once: its
    signature points at the other's subgraph (`_share_subgraphs`).
    `calibration` (int8 only) maps each signature key to a dict of input
    arrays; each example is fed to the converter as a batch of one.
    """
    signature_keys = [e.name for e in model_endpoints if e.same_as is None]
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir), signature_keys=signature_keys)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if fmt != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if fmt == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if fmt == "int8":
        # int8 kernels for weights and activations; inputs and outputs stay float32.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]

        def representative_dataset():
            for key in signature_keys:
                inputs = calibration[key]
                for i in range(len(next(iter(inputs.values())))):
                    yield key, {name: array[i : i + 1] for name, array in inputs.items()}

        converter.representative_dataset = representative_dataset
    with warnings.catch_warnings():
        # The converter's calibrator builds a tf.lite.Interpreter internally.
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        flatbuffer = converter.convert()
    return _share_subgraphs(flatbuffer, model_endpoints)


def _share_subgraphs(flatbuffer, model_endpoints):
    """Adds a signature for each `same_as` endpoint, on the subgraph of the
    endpoint it repeats, its inputs and outputs renamed. A subgraph holds its
    own copy of every tensor's quantization parameters (per output channel
    for int8 weights), so a repeated subgraph would add them again."""
    model = schema.ModelT.InitFromPackedBuf(flatbuffer, 0)
    by_key = {signature.signatureKey.decode(): signature for signature in model.signatureDefs}
    for endpoint in model_endpoints:
        if endpoint.same_as is None:
            continue
        signature = copy.deepcopy(by_key[endpoint.same_as])
        signature.signatureKey = endpoint.name.encode()
        renames = dict(endpoint.renames)
        for tensor in signature.inputs + signature.outputs:
            tensor.name = renames.get(tensor.name.decode(), tensor.name.decode()).encode()
        model.signatureDefs.append(signature)
    builder = flatbuffers.Builder(len(flatbuffer))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def tflite_ops(model_bytes):
    """{op name: sorted input tensor types} over every subgraph of a TFLite
    flatbuffer. A custom op (Flex ops included) is named "CUSTOM:<code>"."""
    model = schema.ModelT.InitFromPackedBuf(model_bytes, 0)
    op_names = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    type_names = {code: name for name, code in vars(schema.TensorType).items() if not name.startswith("_")}
    ops = {}
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            builtin = max(code.builtinCode, code.deprecatedBuiltinCode)  # the schema keeps both fields
            name = op_names[builtin]
            if builtin == schema.BuiltinOperator.CUSTOM:
                name += ":" + code.customCode.decode()
            types = ops.setdefault(name, set())
            types.update(type_names[subgraph.tensors[i].type] for i in op.inputs if i >= 0)
    return {name: sorted(types) for name, types in sorted(ops.items())}


# ------------------------------------------------------------------ checking
def _endpoint_inputs(model_endpoints, x):
    """{endpoint name: {input name: array}} for held-out inputs x (`Endpoint.examples`), in
    each input's dtype: a mixed-precision model's codes are float16."""
    return {e.name: e.examples(x) for e in model_endpoints}


def _latency_ms(fn, repeats=10):
    """Median wall time of fn() in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def _check_format(run, model_endpoints, inputs, references):
    """Runs every endpoint through `run(endpoint_name, {input name: array}) -> dict`
    and compares it with the Keras references. Every model has `reconstruct`
    and `serving_default` on x (`Autoencoder.export_endpoints`)."""
    outputs = {e.name: run(e.name, inputs[e.name]) for e in model_endpoints}
    diffs = {e.name: e.compare(outputs[e.name], references[e.name]) for e in model_endpoints}
    served = inputs["serving_default"]
    batch = {name: np.resize(array, (LATENCY_BATCH, *array.shape[1:])) for name, array in served.items()}
    return {
        "max_abs_diff": diffs,
        "max_abs_diff_all": max(max(d.values()) for d in diffs.values()),
        "reconstruction_error": _reconstruction_error(served["x"], outputs["reconstruct"]["reconstruction"]),
        "latency_ms": _latency_ms(lambda: run("serving_default", batch)),
    }


def _reconstruction_error(x, reconstruction):
    """Mean absolute error |x - x~| over held-out examples and features."""
    return float(np.mean(np.abs(x - np.asarray(reconstruction))))


def _directory_size(path):
    return sum(f.stat().st_size for f in pathlib.Path(path).rglob("*") if f.is_file())


def _tflite_formats(tflite):
    if tflite is None or tflite == "none":
        return ()
    if tflite == "all":
        return TFLITE_FORMATS
    formats = tuple(tflite.split(",")) if isinstance(tflite, str) else tuple(tflite)
    unknown = [f for f in formats if f not in TFLITE_FORMATS]
    if unknown:
        raise ValueError(f"Unknown TFLite format(s) {unknown}; choose from {TFLITE_FORMATS}, 'all' or 'none'.")
    return formats


def _split_data(model, representative_data, heldout_data):
    """(held-out inputs, calibration inputs, description of their source)."""
    if representative_data is None:
        rng = np.random.default_rng(SEED)
        uniform = rng.uniform(size=(MAX_HELDOUT + MAX_CALIBRATION, *model.feature_shape)).astype(np.float32)
        data, source = uniform, "uniform [0, 1] noise"
    else:
        data = validation.check_array(representative_data, model.feature_shape)
        source = "representative_data"
    if heldout_data is not None:
        heldout = validation.check_array(heldout_data, model.feature_shape)
        return heldout, data[:MAX_CALIBRATION], source + ", heldout_data"
    if len(data) < 2:
        raise ValueError("representative_data needs at least 2 examples: some calibrate, the rest check parity.")
    heldout = max(1, min(MAX_HELDOUT, len(data) // 5))
    return data[-heldout:], data[:-heldout][:MAX_CALIBRATION], source + f" (last {heldout} held out)"


def _export_onnx(loaded, onnx_dir, model_endpoints, inputs, references):
    """Converts every signature of the loaded SavedModel to `onnx_dir/<signature>.onnx`
    and checks the files in onnxruntime: the report's "onnx" entry."""
    tf2onnx, onnxruntime = onnx_export.require_onnx()
    shutil.rmtree(onnx_dir, ignore_errors=True)
    onnx_dir.mkdir(parents=True)
    protos = {}
    for endpoint in model_endpoints:
        protos[endpoint.name] = onnx_export.convert_signature(loaded.signatures[endpoint.name])
        (onnx_dir / f"{endpoint.name}.onnx").write_bytes(protos[endpoint.name].SerializeToString())
    signatures = onnx_export.OnnxModel(onnx_dir).signatures

    def run_onnx(name, arrays):
        return signatures[name](**arrays)

    ops = onnx_export.onnx_ops(protos.values())
    return {
        "path": onnx_dir.name,
        "size_bytes": _directory_size(onnx_dir),
        **_check_format(run_onnx, model_endpoints, inputs, references),
        "opset": onnx_export.opset(protos["serving_default"]),  # every file's: converted alike
        "converter": f"tf2onnx {tf2onnx.__version__}",
        "runtime": f"onnxruntime {onnxruntime.__version__} (CPUExecutionProvider)",
        "ops": ops,
        "standard_ops_only": not any(":" in op for op in ops),
    }


# -------------------------------------------------------------------- export
def load_model(path):
    """A keras-ae model from a `.keras` file or a run directory holding `model.keras`.

    Raises:
        ValueError: one line saying why the file does not load (missing, not a
            `.keras` zip, an unknown class, a config the model refuses).
    """
    path = pathlib.Path(path)
    if path.is_dir():
        path = path / "model.keras"
    if not path.is_file():
        raise ValueError(f"No model at {path}: give a .keras file or a run directory holding model.keras.")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a .keras file (a zip archive).")
    try:
        return keras.saving.load_model(path, compile=False)
    except (ValueError, TypeError, KeyError, OSError, zipfile.BadZipFile) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(f"Cannot load {path}: {reason}") from error


def _float32_model(model):
    """`model`, or for a mixed-precision one a float32 copy with its weights:
    what an export serves. Its signatures take and return float32, and TFLite's
    builtin kernels have no float16 matrix multiplication."""
    if model.compute_dtype == "float32":
        return model
    twin = type(model).from_config({**model.get_config(), "dtype": "float32"})
    twin.set_weights(model.get_weights())
    return twin


def _bound(fmt, model):
    """(the largest max |diff| from `model` allowed to format `fmt`, or None, why)."""
    if fmt not in BOUNDS:
        return None, "quantized: reported beside the reconstruction error, not bounded"
    if model.compute_dtype != "float32":
        return (
            max(BOUNDS[fmt], MIXED_PRECISION_BOUND),
            f"the Keras model computes in {model.compute_dtype} ({model.dtype_policy.name}), the export in float32",
        )
    return BOUNDS[fmt], "float16 weights" if fmt == "tflite_float16" else "float32 on both sides"


def export_model(model, out_dir, tflite="float32", representative_data=None, heldout_data=None, onnx=False):
    """Exports `model` to `out_dir` and checks every artifact against it.

    Args:
        model: a keras-ae model, or a path to a `.keras` file or a run directory.
        out_dir: the output directory (created; existing artifacts are replaced).
        tflite: a TFLite format of `TFLITE_FORMATS`, several ("float32,int8" or
            a sequence), "all", or "none".
        representative_data: training inputs (batch, *feature_shape): int8
            calibration and, unless `heldout_data` is given, the last fifth (at
            most 256 examples) holds out the parity inputs. None: uniform
            noise in [0, 1].
        heldout_data: inputs for the parity check, if not taken from
            `representative_data`.
        onnx: also convert every signature to `out_dir/onnx/<signature>.onnx`
            (tf2onnx) and check it in onnxruntime.

    Returns:
        The report, also written to `out_dir/report.json`.

    Raises:
        ExportMismatchError: a format exceeds its bound (`BOUNDS`, or
            `MIXED_PRECISION_BOUND` for a mixed-precision model); the
            artifacts and the report are written first.
        ValueError: a bad argument, or a path that does not load (`load_model`).
        export.onnx_export.OnnxUnavailableError: `onnx` without tf2onnx or
            onnxruntime installed (an ImportError), raised before anything is written.
    """
    if onnx:
        onnx_export.require_onnx()
    if isinstance(model, (str, os.PathLike)):
        model = load_model(model)
    formats = _tflite_formats(tflite)
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    heldout, calibration, source = _split_data(model, representative_data, heldout_data)
    model_endpoints = model.export_endpoints()
    inputs = _endpoint_inputs(model_endpoints, heldout)
    references = {  # typed as the export's outputs; a mixed-precision model gives float16 too
        e.name: {k: _as_exported(v) for k, v in e.fn(*inputs[e.name].values()).items()} for e in model_endpoints
    }
    omitted = model.unexported_endpoints()
    if omitted:
        warnings.warn(f"Not exported: {', '.join(omitted)}: {' '.join(sorted(set(omitted.values())))}", stacklevel=2)
    exported = _float32_model(model)
    exported_endpoints = exported.export_endpoints()

    saved_model_dir = out_dir / "saved_model"
    shutil.rmtree(saved_model_dir, ignore_errors=True)
    write_saved_model(exported, saved_model_dir, exported_endpoints)
    loaded = tf.saved_model.load(str(saved_model_dir))

    def run_saved_model(name, arrays):
        return loaded.signatures[name](**{input_name: tf.constant(array) for input_name, array in arrays.items()})

    results = {
        "saved_model": {
            "path": saved_model_dir.name,
            "size_bytes": _directory_size(saved_model_dir),
            **_check_format(run_saved_model, model_endpoints, inputs, references),
        }
    }
    for fmt in formats:
        calibration_inputs = None
        if fmt == "int8":
            calibration_inputs = _endpoint_inputs(model_endpoints, calibration)
        flatbuffer = convert_tflite(saved_model_dir, exported_endpoints, fmt, calibration_inputs)
        path = out_dir / f"model_{fmt}.tflite"
        path.write_bytes(flatbuffer)
        signatures = TFLiteModel(flatbuffer).signatures

        def run_tflite(name, arrays, signatures=signatures):
            return signatures[name](**arrays)

        ops = tflite_ops(flatbuffer)
        result = results[f"tflite_{fmt}"] = {
            "path": path.name,
            "size_bytes": len(flatbuffer),
            **_check_format(run_tflite, model_endpoints, inputs, references),
            "ops": sorted(ops),
            "builtins_only": not any(name.startswith("CUSTOM") for name in ops),
        }
        if fmt == "int8":
            # Ops left in float32 because the quantizer has no int8 kernel for them.
            float_ops = (n for n, t in ops.items() if "FLOAT32" in t and n not in ("QUANTIZE", "DEQUANTIZE"))
            result["float_ops"] = sorted(float_ops)
    if onnx:
        results["onnx"] = _export_onnx(loaded, out_dir / "onnx", model_endpoints, inputs, references)
    for name, result in results.items():
        result["bound"], result["bound_reason"] = _bound(name, model)
        result["within_bound"] = None if result["bound"] is None else result["max_abs_diff_all"] <= result["bound"]

    report = {
        "model": model.registry_name or type(model).__name__,
        "feature_shape": list(model.feature_shape),
        "latent_dim": model.latent_dim,
        "dtype_policy": model.dtype_policy.name,
        "signatures": {
            e.name: {"inputs": {i.name: [None, *i.shape] for i in e.inputs}, "outputs": sorted(references[e.name])}
            for e in model_endpoints
        },
        "omitted_endpoints": omitted,
        "anomaly_threshold": model.anomaly_threshold,
        "parity_inputs": {"examples": len(heldout), "source": source},
        "int8_calibration_examples": len(calibration) if "int8" in formats else None,
        "latency_batch": LATENCY_BATCH,
        "keras_reconstruction_error": _reconstruction_error(heldout, references["reconstruct"]["reconstruction"]),
        "formats": results,
    }
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    failed = [
        f"{name}: max |diff| {result['max_abs_diff_all']:.3g} > {result['bound']:g}"
        for name, result in results.items()
        if result["within_bound"] is False
    ]
    if failed:
        raise ExportMismatchError(
            f"Exported model differs from Keras beyond the bounds ({'; '.join(failed)}); see {out_dir / 'report.json'}."
        )
    return report


# ----------------------------------------------------------------------- CLI
def format_table(report):
    """The report as a short text table, one row per format."""
    rows = [("format", "size KiB", f"ms/batch {report['latency_batch']}", "max |diff|", "bound", "recon. err")]
    for name, r in report["formats"].items():
        bound = "-" if r["bound"] is None else f"{r['bound']:g}" + (" ok" if r["within_bound"] else " FAIL")
        rows.append(
            (
                name,
                f"{r['size_bytes'] / 1024:.1f}",
                f"{r['latency_ms']:.2f}",
                f"{r['max_abs_diff_all']:.2e}",
                bound,
                f"{r['reconstruction_error']:.4f}",
            )
        )
    rows.append(("keras", "", "", "", "", f"{report['keras_reconstruction_error']:.4f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def main(argv=None, prog="python -m export.export"):
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument("model", help="a .keras file, or a run directory holding model.keras")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument(
        "--tflite",
        default="float32",
        help=f"TFLite format(s), comma-separated, of {', '.join(TFLITE_FORMATS)}; or 'all' or 'none'",
    )
    parser.add_argument(
        "--onnx",
        action="store_true",
        help="also convert every signature to ONNX (DIR/onnx/<signature>.onnx) and check it in onnxruntime; "
        "needs the onnx extra: pip install 'keras-ae[onnx]'",
    )
    parser.add_argument(
        "--data",
        help="a .npy of training inputs: int8 calibration and held-out parity inputs "
        "(default: uniform noise in [0, 1])",
    )
    args = parser.parse_args(argv)
    try:
        data = None if args.data is None else np.load(args.data, allow_pickle=False)
        report = export_model(args.model, args.out, tflite=args.tflite, representative_data=data, onnx=args.onnx)
    except ExportMismatchError as error:
        report = json.loads((pathlib.Path(args.out) / "report.json").read_text())
        print(format_table(report))
        print(error, file=sys.stderr)
        return 1
    except (ValueError, OSError, onnx_export.OnnxUnavailableError) as error:
        # a model that does not load, bad data, a bad option, or --onnx without the onnx extra
        parser.exit(2, f"{parser.prog}: error: {' '.join(str(error).split())}\n")
    print(format_table(report))
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
