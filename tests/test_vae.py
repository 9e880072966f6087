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


# ------------------------------------------------- numpy references (float64)
def _softplus(a):
    return np.logaddexp(0.0, a)


def _dense_weights(network):
    """[(kernel, bias)] of the Dense layers of an MLP encoder or decoder, in order, as float64."""
    return [
        [w.astype(np.float64) for w in layer.get_weights()]
        for layer in network.layers
        if isinstance(layer, keras.layers.Dense)
    ]


def _mlp_vae_posterior(model, x):
    """(μ, σ) of q(z|x) from an MLP VAE's encoder weights: tanh hidden layers, then [μ, raw σ]."""
    h = np.asarray(x, np.float64).reshape(len(x), -1)
    *hidden, (kernel, bias) = _dense_weights(model.encoder)
    for k, b in hidden:
        h = np.tanh(h @ k + b)
    loc, raw = np.split(h @ kernel + bias, 2, axis=1)
    scale = np.exp(raw / 2) if model.scale_activation == "exp" else _softplus(raw) + 1e-6
    return loc, scale


def _mlp_vae_logits(model, z):
    """The decoder's output (logits for a Bernoulli likelihood) from its weights."""
    h = np.asarray(z, np.float64)
    *hidden, (kernel, bias) = _dense_weights(model.decoder)
    for k, b in hidden:
        h = np.tanh(h @ k + b)
    return h @ kernel + bias


def _gaussian_kl(loc, scale):
    """KL(N(μ, diag σ²) || N(0, I)) = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²), per example."""
    return 0.5 * np.sum(loc**2 + scale**2 - 1 - np.log(scale**2), axis=1)


def _nearly_deterministic_vae(**options):
    """An MLP VAE (Bernoulli, tanh) whose q(z|x) has σ = e^-15: its posterior draw is μ(x) to within 1e-6,
    so each reported term has a deterministic numpy value, `_numpy_terms`."""
    model = keras_ae.get_model(
        "vae", input_shape=(64,), latent_dim=LATENT, hidden_units=[16], scale_activation="exp", seed=11, **options
    )
    dense = model.encoder.layers[-1]
    kernel, bias = dense.get_weights()
    kernel[:, LATENT:], bias[LATENT:] = 0.0, -30.0  # log σ² = −30 whatever x
    dense.set_weights([kernel, bias])
    return model


def _numpy_terms(model, x):
    """Per-example −log Bernoulli(x | logits(z = μ(x))) and KL(q(z|x) || N(0, I)), from the weights."""
    loc, scale = _mlp_vae_posterior(model, x)
    logits = _mlp_vae_logits(model, loc)
    return np.sum(_softplus(logits) - x * logits, axis=1), _gaussian_kl(loc, scale)


def _linear_gaussian_vae(num_samples=1, n=20, features=6, sigma=0.5):
    """p(z) = N(0, I), p(x|z) = N(zW + b, σ²I), the rows of W orthogonal with norms a, and q(z|x) set to the
    exact posterior N(μ(x), diag v): v = 1 / (1 + a²/σ²), μ(x) = (x − b)Wᵀ diag(v)/σ². Then
    log p(x) = log N(x; b, WᵀW + σ²I), and every importance weight p(x, z)/q(z|x) equals p(x).
    Returns the model, x (n, features) drawn from p(x), and the closed-form pieces."""
    rng = np.random.default_rng(0)
    a = np.array([1.5, 0.7])
    w = a[:, None] * np.linalg.qr(rng.normal(size=(features, 2)))[0].T  # (2, features), Keras' kernel layout
    b = rng.normal(size=features)
    variance = 1.0 / (1.0 + a**2 / sigma**2)
    gain = w.T * variance / sigma**2  # μ(x) = (x − b) gain
    model = keras_ae.get_model(
        "vae",
        input_shape=(features,),
        latent_dim=2,
        hidden_units=[],
        likelihood="gaussian",
        decoder_scale=sigma,
        scale_activation="exp",
        num_samples=num_samples,
        seed=4,
    )
    model.decoder.layers[0].set_weights([w.astype("float32"), b.astype("float32")])
    kernel = np.concatenate([gain, np.zeros((features, 2))], axis=1)  # [μ | log σ²] columns
    bias = np.concatenate([-b @ gain, np.log(variance)])
    model.encoder.layers[-1].set_weights([kernel.astype("float32"), bias.astype("float32")])
    x = (rng.normal(size=(n, 2)) @ w + b + sigma * rng.normal(size=(n, features))).astype("float32")
    cov = w.T @ w + sigma**2 * np.eye(features)
    diff = x - b
    log_px = -0.5 * (np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff) + np.linalg.slogdet(2 * np.pi * cov)[1])
    return (
        model,
        x,
        {"w": w, "b": b, "a": a, "sigma": sigma, "variance": variance, "loc": diff @ gain, "log_px": log_px},
    )


