"""The VQ-VAE and its PixelCNN prior against their references: nearest codes by brute force, the straight-through
gradient and the stop-gradients from the tape, one EMA step and a restart in numpy, the perplexity from its
definition, the masks' receptive field from gradients, a prior that learns a constant code, and a `.keras`
round trip of the codebook and the prior."""

import keras
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

import keras_ae
from keras_ae import data, losses
from keras_ae.models.pixelcnn import MaskedConv2D, PixelCNN
from keras_ae.models.vqvae import LAPLACE_EPSILON, code_statistics
from training import train

X = data.load("digits")[:64]  # (64, 8, 8, 1) in [0, 1]
TINY = {"input_shape": (8, 8, 1), "latent_dim": 4, "num_codes": 8, "filters": [4, 8], "prior_filters": 8}


def tiny(**options):
    return keras_ae.get_model("vqvae", seed=0, **{**TINY, **options})


def brute_force_nearest(z, codebook):
    """argmin_k ||z − e_k||² for every vector of z (..., D), by a float64 loop over the codes."""
    z, codebook = np.asarray(z, np.float64), np.asarray(codebook, np.float64)
    distances = np.stack([np.sum((z - e) ** 2, axis=-1) for e in codebook], axis=-1)
    return np.argmin(distances, axis=-1)


def test_quantization_is_the_nearest_code_and_encode_decode_go_through_it():
    model = tiny()
    rng = np.random.default_rng(0)
    model.codebook.assign(rng.normal(size=(8, 4)).astype(np.float32))
    z = rng.normal(size=(5, 3, 2, 4)).astype(np.float32)
    np.testing.assert_array_equal(model.nearest_codes(tf.constant(z)).numpy(), brute_force_nearest(z, model.codebook))

    codes = model.encode(X[:6]).numpy()
    assert codes.dtype == np.int32 and codes.shape == (6, 2, 2) and model.code_shape == (2, 2)
    np.testing.assert_array_equal(codes, brute_force_nearest(model.encoder_outputs(X[:6]), model.codebook))
    z_q = model.codebook.numpy()[codes]  # decode reads the codes' vectors
    direct = model.output_activation_fn(model.decoder(z_q))
    np.testing.assert_allclose(model.decode(codes).numpy(), direct.numpy(), rtol=1e-6)
    np.testing.assert_allclose(model.predict(X[:6], verbose=0), direct.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match=r"Wrong feature shape.*\(batch, 2, 2\)"):
        model.decode(np.zeros((3, 2, 3), np.int32))


def test_straight_through_gradient_and_the_stop_gradients():
    """With z_e fixed, the tape's gradients of the terms: reconstruction w.r.t. z_e equals that of the
    decoder's reconstruction of z_q w.r.t. z_q (passed straight through); commitment w.r.t. z_e is
    2β (z_e − z_q) / batch; the codebook term gives z_e nothing and code k −2 Σ_(j→k) (z_e,j − e_k) / batch."""
    model = tiny(commitment_weight=0.3)
    x = tf.constant(X[:6])
    z_e = tf.Variable(model.encoder_outputs(x))
    model.encoder_outputs = lambda x, training=False: tf.identity(z_e)
    with tf.GradientTape(persistent=True) as tape:
        terms = model.loss_terms(x, training=True)
    codes = brute_force_nearest(z_e, model.codebook)
    z_q = tf.constant(model.codebook.numpy()[codes])
    decoded = tf.reduce_mean(losses.squared_error(x, model.decode(codes.astype(np.int32))))
    np.testing.assert_allclose(float(terms["reconstruction"]), float(decoded), rtol=1e-6)  # the value is z_q's
    with tf.GradientTape() as direct:
        direct.watch(z_q)
        reconstruction = tf.reduce_mean(losses.squared_error(x, model._decode_vectors(z_q)))
    np.testing.assert_allclose(
        tape.gradient(terms["reconstruction"], z_e).numpy(), direct.gradient(reconstruction, z_q).numpy(), atol=1e-7
    )
    difference = z_e.numpy() - z_q.numpy()
    np.testing.assert_allclose(tape.gradient(terms["commitment"], z_e).numpy(), 2 * 0.3 * difference / 6, rtol=1e-5)
    assert tape.gradient(terms["codebook"], z_e) is None
    assert tape.gradient(terms["commitment"], model.codebook) is None
    expected = np.zeros((8, 4))
    np.add.at(expected, codes.reshape(-1), -2 * difference.reshape(-1, 4) / 6)
    gradient = tf.convert_to_tensor(tape.gradient(terms["codebook"], model.codebook))  # from IndexedSlices
    np.testing.assert_allclose(gradient.numpy(), expected, atol=1e-6)


