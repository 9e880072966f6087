"""The classic zoo against its references: PCA, closed forms, Monte Carlo, the base step."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

import keras_ae
from keras_ae import data, losses
from keras_ae.models import denoising

from small_models import IMAGE_MODELS, inputs_for, labels_for


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's digits, (1797, 64), in [0, 1]."""
    return (load_digits().data / 16.0).astype("float32")


@pytest.fixture(scope="module")
def standardized_digits():
    x = load_digits().data.astype("float32")
    x = x[:, x.std(axis=0) > 0]
    return (x - x.mean(axis=0)) / x.std(axis=0)


def reconstruction_error(model, x, **kwargs):
    return model.evaluate(x, verbose=0, return_dict=True, **kwargs)["reconstruction"]


def _orthonormal(basis):
    return np.linalg.qr(basis)[0]


def principal_angle_cosines(a, b):
    """Cosines of the principal angles between the column spaces of a and b."""
    return np.linalg.svd(_orthonormal(a).T @ _orthonormal(b), compute_uv=False)


_ACTIVATIONS = {"sigmoid": lambda a: 1.0 / (1.0 + np.exp(-a)), None: lambda a: a}


def numpy_forward(model, x):
    """(code h, reconstruction x~) of an MLP autoencoder from its weights, in float64 numpy: the encoder's Dense
    layers with `activation`, then the decoder's (tied: the encoder's kernels transposed, the decoder's biases),
    the last with `output_activation`."""
    act, out = _ACTIVATIONS[model.activation], _ACTIVATIONS[model.output_activation]
    encoder = [
        [w.astype(np.float64) for w in layer.get_weights()]
        for layer in model.encoder.layers
        if isinstance(layer, keras.layers.Dense)
    ]
    if model.tied_weights:
        biases = [layer.bias.numpy().astype(np.float64) for layer in model.decoder.layers if layer.weights]
        decoder = [(kernel.T, bias) for (kernel, _), bias in zip(encoder[::-1], biases, strict=True)]
    else:
        decoder = [
            [w.astype(np.float64) for w in layer.get_weights()]
            for layer in model.decoder.layers
            if isinstance(layer, keras.layers.Dense)
        ]
    h = np.asarray(x, np.float64).reshape(len(x), -1)
    for kernel, bias in encoder:
        h = act(h @ kernel + bias)
    code = h
    for i, (kernel, bias) in enumerate(decoder):
        h = (out if i == len(decoder) - 1 else act)(h @ kernel + bias)
    return code, h


def finite_difference_jacobian_norm(model, x, step=1e-2):
    """||∂h/∂x||²_F per example by central differences of `model.encode` (float32: relative error about 1e-4)."""
    n, d = x.shape
    shifts = np.eye(d, dtype=np.float32) * step
    plus, minus = ((x[:, None, :] + sign * shifts).reshape(-1, d) for sign in (1, -1))
    columns = (model.encode(plus).numpy().astype(np.float64) - model.encode(minus).numpy()) / (2 * step)
    return np.sum(columns.reshape(n, d, -1) ** 2, axis=(1, 2))