def test_analytic_kl_equals_closed_form_and_monte_carlo(binary_digits):
    """The reported KL against the closed form at (μ, σ) computed in numpy from the encoder's weights, and
    q's and p's log-densities against it by Monte Carlo."""
    model = keras_ae.get_model("vae", input_shape=(64,), latent_dim=LATENT, hidden_units=[32], seed=1)
    x = tf.constant(binary_digits[:16])
    q = model.posterior(x)
    analytic = model.loss_terms(x)["kl"].numpy()
    loc, scale = _mlp_vae_posterior(model, binary_digits[:16])
    np.testing.assert_allclose(q.mean().numpy(), loc, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(q.stddev().numpy(), scale, rtol=1e-4)
    closed_form = _gaussian_kl(loc, scale)
    np.testing.assert_allclose(analytic, closed_form.mean(), rtol=1e-5)
    # Monte Carlo: log q(z) − log p(z), z ~ q, per example.
    z = q.sample(20000, seed=7)
    samples = (q.log_prob(z) - model.prior().log_prob(z)).numpy()  # (draws, batch)
    estimate, stderr = samples.mean(axis=0), samples.std(axis=0) / np.sqrt(len(samples))
    # 4.5 standard errors: all 16 examples pass by chance alone with probability 0.9999 (3 gave 0.957).
    assert np.all(np.abs(estimate - closed_form) < 4.5 * stderr + 1e-6)


def test_monte_carlo_kl_estimator_is_unbiased(binary_digits):
    x = tf.constant(binary_digits[:64])
    # Each call averages log q(z) − log p(z) over 200 draws of z per example.
    model = keras_ae.get_model(
        "vae",
        input_shape=(64,),
        latent_dim=LATENT,
        hidden_units=[32],
        kl_estimator="monte_carlo",
        num_samples=200,
        seed=2,
    )
    analytic = _gaussian_kl(*_mlp_vae_posterior(model, binary_digits[:64])).mean()  # numpy, from the weights
    draws = np.array([model.loss_terms(x)["kl"].numpy() for _ in range(20)])
    assert abs(draws.mean() - analytic) < 4 * draws.std() / np.sqrt(len(draws))  # t with 19 df: P(fail) < 0.1 %


def test_reparameterized_gradient_matches_the_closed_form():
    """∂/∂(encoder bias) of the reported reconstruction, −E_q log p(x|z) through z = μ + σ ε, against the
    gradient of its closed form for the linear-Gaussian VAE: with r = x − μW − b,
    E_q ||x − zW − b||² / 2σ_x² = (||r||² + Σ_j v_j a_j²) / 2σ_x², so ∂/∂μ_j = −r·W_j / σ_x² and, as
    log v_j is the bias of column j of log σ², ∂/∂ log v_j = v_j a_j² / 2σ_x². Averaged over k = 2000 draws."""
    k = 2000
    model, x, ref = _linear_gaussian_vae(num_samples=k)
    with tf.GradientTape() as tape:
        reconstruction = model.loss_terms(tf.constant(x), training=True)["reconstruction"]
    gradient = tape.gradient(reconstruction, model.encoder.layers[-1].bias).numpy()
    a, v, s2 = ref["a"], ref["variance"], ref["sigma"] ** 2
    rw = (x - ref["loc"] @ ref["w"] - ref["b"]) @ ref["w"].T  # r·W_j, (n, 2)
    # Standard errors of the k·n-draw means: the per-draw gradients' variances are v a⁴/σ_x⁴ (μ) and
    # ((r·W)² v + 2 v² a⁴) / 4σ_x⁴ (log v).
    n_draws = k * len(x)
    stderr = np.sqrt(v) * a**2 / s2 / np.sqrt(n_draws)
    assert np.all(np.abs(gradient[:2] - -(rw / s2).mean(axis=0)) < 5 * stderr), gradient
    stderr = np.sqrt(np.mean(rw**2 * v + 2 * v**2 * a**4, axis=0) / (4 * s2**2) / n_draws)
    assert np.all(np.abs(gradient[2:] - v * a**2 / (2 * s2)) < 5 * stderr), gradient


def test_exact_posterior_makes_the_bounds_exact():
    """With q(z|x) the exact posterior of the linear-Gaussian VAE: each importance weight is p(x), so
    `log_likelihood` with one sample and the IWAE loss equal the closed-form log p(x); the KL is the closed form
    of two Gaussians; the reconstruction −E_q log p(x|z) = ½ F log 2πσ_x² + (||r||² + Σ_j v_j a_j²) / 2σ_x²
    (r = x − μW − b), within its Monte Carlo error; and the ELBO, tight here, is log p(x)."""
    model, x, ref = _linear_gaussian_vae(num_samples=2000)
    np.testing.assert_allclose(model.log_likelihood(x, num_samples=1), ref["log_px"], rtol=0, atol=1e-4)
    terms = {name: float(value) for name, value in model.loss_terms(tf.constant(x)).items()}
    np.testing.assert_allclose(terms["loss"], -ref["log_px"].mean(), rtol=1e-5)  # IWAE, k = 2000
    kl = _gaussian_kl(ref["loc"], np.broadcast_to(np.sqrt(ref["variance"]), ref["loc"].shape))
    np.testing.assert_allclose(terms["kl"], kl.mean(), rtol=1e-5)
    a, v, s2 = ref["a"], ref["variance"], ref["sigma"] ** 2
    r = x - ref["loc"] @ ref["w"] - ref["b"]
    reconstruction = 0.5 * x.shape[1] * np.log(2 * np.pi * s2) + (np.sum(r**2, axis=1) + np.sum(v * a**2)) / (2 * s2)
    # The variance of ||x − zW − b||² / 2σ_x² under q: Σ_j (4 (r·W_j)² v_j + 2 a_j⁴ v_j²) / 4σ_x⁴.
    variance = np.sum(4 * (r @ ref["w"].T) ** 2 * v + 2 * a**4 * v**2, axis=1) / (4 * s2**2)
    stderr = np.sqrt(variance.sum() / 2000) / len(x)
    assert abs(terms["reconstruction"] - reconstruction.mean()) < 5 * stderr
    # The references agree among themselves: for the exact posterior E_q log p(x|z) − KL = log p(x).
    np.testing.assert_allclose(-(reconstruction + kl), ref["log_px"], rtol=1e-10)
    assert abs(terms["elbo"] - ref["log_px"].mean()) < 5 * stderr


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
    model = keras_ae.get_model(
        "vae",
        input_shape=(features,),
        latent_dim=latent,
        hidden_units=[],
        likelihood="gaussian",
        decoder_scale=sigma,
        scale_activation="exp",
        seed=4,
    )
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
    exact = -0.5 * (np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff) + np.linalg.slogdet(2 * np.pi * cov)[1])
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


