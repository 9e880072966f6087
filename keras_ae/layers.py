"""Sub-network builders shared by the models."""

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
        return {**super().get_config(), "units": self.units,
                "activation": keras.activations.serialize(self.activation), "tied_to": self.dense.name}


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


def check_hidden_units(hidden_units):
    """Returns hidden_units as a list of positive ints, or raises."""
    try:
        units = [int(u) for u in hidden_units]
    except (TypeError, ValueError):
        raise ValueError(f"hidden_units must be a list of positive ints; got {hidden_units!r}.") from None
    if any(u < 1 or u != float(v) for u, v in zip(units, hidden_units)):
        raise ValueError(f"hidden_units must be a list of positive ints; got {hidden_units!r}.")
    return units


def check_non_negative(**values):
    """Raises for any negative weight, e.g. check_non_negative(weight=λ)."""
    for name, value in values.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0 or value != value:
            raise ValueError(f"{name} must be a number >= 0; got {value!r}.")


def check_choice(**values_and_choices):
    """Raises unless each value is one of its choices, e.g. check_choice(penalty=(penalty, PENALTIES))."""
    for name, (value, choices) in values_and_choices.items():
        if value not in choices:
            raise ValueError(f"{name} must be one of {choices}; got {value!r}.")


def check_conv_filters(input_shape, filters, model):
    """Checks a conv model's (H, W, C) input and filters; returns the filters as a list."""
    if len(input_shape) != 3:
        raise ValueError(
            f"{model} needs image inputs of shape (height, width, channels); got input_shape={tuple(input_shape)}."
        )
    filters = check_hidden_units(filters)
    if not filters:
        raise ValueError("filters must name at least one convolution.")
    return filters
