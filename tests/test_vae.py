"""The VAE against closed forms and Monte Carlo: KL, importance weighting, active units."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

import keras_ae

LATENT = 4


@pytest.fixture(scope="module")
def binary_digits():
    """Statically binarized digits, (1797, 64)."""
    return (load_digits().data / 16.0 > 0.5).astype("float32")


@pytest.fixture(scope="module")
def trained_vae(binary_digits):
    keras.utils.set_random_seed(0)
    model = keras_ae.get_model("vae", input_shape=(64,), latent_dim=LATENT, hidden_units=[64], seed=0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(binary_digits[:1500], epochs=15, batch_size=100, verbose=0)
    return model


def test_analytic_kl_equals_closed_form_and_monte_carlo(binary_digits):
    model = keras_ae.get_model("vae", input_shape=(64,), latent_dim=LATENT, hidden_units=[32], seed=1)
    x = tf.constant(binary_digits[:16])
    q = model.posterior(x)
    analytic = model.loss_terms(x)["kl"].numpy()
    loc, scale = (t.numpy() for t in model.posterior_parameters(x))
    # KL(N(μ, σ²) || N(0, 1)) = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²)
    closed_form = 0.5 * np.sum(loc**2 + scale**2 - 1 - np.log(scale**2), axis=1)
    np.testing.assert_allclose(analytic, closed_form.mean(), rtol=1e-5)
    # Monte Carlo: log q(z) − log p(z), z ~ q, per example.
    z = q.sample(20000, seed=7)
    samples = (q.log_prob(z) - model.prior().log_prob(z)).numpy()  # (draws, batch)
    estimate, stderr = samples.mean(axis=0), samples.std(axis=0) / np.sqrt(len(samples))
    assert np.all(np.abs(estimate - closed_form) < 3 * stderr + 1e-6)


def test_monte_carlo_kl_estimator_is_unbiased(binary_digits):
    x = tf.constant(binary_digits[:64])
    # Each call averages log q(z) − log p(z) over 200 draws of z per example.
    model = keras_ae.get_model("vae", input_shape=(64,), latent_dim=LATENT, hidden_units=[32],
                               kl_estimator="monte_carlo", num_samples=200, seed=2)
    analytic = model.posterior(x).kl_divergence(model.prior()).numpy().mean()
    draws = np.array([model.loss_terms(x)["kl"].numpy() for _ in range(20)])
    assert abs(draws.mean() - analytic) < 3 * draws.std() / np.sqrt(len(draws))


def test_gradients_reach_the_encoder_through_the_sampled_z(binary_digits):
    model = keras_ae.get_model("vae", input_shape=(64,), latent_dim=LATENT, hidden_units=[32], seed=3)
    x = tf.constant(binary_digits[:32])
    with tf.GradientTape() as tape:
        reconstruction = model.loss_terms(x, training=True)["reconstruction"]
    gradients = tape.gradient(reconstruction, model.encoder.trainable_variables)
    # Only the sample z = μ + σ ε links the reconstruction to the encoder.
    assert all(g is not None and float(tf.norm(g)) > 0 for g in gradients)


def test_importance_weighted_log_likelihood_bounds(trained_vae, binary_digits):
    x = binary_digits[1500:1800]
    elbo = trained_vae.elbo(x)
    estimates = {k: trained_vae.log_likelihood(x, num_samples=k, chunk_size=50) for k in (1, 10, 100)}
    # k = 1 is an unbiased ELBO estimate; larger k tightens the bound (Burda et al. 2016, thm. 1).
    stderr = (estimates[1] - estimates[100]).std() / np.sqrt(len(x))
    assert abs(estimates[1].mean() - elbo.mean()) < 4 * stderr
    assert estimates[100].mean() >= elbo.mean()
    assert estimates[10].mean() >= estimates[1].mean() - 2 * stderr
    assert estimates[100].mean() >= estimates[10].mean() - 2 * stderr
    assert estimates[100].mean() > estimates[1].mean()


def test_log_likelihood_matches_the_linear_gaussian_closed_form():
    """p(z) = N(0, I), p(x|z) = N(Wz + b, σ²I): p(x) = N(b, WWᵀ + σ²I) exactly."""
    features, latent, sigma = 6, 2, 0.5
    rng = np.random.default_rng(0)
    w = rng.normal(size=(latent, features)).astype("float32")  # Keras kernel: (latent, features)
    b = rng.normal(size=features).astype("float32")
    model = keras_ae.get_model("vae", input_shape=(features,), latent_dim=latent, hidden_units=[],
                               likelihood="gaussian", decoder_scale=sigma, scale_activation="exp", seed=4)
    model.decoder.layers[0].set_weights([w, b])
    # Encoder: the exact posterior, deliberately perturbed so the importance weights vary.
    posterior_cov = np.linalg.inv(np.eye(latent) + w @ w.T / sigma**2)
    gain = posterior_cov @ w / sigma**2  # μ = gain (x − b)
    kernel = np.concatenate([0.8 * gain.T, np.zeros((features, latent))], axis=1)
    bias = np.concatenate([-0.8 * gain @ b + 0.1, np.log(1.5 * np.diag(posterior_cov))])
    model.encoder.layers[-1].set_weights([kernel.astype("float32"), bias.astype("float32")])

    x = (rng.normal(size=(20, latent)) @ w + b + sigma * rng.normal(size=(20, features))).astype("float32")
    cov = w.T @ w + sigma**2 * np.eye(features)
    diff = x - b
    exact = -0.5 * (np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)
                    + np.linalg.slogdet(2 * np.pi * cov)[1])
    estimate = model.log_likelihood(x, num_samples=5000, chunk_size=1000)
    np.testing.assert_allclose(estimate, exact, atol=0.05)


def test_training_improves_the_test_elbo(binary_digits):
    keras.utils.set_random_seed(0)
    model = keras_ae.get_model("vae", input_shape=(64,), latent_dim=LATENT, hidden_units=[64], seed=0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    test = binary_digits[1500:]
    before = model.evaluate(test, verbose=0, return_dict=True)["elbo"]
    history = model.fit(binary_digits[:1500], validation_data=test, epochs=15, batch_size=100, verbose=0)
    after = history.history["val_elbo"][-1]
    # Untrained: about −44 nats per 64-pixel digit; trained 15 epochs: about −23.
    assert before < -35
    assert after > before + 15
    assert after > -28


def test_reported_terms_and_bounds(trained_vae, binary_digits):
    logs = trained_vae.evaluate(binary_digits[1500:], verbose=0, return_dict=True)
    assert set(logs) == {"loss", "reconstruction", "kl", "elbo"}
    np.testing.assert_allclose(logs["elbo"], -(logs["reconstruction"] + logs["kl"]), rtol=1e-5)
    np.testing.assert_allclose(logs["loss"], -logs["elbo"], rtol=1e-5)  # β = 1, no warm-up
    assert logs["kl"] > 0


def test_iwae_objective_is_tighter_than_the_elbo(binary_digits):
    model = keras_ae.get_model("vae", input_shape=(64,), latent_dim=LATENT, hidden_units=[32],
                               num_samples=20, seed=5)
    model.compile()
    logs = model.evaluate(binary_digits[:500], verbose=0, return_dict=True)
    assert -logs["loss"] > logs["elbo"]  # the IWAE bound (k=20) exceeds the ELBO


def test_kl_warmup_and_beta(binary_digits):
    model = keras_ae.get_model("vae", input_shape=(64,), latent_dim=LATENT, hidden_units=[16],
                               beta=2.0, kl_warmup_steps=10, seed=6)
    model.compile()
    assert float(model.kl_weight()) == 0.0
    model.fit(binary_digits[:500], epochs=1, batch_size=100, verbose=0)  # 5 steps
    assert float(model.kl_weight()) == pytest.approx(1.0)
    terms = model.loss_terms(tf.constant(binary_digits[:100]))
    np.testing.assert_allclose(terms["loss"], terms["reconstruction"] + 1.0 * terms["kl"], rtol=1e-5)
    model.fit(binary_digits[:1000], epochs=1, batch_size=100, verbose=0)
    assert float(model.kl_weight()) == pytest.approx(2.0)


def test_active_units_counts_the_dimensions_in_use(binary_digits):
    model = keras_ae.get_model("vae", input_shape=(64,), latent_dim=5, hidden_units=[], seed=7)
    dense = model.encoder.layers[-1]
    kernel, bias = dense.get_weights()  # columns: μ_1..5, raw σ_1..5
    kernel[:, :5] = 0.0
    kernel[:, [0, 3]] = np.random.default_rng(0).normal(0, 0.5, size=(64, 2))
    bias[:5] = 0.0
    dense.set_weights([kernel, bias])  # μ_2, μ_3 and μ_5 ignore x: collapsed to the prior mean
    assert model.active_units(binary_digits) == 2
    assert model.active_units(binary_digits, threshold=1e6) == 0


def test_sample_and_latent_grid(binary_digits):
    model = keras_ae.get_model("vae", input_shape=(8, 8), latent_dim=2, hidden_units=[16], seed=8)
    samples = model.sample(5, seed=1).numpy()
    assert samples.shape == (5, 8, 8) and samples.min() >= 0 and samples.max() <= 1
    np.testing.assert_array_equal(samples, model.sample(5, seed=1).numpy())
    grid = model.latent_grid(3).numpy()
    assert grid.shape == (9, 8, 8)
    # The centre of the grid is the decode of z = (0, 0), the median quantile.
    np.testing.assert_allclose(grid[4], model.decode(tf.zeros([1, 2]))[0].numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="latent_dim=2"):
        keras_ae.get_model("vae", input_shape=(64,), latent_dim=3).latent_grid(3)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "continuous_bernoulli"])
def test_mixed_precision_keeps_log_probabilities_in_float32(likelihood, binary_digits):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = keras_ae.get_model("vae", input_shape=(64,), latent_dim=LATENT, hidden_units=[16],
                                   likelihood=likelihood, seed=9)
        x = tf.constant(binary_digits[:32])
        assert model.encoder.layers[-1].compute_dtype == "float16"
        terms = model.loss_terms(x, training=True)
        assert all(t.dtype == tf.float32 for t in terms.values())
        log_px_z, log_qz, log_pz, kl = model._log_weights(x, 3)
        assert all(t.dtype == tf.float32 for t in (log_px_z, log_qz, log_pz, kl))
        assert model.log_likelihood(binary_digits[:8], num_samples=4).dtype == np.float32
        model.compile()
        model.fit(binary_digits[:200], epochs=1, batch_size=50, verbose=0)
        assert np.isfinite(model.evaluate(binary_digits[:200], verbose=0, return_dict=True)["elbo"])
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_dynamic_binarization_draws_binary_inputs():
    model = keras_ae.get_model("vae", input_shape=(1000,), latent_dim=2, hidden_units=[],
                               dynamic_binarization=True, seed=10)
    grey = tf.fill([50, 1000], 0.3)
    binary = model._binarize(grey).numpy()
    assert set(np.unique(binary)) == {0.0, 1.0}
    assert abs(binary.mean() - 0.3) < 0.01


BAD_VAE_CONFIGS = [
    ({"likelihood": "poisson"}, "likelihood must be one of"),
    ({"beta": -1.0}, "beta must be a number >= 0"),
    ({"kl_warmup_steps": -5}, "kl_warmup_steps must be a number >= 0"),
    ({"num_samples": 0}, "num_samples must be an int >= 1"),
    ({"likelihood": "gaussian", "decoder_scale": -0.1}, 'decoder_scale must be "learned" or a number > 0'),
    ({"likelihood": "gaussian", "dynamic_binarization": True}, 'needs likelihood="bernoulli"'),
    ({"kl_estimator": "exact"}, "kl_estimator must be one of"),
    ({"latent_dim": 0}, "latent_dim must be an int >= 1"),
]


@pytest.mark.parametrize("options,message", BAD_VAE_CONFIGS)
def test_bad_vae_configuration(options, message):
    with pytest.raises(ValueError, match=message):
        keras_ae.get_model("vae", **{"input_shape": (64,), "latent_dim": 2, **options})


def test_conv_vae_needs_images_and_rejects_bad_input():
    with pytest.raises(ValueError, match=r"conv_vae needs image inputs"):
        keras_ae.get_model("conv_vae", input_shape=(64,), latent_dim=2)
    model = keras_ae.get_model("conv_vae", input_shape=(8, 8, 1), latent_dim=2, filters=[4])
    model.compile()
    with pytest.raises(ValueError, match=r"\(batch, 8, 8, 1\)"):
        model.fit(np.zeros((4, 8, 8), np.float32), verbose=0)
