"""The two-stochastic-layer VAE (Burda et al. 2016): its bound against the
one-layer VAE it reduces to, and its log-likelihood against numerical
integration over both latents."""

import numpy as np
import pytest
import tensorflow as tf

import keras_ae
from keras_ae.models.hierarchical_vae import HierarchicalVariationalAutoencoder


def _set_standard_normal(network, size):
    """Makes a Gaussian layer's network output N(0, I) whatever its input: zero
    last kernel, loc bias 0 and log σ² bias 0 (scale_activation="exp")."""
    last = network.layers[-1]
    kernel, bias = last.get_weights()
    last.set_weights([np.zeros_like(kernel), np.zeros_like(bias)])
    assert bias.shape == (2 * size,)


def test_with_a_trivial_upper_layer_the_log_weights_are_the_one_layer_vaes():
    """q(z2|z1) = p(z2) = N(0, I) and p(z1|z2) = N(0, I): the upper terms of
    log w cancel and what is left is the one-layer VAE's log w with the same
    encoder and decoder, draw for draw (the same seed gives the same ε for z1)."""
    x = (np.random.default_rng(0).random((8, 12)) < 0.4).astype("float32")
    options = dict(input_shape=(12,), hidden_units=[7], scale_activation="exp", seed=5)
    two = HierarchicalVariationalAutoencoder(latent_dim=2, lower_latent_dim=3, upper_hidden_units=[4], **options)
    one = keras_ae.get_model("vae", latent_dim=3, **options)
    _set_standard_normal(two.upper_encoder, 2)
    _set_standard_normal(two.upper_decoder, 3)
    for source, target in ((two.encoder, one.encoder), (two.decoder, one.decoder)):
        target.set_weights(source.get_weights())
    got = two.posterior_draws(tf.constant(x), 50).log_weights.numpy()
    want = one.posterior_draws(tf.constant(x), 50).log_weights.numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)
    assert np.ptp(want) > 1.0  # the draws differ: the equality is not of constants


def _log_px_by_quadrature(model, x, grid):
    """log p(x) = log ∫∫ p(x|z1) p(z1|z2) p(z2) dz1 dz2 on a grid, for 1-D z1 and z2,
    from the decoder networks alone (not the model's bound code)."""
    step = grid[1] - grid[0]
    logits = model.apply_network(model.decoder, grid[:, None]).numpy()  # (G, features): p(x|z1) per z1
    log_px_z1 = -(np.logaddexp(0, logits)[None] - x[:, None] * logits[None]).sum(-1)  # (N, G)
    loc, scale = (t.numpy()[:, 0] for t in model.gaussian_parameters(model.upper_decoder, grid[:, None]))  # per z2
    log_p_z1_z2 = -0.5 * ((grid[None, :] - loc[:, None]) / scale[:, None]) ** 2 - np.log(
        scale[:, None] * np.sqrt(2 * np.pi)
    )
    log_p_z2 = -0.5 * grid**2 - 0.5 * np.log(2 * np.pi)
    joint = log_px_z1[:, None, :] + log_p_z1_z2[None] + log_p_z2[None, :, None]  # (N, z2, z1)
    top = joint.max(axis=(1, 2), keepdims=True)
    return (top[:, 0, 0] + np.log(np.exp(joint - top).sum(axis=(1, 2)) * step * step)).astype(np.float64)


def test_log_likelihood_equals_numerical_integration_over_both_latents():
    """Random decoders p(z1|z2) and p(x|z1); the encoders give q = N(0, I) at both layers, a proposal whose
    importance weights have a finite variance, so 20,000 draws estimate log p(x) to a few hundredths."""
    rng = np.random.default_rng(1)
    model = HierarchicalVariationalAutoencoder(
        input_shape=(5,),
        latent_dim=1,
        lower_latent_dim=1,
        hidden_units=[6],
        upper_hidden_units=[4],
        scale_activation="exp",
        seed=2,
    )
    for network in (model.decoder, model.upper_decoder):
        network.set_weights([rng.normal(scale=0.5, size=w.shape).astype("float32") for w in network.get_weights()])
    _set_standard_normal(model.encoder, 1)
    _set_standard_normal(model.upper_encoder, 1)
    x = (rng.random((6, 5)) < 0.5).astype("float32")
    exact = _log_px_by_quadrature(model, x, np.linspace(-8, 8, 801))
    estimate = model.log_likelihood(x, num_samples=20000)
    np.testing.assert_allclose(estimate, exact, atol=0.03)
    elbo = model.posterior_draws(tf.constant(x), 4000).log_weights.numpy().mean(axis=0)  # E_q log w ≤ log p(x)
    assert np.all(elbo < exact - 0.01)


def test_trains_and_counts_active_units_per_layer():
    x = (np.random.default_rng(3).random((256, 16)) < 0.3).astype("float32")
    model = keras_ae.get_model(
        "hierarchical_vae",
        input_shape=(16,),
        latent_dim=2,
        lower_latent_dim=4,
        hidden_units=[16],
        upper_hidden_units=[8],
        seed=0,
    )
    model.compile(jit_compile=False)
    history = model.fit(x, epochs=3, batch_size=32, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    # An upper encoder that ignores z1 leaves every unit of z2 inactive, whatever z1 does.
    last = model.upper_encoder.layers[-1]
    last.set_weights([np.zeros_like(w) for w in last.get_weights()])
    assert model.active_units_per_layer(x, threshold=1e-6) == (4, 0)
    assert model.active_units(x, threshold=1e-6) == 4


def test_refuses_an_analytic_kl():
    with pytest.raises(ValueError, match="no closed-form KL"):
        keras_ae.get_model("hierarchical_vae", input_shape=(4,), kl_estimator="analytic")
