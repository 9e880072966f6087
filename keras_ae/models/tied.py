"""The tied-weight autoencoder h = f(Wx + b), x~ = g(Wᵀh + c) (Bengio et al. 2007)."""

import keras
import tensorflow as tf

from keras_ae.base import ReconstructingAutoencoder
from keras_ae.registry import register


@register("tied")
class TiedAutoencoder(ReconstructingAutoencoder):
    """One weight matrix W, used to encode and, transposed, to decode.

    Linear by default (activation=None, output_activation=None), when it spans
    the PCA subspace; give `activation` (f) and `output_activation` (g) for
    the nonlinear tied autoencoder.
    """

    def __init__(
        self,
        input_shape,
        latent_dim,
        activation=None,
        output_activation=None,
        reconstruction_loss="mse",
        **kwargs,
    ):
        super().__init__(
            input_shape,
            latent_dim,
            output_activation=output_activation,
            reconstruction_loss=reconstruction_loss,
            **kwargs,
        )
        self.activation = activation
        # h = f(xW + b): W has shape (features, latent).
        self.encoder = keras.Sequential(
            [
                keras.Input(shape=self.feature_shape),
                keras.layers.Flatten(),
                keras.layers.Dense(self.latent_dim, activation=activation, name="tied_dense"),
            ],
            name="encoder",
        )
        self.decoder_bias = self.add_weight(
            shape=(self.num_features,), initializer="zeros", name="decoder_bias"
        )

    @property
    def kernel(self):
        """The shared weight matrix W, shape (features, latent)."""
        return self.encoder.layers[-1].kernel

    def encode(self, x, training=False):
        return self.encoder(tf.cast(x, self.compute_dtype), training=training)

    def decoder_output(self, h, training=False):
        # x~ = g(hWᵀ + c)
        kernel = tf.cast(self.kernel, h.dtype)
        flat = tf.matmul(h, kernel, transpose_b=True) + tf.cast(self.decoder_bias, h.dtype)
        return tf.reshape(flat, (-1,) + self.feature_shape)

    def get_config(self):
        return {**super().get_config(), "activation": self.activation}