# --------------------------------------------------------------------- PCA
@pytest.mark.parametrize("name", ["linear", "tied"])
def test_linear_autoencoders_span_the_pca_subspace(name, standardized_digits):
    x, d = standardized_digits, 4
    pca = keras_ae.get_model("pca", input_shape=x.shape[1:], latent_dim=d)
    pca.fit(x, verbose=0)
    pca_error = reconstruction_error(pca, x)
    # PCA's residual is the variance it discards: the sum of the trailing eigenvalues.
    eigenvalues = np.linalg.eigvalsh(np.cov(x.T, bias=True))[::-1]
    np.testing.assert_allclose(pca_error, eigenvalues[d:].sum(), rtol=1e-4)

    keras.utils.set_random_seed(0)
    model = keras_ae.get_model(name, input_shape=x.shape[1:], latent_dim=d)
    steps = 300  # full batch, as one epoch of 300 steps: Keras' per-epoch work would cost more than the steps
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(0.05, steps)))
    model.fit(tf.data.Dataset.from_tensors(x).repeat(steps), epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == steps
    error = reconstruction_error(model, x, batch_size=len(x))
    assert error <= pca_error * 1.01
    # The decoder's columns span the reconstruction subspace (Wᵀ for tied).
    basis = model.kernel.numpy() if name == "tied" else model.decoder.layers[0].kernel.numpy().T
    assert principal_angle_cosines(basis, pca.components.numpy().T).min() > 0.99


def test_pca_reconstruction_matches_sklearn(standardized_digits):
    from sklearn.decomposition import PCA as SkPCA

    x = standardized_digits
    model = keras_ae.get_model("pca", input_shape=x.shape[1:], latent_dim=6)
    model.fit(x, verbose=0)
    reference = SkPCA(n_components=6).fit(x)
    np.testing.assert_allclose(
        model.predict(x, verbose=0), reference.inverse_transform(reference.transform(x)), atol=2e-4
    )


# -------------------------------------------------------------- contractive
@pytest.mark.parametrize("jacobian,options", [("analytic", {}), ("tape", {"hidden_units": [48, 32]})])
def test_contractive_penalty_matches_finite_differences(jacobian, options, digits):
    """||∂h/∂x||²_F by the closed form (one sigmoid layer) and by the tape (a deep encoder) against central
    differences of `encode`."""
    model = keras_ae.get_model("contractive", input_shape=(64,), latent_dim=16, jacobian=jacobian, seed=1, **options)
    x = digits[:8]
    penalty = model.contractive_penalty(tf.constant(x)).numpy()
    np.testing.assert_allclose(penalty, finite_difference_jacobian_norm(model, x), rtol=1e-3)


def test_contractive_projection_estimator_is_unbiased(digits):
    model = keras_ae.get_model(
        "contractive",
        input_shape=(64,),
        latent_dim=16,
        hidden_units=[48, 32],
        jacobian="projection",
        num_projections=4000,
        seed=2,
    )
    x = digits[:8]
    exact = finite_difference_jacobian_norm(model, x).mean()
    estimate = model.contractive_penalty(tf.constant(x)).numpy().mean()
    assert abs(estimate / exact - 1) < 0.02


def test_contractive_loss_terms_against_numpy(digits):
    """Both terms from the weights (h = σ(xW + b), x~ = σ(hV + c)): Σ_i (x_i − x~_i)², and λ times Rifai et al.'s
    (2011, eq. 4) Σ_j (h_j (1 − h_j))² Σ_i W_ij², means over the batch; here with the tape Jacobian."""
    model = keras_ae.get_model("contractive", input_shape=(64,), latent_dim=8, contractive_weight=0.5)
    x = digits[:16]
    terms = model.loss_terms(tf.constant(x))
    h, reconstruction = numpy_forward(model, x)
    kernel = model.encoder.layers[-1].kernel.numpy().astype(np.float64)
    penalty = np.sum((h * (1 - h)) ** 2 * np.sum(kernel**2, axis=0), axis=1)
    squared_error = np.sum((x - reconstruction) ** 2, axis=1).mean()
    np.testing.assert_allclose(terms["reconstruction"].numpy(), squared_error, rtol=1e-5)
    np.testing.assert_allclose(terms["contractive"].numpy(), 0.5 * penalty.mean(), rtol=1e-5)


# ------------------------------------------------------------------- sparse
def test_kl_sparsity_value_and_gradient_match_closed_form():
    rng = np.random.default_rng(0)
    codes = tf.constant(rng.uniform(0.02, 0.98, size=(50, 7)), tf.float32)
    rho = 0.05
    with tf.GradientTape() as tape:
        tape.watch(codes)
        value = losses.kl_sparsity(codes, rho)
    p = codes.numpy().mean(axis=0)
    expected = np.sum(rho * np.log(rho / p) + (1 - rho) * np.log((1 - rho) / (1 - p)))
    np.testing.assert_allclose(value.numpy(), expected, rtol=1e-5)
    # ∂R/∂p̂ = −ρ/p̂ + (1−ρ)/(1−p̂), and ∂p̂_j/∂h_ij = 1/batch.
    gradient = tape.gradient(value, codes).numpy()
    expected_gradient = (-rho / p + (1 - rho) / (1 - p)) / codes.shape[0]
    np.testing.assert_allclose(gradient, np.broadcast_to(expected_gradient, gradient.shape), rtol=1e-4)


def test_l1_sparsity_value():
    codes = tf.constant([[1.0, -2.0], [0.5, 0.0]])
    model = keras_ae.get_model(
        "sparse", input_shape=(4,), latent_dim=2, penalty="l1", sparsity_weight=0.1, activation="relu"
    )
    np.testing.assert_allclose(model.penalties(None, codes)["sparsity"].numpy(), 0.1 * (3.0 + 0.5) / 2)


def test_kl_sparse_autoencoder_reaches_the_target_rate():
    patches = data.load("patches", patch_size=8, num_patches=10000)  # (N, 64) in [0.1, 0.9]
    rho = 0.05
    keras.utils.set_random_seed(0)
    model = keras_ae.get_model(
        "sparse",
        input_shape=patches.shape[1:],
        latent_dim=25,
        penalty="kl",
        target_rate=rho,
        sparsity_weight=3.0,
        seed=0,
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    model.fit(patches, epochs=15, batch_size=250, verbose=0)
    mean_activation = model.encode(patches).numpy().mean()
    assert abs(mean_activation / rho - 1) < 0.2


# ---------------------------------------------------------------- denoising
def test_corruption_statistics():
    x = tf.fill([400, 250], 0.5)
    seed = keras.random.SeedGenerator(3)
    masked = denoising.masking_noise(x, 0.3, seed).numpy()
    assert abs(np.mean(masked == 0) - 0.3) < 0.01
    assert np.all((masked == 0) | (masked == 0.5))
    noisy = denoising.gaussian_noise(x, 0.2, seed).numpy() - 0.5
    assert abs(noisy.mean()) < 0.002 and abs(noisy.std() / 0.2 - 1) < 0.01
    salted = denoising.salt_and_pepper_noise(x, 0.2, 0.0, 1.0, seed).numpy()
    assert abs(np.mean(salted == 0.0) - 0.1) < 0.01 and abs(np.mean(salted == 1.0) - 0.1) < 0.01
    assert abs(np.mean(salted == 0.5) - 0.8) < 0.01


@pytest.mark.parametrize("corruption", ["gaussian", "masking", "salt_and_pepper"])
def test_denoising_corrupts_in_training_only(corruption, digits):
    """A linear model, x~ = x'M + e, so the expected loss under the corruption has a closed form. Evaluation sees
    the clean x: Σ_i r_i², r = x − xM − e (numpy, from the weights). Training sees x' = x + δ, δ_i independent with
    mean m_i and variance s_i² (Vincent et al. 2010, §4.2, noise level ν = 0.3), against the clean target:
    E Σ_i (r − δM)_i² = Σ_i (r − mM)_i² + Σ_i s_i² (MMᵀ)_ii."""
    nu = 0.3
    model = keras_ae.get_model(
        "denoising",
        input_shape=(64,),
        latent_dim=8,
        corruption=corruption,
        noise_level=nu,
        activation=None,
        output_activation=None,
        seed=0,
    )
    model.compile(jit_compile=False)
    rng = np.random.default_rng(0)
    u, c, v, d = rng.normal(0, 0.2, (64, 8)), rng.normal(0, 0.1, 8), rng.normal(0, 0.2, (8, 64)), np.zeros(64)
    model.encoder.layers[-1].set_weights([u.astype(np.float32), c.astype(np.float32)])
    model.decoder.layers[0].set_weights([v.astype(np.float32), d.astype(np.float32)])
    x = digits[:200].astype(np.float64)
    m_matrix, e = u @ v, c @ v + d
    r = x - x @ m_matrix - e
    clean = np.sum(r**2, axis=1).mean()
    np.testing.assert_allclose(model.loss_terms(tf.constant(x, tf.float32))["reconstruction"].numpy(), clean, rtol=1e-5)
    np.testing.assert_allclose(reconstruction_error(model, x), clean, rtol=1e-5)
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))

    if corruption == "gaussian":  # δ ~ N(0, ν²)
        mean, variance = np.zeros_like(x), np.full_like(x, nu**2)
    elif corruption == "masking":  # δ = −x with probability ν
        mean, variance = -nu * x, nu * (1 - nu) * x**2
    else:  # δ = −x or 1 − x, each with probability ν/2
        mean = nu * (0.5 - x)
        variance = nu / 2 * (x**2 + (1 - x) ** 2) - mean**2
    expected = (np.sum((r - mean @ m_matrix) ** 2, axis=1) + variance @ np.diag(m_matrix @ m_matrix.T)).mean()
    draws = np.array(
        [model.loss_terms(tf.constant(x, tf.float32), training=True)["reconstruction"].numpy() for _ in range(20)]
    )
    stderr = draws.std(ddof=1) / np.sqrt(len(draws))
    assert abs(draws.mean() - expected) < 5 * stderr
    assert abs(expected - clean) > 10 * stderr  # with these weights the corruption's effect is 35 to 65 stderr