def test_one_ema_step_is_its_closed_form_and_fit_moves_the_codebook_only_so():
    """Appendix A.1 with Laplace smoothing, in numpy from the variables before the step: N ← γN + (1−γ)n,
    m ← γm + (1−γ)Σz, e = m / Ñ, Ñ = (N + ε) / (ΣN + Kε) ΣN; the codebook term is 0 and not trained."""
    model = tiny(codebook_update="ema", ema_decay=0.9)
    rng = np.random.default_rng(1)
    model.ema_counts.assign(rng.uniform(0.5, 3.0, 8).astype(np.float32))
    model.ema_sums.assign(rng.normal(size=(8, 4)).astype(np.float32))
    counts, sums, codebook = (v.numpy().astype(np.float64) for v in (model.ema_counts, model.ema_sums, model.codebook))
    z = model.encoder_outputs(X).numpy().reshape(-1, 4).astype(np.float64)
    one_hot = np.eye(8)[brute_force_nearest(z, codebook)]
    terms = model.loss_terms(tf.constant(X), training=True)
    new_counts = 0.9 * counts + 0.1 * one_hot.sum(axis=0)
    new_sums = 0.9 * sums + 0.1 * one_hot.T @ z
    smoothed = (new_counts + LAPLACE_EPSILON) / (new_counts.sum() + 8 * LAPLACE_EPSILON) * new_counts.sum()
    np.testing.assert_allclose(model.ema_counts.numpy(), new_counts, rtol=1e-5)
    np.testing.assert_allclose(model.ema_sums.numpy(), new_sums, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.codebook.numpy(), new_sums / smoothed[:, None], rtol=1e-5, atol=1e-6)
    assert float(terms["codebook"]) == 0.0
    model.loss_terms(tf.constant(X), training=False)  # evaluation leaves the averages alone
    np.testing.assert_allclose(model.ema_counts.numpy(), new_counts, rtol=1e-5)

    assert all(v.path != model.codebook.path for v in model.trainable_variables)
    model.compile(jit_compile=False)
    before = model.codebook.numpy()
    logs = model.fit(X, epochs=1, batch_size=32, verbose=0).history
    assert not np.allclose(model.codebook.numpy(), before) and logs["codebook"] == [0.0]


def test_restart_reseeds_the_unused_codes_from_the_batch():
    model = tiny(codebook_update="ema", restart_unused_codes=True, dead_code_threshold=0.5)
    model.ema_counts.assign(np.r_[np.zeros(3), np.full(5, 10.0)].astype(np.float32))  # codes 0-2 unused
    z = model.encoder_outputs(X[:4]).numpy().reshape(-1, 4)
    model.loss_terms(tf.constant(X[:4]), training=True)
    counts, codebook = model.ema_counts.numpy(), model.codebook.numpy()
    np.testing.assert_array_equal(counts[:3], 1.0)
    assert np.all(counts[3:] > 0.5)
    for k in range(3):  # each a vector of the batch, and its one observation
        assert np.min(np.abs(z - codebook[k]).max(axis=1)) == 0
        np.testing.assert_array_equal(model.ema_sums.numpy()[k], codebook[k])