def test_evaluate_reports_each_term_against_numpy(binary_digits):
    """`evaluate`'s four numbers against numpy from the weights, for a VAE whose posterior draw is its mean:
    reconstruction −Σ_i log Bernoulli(x_i | logits(μ)), the closed-form KL, elbo = −(reconstruction + KL) and,
    with β = 0.5, loss = reconstruction + β KL; means over examples, with a short last batch (297 = 2·100 + 97)."""
    model = _nearly_deterministic_vae(beta=0.5)
    model.compile(jit_compile=False)  # compiling the evaluation with XLA would cost 5 s here
    x = binary_digits[1500:]
    logs = model.evaluate(x, batch_size=100, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "reconstruction", "kl", "elbo"}
    reconstruction, kl = _numpy_terms(model, x)
    np.testing.assert_allclose(logs["reconstruction"], reconstruction.mean(), rtol=1e-5)
    np.testing.assert_allclose(logs["kl"], kl.mean(), rtol=1e-5)
    np.testing.assert_allclose(logs["elbo"], -(reconstruction + kl).mean(), rtol=1e-5)
    np.testing.assert_allclose(logs["loss"], (reconstruction + 0.5 * kl).mean(), rtol=1e-5)


def test_iwae_objective_is_tighter_than_the_elbo(binary_digits):
    model = keras_ae.get_model("vae", input_shape=(64,), latent_dim=LATENT, hidden_units=[32], num_samples=20, seed=5)
    model.compile()
    logs = model.evaluate(binary_digits[:500], verbose=0, return_dict=True)
    assert -logs["loss"] > logs["elbo"]  # the IWAE bound (k=20) exceeds the ELBO


def test_kl_warmup_and_beta(binary_digits):
    """β_t = β min(1, step / 10) with β = 2: 0, 1, 2 after 0, 5, 15 steps; the loss is the numpy
    reconstruction + β_t · numpy KL at each (a VAE whose posterior draw is its mean, `_numpy_terms`)."""
    model = _nearly_deterministic_vae(beta=2.0, kl_warmup_steps=10)
    model.compile(jit_compile=False)  # XLA's compilation would cost more than the 15 steps
    x = binary_digits[:100]
    for steps, beta_t in ((0, 0.0), (5, 1.0), (10, 2.0)):
        if steps:
            model.fit(binary_digits[: 100 * steps], epochs=1, batch_size=100, verbose=0)
        assert float(model.kl_weight()) == pytest.approx(beta_t)
        reconstruction, kl = _numpy_terms(model, x)
        np.testing.assert_allclose(
            model.loss_terms(tf.constant(x))["loss"], (reconstruction + beta_t * kl).mean(), rtol=1e-5
        )


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


