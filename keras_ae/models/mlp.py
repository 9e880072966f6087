"""The nonlinear autoencoder h = σ(Wx + b), x~ = σ(W'h + b'), shallow or deep, with greedy layer-wise pretraining."""

import keras
import numpy as np

from keras_ae import layers, validation
from keras_ae.base import ReconstructingAutoencoder
from keras_ae.layers import DenseTranspose
from keras_ae.registry import register


def _dense_layers(network):
    return [layer for layer in network.layers if isinstance(layer, (keras.layers.Dense, DenseTranspose))]


def _copy_weights(target, source):
    """Copies a shallow model's layer into the deep model's mirror layer; a
    tied (`DenseTranspose`) layer copies only its bias, as its kernel is the
    encoder layer's, copied already."""
    if isinstance(target, DenseTranspose):
        target.bias.assign(source.bias)
    else:
        target.set_weights(source.get_weights())


def _fresh_optimizer(optimizer):
    """A new optimizer like `optimizer` (a name or an instance): an optimizer
    is bound to the variables it first trains."""
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return type(optimizer).from_config(optimizer.get_config())
    return keras.optimizers.get(optimizer)


@register("autoencoder")
class MLPAutoencoder(ReconstructingAutoencoder):
    """A fully connected autoencoder; a deep MLP when `hidden_units` is given.

    Args:
        input_shape: shape of one example (any rank; flattened inside).
        latent_dim: size of the code h.
        hidden_units: sizes of the layers between input and code; the decoder
            mirrors them. Empty for the single-layer autoencoder of the lecture.
        activation: activation of every encoder and decoder hidden layer and of
            the code (the code is linear in a variant with `linear_code`).
        tied_weights: decode with the transposed encoder kernels, x~ =
            σ(Wᵀh + b') (Vincent et al. 2010; Rifai et al. 2011): half the
            weights, and a decoder that cannot rescale to undo what a penalty
            does to the encoder's weights.
        output_activation, reconstruction_loss: see `ReconstructingAutoencoder`.
    """

    # A variant whose code is matched to a Gaussian prior (WAE) or penalized
    # towards 0 (RAE) sets it: its code layer is linear, whatever `activation`.
    linear_code = False

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
        code_activation = None if self.linear_code else activation
        self.encoder = layers.dense_encoder(
            self.feature_shape, self.hidden_units, self.latent_dim, activation, code_activation, "encoder"
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

    def pretrain_layerwise(self, x, epochs=10, batch_size=128, optimizer="adam", verbose=0):
        """Greedy layer-wise pretraining (Bengio et al. 2007): initializes the
        Dense layers one encoder/decoder pair at a time, each trained as a
        shallow autoencoder of this model's own kind (a stacked denoising,
        contractive or sparse autoencoder when the model is one) on the codes
        of the layers below; then fine-tune end to end with `fit`. The
        historical route to training deep autoencoders (Hinton & Salakhutdinov 2006).

        Args:
            x: training inputs, (N, *input_shape).
            epochs, batch_size, optimizer: the training of each shallow autoencoder.

        Returns:
            The final training loss of each shallow autoencoder, bottom layer first.
        """
        encoder_layers = _dense_layers(self.encoder)  # D -> h_1 -> ... -> code
        decoder_layers = _dense_layers(self.decoder)[::-1]  # decoder_layers[i] mirrors encoder_layers[i]
        inputs = np.asarray(x, np.float32).reshape(len(x), -1)
        base_config = self.get_config()
        losses = []
        for depth, (encoder_layer, decoder_layer) in enumerate(zip(encoder_layers, decoder_layers, strict=True)):
            config = {
                **base_config,
                "name": f"{self.name}_layer_{depth}",
                "input_shape": [inputs.shape[1]],
                "latent_dim": encoder_layer.units,
                "hidden_units": [],
            }
            if depth > 0 and "output_activation" in config:
                # Above the input, the shallow model reconstructs hidden codes,
                # which live in the range of the hidden activation.
                config.update(output_activation=self.activation, reconstruction_loss="mse")
            shallow = type(self).from_config(config)
            shallow.compile(optimizer=_fresh_optimizer(optimizer))
            history = shallow.fit(inputs, epochs=epochs, batch_size=batch_size, verbose=verbose)
            losses.append(history.history["loss"][-1])
            _copy_weights(encoder_layer, _dense_layers(shallow.encoder)[0])
            _copy_weights(decoder_layer, _dense_layers(shallow.decoder)[0])
            inputs = shallow.encode(inputs).numpy()
        return losses

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
