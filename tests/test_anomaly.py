"""Tests of anomaly detection (issue 15): `anomaly_score`, `fit_anomaly_threshold` and `is_anomaly`, kept by a
`.keras` file and served by the export, each against an independent reference: numpy's squared error, a VAE's
ELBO at the posterior mean from its networks and scipy, `log_likelihood`, the false-positive rate counted on
validation and fresh draws, scikit-learn's AUROC, and the exported endpoints run in a process without keras-ae."""

import json
import math
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.special import log_expit
from scipy.stats import norm
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score

import keras_ae
from export.export import export_model
from keras_ae import data
from keras_ae.models.vae import VariationalAutoencoder
from training import train

from small_models import IMAGE_MODELS, SMALL_CONFIGS

DIGITS = load_digits()
X = (DIGITS.data / 16.0).astype(np.float32)  # 1797 x 64, in [0, 1]
ZEROS, OTHERS = X[DIGITS.target == 0], X[DIGITS.target != 0]  # 178 zeros
TRAIN, VALIDATION = ZEROS[:100], ZEROS[100:140]
TEST = np.concatenate([ZEROS[140:], OTHERS[:150]])  # 38 held-out zeros, then 150 other digits
IS_OTHER = np.arange(len(TEST)) >= 38
RATE = 0.05


def softplus(x):
    return np.logaddexp(0.0, x)


def bernoulli_log_prob(x, logits):
    """Σ log Bernoulli(x; sigmoid(logits)) over the last axis, for x in [0, 1] (the cross-entropy)."""
    return np.sum(x * log_expit(logits) + (1 - x) * log_expit(-logits), axis=-1)


def normal_log_prob(x, loc, scale):
    return np.sum(norm.logpdf(x, loc, scale), axis=-1)


def gaussian(network, inputs, activation="softplus"):
    """(loc, scale) of the diagonal Gaussian a network's [loc, raw scale] output gives, as the VAEs define it."""
    loc, raw = np.split(keras.ops.convert_to_numpy(network(inputs)).astype(np.float64), 2, axis=-1)
    return loc, np.exp(raw / 2) if activation == "exp" else softplus(raw) + 1e-6


@pytest.fixture(scope="module")
def one_class():
    """{name: model} trained on the digit 0 alone, its threshold fitted on 40 held-out zeros at RATE."""
    models = {}
    for name in ("autoencoder", "vae"):
        keras.utils.set_random_seed(0)
        model = keras_ae.get_model(name, input_shape=(64,), latent_dim=4, hidden_units=[32], seed=0)
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        model.fit(np.tile(TRAIN, (40, 1)), batch_size=20, verbose=0)  # 200 steps in one compiled epoch
        model.fit_anomaly_threshold(VALIDATION, false_positive_rate=RATE)
        models[name] = model
    return models


# ------------------------------------------------------------------- the score
@pytest.mark.parametrize("name", [name for name in SMALL_CONFIGS if "vae" not in name or name == "vqvae"])
def test_deterministic_score_is_the_squared_error_summed_over_features(name):
    shape = (8, 8, 1) if name in IMAGE_MODELS else (64,)
    model = keras_ae.get_model(name, input_shape=shape, latent_dim=3, seed=0, **SMALL_CONFIGS[name])
    assert not isinstance(model, VariationalAutoencoder)
    x = X[:50].reshape((-1, *shape))
    if name == "pca":
        model.fit(X[:500].reshape((-1, *shape)), verbose=0)
    reconstruction = keras.ops.convert_to_numpy(model(x)).astype(np.float64)
    want = np.sum((x - reconstruction).reshape(50, -1) ** 2, axis=1)  # no corruption: the denoising model's too
    np.testing.assert_allclose(model.anomaly_score(x, batch_size=16), want, rtol=1e-5)  # 16, 16, 16 and 2
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(7)
    np.testing.assert_allclose(model.anomaly_score(dataset), want, rtol=1e-5)
    assert model.anomaly_score(x).dtype == np.float32


