"""Layers and sub-network builders shared by the models."""

import math

import keras
from keras import ops


class DenseTranspose(keras.layers.Layer):
    """y = activation(h Wᵀ + c): decodes with the transpose of another Dense
    layer's kernel W (tied weights, as in Vincent et al. 2010 and Rifai et al.
    2011). It owns only its bias c; W stays the encoder layer's variable, so
    training and saving see one matrix.

    Args:
        dense: the built `keras.layers.Dense` whose kernel W (shape
            (inputs, units)) is shared; this layer maps units -> inputs.
        activation: activation of the output.
    """

    def __init__(self, dense, activation=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(dense, keras.layers.Dense) or not dense.built:
            raise ValueError(f"DenseTranspose needs a built keras.layers.Dense; got {dense!r}.")
        self.dense = dense
        self.activation = keras.activations.get(activation)
        self.units = int(dense.kernel.shape[0])

    def build(self, input_shape):
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

    def call(self, h):
        kernel = ops.cast(self.dense.kernel, h.dtype)
        return self.activation(ops.matmul(h, ops.transpose(kernel)) + ops.cast(self.bias, h.dtype))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        # The tie is made by the model that owns both layers (it passes
        # `dense` when it rebuilds itself from its own config); a layer
        # reference is not serializable.
        return {
            **super().get_config(),
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "tied_to": self.dense.name,
        }


def dense_encoder(input_shape, hidden_units, latent_dim, activation, code_activation, name):
    """x (batch, *input_shape) -> flatten -> Dense(hidden_units...) -> Dense(latent_dim)."""
    layers = [keras.Input(shape=tuple(input_shape)), keras.layers.Flatten()]
    layers += [keras.layers.Dense(units, activation=activation) for units in hidden_units]
    layers.append(keras.layers.Dense(latent_dim, activation=code_activation))
    return keras.Sequential(layers, name=name)


def dense_decoder(latent_dim, hidden_units, output_shape, activation, name, tied_to=None):
    """h (batch, latent_dim) -> Dense(reversed hidden_units...) -> Dense(prod(output_shape)) -> reshape.

    The last layer is linear: the caller applies the output activation (or
    reads it as logits). With `tied_to`, an encoder from `dense_encoder`, each
    layer is the `DenseTranspose` of its mirror encoder layer (tied weights).
    """
    num_outputs = 1
    for d in output_shape:
        num_outputs *= d
    layers = [keras.Input(shape=(latent_dim,))]
    if tied_to is None:
        layers += [keras.layers.Dense(units, activation=activation) for units in reversed(hidden_units)]
        layers.append(keras.layers.Dense(num_outputs))
    else:
        mirrors = [layer for layer in tied_to.layers if isinstance(layer, keras.layers.Dense)][::-1]
        layers += [DenseTranspose(dense, activation=activation) for dense in mirrors[:-1]]
        layers.append(DenseTranspose(mirrors[-1]))
    layers.append(keras.layers.Reshape(tuple(output_shape)))
    return keras.Sequential(layers, name=name)


def conv_encoder(input_shape, filters, kernel_size, activation, latent_dim, code_activation, name):
    """(batch, H, W, C) -> stride-2 Conv2D per entry of `filters` -> flatten -> Dense(latent_dim)."""
    stack = [keras.Input(shape=tuple(input_shape))]
    stack += [keras.layers.Conv2D(f, kernel_size, strides=2, padding="same", activation=activation) for f in filters]
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


def conv_networks(feature_shape, filters, kernel_size, activation, latent_dim, code_size, code_activation=None):
    """(encoder, decoder) of a convolutional autoencoder: x -> `code_size`
    outputs (the code, or a posterior's parameters), and z (latent_dim) -> the
    reconstruction's pre-activation, mirroring the encoder."""
    encoder = conv_encoder(feature_shape, filters, kernel_size, activation, code_size, code_activation, "encoder")
    decoder = conv_decoder(latent_dim, filters, kernel_size, activation, feature_shape, "decoder")
    return encoder, decoder
