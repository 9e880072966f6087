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


# Stages of `auto_filters`: stride-2 halvings until the smaller side is at most
# this, as pythae's CelebA networks take 64x64 to 4x4 (Chadebec et al. 2022,
# pythae/models/nn/benchmarks/celeba).
AUTO_SMALLEST_SIDE = 4
AUTO_BASE_FILTERS = 32
AUTO_MAX_FILTERS = 512


def auto_filters(feature_shape):
    """The channels of the stride-2 stages for (H, W, C) images: one stage per
    halving until the smaller side is at most 4 (at least one stage), the
    channels doubling from 32 up to 512. 64x64 gives (32, 64, 128, 256) down to
    4x4, as pythae's CelebA-64 networks; 128x128 one more stage, 512."""
    side, stages = min(feature_shape[:2]), 0
    while side > AUTO_SMALLEST_SIDE or not stages:
        side, stages = math.ceil(side / 2), stages + 1
    return [min(AUTO_BASE_FILTERS * 2**i, AUTO_MAX_FILTERS) for i in range(stages)]


@keras.saving.register_keras_serializable(package="keras_ae")
class ResidualBlock(keras.layers.Layer):
    """y = σ(x + F(x)), F(x) = [BN] W₂ σ([BN] W₁ x) with W₁, W₂ 3x3
    convolutions of `filters` channels: the basic block of He et al. 2016,
    "Deep residual learning for image recognition" (fig. 2), at its input's
    resolution. Its input must have `filters` channels: the skip is the identity.

    Args:
        filters: channels of the input, the convolutions and the output.
        activation: σ.
        batch_norm: a BatchNormalization after each convolution, before σ
            and the sum (the convolutions then have no bias).
    """

    def __init__(self, filters, activation="relu", batch_norm=False, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.activation = keras.activations.get(activation)
        self.batch_norm = bool(batch_norm)
        self.convs = [
            keras.layers.Conv2D(self.filters, 3, padding="same", use_bias=not self.batch_norm) for _ in range(2)
        ]
        self.norms = [keras.layers.BatchNormalization() for _ in self.convs] if self.batch_norm else []

    def build(self, input_shape):
        if input_shape[-1] != self.filters:
            raise ValueError(
                f"ResidualBlock of {self.filters} filters needs inputs of {self.filters} channels; got {input_shape}."
            )
        for conv in self.convs:
            conv.build(input_shape)
        for norm in self.norms:
            norm.build(input_shape)

    def call(self, x, training=None):
        h = x
        for i, conv in enumerate(self.convs):
            h = conv(h)
            if self.batch_norm:
                h = self.norms[i](h, training=training)
            if i == 0:
                h = self.activation(h)
        return self.activation(x + h)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "activation": keras.activations.serialize(self.activation),
            "batch_norm": self.batch_norm,
        }