@pytest.mark.parametrize(
    "options",
    [{}, {"likelihood": "gaussian", "scale_activation": "exp"}],
    ids=["bernoulli", "gaussian"],
)
def test_vae_negative_elbo_at_the_posterior_mean(options):
    """-[log p(x | z = μ) - KL(N(μ, σ²) ‖ N(0, I))], from the encoder's and decoder's outputs."""
    model = keras_ae.get_model("vae", input_shape=(64,), latent_dim=3, hidden_units=[16], seed=0, **options)
    x = X[:20]
    loc, scale = gaussian(model.encoder, x, model.scale_activation)
    params = keras.ops.convert_to_numpy(model.decoder(loc.astype(np.float32))).astype(np.float64)
    if model.likelihood == "bernoulli":
        log_px = bernoulli_log_prob(x, params)
    else:
        log_px = normal_log_prob(x, params, np.exp(keras.ops.convert_to_numpy(model.decoder_log_scale)))
    kl = 0.5 * np.sum(loc**2 + scale**2 - 1 - 2 * np.log(scale), axis=-1)
    np.testing.assert_allclose(model.anomaly_score(x), kl - log_px, rtol=1e-5)
    assert model.anomaly_score_method == "negative_elbo"


def test_hierarchical_vae_negative_elbo_at_the_posterior_means():
    """-log w at z1 = E[z1|x], z2 = E[z2|z1]: -[log p(x|z1) + log p(z1|z2) + log p(z2) - log q(z1|x) - log q(z2|z1)]."""
    model = keras_ae.get_model(
        "hierarchical_vae", input_shape=(64,), latent_dim=2, seed=0, **SMALL_CONFIGS["hierarchical_vae"]
    )
    x = X[:20]
    loc1, scale1 = gaussian(model.encoder, x)
    loc2, scale2 = gaussian(model.upper_encoder, loc1.astype(np.float32))
    prior_loc1, prior_scale1 = gaussian(model.upper_decoder, loc2.astype(np.float32))
    logits = keras.ops.convert_to_numpy(model.decoder(loc1.astype(np.float32))).astype(np.float64)
    log_w = (
        bernoulli_log_prob(x, logits)
        + normal_log_prob(loc1, prior_loc1, prior_scale1)
        + normal_log_prob(loc2, 0.0, 1.0)
        - normal_log_prob(loc1, loc1, scale1)
        - normal_log_prob(loc2, loc2, scale2)
    )
    np.testing.assert_allclose(model.anomaly_score(x), -log_w, rtol=1e-5)


def test_negative_log_likelihood_method_is_minus_log_likelihood():
    """The same draws (a twin with the same seed and weights) give the same importance-weighted estimate."""
    config = {"input_shape": (64,), "latent_dim": 2, "hidden_units": [16], "seed": 5}
    scored = keras_ae.get_model("vae", anomaly_score_method="negative_log_likelihood", **config)
    twin = keras_ae.get_model("vae", **config)
    twin.set_weights(scored.get_weights())
    x = X[:30]
    first = scored.anomaly_score(x, batch_size=16)
    np.testing.assert_allclose(first, -twin.log_likelihood(x, batch_size=16), rtol=1e-6)
    # Random: another call draws anew, typically within the Monte Carlo error of 1000 samples.
    again = scored.anomaly_score(x, batch_size=16)
    assert not np.array_equal(again, first) and np.median(np.abs(again - first)) < 0.5


# --------------------------------------------------------------- the threshold
def test_threshold_false_positive_rate_on_validation_and_on_fresh_draws():
    rng = np.random.default_rng(0)
    mixing = rng.standard_normal((10, 10))

    def draw(n):
        return (rng.standard_normal((n, 10)) @ mixing).astype(np.float32)

    model = keras_ae.get_model("pca", input_shape=(10,), latent_dim=3)
    model.fit(draw(2000), verbose=0)
    validation = draw(1000)
    scores = model.anomaly_score(validation)
    assert model.fit_anomaly_threshold(validation, false_positive_rate=0.0) == scores.max()
    for rate in (0.0125, 0.05, 0.2):
        threshold = model.fit_anomaly_threshold(validation, false_positive_rate=rate)
        assert threshold == model.anomaly_threshold
        # At most the rate above it, and no lower threshold would do: exactly ⌊rate · n⌋ of these distinct scores.
        assert np.sum(scores > threshold) == math.floor(rate * len(validation))
        fresh = model.is_anomaly(draw(20000)).mean()  # the coverage of a sample quantile: its sd, over 1000
        assert abs(fresh - rate) < 4 * math.sqrt(rate * (1 - rate) / len(validation)) + 2e-3, (rate, fresh)


