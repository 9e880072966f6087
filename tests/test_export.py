"""Tests of `export`: every registered model exported to a SavedModel and to
TFLite, checked against the Keras model here (independently of the report),
reloaded in a process without keras-ae, builtins only, no random op, and
rejecting wrong feature shapes."""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from sklearn.datasets import load_digits

import keras_ae
from export.export import BOUNDS, ExportMismatchError, export_model, main, tflite_ops

from small_models import assert_matches, keras_outputs

DIGITS = (load_digits().data / 16.0).astype(np.float32)  # 1797 x 64, in [0, 1]
TRAIN, TEST = DIGITS[:300], DIGITS[1500:1507]

# One tiny configuration per registered model; `vae-cb` covers the
# ContinuousBernoulli mean, conv_vae the Gaussian likelihood with exp scale.
CASES = {
    "pca": ("pca", {"input_shape": (64,)}),
    "linear": ("linear", {"input_shape": (64,)}),
    "tied": ("tied", {"input_shape": (8, 8)}),
    "autoencoder": ("autoencoder", {"input_shape": (64,), "hidden_units": [16]}),
    "sparse": ("sparse", {"input_shape": (64,), "hidden_units": [16]}),
    "denoising": ("denoising", {"input_shape": (64,), "hidden_units": [16]}),
    "contractive": ("contractive", {"input_shape": (64,), "hidden_units": [16]}),
    "wae": ("wae", {"input_shape": (64,), "hidden_units": [16]}),
    "rae": ("rae", {"input_shape": (64,), "hidden_units": [16]}),
    "conv": ("conv", {"input_shape": (8, 8, 1), "filters": [4, 8]}),
    "vae": ("vae", {"input_shape": (64,), "hidden_units": [16]}),
    "cvae": ("cvae", {"input_shape": (64,), "hidden_units": [16], "num_classes": 3}),
    "hierarchical_vae": ("hierarchical_vae", {"input_shape": (64,), "hidden_units": [16], "upper_hidden_units": [8]}),
    "vae-cb": ("vae", {"input_shape": (64,), "hidden_units": [16], "likelihood": "continuous_bernoulli"}),
    "conv_vae": (
        "conv_vae",
        {"input_shape": (8, 8, 1), "filters": [4, 8], "likelihood": "gaussian", "scale_activation": "exp"},
    ),
    "vqvae": ("vqvae", {"input_shape": (8, 8, 1), "filters": [4, 8], "num_codes": 8, "prior_filters": 8}),
}


def build(case):
    name, config = CASES[case]
    model = keras_ae.get_model(name, latent_dim=2, seed=0, **config)
    x = TRAIN.reshape((-1, *model.feature_shape))
    if name == "pca":
        model.fit(x, verbose=0)  # closed form: non-zero components
    return model, x


def expected_outputs(model, batch, source=TEST):
    """{endpoint: ({input name: input}, {output: array})} from the Keras model's own methods, on source[:batch]."""
    return keras_outputs(model, source[:batch].reshape((-1, *model.feature_shape)))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """case -> (model, output directory, report), each exported once (float32 TFLite)."""
    cache = {}

    def get(case):
        if case not in cache:
            model, x = build(case)
            out = tmp_path_factory.mktemp(case)
            cache[case] = model, out, export_model(model, out, tflite="float32", representative_data=x)
        return cache[case]

    return get


def test_cases_cover_every_registered_model():
    assert {name for name, _ in CASES.values()} == set(keras_ae.available_models())


@pytest.mark.parametrize("case", CASES)
def test_export_matches_keras(case, exported):
    model, out, report = exported(case)
    loaded = tf.saved_model.load(str(out / "saved_model"))
    interpreter = Interpreter(model_path=str(out / "model_float32.tflite"))
    expected = expected_outputs(model, 7)
    assert set(loaded.signatures) == set(expected)
    assert set(interpreter.get_signature_list()) == set(expected)
    for batch in (1, 7):  # a dynamic batch axis
        for name, (inputs, outputs) in expected_outputs(model, batch).items():
            runner = interpreter.get_signature_runner(name)
            shapes = {input_name: list(d["shape_signature"]) for input_name, d in runner.get_input_details().items()}
            assert shapes == {input_name: [-1, *array.shape[1:]] for input_name, array in inputs.items()}
            from_saved_model = loaded.signatures[name](**{k: tf.constant(v) for k, v in inputs.items()})
            from_tflite = runner(**inputs)
            assert set(from_saved_model) == set(from_tflite) == set(outputs)
            assert_matches(model, from_saved_model, outputs, 1e-5)
            assert_matches(model, from_tflite, outputs, 1e-5)

    for fmt in ("saved_model", "tflite_float32"):
        result = report["formats"][fmt]
        assert set(result["max_abs_diff"]) == set(expected)
        assert result["within_bound"] is True  # as measured here: within 1e-5 of Keras
    # Sizes against the files on disk.
    saved_model_files = [f for f in (out / "saved_model").rglob("*") if f.is_file()]
    assert report["formats"]["saved_model"]["size_bytes"] == sum(f.stat().st_size for f in saved_model_files)
    assert report["formats"]["tflite_float32"]["size_bytes"] == (out / "model_float32.tflite").stat().st_size
    assert json.loads((out / "report.json").read_text()) == report


