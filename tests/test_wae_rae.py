"""WAE-MMD and RAE against their references: the MMD estimator against a double loop, its expectation, and
each model's penalty terms from its weights and draws."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_ae
from keras_ae import losses
from keras_ae.models.wae import AUTHORS_KERNEL_SCALES
from keras_ae.random_ops import random_normal

X = np.random.default_rng(0).uniform(size=(16, 64)).astype("float32")


def mmd_by_loops(x, y, scales):
    """MMD²_u of Gretton et al. (2012) by its definition, in float64, with k(a, b) = Σ_s C_s / (C_s + ||a − b||²),
    C_s = 2 d s."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)

    def k(a, b):
        return sum(2 * len(a) * s / (2 * len(a) * s + np.sum((a - b) ** 2)) for s in scales)

    n, m = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2 * xy


@pytest.mark.parametrize("scales", [(1.0,), AUTHORS_KERNEL_SCALES], ids=["paper", "authors_code"])
def test_mmd_matches_the_double_loop(scales):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(6, 3)), rng.normal(0.5, 2.0, size=(5, 3))
    got = losses.inverse_multiquadratic_mmd(x.astype("float32"), y.astype("float32"), scales).numpy()
    np.testing.assert_allclose(got, mmd_by_loops(x, y, scales), rtol=1e-5, atol=1e-6)


def test_mmd_is_zero_below_two_examples_with_a_finite_gradient():
    x = tf.constant([[0.5, -1.0]])
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = losses.inverse_multiquadratic_mmd(x, tf.constant([[0.0, 0.0], [1.0, 1.0]]))
    assert value.numpy() == 0.0
    np.testing.assert_array_equal(tape.gradient(value, x).numpy(), 0.0)


def test_mmd_is_unbiased_for_one_distribution_and_positive_for_a_shifted_one():
    """Over 200 pairs of samples of N(0, I) (n = 32, d = 4), the estimates' mean lies within 4 standard errors
    of 0 (0.0007; the biased V-statistic's mean is 0.027 here); with one sample's mean shifted by 1 in every
    coordinate, every estimate is above 0 and their mean above 10 standard deviations of the unshifted ones."""
    rng = np.random.default_rng(2)
    mmd = tf.function(losses.inverse_multiquadratic_mmd)
    pairs = rng.normal(size=(200, 2, 32, 4)).astype("float32")
    same = np.array([mmd(x, y).numpy() for x, y in pairs])
    shifted = np.array([mmd(x, y + 1.0).numpy() for x, y in pairs])
    assert abs(same.mean()) < 4 * same.std() / np.sqrt(len(same))
    assert shifted.min() > 0 and shifted.mean() > 10 * same.std()


def test_wae_mmd_term_is_the_estimate_on_its_codes_and_the_prior_draws_it_made():
    model = keras_ae.get_model("wae", input_shape=(64,), latent_dim=4, hidden_units=[16], mmd_weight=3.0, seed=5)
    assert model.encoder.layers[-1].activation is keras.activations.linear  # a linear code, for a N(0, I) prior
    state = keras.ops.convert_to_numpy(model.seed_generator.state)
    terms = model.loss_terms(tf.constant(X), training=True)
    model.seed_generator.state.assign(state)  # the same draws again
    prior = random_normal((len(X), 4), model.seed_generator)
    expected = 3.0 * losses.inverse_multiquadratic_mmd(model.encode(X), prior)
    np.testing.assert_allclose(terms["mmd"].numpy(), expected.numpy(), rtol=1e-6)
    assert not np.allclose(keras.ops.convert_to_numpy(model.seed_generator.state), state)  # fresh draws each step


def _kernels(layers):
    return [layer.kernel.numpy().astype(np.float64) for layer in layers if hasattr(layer, "kernel")]


def test_rae_terms_from_the_weights():
    """β ½||z||² (mean over the batch) from the codes of a numpy forward pass of the encoder, and λ Σ ||W||²
    over the decoder's kernels: unchanged when the encoder's kernels change."""
    model = keras_ae.get_model(
        "rae",
        input_shape=(64,),
        latent_dim=3,
        code_penalty_weight=0.3,
        decoder_l2_weight=0.01,
        seed=0,
        hidden_units=[8],
    )
    x = X
    terms = model.loss_terms(tf.constant(x))
    (w1, b1), (w2, b2) = (layer.get_weights() for layer in model.encoder.layers if layer.weights)
    z = (1 / (1 + np.exp(-(X @ w1 + b1)))) @ w2 + b2  # sigmoid hidden layer, linear code
    np.testing.assert_allclose(terms["code_penalty"].numpy(), 0.3 * np.mean(0.5 * np.sum(z**2, axis=1)), rtol=1e-5)
    decoder_norm = sum(np.sum(w**2) for w in _kernels(model.decoder.layers))
    np.testing.assert_allclose(terms["decoder_l2"].numpy(), 0.01 * decoder_norm, rtol=1e-5)
    for kernel in [layer.kernel for layer in model.encoder.layers if hasattr(layer, "kernel")]:
        kernel.assign(kernel * 10.0)
    np.testing.assert_allclose(model.loss_terms(tf.constant(x))["decoder_l2"].numpy(), 0.01 * decoder_norm, rtol=1e-5)


def test_options_round_trip_and_bad_options_raise():
    wae = keras_ae.get_model(
        "wae", input_shape=(64,), latent_dim=2, mmd_weight=1.5, kernel_scales=AUTHORS_KERNEL_SCALES
    )
    rae = keras_ae.get_model("rae", input_shape=(64,), latent_dim=2, code_penalty_weight=0.1, decoder_l2_weight=0.0)
    for model in (wae, rae):
        assert type(model).from_config(model.get_config()).get_config() == model.get_config()
    assert wae.get_config()["kernel_scales"] == list(AUTHORS_KERNEL_SCALES)
    for name, options in (
        ("wae", {"kernel_scales": []}),
        ("wae", {"kernel_scales": [1.0, -2.0]}),
        ("wae", {"mmd_weight": -1.0}),
        ("rae", {"code_penalty_weight": float("nan")}),
    ):
        with pytest.raises(ValueError, match=next(iter(options))):
            keras_ae.get_model(name, input_shape=(64,), latent_dim=2, **options)
