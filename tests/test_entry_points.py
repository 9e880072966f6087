"""Every entry point checks its data as `fit` does (issue 17, item 4): a one-line ValueError, no weight changed.

`fit`, `evaluate`, `predict`, their `*_on_batch` forms, `encode`, `decode` and `model(x)`; data outside the
range a model's loss is defined on; empty arrays; datasets of (x, y) pairs; a bad batch deep in a stream;
and the model arguments that were truncated or accepted.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_ae
from keras_ae import validation
from keras_ae.models.mlp import MLPAutoencoder
from training import train

IMAGE = (8, 8, 1)
X = np.random.default_rng(0).uniform(size=(64, *IMAGE)).astype("float32")  # in [0, 1]


def _model(name="autoencoder", **options):
    model = keras_ae.get_model(name, input_shape=IMAGE, latent_dim=4, seed=0, **options)
    model.compile()
    return model


def _values(variables):
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


def _assert_unchanged(before, variables):
    for a, b in zip(before, _values(variables), strict=True):
        np.testing.assert_array_equal(a, b)


def _one_line_error(match, fn, *args, **kwargs):
    """Calls fn, which must raise a one-line ValueError matching `match`; returns its message."""
    with pytest.raises(ValueError, match=match) as error:
        fn(*args, **kwargs)
    assert "\n" not in str(error.value), str(error.value)
    return str(error.value)


def _with_bad_value(x, value, index=3):
    bad = x.copy()
    bad.reshape(-1)[index] = value
    return bad


def _dataset(x, batch_size=16):
    return tf.data.Dataset.from_tensor_slices(x).batch(batch_size)


# ------------------------------------------------------------ the *_on_batch methods
@pytest.mark.parametrize("method", ["train_on_batch", "test_on_batch", "predict_on_batch"])
def test_on_batch_methods_check_the_batch_before_any_weight_changes(method):
    model = _model()
    before = _values(model.variables)
    _one_line_error("Inputs contain NaN", getattr(model, method), _with_bad_value(X, np.nan))
    _one_line_error("Wrong rank", getattr(model, method), X[..., 0])
    if method != "predict_on_batch":
        _one_line_error("inputs only", getattr(model, method), X, X)
    _assert_unchanged(before, model.variables)
    getattr(model, method)(X)  # good data passes


# ------------------------------------------------------- encode, decode and model(x)
BAD_INPUTS = {
    "wrong rank": (lambda x: x[..., 0], "Wrong rank: inputs must have rank"),
    "NaN": (lambda x: _with_bad_value(x, np.nan), "Inputs contain NaN"),
    "Inf": (lambda x: _with_bad_value(x, np.inf), "Inputs contain Inf"),
    "complex": (lambda x: x.astype(np.complex64) + 1j, "castable to float32 .* got dtype complex64"),
    "NaN in an eager tensor": (lambda x: tf.constant(_with_bad_value(x, np.nan)), "Inputs contain NaN"),
    "no examples": (lambda x: x[:0], "Inputs hold no examples"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
@pytest.mark.parametrize("entry", ["encode", "decode", "call"])
def test_encode_decode_and_call_refuse_bad_input(entry, case):
    model = _model()
    shape = IMAGE if entry != "decode" else (4,)
    x = np.random.default_rng(1).uniform(size=(5, *shape)).astype("float32")
    function = model if entry == "call" else getattr(model, entry)
    make_bad, message = BAD_INPUTS[case]
    _one_line_error(message, function, make_bad(x))
    assert function(x).shape[0] == function(tf.constant(x)).shape[0] == 5


def test_traced_calls_check_shapes_at_trace_time_and_add_no_op():
    """In a tf.function (a training step, an export) only the static shape and dtype are checked: the
    traced graph is the one without checks."""
    model = _model()
    for function, shape in ((model.encode, IMAGE), (model.decode, (4,)), (model, IMAGE)):
        graph = tf.function(function).get_concrete_function(tf.TensorSpec((None, *shape))).graph
        assert not {op.type for op in graph.get_operations()} & {"Assert", "CheckNumerics"}
        with pytest.raises(ValueError, match="Wrong rank"):
            tf.function(function).get_concrete_function(tf.TensorSpec((None, *shape[:-1])))
    assert model(keras.Input(IMAGE)).shape == (None, *IMAGE)  # the functional API's symbolic tensors


class _Wider(MLPAutoencoder):
    """A variant whose decode calls its parent's with a code of its own."""

    def decode(self, h, training=False):
        return super().decode(h[:, : self.latent_dim], training=training)