@pytest.mark.parametrize("name", ["autoencoder", "vae"])
def test_one_class_model_scores_other_digits_higher(name, one_class):
    model = one_class[name]
    assert roc_auc_score(IS_OTHER, model.anomaly_score(TEST)) > 0.95
    flags = model.is_anomaly(TEST)
    assert flags.dtype == bool and flags[IS_OTHER].mean() > 0.8 and flags[~IS_OTHER].mean() < 0.2
    assert np.sum(model.anomaly_score(VALIDATION) > model.anomaly_threshold) <= RATE * len(VALIDATION)


def test_unfitted_and_bad_arguments_are_one_line_value_errors():
    model = keras_ae.get_model("autoencoder", input_shape=(64,), latent_dim=2, hidden_units=[8])
    assert model.anomaly_threshold is None and model.get_config()["anomaly_threshold"] is None
    with pytest.raises(
        ValueError, match=r"^No anomaly threshold: call model\.fit_anomaly_threshold\(x_validation\) first\.$"
    ):
        model.is_anomaly(X[:5])
    for rate in (-0.1, 1, 1.5, float("nan"), "0.1", True, None):
        with pytest.raises(ValueError, match=r"^false_positive_rate must be a number in \[0, 1\); got .*\.$"):
            model.fit_anomaly_threshold(X[:5], false_positive_rate=rate)
    assert model.anomaly_threshold is None
    for threshold in (float("nan"), float("inf"), "1", True):
        with pytest.raises(ValueError, match=r"^anomaly_threshold must be a finite number or None; got "):
            keras_ae.get_model("pca", input_shape=(64,), latent_dim=2, anomaly_threshold=threshold)
    with pytest.raises(ValueError, match=r"^anomaly_score_method must be one of \('negative_elbo', "):
        keras_ae.get_model("vae", input_shape=(64,), latent_dim=2, anomaly_score_method="elbo")
    # Data are checked as `predict` checks them: an array whole, a dataset batch by batch.
    with pytest.raises(ValueError, match=r"^Wrong feature shape"):
        model.anomaly_score(np.zeros((3, 32), np.float32))
    bad = X[:10].copy()
    bad[7, 3] = np.nan
    with pytest.raises(ValueError, match=r"^Inputs contain NaN \(first in example 7\)"):
        model.anomaly_score(bad)
    with pytest.raises(ValueError, match=r"^Inputs contain NaN or Inf"):
        model.anomaly_score(tf.data.Dataset.from_tensor_slices(bad).batch(4))


def test_keras_round_trip_keeps_the_threshold_and_the_method(one_class, tmp_path):
    for name, model in one_class.items():
        model.save(tmp_path / f"{name}.keras")
        loaded = keras.saving.load_model(tmp_path / f"{name}.keras")
        assert loaded.anomaly_threshold == model.anomaly_threshold is not None
        np.testing.assert_array_equal(loaded.anomaly_score(TEST), model.anomaly_score(TEST))
        np.testing.assert_array_equal(loaded.is_anomaly(TEST), model.is_anomaly(TEST))
    vae = keras_ae.get_model(
        "vae", input_shape=(64,), latent_dim=2, hidden_units=[8], anomaly_score_method="negative_log_likelihood"
    )
    threshold = vae.fit_anomaly_threshold(VALIDATION, false_positive_rate=0.1)
    vae.save(tmp_path / "nll.keras")
    loaded = keras.saving.load_model(tmp_path / "nll.keras")
    assert (loaded.anomaly_score_method, loaded.anomaly_threshold) == ("negative_log_likelihood", threshold)


# ------------------------------------------------------------------ the export
FRESH_PROCESS = textwrap.dedent(
    """
    import importlib.abc, sys


    class NoKerasAE(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] == "keras_ae":
                raise ImportError(f"{name} is blocked in this process")
            return None


    sys.meta_path.insert(0, NoKerasAE())
    import numpy as np
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    inputs, results, *exports = sys.argv[1:]
    x = np.load(inputs)
    outputs = {}
    for export in exports:
        saved_model = tf.saved_model.load(f"{export}/saved_model").signatures
        tflite = Interpreter(model_path=f"{export}/model_float32.tflite")
        for name in ("anomaly_score", "is_anomaly"):
            for fmt, got in (
                ("saved_model", saved_model[name](x=tf.constant(x))),
                ("tflite", tflite.get_signature_runner(name)(x=x)),
            ):
                outputs.update({f"{export}:{fmt}:{name}:{key}": np.asarray(value) for key, value in got.items()})
    np.savez(results, **outputs)
    """
)


