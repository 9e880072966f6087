"""Tests of the ONNX export (issue 14): `export_model(onnx=True)` and `--onnx` convert every signature with
tf2onnx, and each file, run here in onnxruntime, gives the Keras model's outputs within the bound the report
records; a mixed-precision model through its float32 twin; without the optional extra, a one-line error
before anything is written.

tf2onnx and onnxruntime are the optional extra `onnx`, not in requirements.txt: without them (as in CI) every
test but the missing-extra one is skipped, with the reason shown; that one simulates the extra's absence, so it
runs with and without it.
"""

import json
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

import keras_ae
from export.export import BOUNDS, MIXED_PRECISION_BOUND, export_model, main
from export.onnx_export import MISSING_EXTRA, OnnxModel, OnnxUnavailableError

from small_models import SMALL_CONFIGS, assert_matches, keras_outputs

REASON = "the optional extra onnx is not installed: pip install 'keras-ae[onnx]'"

DIGITS = (load_digits().data / 16.0).astype(np.float32)  # 1797 x 64, in [0, 1]
TRAIN, TEST = DIGITS[:300], DIGITS[1500:1507]
# One small model of each kind of endpoints: dense (code), VAE (mean/log_variance, sample), convolutional,
# int32 code indices (vqvae), a label beside every input (cvae), two stochastic layers (hierarchical_vae).
CASES = {
    "autoencoder": (64,),
    "vae": (64,),
    "conv": (8, 8, 1),
    "vqvae": (8, 8, 1),
    "cvae": (64,),
    "hierarchical_vae": (64,),
}


@pytest.fixture(scope="module")
def extra():
    """The modules of the optional extra (onnx comes with tf2onnx), or the test is skipped."""
    return {name: pytest.importorskip(name, reason=REASON) for name in ("tf2onnx", "onnx", "onnxruntime")}


def build(case, policy="float32"):
    """The case's model, with an anomaly threshold (so an is_anomaly endpoint, a bool output), and its inputs."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = keras_ae.get_model(case, input_shape=CASES[case], latent_dim=2, seed=0, **SMALL_CONFIGS[case])
    finally:
        keras.mixed_precision.set_global_policy(previous)
    x = TRAIN.reshape((-1, *model.feature_shape))
    if "anomaly_score" not in model.unexported_endpoints():  # a cvae's needs labels: it has none
        model.fit_anomaly_threshold(x, false_positive_rate=0.5)
    return model, x


def sessions(onnx_dir):
    """{signature: onnxruntime session} of the directory's files, opened here, not by `OnnxModel`."""
    import onnxruntime

    return {
        path.stem: onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for path in sorted(onnx_dir.glob("*.onnx"))
    }


def check_against_keras(model, out, report):
    """Every signature converted, and each file within the report's bound of `model` here."""
    result = report["formats"]["onnx"]
    loaded = tf.saved_model.load(str(out / "saved_model"))
    runs = sessions(out / "onnx")
    expected = keras_outputs(model, TEST[:7].reshape((-1, *model.feature_shape)))
    assert set(runs) == set(loaded.signatures) == set(expected) == set(result["max_abs_diff"])
    assert result["within_bound"] is True and result["max_abs_diff_all"] <= result["bound"]
    wrapped = OnnxModel(out / "onnx").signatures
    for batch in (1, 7):  # a dynamic batch axis
        for name, (inputs, outputs) in keras_outputs(model, TEST[:batch].reshape((-1, *model.feature_shape))).items():
            session = runs[name]
            graph_inputs = {i.name: (i.type, i.shape) for i in session.get_inputs()}
            onnx_types = {np.dtype(np.float32): "tensor(float)", np.dtype(np.int32): "tensor(int32)"}
            assert graph_inputs == {k: (onnx_types[v.dtype], ["batch", *v.shape[1:]]) for k, v in inputs.items()}
            names = [output.name for output in session.get_outputs()]
            assert set(names) == set(outputs)
            got = dict(zip(names, session.run(names, inputs), strict=True))
            assert_matches(model, got, outputs, result["bound"])
            for key in outputs:
                np.testing.assert_array_equal(wrapped[name](**inputs)[key], got[key])
    return result


