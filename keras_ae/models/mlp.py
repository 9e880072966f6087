"""The nonlinear autoencoder h = σ(Wx + b), x~ = σ(W'h + b'), shallow or deep."""

from keras_ae import layers, validation
from keras_ae.base import ReconstructingAutoencoder
from keras_ae.registry import register


@register("autoencoder")
class MLPAutoencoder(ReconstructingAutoencoder):
    """A fully connected autoencoder; a deep MLP when `hidden_units` is given.

    Args:
        input_shape: shape of one example (any rank; flattened inside).
        latent_dim: size of the code h.
        hidden_units: sizes of the layers between input and code; the decoder
            mirrors them. Empty for the single-layer autoencoder of the lecture.
        activation: activation of every encoder and decoder hidden layer and of
            the code.
        tied_weights: decode with the transposed encoder kernels, x~ =
            σ(Wᵀh + b') (Vincent et al. 2010; Rifai et al. 2011): half the
            weights, and a decoder that cannot rescale to undo what a penalty
            does to the encoder's weights.
        output_activation, reconstruction_loss: see `ReconstructingAutoencoder`.
    """

    def __init__(
        self,
        input_shape,
        latent_dim,
        hidden_units=(),
        activation="sigmoid",
        tied_weights=False,
        output_activation="sigmoid",
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
        self.hidden_units = validation.check_hidden_units(hidden_units)
        self.activation = activation
        self.tied_weights = bool(tied_weights)
        # h = act(W_L ... act(W_1 x + b_1) ... + b_L)
        self.encoder = layers.dense_encoder(
            self.feature_shape, self.hidden_units, self.latent_dim, activation, activation, "encoder"
        )
        # x~ = out_act(W'_1 act(... W'_L h ...) + b'_1), W'_l = W_lᵀ when tied
        self.decoder = layers.dense_decoder(
            self.latent_dim,
            self.hidden_units,
            self.feature_shape,
            activation,
            "decoder",
            tied_to=self.encoder if self.tied_weights else None,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_units": self.hidden_units,
            "activation": self.activation,
            "tied_weights": self.tied_weights,
        }


@register("linear")
class LinearAutoencoder(MLPAutoencoder):
    """The untied linear autoencoder h = Ux + b, x~ = Wh + c.

    Trained with the squared error it spans the principal subspace of the
    data (Baldi & Hornik 1989), without making U and W orthonormal.
    """

    def __init__(self, input_shape, latent_dim, hidden_units=(), **kwargs):
        super().__init__(
            input_shape,
            latent_dim,
            hidden_units=hidden_units,
            activation=None,
            tied_weights=False,
            output_activation=None,
            reconstruction_loss="mse",
            **kwargs,
        )

    def get_config(self):
        config = super().get_config()
        for fixed in ("activation", "tied_weights", "output_activation", "reconstruction_loss"):
            del config[fixed]
        return config
