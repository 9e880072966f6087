"""The convolutional autoencoder: strided Conv2D encoder, Conv2DTranspose decoder."""

import math

import keras
import tensorflow as tf

from keras_ae import layers
from keras_ae.base import ReconstructingAutoencoder
from keras_ae.registry import register


def conv_encoder(input_shape, filters, kernel_size, activation, latent_dim, code_activation, name):
    """(batch, H, W, C) -> stride-2 Conv2D per entry of `filters` -> flatten -> Dense(latent_dim)."""
    stack = [keras.Input(shape=tuple(input_shape))]
    stack += [
        keras.layers.Conv2D(f, kernel_size, strides=2, padding="same", activation=activation)
        for f in filters
    ]
    stack += [keras.layers.Flatten(), keras.layers.Dense(latent_dim, activation=code_activation)]
    return keras.Sequential(stack, name=name)


def conv_decoder(latent_dim, filters, kernel_size, activation, output_shape, name):
    """(batch, latent) -> Dense -> reshape -> stride-2 Conv2DTranspose per filter
    (reversed) -> linear Conv2D to C channels -> crop to (H, W, C)."""
    height, width, channels = output_shape
    factor = 2 ** len(filters)
    # The encoder's "same" padding rounds up, so the decoder starts from ceil(H/2^L).
    small_h, small_w = math.ceil(height / factor), math.ceil(width / factor)
    stack = [
        keras.Input(shape=(latent_dim,)),
        keras.layers.Dense(small_h * small_w * filters[-1], activation=activation),
        keras.layers.Reshape((small_h, small_w, filters[-1])),
    ]
    stack += [
        keras.layers.Conv2DTranspose(f, kernel_size, strides=2, padding="same", activation=activation)
        for f in reversed(filters)
    ]
    stack.append(keras.layers.Conv2D(channels, kernel_size, padding="same"))
    crop_h, crop_w = small_h * factor - height, small_w * factor - width
    if crop_h or crop_w:
        stack.append(keras.layers.Cropping2D(((0, crop_h), (0, crop_w))))
    return keras.Sequential(stack, name=name)



@register("conv")
class ConvAutoencoder(ReconstructingAutoencoder):
    """Conv2D encoder and Conv2DTranspose decoder for (H, W, C) inputs.

    Args:
        filters: channels of each stride-2 convolution; the decoder mirrors them.
        kernel_size: kernel size of every convolution.
        activation: activation of the convolutions.
        code_activation: activation of the code layer (None: linear).
        output_activation, reconstruction_loss: see `ReconstructingAutoencoder`.
    """

    def __init__(
        self,
        input_shape,
        latent_dim,
        filters=(32, 64),
        kernel_size=3,
        activation="relu",
        code_activation=None,
        **kwargs,
    ):
        super().__init__(input_shape, latent_dim, **kwargs)
        self.filters = layers.check_conv_filters(self.feature_shape, filters, "conv")
        self.kernel_size = int(kernel_size)
        self.activation = activation
        self.code_activation = code_activation
        self.encoder = conv_encoder(
            self.feature_shape, self.filters, self.kernel_size, activation,
            self.latent_dim, code_activation, "encoder",
        )
        self.decoder = conv_decoder(
            self.latent_dim, self.filters, self.kernel_size, activation, self.feature_shape, "decoder"
        )

    def encode(self, x, training=False):
        return self.encoder(tf.cast(x, self.compute_dtype), training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "activation": self.activation,
            "code_activation": self.code_activation,
        }
