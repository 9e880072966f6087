"""The tied-weight autoencoder h = f(Wx + b), x~ = g(Wᵀh + c) (Bengio et al. 2007)."""

from keras_ae.models.mlp import MLPAutoencoder
from keras_ae.registry import register


@register("tied")
class TiedAutoencoder(MLPAutoencoder):
    """One weight matrix W, used to encode and, transposed, to decode.

    Linear by default (activation=None, output_activation=None, squared
    error), when it spans the PCA subspace; give `activation` (f) and
    `output_activation` (g) for the nonlinear tied autoencoder. Any
    `MLPAutoencoder` variant ties its weights with `tied_weights=True`.
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
            activation=activation,
            tied_weights=True,
            output_activation=output_activation,
            reconstruction_loss=reconstruction_loss,
            **kwargs,
        )

    @property
    def kernel(self):
        """The shared weight matrix W of the code layer, shape (inputs, latent)."""
        return self.encoder.layers[-1].kernel

    def get_config(self):
        config = super().get_config()
        del config["tied_weights"]
        return config