@pytest.fixture(scope="module")
def exported(extra, tmp_path_factory):
    """case -> (model, output directory, report), each exported once with onnx=True (no TFLite)."""
    cache = {}

    def get(case):
        if case not in cache:
            model, x = build(case)
            out = tmp_path_factory.mktemp(case)
            cache[case] = model, out, export_model(model, out, tflite="none", representative_data=x, onnx=True)
        return cache[case]

    return get


@pytest.mark.parametrize("case", ["vae", "conv", "vqvae", "cvae", "hierarchical_vae"])
def test_every_signature_converts_and_matches_keras(case, exported, extra):
    model, out, report = exported(case)
    result = check_against_keras(model, out, report)
    assert result["bound"] == BOUNDS["onnx"] == 1e-5 and result["bound_reason"] == "float32 on both sides"
    assert result["path"] == "onnx"
    files = list((out / "onnx").iterdir())
    assert result["size_bytes"] == sum(f.stat().st_size for f in files)
    assert json.loads((out / "report.json").read_text()) == report

    # The graphs: standard ops only, no random op (a VAE's sample takes eps), the opset recorded.
    protos = [extra["onnx"].load(str(f)) for f in files]
    ops = {node.op_type for proto in protos for node in proto.graph.node}
    assert result["ops"] == sorted(ops) and result["standard_ops_only"] is True
    assert not [op for op in ops if "Random" in op or op in ("Multinomial", "Bernoulli")]
    assert {node.domain for proto in protos for node in proto.graph.node} <= {"", "ai.onnx"}
    opsets = {entry.version for proto in protos for entry in proto.opset_import if entry.domain in ("", "ai.onnx")}
    assert opsets == {result["opset"]}
    assert result["converter"].startswith("tf2onnx ") and result["runtime"].startswith("onnxruntime ")


def test_cli_exports_onnx_from_a_run_directory(extra, tmp_path, capsys):
    """`--onnx` through the command line (`keras-ae export` forwards to it), on a saved model."""
    model, x = build("autoencoder")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    model.save(run_dir / "model.keras")
    np.save(tmp_path / "train.npy", x)
    out = tmp_path / "export"
    assert (
        main([str(run_dir), "--out", str(out), "--tflite", "none", "--onnx", "--data", str(tmp_path / "train.npy")])
        == 0
    )
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line}
    assert "1e-05 ok" in rows["onnx"]
    report = json.loads((out / "report.json").read_text())
    assert list(report["formats"]) == ["saved_model", "onnx"]
    check_against_keras(model, out, report)

    # onnxruntime checks the fixed feature shape and the dtype before it runs.
    session = sessions(out / "onnx")["encode"]
    with pytest.raises(Exception, match="Expected: 64"):
        session.run(None, {"x": np.zeros((3, 32), np.float32)})
    with pytest.raises(Exception, match="data type"):
        session.run(None, {"x": np.zeros((3, 64), np.float64)})


def test_mixed_precision_model_exports_onnx_through_its_float32_twin(extra, tmp_path):
    model, x = build("vae", policy="mixed_float16")
    report = export_model(model, tmp_path, tflite="none", representative_data=x, onnx=True)
    result = report["formats"]["onnx"]
    assert result["bound"] == max(BOUNDS["onnx"], MIXED_PRECISION_BOUND) and "float16" in result["bound_reason"]
    check_against_keras(model, tmp_path, report)


@pytest.mark.parametrize("missing", ["tf2onnx", "onnxruntime"])
def test_missing_extra_is_one_line_before_anything_is_written(missing, monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, missing, None)  # `import <missing>` raises ImportError
    model, x = build("autoencoder")
    out = tmp_path / "export"
    with pytest.raises(OnnxUnavailableError, match=r"pip install 'keras-ae\[onnx\]'"):
        export_model(model, out, representative_data=x, onnx=True)
    assert not out.exists()

    empty = tmp_path / "run"  # no model.keras: the extra is checked before the model is loaded
    empty.mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main([str(empty), "--out", str(out), "--onnx"], prog="keras-ae export")
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"keras-ae export: error: {MISSING_EXTRA}") and missing in line
    assert not out.exists()