# --------------------------------------------------------------- tied weights
def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def test_tied_weights_decode_with_the_encoder_kernels_transposed(digits, tmp_path):
    keras.utils.set_random_seed(0)
    model = keras_ae.get_model("denoising", input_shape=(64,), latent_dim=8, hidden_units=[16], tied_weights=True)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    model.fit(digits, epochs=2, batch_size=64, verbose=0)
    # One matrix per layer, trained (and counted) once: W1, b1, W2, b2 and the decoder biases c2, c1.
    assert len(model.trainable_variables) == 6
    assert model.count_params() == 64 * 16 + 16 + 16 * 8 + 8 + 16 + 64
    (w1, b1), (w2, b2) = (layer.get_weights() for layer in model.encoder.layers if layer.weights)
    c2, c1 = (layer.bias.numpy() for layer in model.decoder.layers if layer.weights)
    h = _sigmoid(_sigmoid(digits @ w1 + b1) @ w2 + b2)
    # x~ = σ(σ(h W2ᵀ + c2) W1ᵀ + c1)
    expected = _sigmoid(_sigmoid(h @ w2.T + c2) @ w1.T + c1)
    np.testing.assert_allclose(model.predict(digits, verbose=0), expected, rtol=1e-4, atol=1e-6)
    # Saved and loaded, the decoder still reads the encoder's variable.
    model.save(tmp_path / "tied.keras")
    loaded = keras.models.load_model(tmp_path / "tied.keras")
    assert loaded.decoder.layers[-2].dense.kernel is loaded.encoder.layers[1].kernel
    np.testing.assert_array_equal(loaded.predict(digits, verbose=0), model.predict(digits, verbose=0))