def test_perplexity_is_the_exponential_of_the_code_entropy_and_reaches_the_logs():
    stats = code_statistics(tf.constant([2.0, 2.0, 0.0, 4.0]))
    p = np.array([0.25, 0.25, 0.5])
    np.testing.assert_allclose(float(stats["perplexity"]), np.exp(-np.sum(p * np.log(p))), rtol=1e-6)
    assert float(stats["codes_used"]) == 0.75
    np.testing.assert_allclose(float(code_statistics(tf.constant([0.0, 9.0]))["perplexity"]), 1.0)

    model = tiny()
    model.compile(jit_compile=False)
    logs = model.fit(X, epochs=1, batch_size=64, verbose=0).history
    assert {"loss", "reconstruction", "codebook", "commitment", "perplexity", "codes_used"} == set(logs)
    result = model.evaluate(X, batch_size=64, verbose=0, return_dict=True)
    counts = np.bincount(model.encode(X).numpy().reshape(-1), minlength=8)
    p = counts[counts > 0] / counts.sum()
    np.testing.assert_allclose(result["perplexity"], np.exp(-np.sum(p * np.log(p))), rtol=1e-5)
    np.testing.assert_allclose(result["codes_used"], np.mean(counts > 0))


def test_masks_and_the_receptive_field_of_the_prior():
    """d logits[i, j] / d input is zero at (i, j) and at every later position in raster order, nonzero at
    the position just before it (and, for a first column, the one above)."""
    mask_a = MaskedConv2D(1, 3, "A").mask[:, :, 0, 0]
    mask_b = MaskedConv2D(1, 3, "B").mask[:, :, 0, 0]
    np.testing.assert_array_equal(mask_a, [[1, 1, 1], [1, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(mask_b, [[1, 1, 1], [1, 1, 0], [0, 0, 0]])

    keras.utils.set_random_seed(0)
    rows, columns = 4, 5
    prior = PixelCNN((rows, columns), 3, filters=16, kernel_size=3, residual_blocks=2, output_layers=1)
    # Eight random inputs, so that no ReLU is dead on all of them.
    inputs = tf.constant(np.random.default_rng(0).uniform(size=(8, rows, columns, 3)).astype(np.float32))
    for i in range(rows):
        for j in range(columns):
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                output = tf.reduce_sum(prior.logits_of_one_hot(inputs)[:, i, j])
            seen = np.abs(tape.gradient(output, inputs).numpy()).sum(axis=(0, 3)).reshape(-1)
            position = i * columns + j
            assert np.all(seen[position:] == 0), (i, j)
            if position:
                assert seen[position - 1 if j else position - columns] > 0, (i, j)


@pytest.fixture(scope="module")
def fitted():
    """A trained EMA model whose codebook puts every input on code 5, its prior fitted on those codes."""
    keras.utils.set_random_seed(0)
    model = tiny(codebook_update="ema")
    model.compile(jit_compile=False)
    model.fit(X, epochs=1, batch_size=32, verbose=0)
    codebook = np.full((8, 4), 100.0, np.float32)
    codebook[5] = 0.0
    model.codebook.assign(codebook)
    assert np.all(model.encode(X).numpy() == 5)
    with pytest.raises(ValueError, match="not fitted: call model.fit_prior"):
        model.sample(2)
    history = model.fit_prior(np.tile(X, (8, 1, 1, 1)), epochs=1, batch_size=8, learning_rate=1e-2, verbose=0)
    return model, history


def test_a_prior_fitted_on_one_code_samples_it(fitted):
    model, history = fitted
    assert len(history.history["loss"]) == 1
    codes = model.codes(X)
    assert model.prior_nats_per_code(codes) < 1e-2
    assert model.prior_fitted and model.get_config()["prior_fitted"] is True
    codes = model.sample_codes(20, seed=3)
    assert codes.shape == (20, 2, 2) and np.all(codes == 5)
    samples = model.sample(3, seed=0)
    np.testing.assert_allclose(samples, np.broadcast_to(model.decode(codes[:1]).numpy(), samples.shape), rtol=1e-6)


def test_prior_samples_follow_its_probabilities_whatever_the_batch_size():
    """A prior whose logits are a fixed bias log p at every position draws each code with frequency p (a χ² test,
    4 codes, 20,000 grids of 2 positions, at 99.9 %); a random prior draws the same grids in batches of 7 as
    all at once."""
    prior = PixelCNN((1, 2), 4, filters=4, residual_blocks=0, output_layers=0)
    p = np.array([0.1, 0.2, 0.3, 0.4])
    prior.set_weights([np.zeros_like(w) for w in prior.get_weights()[:-1]] + [np.log(p).astype(np.float32)])
    codes = prior.sample(20_000, seed=0, batch_size=5000)
    for position in range(2):
        counts = np.bincount(codes[:, 0, position], minlength=4)
        assert scipy.stats.chisquare(counts, 20_000 * p).pvalue > 1e-3, (position, counts)

    keras.utils.set_random_seed(1)
    random = PixelCNN((3, 3), 8, filters=8)
    np.testing.assert_array_equal(random.sample(20, seed=2, batch_size=7), random.sample(20, seed=2))


def test_keras_round_trip_keeps_the_codebook_and_the_prior(fitted, tmp_path):
    model, _ = fitted
    model.save(tmp_path / "vqvae.keras")
    loaded = keras.models.load_model(tmp_path / "vqvae.keras")
    assert loaded.get_config() == model.get_config()
    for name in ("codebook", "ema_counts", "ema_sums"):
        np.testing.assert_array_equal(getattr(loaded, name).numpy(), getattr(model, name).numpy())
    for a, b in zip(model.prior.get_weights(), loaded.prior.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.sample_codes(5, seed=1), model.sample_codes(5, seed=1))
    np.testing.assert_array_equal(loaded.encode(X).numpy(), model.encode(X).numpy())
    assert len(loaded.trainable_variables) == len(model.trainable_variables)  # the prior is not the step's


@pytest.mark.parametrize(
    "options, message",
    [
        ({"num_codes": 0}, "num_codes must be an int >= 1"),
        ({"codebook_update": "kmeans"}, "codebook_update must be one of"),
        ({"codebook_update": "ema", "ema_decay": 1.0}, r"ema_decay must be a number in \[0, 1\)"),
        ({"restart_unused_codes": True}, 'restart_unused_codes needs codebook_update="ema"'),
        ({"commitment_weight": -1.0}, "commitment_weight must be a number >= 0"),
        ({"input_shape": (64,)}, r"vqvae needs image inputs of shape \(height, width, channels\)"),
        ({"prior_filters": 1}, "filters must be an int >= 2"),
    ],
)
def test_bad_options_are_one_line_value_errors(options, message):
    with pytest.raises(ValueError, match=message):
        tiny(**options)


def test_train_fits_the_prior_after_the_model_and_leaves_the_model_as_it_was(tmp_path):
    """`keras-ae train --model vqvae` trains the PixelCNN on the training split's codes after the VQ-VAE
    (`--prior-epochs`): the VQ-VAE's weights are those of the same seeded run without a prior, and the prior's
    cross-entropy on those codes falls below the untrained prior's; model.keras keeps it fitted."""
    options = {k: v for k, v in TINY.items() if k not in ("input_shape", "latent_dim")}
    common = dict(model="vqvae", latent_dim=4, epochs=1, batch_size=64, seed=0, model_options=options)
    common.update(export=False, verbose=0, image_every=0, jit_compile=False)
    runs = {n: train.run(out=str(tmp_path / str(n)), prior_epochs=n, **common).model for n in (0, 4)}
    with_prior = keras.models.load_model(tmp_path / "4" / "model.keras")
    assert with_prior.prior_fitted and not runs[0].prior_fitted
    autoencoder = [v for v in runs[4].weights if not v.path.startswith("prior")]
    for a, b in zip(autoencoder, [v for v in runs[0].weights if not v.path.startswith("prior")], strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    codes = runs[0].codes(data.load("digits"))

    assert with_prior.prior_nats_per_code(codes) < runs[0].prior_nats_per_code(codes) - 0.05
    assert with_prior.sample(2, seed=0).shape == (2, 8, 8, 1)