def conv_stage(conv, filters, kernel_size, activation, batch_norm=False, residual_blocks=0):
    """The layers of one stride-2 stage: `conv` (Conv2D down or Conv2DTranspose
    up) and its activation, with `batch_norm` a BatchNormalization between
    them (as pythae's CelebA networks); then `residual_blocks` `ResidualBlock`s
    at the stage's resolution. Without either, the single conv layer of the
    original networks, so their seeded weights are unchanged."""
    if batch_norm:
        stage = [
            conv(filters, kernel_size, strides=2, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.Activation(activation),
        ]
    else:
        stage = [conv(filters, kernel_size, strides=2, padding="same", activation=activation)]
    return stage + [ResidualBlock(filters, activation, batch_norm) for _ in range(residual_blocks)]


def conv_encoder(
    input_shape,
    filters,
    kernel_size,
    activation,
    latent_dim,
    code_activation,
    name,
    batch_norm=False,
    residual_blocks=0,
):
    """(batch, H, W, C) -> a stride-2 Conv2D stage per entry of `filters` (`conv_stage`)
    -> flatten -> Dense(latent_dim)."""
    stack = [keras.Input(shape=tuple(input_shape))]
    for f in filters:
        stack += conv_stage(keras.layers.Conv2D, f, kernel_size, activation, batch_norm, residual_blocks)
    stack += [keras.layers.Flatten(), keras.layers.Dense(latent_dim, activation=code_activation)]
    return keras.Sequential(stack, name=name)


def conv_decoder(latent_dim, filters, kernel_size, activation, output_shape, name, batch_norm=False, residual_blocks=0):
    """(batch, latent) -> Dense -> reshape -> a stride-2 Conv2DTranspose stage per
    filter, reversed (`conv_stage`) -> linear Conv2D to C channels -> crop to (H, W, C)."""
    height, width, channels = output_shape
    factor = 2 ** len(filters)
    # The encoder's "same" padding rounds up, so the decoder starts from ceil(H/2^L).
    small_h, small_w = math.ceil(height / factor), math.ceil(width / factor)
    stack = [
        keras.Input(shape=(latent_dim,)),
        keras.layers.Dense(small_h * small_w * filters[-1], activation=activation),
        keras.layers.Reshape((small_h, small_w, filters[-1])),
    ]
    for f in reversed(filters):
        stack += conv_stage(keras.layers.Conv2DTranspose, f, kernel_size, activation, batch_norm, residual_blocks)
    stack.append(keras.layers.Conv2D(channels, kernel_size, padding="same"))
    crop_h, crop_w = small_h * factor - height, small_w * factor - width
    if crop_h or crop_w:
        stack.append(keras.layers.Cropping2D(((0, crop_h), (0, crop_w))))
    return keras.Sequential(stack, name=name)


def conv_networks(
    feature_shape,
    filters,
    kernel_size,
    activation,
    latent_dim,
    code_size,
    code_activation=None,
    batch_norm=False,
    residual_blocks=0,
):
    """(encoder, decoder) of a convolutional autoencoder: x -> `code_size`
    outputs (the code, or a posterior's parameters), and z (latent_dim) -> the
    reconstruction's pre-activation, mirroring the encoder. `batch_norm` and
    `residual_blocks` shape every stage of both (`conv_stage`)."""
    stages = {"batch_norm": batch_norm, "residual_blocks": residual_blocks}
    encoder = conv_encoder(
        feature_shape, filters, kernel_size, activation, code_size, code_activation, "encoder", **stages
    )
    decoder = conv_decoder(latent_dim, filters, kernel_size, activation, feature_shape, "decoder", **stages)
    return encoder, decoder


def conv_grid_networks(feature_shape, filters, kernel_size, activation, channels, batch_norm=False, residual_blocks=0):
    """(encoder, decoder) of an autoencoder whose code is a grid of vectors (a VQ-VAE's), as
    van den Oord et al. (2017) build them: x (batch, H, W, C) -> a stride-2 Conv2D stage per
    entry of `filters` (`conv_stage`) -> a linear 1x1 Conv2D to `channels`: (batch, h, w,
    channels), h = ceil(H / 2^L); and the grid -> a Conv2DTranspose stage per filter, reversed
    -> a linear Conv2D to C channels, cropped to (H, W): the reconstruction's pre-activation."""
    height, width, depth = feature_shape
    stages = {"batch_norm": batch_norm, "residual_blocks": residual_blocks}
    encoder = [keras.Input(shape=tuple(feature_shape))]
    for f in filters:
        encoder += conv_stage(keras.layers.Conv2D, f, kernel_size, activation, **stages)
    encoder.append(keras.layers.Conv2D(channels, 1))
    factor = 2 ** len(filters)
    small_h, small_w = math.ceil(height / factor), math.ceil(width / factor)
    decoder = [keras.Input(shape=(small_h, small_w, channels))]
    for f in reversed(filters):
        decoder += conv_stage(keras.layers.Conv2DTranspose, f, kernel_size, activation, **stages)
    decoder.append(keras.layers.Conv2D(depth, kernel_size, padding="same"))
    crop_h, crop_w = small_h * factor - height, small_w * factor - width
    if crop_h or crop_w:
        decoder.append(keras.layers.Cropping2D(((0, crop_h), (0, crop_w))))
    return keras.Sequential(encoder, name="encoder"), keras.Sequential(decoder, name="decoder")