def test_an_override_calling_super_is_checked_once(monkeypatch):
    model = _Wider(input_shape=IMAGE, latent_dim=4)
    checked = []
    monkeypatch.setattr(validation, "check_inputs", lambda x, shape: checked.append(shape))
    model.decode(np.zeros((2, 4), np.float32))
    assert checked == [(4,)]


# --------------------------------------------------------------- the data's range
RANGES = [
    ("vae", {}, (0.0, 1.0)),
    ("vae", {"likelihood": "continuous_bernoulli"}, (0.0, 1.0)),
    ("vae", {"likelihood": "gaussian"}, None),
    ("conv_vae", {"filters": [4]}, (0.0, 1.0)),
    ("autoencoder", {"reconstruction_loss": "bce"}, (0.0, 1.0)),
    ("autoencoder", {}, None),
    ("linear", {}, None),
    ("pca", {}, None),
]


@pytest.mark.parametrize("name, options, expected", RANGES)
def test_input_range_is_where_the_loss_is_defined(name, options, expected):
    model = _model(name, **options)
    assert model.input_range() == expected
    if expected is None:
        return
    before = _values(model.variables)
    got = f"got values in [{(X * 16).min():.4g}, {(X * 16).max():.4g}]"
    for method in ("fit", "evaluate", "predict"):
        message = _one_line_error(r"Inputs must lie in \[0, 1\]", getattr(model, method), X * 16, verbose=0)
        assert got in message and "--scale unit" in message
    _assert_unchanged(before, model.variables)


def test_a_dataset_outside_the_input_range_is_refused_as_it_streams():
    model = _model("vae")
    before = _values(model.variables)
    for method in ("fit", "evaluate", "predict"):
        message = _one_line_error(r"Inputs must lie in \[0, 1\]", getattr(model, method), _dataset(X - 0.5), verbose=0)
        assert "got values in [-0.4" in message and 'scale="unit") or --scale unit.' in message
    _assert_unchanged(before, model.variables)


