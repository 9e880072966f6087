"""The contractive autoencoder (Rifai et al. 2011): λ ||∂h/∂x||²_F added to the loss."""

import tensorflow as tf

from keras_ae import compat, losses, validation
from keras_ae.models.mlp import MLPAutoencoder
from keras_ae.random_ops import random_uniform
from keras_ae.registry import register

JACOBIANS = ("tape", "analytic", "projection")


@register("contractive")
class ContractiveAutoencoder(MLPAutoencoder):
    """An MLP autoencoder penalized by the Frobenius norm of its encoder's Jacobian.

    Args:
        contractive_weight: λ.
        jacobian: how ||J||²_F is computed:
            "tape": the exact Jacobian by `GradientTape.batch_jacobian`; any
                encoder, cost grows with the code size.
            "analytic": the closed form Σ_j (h_j(1-h_j))² Σ_i W_ij² (Rifai et
                al. 2011, eq. 4); only for one sigmoid dense layer.
            "projection": the unbiased estimate E_v ||Jᵀv||² with Rademacher
                v (E[vvᵀ] = I), one vector-Jacobian product per draw, so its
                cost does not grow with the code size; for deep encoders.
        num_projections: the number k of draws v per example for "projection".
        Other arguments: see `MLPAutoencoder`.
    """

    loss_term_names = ("reconstruction", "contractive")

    def __init__(
        self,
        input_shape,
        latent_dim,
        contractive_weight=0.1,
        jacobian="tape",
        num_projections=1,
        **kwargs,
    ):
        super().__init__(input_shape, latent_dim, **kwargs)
        validation.check_non_negative(contractive_weight=contractive_weight)
        validation.check_choice(jacobian=(jacobian, JACOBIANS))
        if jacobian == "analytic" and (self.hidden_units or self.activation != "sigmoid"):
            raise ValueError(
                'jacobian="analytic" is the closed form for one sigmoid dense encoder layer '
                '(hidden_units=[], activation="sigmoid"); got '
                f"hidden_units={self.hidden_units}, activation={self.activation!r}. "
                'Use jacobian="tape" or "projection" for other encoders.'
            )
        self.contractive_weight = float(contractive_weight)
        self.jacobian = jacobian
        self.num_projections = validation.check_positive_int(num_projections=num_projections)

    def contractive_penalty(self, x, h=None, jacobian=None, training=False):
        """Per-example ||∂h/∂x||²_F, shape (batch,), by the given (or the configured) method."""
        jacobian = jacobian or self.jacobian
        x = tf.cast(x, tf.float32)
        if jacobian == "analytic":
            h = self.encode(x, training=training) if h is None else h
            return losses.sigmoid_jacobian_frobenius(h, self.encoder.layers[-1].kernel)
        if jacobian == "tape":

            def by_tape():
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    h = tf.cast(self.encode(x, training=training), tf.float32)
                jac = tape.batch_jacobian(h, x)  # (batch, latent, *input_shape)
                return tf.reduce_sum(tf.reshape(tf.square(jac), [tf.shape(x)[0], -1]), axis=1)

            return compat.on_examples(x, by_tape, (), tf.float32)  # batch_jacobian fails on an empty batch
        # projection: k copies of the batch, one random v per copy.
        k = self.num_projections
        x_tiled = tf.tile(x, [k] + [1] * len(self.feature_shape))
        with tf.GradientTape() as tape:
            tape.watch(x_tiled)
            h_tiled = tf.cast(self.encode(x_tiled, training=training), tf.float32)
        # Drawn as (k, batch, latent), the copies' layout, with the examples along axis 1.
        draws = tf.stack([k, tf.shape(x)[0], tf.shape(h_tiled)[1]])
        u = tf.reshape(random_uniform(draws, self.seed_generator, batch_axis=1), tf.shape(h_tiled))
        v = tf.where(u < 0.5, -1.0, 1.0)  # Rademacher: E[vvᵀ] = I
        jtv = tape.gradient(h_tiled, x_tiled, output_gradients=v)  # Jᵀv, one per row
        squared = tf.reduce_sum(tf.reshape(tf.square(jtv), [k, tf.shape(x)[0], -1]), axis=2)
        return tf.reduce_mean(squared, axis=0)  # (1/k) Σ_draws ||Jᵀv||²

    @property
    def faster_under_xla_on_cpu(self):
        # XLA runs the tape's batch_jacobian (pfor) far slower than TF on CPU (benchmarks/README.md).
        return self.jacobian != "tape"

    def penalties(self, x, h, training=False):
        penalty = self.contractive_penalty(x, h, training=training)
        return {"contractive": self.contractive_weight * tf.reduce_mean(penalty)}

    def get_config(self):
        return {
            **super().get_config(),
            "contractive_weight": self.contractive_weight,
            "jacobian": self.jacobian,
            "num_projections": self.num_projections,
        }
