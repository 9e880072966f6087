"""The convolutional autoencoder: strided Conv2D encoder, Conv2DTranspose decoder."""

from keras_ae import layers, validation
from keras_ae.base import ReconstructingAutoencoder
from keras_ae.registry import register


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

    faster_under_xla_on_cpu = False  # oneDNN's CPU convolutions beat XLA's (benchmarks/README.md)

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
        self.filters = validation.check_conv_filters(self.feature_shape, filters, "conv")
        self.kernel_size = int(kernel_size)
        self.activation = activation
        self.code_activation = code_activation
        self.encoder, self.decoder = layers.conv_networks(
            self.feature_shape,
            self.filters,
            self.kernel_size,
            activation,
            self.latent_dim,
            self.latent_dim,
            code_activation,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "activation": self.activation,
            "code_activation": self.code_activation,
        }
