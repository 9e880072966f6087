"""Tests of the export's answers to wrong inputs: a wrong shape given to an
exported signature, and a `.keras` file the export CLI cannot load, each
answered with one line that says what was expected."""

import json
import zipfile

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from sklearn.datasets import load_digits

import keras_ae
from export.export import export_model, main
from export.tflite_runner import TFLiteModel

DIGITS = (load_digits().data / 16.0).astype(np.float32)  # 1797 x 64, in [0, 1]
WRONG_SHAPES = [(2, 32), (2, 64, 1), (2, 8, 8)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(model, output directory) of a tiny autoencoder exported to a SavedModel and float32 TFLite."""
    model = keras_ae.get_model("autoencoder", input_shape=(64,), latent_dim=2, hidden_units=[8], seed=0)
    out = tmp_path_factory.mktemp("export")
    export_model(model, out, tflite="float32", representative_data=DIGITS[:100])
    return model, out


def test_saved_model_signature_names_the_expected_shape(exported):
    _, out = exported
    encode = tf.saved_model.load(str(out / "saved_model")).signatures["encode"]
    for shape in WRONG_SHAPES:
        with pytest.raises(tf.errors.InvalidArgumentError) as caught:
            encode(x=tf.ones(shape))
        # The runtime wraps the op's message in lines of its own; the op's line says what was expected.
        got = ",".join(map(str, shape))
        assert f"Shape of tensor x [{got}] is not compatible with expected shape [?,64]." in str(caught.value)
        assert "ConcatOp" not in str(caught.value)


def test_tflite_runner_checks_inputs_before_invoking(exported):
    model, out = exported
    tflite = TFLiteModel(out / "model_float32.tflite")
    assert tflite.signatures["decode"].inputs == {"code": ((None, 2), np.dtype("float32"))}
    encode = tflite.signatures["encode"]
    for shape in WRONG_SHAPES:
        with pytest.raises(ValueError) as caught:
            encode(x=np.ones(shape, np.float32))
        assert str(caught.value) == (
            f"Signature 'encode' expects x of shape (None, 64) and dtype float32; got shape {shape} and dtype float32."
        )
    with pytest.raises(
        ValueError,
        match=r"^Signature 'encode' expects x of shape \(None, 64\) and dtype float32; "
        r"got shape \(2, 64\) and dtype float64\.$",
    ):
        encode(x=np.ones((2, 64)))
    with pytest.raises(ValueError, match=r"^Signature 'encode' takes inputs \['x'\]; got \['code'\]\.$"):
        encode(code=np.ones((2, 64), np.float32))
    # A right input runs as through LiteRT's own runner.
    x = DIGITS[1500:1505]
    raw = Interpreter(model_path=str(out / "model_float32.tflite")).get_signature_runner("encode")(x=x)
    np.testing.assert_array_equal(encode(x=x)["code"], raw["code"])
    np.testing.assert_allclose(encode(x=x)["code"], model.encode(x).numpy(), atol=1e-5)


def _not_a_zip(path):
    path.write_text("not a zip")


def _with_config(path, edit):
    """Saves a tiny autoencoder to `path`, its config.json changed by `edit(config)`."""
    keras_ae.get_model("autoencoder", input_shape=(64,), latent_dim=2, hidden_units=[8]).save(path)
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    edit(config)
    files["config.json"] = json.dumps(config)
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)


def _unknown_class(path):
    _with_config(path, lambda config: config.update(class_name="NoSuchModel", registered_name="keras_ae>NoSuchModel"))


def _refused_config(path):
    _with_config(path, lambda config: config["config"].update(latent_dim=-1))


@pytest.mark.parametrize(
    "make, message",
    [
        (_not_a_zip, "is not a .keras file"),
        (_unknown_class, "Could not locate class 'NoSuchModel'"),
        (_refused_config, "latent_dim"),
        (None, "No model at"),
    ],
    ids=["not-a-zip", "unknown-class", "refused-config", "missing"],
)
def test_cli_refuses_a_model_that_does_not_load_in_one_line(make, message, tmp_path, capsys):
    path = tmp_path / "model.keras"
    if make is not None:
        make(path)
    with pytest.raises(SystemExit) as caught:
        main([str(path), "--out", str(tmp_path / "export")])
    assert caught.value.code == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert line.startswith("python -m export.export: error: ") and str(path) in line and message in line
    assert captured.out == "" and not (tmp_path / "export").exists()
