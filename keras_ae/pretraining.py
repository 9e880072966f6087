"""Greedy layer-wise pretraining of a deep MLP autoencoder (Bengio et al. 2007).

The historical route to training deep autoencoders (Hinton & Salakhutdinov
2006): each encoder layer and its mirror decoder layer are trained as a
shallow autoencoder of the same kind (a stacked denoising, contractive or
sparse autoencoder when the model is one) on the codes of the layers below;
the deep model is then fine-tuned end to end with `fit`.
"""

import keras
import numpy as np

from keras_ae.layers import DenseTranspose
from keras_ae.models.mlp import MLPAutoencoder


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


def pretrain_layerwise(model, x, epochs=10, batch_size=128, optimizer="adam", verbose=0):
    """Initializes `model`'s Dense layers greedily, one encoder/decoder pair at a time.

    Args:
        model: an `MLPAutoencoder` (or subclass) with hidden layers.
        x: training inputs, (N, *input_shape).
        epochs, batch_size, optimizer: the training of each shallow autoencoder.

    Returns:
        The final training loss of each shallow autoencoder, bottom layer first.
    """
    if not isinstance(model, MLPAutoencoder):
        raise ValueError(f"Layer-wise pretraining needs an MLP autoencoder; got {type(model).__name__}.")
    encoder_layers = _dense_layers(model.encoder)  # D -> h_1 -> ... -> code
    decoder_layers = _dense_layers(model.decoder)[::-1]  # decoder_layers[i] mirrors encoder_layers[i]
    inputs = np.asarray(x, np.float32).reshape(len(x), -1)
    base_config = model.get_config()
    losses = []
    for depth, (encoder_layer, decoder_layer) in enumerate(zip(encoder_layers, decoder_layers)):
        config = {
            **base_config,
            "name": f"{model.name}_layer_{depth}",
            "input_shape": [inputs.shape[1]],
            "latent_dim": encoder_layer.units,
            "hidden_units": [],
        }
        if depth > 0 and "output_activation" in config:
            # Above the input, the shallow model reconstructs hidden codes,
            # which live in the range of the hidden activation.
            config.update(output_activation=model.activation, reconstruction_loss="mse")
        shallow = type(model).from_config(config)
        shallow.compile(optimizer=_fresh_optimizer(optimizer))
        history = shallow.fit(inputs, epochs=epochs, batch_size=batch_size, verbose=verbose)
        losses.append(history.history["loss"][-1])
        _copy_weights(encoder_layer, _dense_layers(shallow.encoder)[0])
        _copy_weights(decoder_layer, _dense_layers(shallow.decoder)[0])
        inputs = shallow.encode(inputs).numpy()
    return losses
