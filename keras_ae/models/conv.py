"""The convolutional autoencoder: strided Conv2D encoder, Conv2DTranspose decoder."""

from keras_ae import layers, validation
from keras_ae.base import ReconstructingAutoencoder
from keras_ae.registry import register


@register("conv")
class ConvAutoencoder(ReconstructingAutoencoder):
    """Conv2D encoder and Conv2DTranspose decoder for (H, W, C) inputs.

    Args:
        filters: channels of each stride-2 convolution; the decoder mirrors
            them. "auto" chooses them from the image size
            (`layers.auto_filters`: 64x64 -> 4x4 through (32, 64, 128, 256));
            `get_config` records the chosen list.
        kernel_size: kernel size of every convolution.
        activation: activation of the convolutions.
        code_activation: activation of the code layer (None: linear).
        batch_norm: a BatchNormalization after every convolution of the
            stages, before its activation, as pythae's CelebA networks.
        residual_blocks: residual blocks (He et al. 2016) after each stage's
            stride-2 convolution, at its resolution (`layers.ResidualBlock`).
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
        batch_norm=False,
        residual_blocks=0,
        **kwargs,
    ):
        super().__init__(input_shape, latent_dim, **kwargs)
        self.filters, self.batch_norm, self.residual_blocks = validation.check_conv_network(
            self.feature_shape, filters, batch_norm, residual_blocks, "conv"
        )
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
            batch_norm=self.batch_norm,
            residual_blocks=self.residual_blocks,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "activation": self.activation,
            "code_activation": self.code_activation,
            "batch_norm": self.batch_norm,
            "residual_blocks": self.residual_blocks,
        }
