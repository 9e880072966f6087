"""The VAE with two stochastic layers (Burda et al. 2016, §5 and Table 1), on the VAE hooks.

q(z1, z2 | x) = q(z1|x) q(z2|z1) and p(x, z1, z2) = p(x|z1) p(z1|z2) p(z2), with
p(z2) = N(0, I), every conditional of a latent a diagonal Gaussian and p(x|z1)
the configured likelihood, each given by an MLP: in the paper, q: x-200-200→z1,
z1-100-100→z2 and p mirrored, z2-100-100→z1, z1-200-200→x, tanh, latents 100 and 50.

Only `posterior_draws` differs from the one-layer VAE: a draw is (z1, z2) ~ q and
    log w = log p(x|z1) + log p(z1|z2) + log p(z2) − log q(z1|x) − log q(z2|z1),
so the ELBO, the IWAE bound and `log_likelihood` come from the base. The KL of
q(z1, z2|x) to p(z1, z2) has no closed form: it is the Monte Carlo mean of
log q − log p over the draws.

The model's code is the top latent z2 (`latent_dim`): `encode(x)` is
E[z2 | z1 = E[z1|x]], `decode(z2)` the mean of p(x | z1 = E[z1|z2]), and
`sample`, the manifold and the export work on z2 ~ N(0, I) as for one layer.
"""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from keras_ae import layers, validation
from keras_ae.base import evaluation_batches
from keras_ae.models.vae import PosteriorDraws, VariationalAutoencoder
from keras_ae.registry import register

tfd = tfp.distributions