@pytest.mark.parametrize("case", CASES)
def test_tflite_has_builtin_ops_only_and_no_random_op(case, exported):
    _, out, report = exported(case)
    ops = tflite_ops((out / "model_float32.tflite").read_bytes())
    assert ops and not [op for op in ops if op.startswith("CUSTOM") or "RANDOM" in op or "MULTINOMIAL" in op]
    assert report["formats"]["tflite_float32"]["builtins_only"] is True

    loaded = tf.saved_model.load(str(out / "saved_model"))
    for name, signature in loaded.signatures.items():
        graph = signature.graph.as_graph_def()
        op_types = {node.op for node in graph.node}
        op_types |= {node.op for function in graph.library.function for node in function.node_def}
        assert not [op for op in op_types if "Random" in op], name


def wrong_shapes(shape):
    """Shapes one element of `shape` could be silently reshaped or broadcast from."""
    n = int(np.prod(shape))
    candidates = [(2, n), (4, n // 2), (2, *shape, 1), (2, *(1 for _ in shape))]
    return [s for s in candidates if s[1:] != tuple(shape)]


@pytest.mark.parametrize("case", CASES)
def test_wrong_feature_shape_raises(case, exported):
    model, out, _ = exported(case)
    loaded = tf.saved_model.load(str(out / "saved_model"))
    interpreter = Interpreter(model_path=str(out / "model_float32.tflite"))
    for name, (inputs, _) in expected_outputs(model, 2).items():
        runner = interpreter.get_signature_runner(name)
        for input_name, array in inputs.items():  # one input wrong, any other right
            for shape in wrong_shapes(array.shape[1:]):
                bad = {**inputs, input_name: np.ones(shape, array.dtype)}
                with pytest.raises((tf.errors.InvalidArgumentError, ValueError)):
                    loaded.signatures[name](**{k: tf.constant(v) for k, v in bad.items()})
                with pytest.raises((RuntimeError, ValueError)):
                    runner(**bad)


FRESH_PROCESS = textwrap.dedent(
    """
    import importlib.abc, json, sys

    attempts = []


    class NoKerasAE(importlib.abc.MetaPathFinder):
        # keras-ae installed (pip install -e .) is importable from anywhere: refuse it, recording who asks.

        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] == "keras_ae":
                attempts.append(name)
                raise ImportError(f"{name} is blocked in this process")
            return None


    sys.meta_path.insert(0, NoKerasAE())
    import numpy as np
    import tensorflow as tf

    keras_after_tf = {m for m in sys.modules if m.startswith("keras")}
    diffs = {}
    for saved_model, arrays in json.loads(sys.argv[1]):
        loaded = tf.saved_model.load(saved_model)
        data = np.load(arrays)
        inputs = {}
        for key in data.files:
            kind, name, tensor = key.split(":")
            if kind == "in":
                inputs.setdefault(name, {})[tensor] = tf.constant(data[key])
        for name, tensors in inputs.items():
            for output, value in loaded.signatures[name](**tensors).items():
                diff = np.max(np.abs(value.numpy() - data[f"out:{name}:{output}"]))
                diffs[f"{saved_model}:{name}:{output}"] = float(diff)
    print(json.dumps({
        "diffs": diffs,
        "keras_ae_import_attempts": attempts,
        "keras_ae_imported": "keras_ae" in sys.modules,
        "keras_modules_added_by_loading": sorted({m for m in sys.modules if m.startswith("keras")} - keras_after_tf),
    }))
    """
)


def test_saved_models_load_in_a_process_without_keras_ae(exported, tmp_path):
    jobs, scales = [], {}  # {output: what its difference is divided by: an anomaly score's, its features}
    for case in CASES:
        model, out, _ = exported(case)
        arrays = {}
        for name, (inputs, outputs) in expected_outputs(model, 5).items():
            arrays.update({f"in:{name}:{input_name}": array for input_name, array in inputs.items()})
            arrays.update({f"out:{name}:{output}": value for output, value in outputs.items()})
            for output in outputs:
                key = f"{out / 'saved_model'}:{name}:{output}"
                scales[key] = model.num_features if output == "anomaly_score" else 1
        np.savez(tmp_path / f"{case}.npz", **arrays)
        jobs.append((str(out / "saved_model"), str(tmp_path / f"{case}.npz")))
    # Outside the repository, without PYTHONPATH, and keras_ae's import refused (an installed one is on every path).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, json.dumps(jobs)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["keras_ae_import_attempts"] == [] and not report["keras_ae_imported"]
    # `import tensorflow` itself imports keras; loading needs nothing more of it.
    assert report["keras_modules_added_by_loading"] == []
    assert set(report["diffs"]) == set(scales)
    assert max(diff / scales[key] for key, diff in report["diffs"].items()) <= 1e-5


def test_saved_model_cli_lists_every_signature(exported):
    _, out, report = exported("vae")
    cli = pathlib.Path(sys.executable).parent / "saved_model_cli"
    listing = subprocess.run(
        [str(cli), "show", "--all", "--dir", str(out / "saved_model")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    endpoints = {"serving_default", "encode", "decode", "reconstruct", "anomaly_score", "sample"}
    assert set(report["signatures"]) == endpoints
    for name, signature in report["signatures"].items():
        block = listing.split(f"signature_def['{name}']:")[1].split("signature_def[")[0]
        (input_name,) = signature["inputs"]
        assert f"inputs['{input_name}']" in block
        assert f"shape: (-1, {signature['inputs'][input_name][1]})" in block
        assert all(f"outputs['{output}']" in block for output in signature["outputs"])


# Enough weights (70k and 76k) that they, not the flatbuffer's fixed overhead, set the TFLite file sizes.
QUANTIZED_CASES = {
    "vae": ("vae", {"input_shape": (64,), "hidden_units": [512]}),
    "conv": ("conv", {"input_shape": (8, 8, 1), "filters": [32, 64]}),
}


@pytest.mark.parametrize("case", QUANTIZED_CASES)
def test_quantized_formats_are_reported(case, tmp_path):
    """Every format's report against what is measured here: its differences from Keras and reconstruction error,
    rerun on the parity inputs (the last fifth of the 300 representative examples), its file size, and the smaller
    files that quantizing the weights gives. (Latency is a benchmark's business, not a test's: benchmarks/speed.py.)"""
    name, config = QUANTIZED_CASES[case]
    model = keras_ae.get_model(name, latent_dim=2, seed=0, **config)
    x = TRAIN.reshape((-1, *model.feature_shape))
    report = export_model(model, tmp_path, tflite="all", representative_data=x)
    formats = report["formats"]
    assert set(formats) == {"saved_model", "tflite_float32", "tflite_float16", "tflite_dynamic", "tflite_int8"}
    assert report["int8_calibration_examples"] == 200 and report["parity_inputs"]["examples"] == 60
    heldout = x[-60:]
    # The "sample" endpoint is left out: the report draws its own eps.
    expected = {k: v for k, v in expected_outputs(model, 60, source=heldout).items() if k != "sample"}
    keras_reconstruction = expected["reconstruct"][1]["reconstruction"]
    keras_error = np.mean(np.abs(heldout - keras_reconstruction))
    np.testing.assert_allclose(report["keras_reconstruction_error"], keras_error, rtol=1e-5)
    loaded = tf.saved_model.load(str(tmp_path / "saved_model"))
    for fmt, result in formats.items():
        if fmt == "saved_model":

            def run(signature, inputs):
                return {k: v.numpy() for k, v in loaded.signatures[signature](**inputs).items()}
        else:
            path = tmp_path / f"model_{fmt.removeprefix('tflite_')}.tflite"
            assert result["size_bytes"] == path.stat().st_size
            interpreter = Interpreter(model_path=str(path))

            def run(signature, inputs, interpreter=interpreter):
                return interpreter.get_signature_runner(signature)(**inputs)

        diffs = {}
        for signature, (inputs, outputs) in expected.items():
            got = run(signature, inputs)
            for key, want in outputs.items():
                per = model.num_features if key == "anomaly_score" else 1  # a score sums the features: per feature
                diffs[signature, key] = float(np.max(np.abs(got[key] - want))) / per
                np.testing.assert_allclose(
                    result["max_abs_diff"][signature][key], diffs[signature, key], rtol=1e-3, atol=1e-6
                )
            if signature == "reconstruct":
                error = np.mean(np.abs(heldout - got["reconstruction"]))
                np.testing.assert_allclose(result["reconstruction_error"], error, rtol=1e-5)
        if fmt in BOUNDS:  # float formats: every output within its bound
            assert max(diffs.values()) <= BOUNDS[fmt], (fmt, diffs)
        else:  # quantized: reconstructions, in [0, 1], within 0.1 of Keras
            assert max(v for (signature, _), v in diffs.items() if signature == "reconstruct") < 0.1, (fmt, diffs)
    # Quantized weights: float16 halves the weights' bytes, dynamic and int8 quarter them, though each of the
    # four subgraphs using them (serving_default, encode, decode, anomaly_score) keeps its own per-channel scales.
    sizes = {
        fmt: formats[f"tflite_{fmt}"]["size_bytes"] / formats["tflite_float32"]["size_bytes"]
        for fmt in ("float16", "dynamic", "int8")
    }
    assert sizes["float16"] < 0.6 and sizes["dynamic"] < 0.5 and sizes["int8"] < 0.5, sizes
    for fmt in ("tflite_dynamic", "tflite_int8"):
        assert formats[fmt]["bound"] is None and formats[fmt]["within_bound"] is None
        assert formats[fmt]["builtins_only"]

    int8 = (tmp_path / "model_int8.tflite").read_bytes()
    ops = tflite_ops(int8)
    assert "QUANTIZE" in ops and "INT8" in ops["FULLY_CONNECTED"]
    assert formats["tflite_int8"]["float_ops"] == [
        op for op, types in ops.items() if "FLOAT32" in types and op not in ("QUANTIZE", "DEQUANTIZE")
    ]
    runner = Interpreter(model_content=int8).get_signature_runner("serving_default")
    (detail,) = runner.get_input_details().values()
    assert detail["dtype"] == np.float32  # float I/O around int8 kernels
    assert runner(x=x[:3])["reconstruction"].dtype == np.float32


@pytest.mark.parametrize("case", ["vae", "autoencoder"])
def test_repeated_endpoints_share_a_tflite_subgraph(case, exported):
    """reconstruct repeats serving_default, and a VAE's sample repeats decode:
    one subgraph each, so int8 quantization parameters are stored once."""
    from ai_edge_litert import schema_py_generated as schema

    model, out, _ = exported(case)
    tflite = schema.ModelT.InitFromPackedBuf((out / "model_float32.tflite").read_bytes(), 0)
    subgraph_of = {signature.signatureKey.decode(): signature.subgraphIndex for signature in tflite.signatureDefs}
    assert subgraph_of["reconstruct"] == subgraph_of["serving_default"]
    # serving_default, encode, decode, anomaly_score
    assert len(tflite.subgraphs) == len(set(subgraph_of.values())) == 4
    if case == "vae":
        assert subgraph_of["sample"] == subgraph_of["decode"]
        runner = Interpreter(model_path=str(out / "model_float32.tflite")).get_signature_runner("sample")
        eps = np.random.default_rng(2).standard_normal((4, model.latent_dim)).astype(np.float32)
        np.testing.assert_allclose(runner(eps=eps)["sample"], keras.ops.convert_to_numpy(model.decode(eps)), atol=1e-5)


def test_mismatch_beyond_bound_raises_after_writing_report(monkeypatch, tmp_path):
    model, x = build("linear")
    monkeypatch.setitem(BOUNDS, "tflite_float16", 0.0)  # float16 weights always differ a little
    with pytest.raises(ExportMismatchError, match="tflite_float16"):
        export_model(model, tmp_path, tflite="float16", representative_data=x, heldout_data=TEST)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["parity_inputs"] == {"examples": len(TEST), "source": "representative_data, heldout_data"}
    assert report["formats"]["tflite_float16"]["within_bound"] is False
    assert report["formats"]["saved_model"]["within_bound"] is True


def test_unknown_tflite_format_is_rejected(tmp_path):
    model, _ = build("linear")
    with pytest.raises(ValueError, match="int4"):
        export_model(model, tmp_path, tflite="float32,int4")
    assert not any(tmp_path.iterdir())


def test_tflite_ops_names_flex_ops():
    @tf.function(input_signature=[tf.TensorSpec((3, 3), tf.float32)])
    def determinant(m):
        return tf.linalg.det(m)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([determinant.get_concrete_function()])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    assert "CUSTOM:FlexMatrixDeterminant" in tflite_ops(converter.convert())


def test_cli_exports_a_run_directory(tmp_path, capsys):
    model, x = build("autoencoder")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    model.save(run_dir / "model.keras")
    np.save(tmp_path / "train.npy", x)
    out = tmp_path / "export"
    assert main([str(run_dir), "--out", str(out), "--tflite", "float32", "--data", str(tmp_path / "train.npy")]) == 0
    table = capsys.readouterr().out
    assert "tflite_float32" in table and "1e-05 ok" in table
    report = json.loads((out / "report.json").read_text())
    assert report["model"] == "autoencoder" and report["parity_inputs"]["examples"] == 60
    assert (out / "model_float32.tflite").is_file() and (out / "saved_model" / "saved_model.pb").is_file()