@pytest.fixture(scope="module")
def exported(one_class, tmp_path_factory):
    """{name: (directory, report)}: the one-class models exported once, to a SavedModel and float32 TFLite,
    each checked against Keras by the export itself (ONNX: tests/test_onnx.py)."""
    exports = {}
    for name, model in one_class.items():
        out = tmp_path_factory.mktemp(name)
        exports[name] = out, export_model(model, out, tflite="float32", representative_data=TRAIN, heldout_data=TEST)
    return exports


def test_exported_endpoints_give_the_models_scores_and_flags_without_keras_ae(one_class, exported, tmp_path):
    np.save(tmp_path / "x.npy", TEST)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    args = [str(tmp_path / "x.npy"), str(tmp_path / "out.npz"), *(str(out) for out, _ in exported.values())]
    subprocess.run([sys.executable, "-c", FRESH_PROCESS, *args], cwd=tmp_path, env=env, timeout=120, check=True)
    outputs = np.load(tmp_path / "out.npz")
    for name, model in one_class.items():
        out, report = exported[name]
        assert report["anomaly_threshold"] == model.anomaly_threshold and report["omitted_endpoints"] == {}
        assert report["signatures"]["is_anomaly"]["outputs"] == ["anomaly_score", "is_anomaly"]
        assert all(result["within_bound"] for result in report["formats"].values())
        scores, flags = model.anomaly_score(TEST), model.is_anomaly(TEST)
        assert 0 < flags.sum() < len(flags)
        tolerance = 1e-5 * model.num_features  # a sum over the features: float32 rounding in every term
        clear = np.abs(scores - model.anomaly_threshold) > tolerance  # where a flag cannot flip by rounding
        for fmt in ("saved_model", "tflite"):
            for endpoint in ("anomaly_score", "is_anomaly"):
                got = outputs[f"{out}:{fmt}:{endpoint}:anomaly_score"]
                assert got.dtype == np.float32
                np.testing.assert_allclose(got, scores, rtol=0, atol=tolerance)
            got = outputs[f"{out}:{fmt}:is_anomaly:is_anomaly"]
            assert got.dtype == bool
            np.testing.assert_array_equal(got[clear], flags[clear])


def test_export_leaves_out_a_random_score_and_says_so(tmp_path):
    model = keras_ae.get_model(
        "vae",
        input_shape=(64,),
        latent_dim=2,
        hidden_units=[8],
        anomaly_score_method="negative_log_likelihood",
        anomaly_threshold=50.0,
    )
    with pytest.warns(UserWarning, match=r"^Not exported: anomaly_score, is_anomaly: anomaly_score_method=") as caught:
        report = export_model(model, tmp_path, tflite="none", representative_data=TRAIN)
    assert len(caught) == 1 and "\n" not in str(caught[0].message)
    assert set(report["omitted_endpoints"]) == {"anomaly_score", "is_anomaly"}
    assert set(report["signatures"]) == {"serving_default", "encode", "decode", "reconstruct", "sample"}
    assert not {"anomaly_score", "is_anomaly"} & set(tf.saved_model.load(str(tmp_path / "saved_model")).signatures)


def test_training_option_fits_the_threshold_before_the_export(tmp_path):
    out = tmp_path / "run"
    train.run(model="pca", out=str(out), image_every=0, verbose=0, anomaly_false_positive_rate=RATE)  # closed form
    model = keras.saving.load_model(out / "model.keras")
    validation = data.load("digits", split="validation")
    assert np.sum(model.anomaly_score(validation) > model.anomaly_threshold) == math.floor(RATE * len(validation))
    report = json.loads((out / "export" / "report.json").read_text())
    assert report["anomaly_threshold"] == model.anomaly_threshold and "is_anomaly" in report["signatures"]
    assert json.loads((out / "config.json").read_text())["anomaly_false_positive_rate"] == RATE