@register("hierarchical_vae")
class HierarchicalVariationalAutoencoder(VariationalAutoencoder):
    """A VAE with latents z1 (`lower_latent_dim`) below z2 (`latent_dim`).

    Args:
        latent_dim: the size of the top latent z2, whose prior is N(0, I).
        lower_latent_dim: the size of z1, between x and z2.
        hidden_units: the hidden layers of q(z1|x); p(x|z1) mirrors them.
        upper_hidden_units: the hidden layers of q(z2|z1); p(z1|z2) mirrors them.
        activation: the hidden layers' activation.
        kl_estimator: "monte_carlo", the only one: the KL has no closed form.
        Other arguments: see `VariationalAutoencoder`.
    """

    def __init__(
        self,
        input_shape,
        latent_dim=50,
        lower_latent_dim=100,
        hidden_units=(200, 200),
        upper_hidden_units=(100, 100),
        activation="tanh",
        kl_estimator="monte_carlo",
        **kwargs,
    ):
        if kl_estimator != "monte_carlo":
            raise ValueError(
                f'A hierarchical VAE has no closed-form KL: kl_estimator must be "monte_carlo"; got {kl_estimator!r}.'
            )
        super().__init__(input_shape, latent_dim, kl_estimator=kl_estimator, **kwargs)
        self.lower_latent_dim = validation.check_positive_int(lower_latent_dim=lower_latent_dim)
        self.hidden_units = validation.check_hidden_units(hidden_units)
        self.upper_hidden_units = validation.check_hidden_units(upper_hidden_units)
        self.activation = activation
        lower, upper = self.lower_latent_dim, self.latent_dim
        # q(z1|x): x -> hidden -> [μ1, raw σ1];  q(z2|z1): z1 -> upper hidden -> [μ2, raw σ2]
        self.encoder = layers.dense_encoder(
            self.feature_shape, self.hidden_units, 2 * lower, activation, None, "encoder"
        )
        self.upper_encoder = layers.dense_encoder(
            (lower,), self.upper_hidden_units, 2 * upper, activation, None, "upper_encoder"
        )
        # p(z1|z2): z2 -> upper hidden, mirrored -> [μ, raw σ] of z1;  p(x|z1): z1 -> hidden, mirrored -> x
        self.upper_decoder = layers.dense_encoder(
            (upper,), self.upper_hidden_units[::-1], 2 * lower, activation, None, "upper_decoder"
        )
        self.decoder = layers.dense_decoder(lower, self.hidden_units, self.feature_shape, activation, "decoder")

    def posterior_parameters(self, x, training=False):
        """(loc, scale) of q(z2 | z1 = E[z1|x]), each (batch, latent_dim): the top layer's code."""
        lower_loc, _ = self.gaussian_parameters(self.encoder, x, training=training)
        return self.gaussian_parameters(self.upper_encoder, lower_loc, training=training)

    def decode(self, z, training=False):
        """The mean of p(x | z1 = E[z1|z2]) for the top latent z2, (batch, *input_shape)."""
        lower_loc, _ = self.gaussian_parameters(self.upper_decoder, z, training=training)
        return super().decode(lower_loc, training=training)

    def posterior_draws(self, x, num_samples, training=False, at_mean=False):
        """`num_samples` draws (z1, z2) ~ q(z1|x) q(z2|z1) per example; `z` is z2.
        `at_mean`: z1 = E[z1|x] and z2 = E[z2|z1]."""
        loc1, scale1 = self.gaussian_parameters(self.encoder, x, training=training)
        q1 = tfd.MultivariateNormalDiag(loc=loc1, scale_diag=scale1)
        z1 = loc1 + scale1 * self.epsilon(tf.concat([[num_samples], tf.shape(loc1)], axis=0), at_mean)
        loc2, scale2 = self.gaussian_parameters(self.upper_encoder, z1, training=training)  # (samples, batch, ·)
        q2 = tfd.MultivariateNormalDiag(loc=loc2, scale_diag=scale2)
        z2 = loc2 + scale2 * self.epsilon(tf.shape(loc2), at_mean)
        prior_loc1, prior_scale1 = self.gaussian_parameters(self.upper_decoder, z2, training=training)
        p1 = tfd.MultivariateNormalDiag(loc=prior_loc1, scale_diag=prior_scale1)
        log_px_z = self.log_prob_x_given_z(self.decoder_parameters(z1, training=training), x)
        log_q = q1.log_prob(z1) + q2.log_prob(z2)  # log q(z1|x) + log q(z2|z1)
        log_p = p1.log_prob(z1) + self.prior().log_prob(z2)  # log p(z1|z2) + log p(z2)
        return PosteriorDraws(z2, log_px_z, log_q, log_p)

    def active_units_per_layer(self, x, threshold=0.01, num_samples=100, batch_size=256):
        """(active units of z1, of z2): Cov_x(E_q[z_j|x]) > threshold (Burda et al.
        2016, §5.2), with E_q[z2|x] = E_{q(z1|x)} E[z2|z1] averaged over
        `num_samples` draws of z1."""

        @tf.function
        def layer_means(xb):
            loc1, scale1 = self.gaussian_parameters(self.encoder, xb)
            z1 = loc1 + scale1 * tf.random.normal(tf.concat([[num_samples], tf.shape(loc1)], axis=0), seed=0)
            loc2, _ = self.gaussian_parameters(self.upper_encoder, z1)
            return loc1, tf.reduce_mean(loc2, axis=0)

        means = [layer_means(tf.cast(xb, tf.float32)) for xb in evaluation_batches(x, batch_size)]
        return tuple(
            int(np.sum(np.concatenate([m[i].numpy() for m in means]).var(axis=0) > threshold)) for i in range(2)
        )

    def active_units(self, x, threshold=0.01, batch_size=256):
        """Active units of both layers together (`active_units_per_layer`)."""
        return sum(self.active_units_per_layer(x, threshold, batch_size=batch_size))

    def get_config(self):
        return {
            **super().get_config(),
            "lower_latent_dim": self.lower_latent_dim,
            "hidden_units": self.hidden_units,
            "upper_hidden_units": self.upper_hidden_units,
            "activation": self.activation,
        }