def test_the_command_line_refuses_a_bernoulli_vae_on_standardized_data(tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as stop:
        train.main(["--model", "vae", "--scale", "standard", "--epochs", "1", "--out", str(out)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Inputs must lie in [0, 1]" in err and "--scale unit" in err
    assert not out.exists()


# ------------------------------------------------------------------- empty arrays
@pytest.mark.parametrize("method", ["fit", "evaluate", "predict"])
def test_an_empty_array_is_refused(method):
    _one_line_error("Inputs hold no examples", getattr(_model(), method), X[:0], verbose=0)


# ------------------------------------------------------------------ (x, y) datasets
@pytest.mark.parametrize("jit_compile", [True, False])
@pytest.mark.parametrize("method", ["fit", "evaluate", "predict"])
def test_datasets_of_pairs_are_refused_on_every_path(method, jit_compile):
    """Autoencoders take inputs only, as fit(x, y) and evaluate(x, y) refuse: on the fused XLA path
    a dataset of pairs failed with "Inconsistent shapes", elsewhere y was silently ignored."""
    model = keras_ae.get_model("autoencoder", input_shape=IMAGE, latent_dim=4)
    model.compile(jit_compile=jit_compile)
    pairs = tf.data.Dataset.from_tensor_slices((X, X)).batch(16)
    _one_line_error(r"inputs only.*not of 2-tuples", getattr(model, method), pairs, verbose=0)
    if method == "evaluate":
        _one_line_error("inputs only", model.evaluate, X, X, verbose=0)
    if method == "fit":
        _one_line_error("inputs only", model.fit, X, validation_data=(X, X), verbose=0)


def test_a_dataset_of_one_tuples_is_inputs_alone():
    model = _model()
    history = model.fit(tf.data.Dataset.from_tensor_slices((X,)).batch(16), verbose=0)
    assert np.isfinite(history.history["loss"][0])


# ----------------------------------------------------- a bad batch deep in a stream
@pytest.mark.parametrize("compile_options", [{}, {"jit_compile": False, "steps_per_execution": 1}])
def test_a_bad_batch_in_a_stream_leaves_the_model_as_fit_found_it(compile_options):
    """The 41st of 48 batches holds a NaN: fit raises with the variables of the model and of its
    optimizer as they were, on the default fused XLA path (32 steps per execution) and on Keras' loop."""
    x = np.tile(X, (3, 1, 1, 1))  # 192 examples: 48 batches of 4
    model = keras_ae.get_model("autoencoder", input_shape=IMAGE, latent_dim=4, seed=0)
    model.compile(**compile_options)
    model.fit(x[:8], batch_size=4, verbose=0)  # a trained model, its optimizer built
    variables = [*model.variables, *model.optimizer.variables]
    before = _values(variables)
    _one_line_error("NaN or Inf", model.fit, _dataset(_with_bad_value(x, np.nan, index=40 * 4 * 64), 4), verbose=0)
    _assert_unchanged(before, variables)
    # The same for a bad batch of the validation data, after whole epochs of training.
    bad_validation = _dataset(_with_bad_value(X, np.inf), 4)
    _one_line_error("NaN or Inf", model.fit, _dataset(x, 4), epochs=2, validation_data=bad_validation, verbose=0)
    _assert_unchanged(before, variables)


def test_a_first_fit_failing_on_a_stream_leaves_the_optimizer_unused():
    """Keras' loop has run 10 steps when the 11th batch fails: fit built the optimizer, and restores it."""
    model = keras_ae.get_model("autoencoder", input_shape=IMAGE, latent_dim=4, seed=0)
    model.compile(jit_compile=False, steps_per_execution=1)
    before = _values(model.variables)
    _one_line_error("NaN or Inf", model.fit, _dataset(_with_bad_value(X, np.nan, index=40 * 64), 4), verbose=0)
    _assert_unchanged(before, model.variables)
    assert int(model.optimizer.iterations) == 0
    moments = [v for v in model.optimizer.variables if "momentum" in v.path or "velocity" in v.path]
    assert moments and not any(np.any(keras.ops.convert_to_numpy(v)) for v in moments)


# ------------------------------------------------------------------ model arguments
BAD_ARGUMENTS = [
    ("autoencoder", {"latent_dim": None}, r"^latent_dim must be an int >= 1; got None\.$"),
    ("autoencoder", {"input_shape": (8.5, 8)}, r"^input_shape must be a non-empty tuple of positive ints"),
    ("autoencoder", {"hidden_units": "64"}, r"^hidden_units must be a list of positive ints; got '64'\.$"),
    ("denoising", {"corruption": "gaussian", "noise_level": float("inf")}, r"^noise_level must be a number >= 0, not"),
    ("vae", {"beta": float("inf")}, r"^beta must be a number >= 0, not inf or NaN; got inf\.$"),
    ("vae", {"beta": float("nan")}, r"^beta must be a number >= 0, not inf or NaN; got nan\.$"),
    ("vae", {"kl_warmup_steps": 1.5}, r"^kl_warmup_steps must be an int >= 0; got 1\.5\.$"),
    ("vae", {"kl_warmup_steps": -5}, r"^kl_warmup_steps must be an int >= 0; got -5\.$"),
]


@pytest.mark.parametrize("name, options, message", BAD_ARGUMENTS)
def test_bad_arguments_are_one_line_value_errors(name, options, message):
    config = {"input_shape": (64,), "latent_dim": 4, **options}
    _one_line_error(message, keras_ae.get_model, name, **config)


def test_integral_floats_are_ints():
    model = keras_ae.get_model("vae", input_shape=(64.0,), latent_dim=4.0, kl_warmup_steps=10.0)
    assert (model.feature_shape, model.latent_dim, model.kl_warmup_steps) == ((64,), 4, 10)
    assert all(type(v) is int for v in (*model.feature_shape, model.latent_dim, model.kl_warmup_steps))