def test_sample_and_latent_grid():
    """A linear decoder, logits = zW + b, so each image gives back its z: `sample` returns σ(zW + b) with z ~ N(0, I)
    (4000 recovered z: moments and Kolmogorov-Smirnov), `latent_grid` σ(zW + b) at scipy's standard-normal quantiles,
    row-major."""
    from scipy.stats import kstest, norm

    model = keras_ae.get_model("vae", input_shape=(8, 8), latent_dim=2, hidden_units=[], seed=8)
    w, b = (t.astype(np.float64) for t in model.decoder.layers[0].get_weights())  # (2, 64), (64,)
    samples = model.sample(4000, seed=1).numpy().reshape(4000, 64).astype(np.float64)
    np.testing.assert_array_equal(model.sample(5, seed=1).numpy(), model.sample(5, seed=1).numpy())  # seeded
    logits = np.log(samples) - np.log1p(-samples)
    z, residual, *_ = np.linalg.lstsq(w.T, (logits - b).T, rcond=None)
    assert residual.max() < 1e-6  # every sample is the decoder mean σ(zW + b) of some z
    z = z.T
    # Mean 0 (standard error 0.016) and covariance I (standard errors 0.016 to 0.022).
    assert np.all(np.abs(z.mean(axis=0)) < 0.08)
    assert np.all(np.abs(np.cov(z.T) - np.eye(2)) < 0.11)
    assert all(kstest(z[:, j], norm.cdf).pvalue > 1e-3 for j in range(2))  # normal, not only its first two moments

    grid = model.latent_grid(3).numpy()
    q = norm.ppf([0.05, 0.5, 0.95])
    # Row r, column c: z_1 = q[c] along the columns, z_2 = q[2 - r] decreasing down the rows.
    z_grid = np.array([(q[c], q[2 - r]) for r in range(3) for c in range(3)])
    expected = 1 / (1 + np.exp(-(z_grid @ w + b)))
    np.testing.assert_allclose(grid.reshape(9, 64), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="latent_dim=2"):
        keras_ae.get_model("vae", input_shape=(64,), latent_dim=3).latent_grid(3)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "continuous_bernoulli"])
def test_mixed_precision_keeps_log_probabilities_in_float32(likelihood, binary_digits):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = keras_ae.get_model(
            "vae", input_shape=(64,), latent_dim=LATENT, hidden_units=[16], likelihood=likelihood, seed=9
        )
        x = tf.constant(binary_digits[:32])
        assert model.encoder.layers[-1].compute_dtype == "float16"
        terms = model.loss_terms(x, training=True)
        assert all(t.dtype == tf.float32 for t in terms.values())
        assert model.elbo(binary_digits[:8]).dtype == np.float32
        assert model.log_likelihood(binary_digits[:8], num_samples=4).dtype == np.float32
        # The dtypes are the point, not XLA, which compiles this step in float16 slowly (77 s of the suite's time).
        model.compile(jit_compile=False)
        model.fit(binary_digits[:200], epochs=1, batch_size=50, verbose=0)
        assert np.isfinite(model.evaluate(binary_digits[:200], verbose=0, return_dict=True)["elbo"])
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_dynamic_binarization_draws_binary_inputs():
    """Through the public loss: an encoder with μ = (Σ_i x_i − F p) / √(F p (1 − p)) and σ = 1, so KL = ½ μ².
    On the grey input x = p, μ = 0; on Bernoulli(p) draws, E[KL] = ½ (E Σ x_i = F p, Var Σ x_i = F p (1 − p),
    a variance that values in [0, 1] with mean p reach only when they are 0 or 1)."""
    features, p = 1000, 0.3
    model = keras_ae.get_model(
        "vae",
        input_shape=(features,),
        latent_dim=1,
        hidden_units=[],
        dynamic_binarization=True,
        scale_activation="exp",
        seed=10,
    )
    norm = np.sqrt(features * p * (1 - p))
    kernel = np.zeros((features, 2), np.float32)
    kernel[:, 0] = 1 / norm
    model.encoder.layers[-1].set_weights([kernel, np.array([-features * p / norm, 0.0], np.float32)])  # log σ² = 0
    grey = tf.fill([2000, features], p)
    assert abs(float(model.loss_terms(grey)["kl"])) < 1e-4  # evaluation sees x itself
    # Training: the mean of 2000 draws of ½ χ²₁, ½ with standard error 0.016.
    assert abs(float(model.loss_terms(grey, training=True)["kl"]) - 0.5) < 0.08


BAD_VAE_CONFIGS = [
    ({"likelihood": "poisson"}, "likelihood must be one of"),
    ({"beta": -1.0}, "beta must be a number >= 0"),
    ({"kl_warmup_steps": -5}, "kl_warmup_steps must be an int >= 0"),
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
