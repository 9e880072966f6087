"""Tests of mixed precision (dtype policy mixed_float16) past training: a
`.keras` file keeps the policy, and an export serves float32 signatures,
checked against the mixed model within the bound the report states."""

import contextlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

import keras_ae
from export.export import BOUNDS, MIXED_PRECISION_BOUND, export_model, tflite_ops
from export.tflite_runner import TFLiteModel

from small_models import assert_matches, keras_outputs

DIGITS = (load_digits().data / 16.0).astype(np.float32)  # 1797 x 64, in [0, 1]


@contextlib.contextmanager
def global_policy(name):
    """Models built inside take the dtype policy `name`; the previous policy is restored after."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def test_saved_model_keeps_its_dtype_policy(tmp_path):
    for policy in ("mixed_float16", "float32"):
        with global_policy(policy):
            model = keras_ae.get_model("autoencoder", input_shape=(64,), latent_dim=2, hidden_units=[8], seed=0)
        model.save(tmp_path / f"{policy}.keras")
        loaded = keras.saving.load_model(tmp_path / f"{policy}.keras")
        assert loaded.dtype_policy.name == policy
        assert loaded.encoder.layers[-1].compute_dtype == model.encoder.layers[-1].compute_dtype
        assert keras.mixed_precision.global_policy().name == "float32"  # loading leaves the process's policy


@pytest.mark.parametrize("name", ["vae", "autoencoder"])
def test_mixed_precision_model_trains_reloads_and_exports_float32(name, tmp_path):
    with global_policy("mixed_float16"):
        model = keras_ae.get_model(name, input_shape=(64,), latent_dim=2, hidden_units=[16], seed=0)
    model.compile()
    history = model.fit(DIGITS[:128], epochs=2, batch_size=32, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert loaded.dtype_policy.name == "mixed_float16"
    assert isinstance(loaded.optimizer, keras.optimizers.LossScaleOptimizer)
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)

    out = tmp_path / "export"
    report = export_model(tmp_path / "model.keras", out, tflite="float32", representative_data=DIGITS[:300])
    assert report["dtype_policy"] == "mixed_float16"
    for fmt in ("saved_model", "tflite_float32"):
        result = report["formats"][fmt]
        assert result["bound"] == max(BOUNDS[fmt], MIXED_PRECISION_BOUND) and result["within_bound"] is True
        assert "float16" in result["bound_reason"]

    saved_model = tf.saved_model.load(str(out / "saved_model"))
    tflite = TFLiteModel(out / "model_float32.tflite")
    ops = tflite_ops((out / "model_float32.tflite").read_bytes())
    assert not [op for op, types in ops.items() if "FLOAT16" in types or op.startswith("CUSTOM")]
    expected = keras_outputs(loaded, DIGITS[1500:1510])
    assert set(saved_model.signatures) == set(tflite.signatures) == set(expected)
    for signature, (signature_inputs, outputs) in expected.items():
        ((input_name, inputs),) = signature_inputs.items()
        function = saved_model.signatures[signature]
        assert function.structured_input_signature[1][input_name].dtype == tf.float32
        runner = tflite.interpreter.get_signature_runner(signature)
        assert [d["dtype"] for d in runner.get_input_details().values()] == [np.float32]
        assert [d["dtype"] for d in runner.get_output_details().values()] == [np.float32] * len(outputs)
        from_saved_model = function(**{input_name: tf.constant(inputs)})
        from_tflite = tflite.signatures[signature](**{input_name: inputs})
        assert_matches(loaded, from_saved_model, outputs, MIXED_PRECISION_BOUND)
        assert_matches(loaded, from_tflite, outputs, MIXED_PRECISION_BOUND)