@pytest.mark.parametrize("name,tied_weights", [("linear", True), ("tied", False)])
def test_linear_and_tied_refuse_the_other_weight_sharing(name, tied_weights):
    # Their configs leave tied_weights out (it is what the name says), so a
    # model built against it would not survive saving and loading.
    with pytest.raises(TypeError, match="tied_weights"):
        keras_ae.get_model(name, input_shape=(64,), latent_dim=4, tied_weights=tied_weights)


def test_weight_decay_is_lambda_times_the_squared_kernel_norm(digits):
    norms = {}
    for decay in (0.0, 0.01):
        keras.utils.set_random_seed(0)
        model = keras_ae.get_model(
            "autoencoder", input_shape=(64,), latent_dim=8, hidden_units=[16], tied_weights=True, weight_decay=decay
        )
        kernels = [layer.kernel for layer in model.encoder.layers if isinstance(layer, keras.layers.Dense)]
        if decay:  # λ Σ ||W||², the two tied kernels counted once
            terms = model.loss_terms(tf.constant(digits[:100]))
            expected = decay * sum(np.sum(k.numpy() ** 2) for k in kernels)
            np.testing.assert_allclose(terms["weight_decay"].numpy(), expected, rtol=1e-5)
        model.compile(optimizer=keras.optimizers.Adam(0.01))
        history = model.fit(digits, epochs=5, batch_size=64, verbose=0)
        norms[decay] = sum(np.sum(k.numpy() ** 2) for k in kernels)
    assert "weight_decay" in history.history
    # Trained, both terms against numpy from the weights: Σ (x − x~)² and λ Σ ||W||².
    terms = model.loss_terms(tf.constant(digits))
    reconstruction = np.sum((digits - numpy_forward(model, digits)[1]) ** 2, axis=1).mean()
    decay = 0.01 * sum(np.sum(k.numpy().astype(np.float64) ** 2) for k in kernels)
    np.testing.assert_allclose([terms["reconstruction"], terms["weight_decay"]], [reconstruction, decay], rtol=1e-5)
    # Trained, the penalty shrinks the kernels against the same model without it.
    assert norms[0.01] < 0.7 * norms[0.0]


# --------------------------------------------------------- greedy pretraining
@pytest.mark.parametrize("tied_weights", [False, True])
def test_greedy_layerwise_pretraining_then_fine_tuning(tied_weights, digits):
    keras.utils.set_random_seed(0)
    model = keras_ae.get_model(
        "autoencoder", input_shape=(64,), latent_dim=8, hidden_units=[32], tied_weights=tied_weights
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    initial = reconstruction_error(model, digits)
    layer_losses = model.pretrain_layerwise(digits, epochs=15, batch_size=64, optimizer=keras.optimizers.Adam(0.01))
    assert len(layer_losses) == 2
    pretrained = reconstruction_error(model, digits)
    model.fit(digits, epochs=5, batch_size=64, verbose=0)
    fine_tuned = reconstruction_error(model, digits)
    assert pretrained < 0.7 * initial
    assert fine_tuned < pretrained


# --------------------------------------------------------- the shared step
def test_step_reports_every_term_and_the_loss_against_numpy(digits):
    """fit and evaluate report each term; evaluate's against numpy from the weights (h = σ(xW + b),
    x~ = σ(hV + c)): reconstruction Σ_i (x_i − x~_i)², sparsity λ Σ_j |h_j|, and loss, their sum."""
    model = keras_ae.get_model("sparse", input_shape=(64,), latent_dim=8, penalty="l1", sparsity_weight=0.01)
    model.compile()
    logs = model.fit(digits[:256], epochs=1, batch_size=64, verbose=0).history
    assert set(logs) == {"loss", "reconstruction", "sparsity"}
    result = model.evaluate(digits[:256], verbose=0, return_dict=True)
    h, reconstruction = numpy_forward(model, digits[:256])
    squared_error = np.sum((digits[:256] - reconstruction) ** 2, axis=1).mean()
    sparsity = 0.01 * np.sum(np.abs(h), axis=1).mean()
    np.testing.assert_allclose(
        [result["reconstruction"], result["sparsity"], result["loss"]],
        [squared_error, sparsity, squared_error + sparsity],
        rtol=1e-5,
    )


def test_evaluate_is_the_mean_over_examples_with_a_short_last_batch(digits):
    """64 mid-grey images (reconstructed almost exactly by the untrained sigmoid output, 0.5), then 36 digits,
    in batches of 64: the mean over the 100 examples of the numpy Σ (x − x~)², far from the mean of the two
    batches' means."""
    model = keras_ae.get_model("autoencoder", input_shape=(64,), latent_dim=4)
    model.compile()
    x = np.concatenate([np.full((64, 64), 0.5, np.float32), digits[:36]])
    errors = np.sum((x - numpy_forward(model, x)[1]) ** 2, axis=1)
    assert abs(errors[:64].mean() + errors[64:].mean() - 2 * errors.mean()) > 0.1 * errors.mean()
    np.testing.assert_allclose(reconstruction_error(model, x, batch_size=64), errors.mean(), rtol=1e-5)


@pytest.mark.parametrize(
    "name,options", [("autoencoder", {"hidden_units": [16]}), ("contractive", {"jacobian": "tape"})]
)
def test_mirrored_strategy_matches_one_device(name, options, digits, mirrored_strategy):
    x = digits[:256]

    def train(strategy):
        with strategy.scope():
            model = keras_ae.get_model(name, input_shape=(64,), latent_dim=8, **options)
            model.compile(optimizer=keras.optimizers.SGD(0.5))
        model.set_weights(initial)
        model.fit(x, epochs=2, batch_size=64, shuffle=False, verbose=0)
        return model.get_weights()

    initial = keras_ae.get_model(name, input_shape=(64,), latent_dim=8, **options).get_weights()
    assert mirrored_strategy.num_replicas_in_sync == 2
    for one, two in zip(train(tf.distribute.get_strategy()), train(mirrored_strategy), strict=True):
        np.testing.assert_allclose(one, two, atol=1e-5)


def test_mixed_precision_step_trains_with_float32_losses(digits):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = keras_ae.get_model("autoencoder", input_shape=(64,), latent_dim=8)
        model.compile()
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        terms = model.loss_terms(tf.constant(digits[:32]))
        assert all(t.dtype == tf.float32 for t in terms.values())
        before = reconstruction_error(model, digits)
        model.fit(digits, epochs=3, batch_size=64, verbose=0)
        assert reconstruction_error(model, digits) < before
    finally:
        keras.mixed_precision.set_global_policy("float32")


# ------------------------------------------------------------- saving
def _small_config(name):
    if name in IMAGE_MODELS:
        config = {"input_shape": (8, 8, 1), "latent_dim": 3, "filters": [4, 8]}
        return {**config, "num_codes": 8, "prior_filters": 8} if name == "vqvae" else config
    config = {"input_shape": (8, 8), "latent_dim": 3}
    if name in ("autoencoder", "sparse", "denoising", "contractive", "wae", "vae", "hierarchical_vae", "cvae"):
        config["hidden_units"] = [16]
    if name == "hierarchical_vae":
        config.update(lower_latent_dim=6, upper_hidden_units=[8])
    return config


@pytest.mark.parametrize("name", keras_ae.available_models())
def test_keras_round_trip(name, digits, tmp_path):
    config = _small_config(name)
    x = digits[:64].reshape((-1,) + config["input_shape"])
    model = keras_ae.get_model(name, seed=0, **config)
    model.compile()
    model.fit(inputs_for(model, x), epochs=1, batch_size=32, verbose=0)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()
    inputs, condition = inputs_for(model, x), [labels_for(model, x)] if model.conditional else []
    np.testing.assert_array_equal(loaded.predict(inputs, verbose=0), model.predict(inputs, verbose=0))
    np.testing.assert_array_equal(loaded.encode(x, *condition).numpy(), model.encode(x, *condition).numpy())
    # Training state comes back too: the optimizer's step count and slots.
    if name != "pca":
        assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 2


# ------------------------------------------------------------- bad input
BAD_INPUTS = {
    "wrong feature shape": (np.zeros((10, 63), np.float32), "Wrong feature shape"),
    "wrong rank": (np.zeros((10, 8, 8), np.float32), "Wrong rank"),
    "not castable to float": (np.array([["a"] * 64] * 10), "castable to float32"),
    "object dtype": (np.array([[object()] * 64] * 10, dtype=object), "castable to float32"),
    "NaN": (np.where(np.arange(640).reshape(10, 64) == 77, np.nan, 0.5).astype(np.float32), "NaN"),
    "Inf": (np.where(np.arange(640).reshape(10, 64) == 5, np.inf, 0.5).astype(np.float32), "Inf"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
@pytest.mark.parametrize("method", ["fit", "evaluate", "predict"])
def test_bad_input_is_a_value_error_before_any_weight_changes(case, method):
    x, message = BAD_INPUTS[case]
    model = keras_ae.get_model("autoencoder", input_shape=(64,), latent_dim=4)
    model.compile()
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match=message) as error:
        getattr(model, method)(x, verbose=0)
    if case.startswith("wrong"):
        assert "(batch, 64)" in str(error.value)
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_non_finite_batch_in_a_dataset_is_a_value_error():
    x = np.full((64, 64), 0.5, np.float32)
    x[40, 3] = np.nan
    model = keras_ae.get_model("autoencoder", input_shape=(64,), latent_dim=4)
    model.compile()
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(16)
    with pytest.raises(ValueError, match="NaN or Inf"):
        model.fit(dataset, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="Wrong feature shape"):
        model.fit(tf.data.Dataset.from_tensor_slices(x[:, :10]).batch(16), verbose=0)


def test_fit_rejects_targets():
    model = keras_ae.get_model("autoencoder", input_shape=(4,), latent_dim=2)
    model.compile()
    with pytest.raises(ValueError, match="inputs only"):
        model.fit(np.zeros((4, 4)), np.zeros((4, 4)), verbose=0)


BAD_CONFIGS = [
    ("nonexistent", {}, "Unknown model 'nonexistent'. Known models: autoencoder"),
    ("autoencoder", {"latent_dim": 0}, "latent_dim must be an int >= 1"),
    ("linear", {"latent_dim": -3}, "latent_dim must be an int >= 1"),
    ("sparse", {"sparsity_weight": -1.0}, "sparsity_weight must be a number >= 0"),
    ("sparse", {"target_rate": 0.0}, r"target_rate ρ must lie in \(0, 1\)"),
    ("sparse", {"target_rate": 1.0}, r"target_rate ρ must lie in \(0, 1\)"),
    ("sparse", {"target_rate": 1.5}, r"target_rate ρ must lie in \(0, 1\)"),
    ("sparse", {"penalty": "kl", "activation": "relu"}, 'needs activation="sigmoid"'),
    ("denoising", {"noise_level": -0.1}, "noise_level must be a number >= 0"),
    ("denoising", {"corruption": "masking", "noise_level": 1.5}, "must be <= 1"),
    ("denoising", {"corruption": "blur"}, "corruption must be one of"),
    ("contractive", {"contractive_weight": -2.0}, "contractive_weight must be a number >= 0"),
    ("contractive", {"jacobian": "analytic", "hidden_units": [16]}, "one sigmoid dense encoder layer"),
    ("contractive", {"jacobian": "analytic", "activation": "relu"}, "one sigmoid dense encoder layer"),
    ("autoencoder", {"reconstruction_loss": "bce", "output_activation": None}, "needs output_activation"),
    ("autoencoder", {"reconstruction_loss": "l3"}, "reconstruction_loss must be one of"),
    ("autoencoder", {"hidden_units": [16, -2]}, "hidden_units must be a list of positive ints"),
    ("conv", {}, r"needs image inputs of shape \(height, width, channels\)"),
    ("pca", {"latent_dim": 100}, "PCA keeps at most 64 components"),
]


@pytest.mark.parametrize("name,options,message", BAD_CONFIGS)
def test_bad_configuration_fails_at_construction(name, options, message):
    config = {"input_shape": (64,), "latent_dim": 4, **options}
    with pytest.raises(ValueError, match=message):
        keras_ae.get_model(name, **config)


def test_compile_refuses_a_loss():
    model = keras_ae.get_model("autoencoder", input_shape=(4,), latent_dim=2)
    with pytest.raises(ValueError, match="defines its own loss terms"):
        model.compile(loss="mse")
