"""Sub-network builders shared by the models."""

import keras


def dense_encoder(input_shape, hidden_units, latent_dim, activation, code_activation, name):
    """x (batch, *input_shape) -> flatten -> Dense(hidden_units...) -> Dense(latent_dim)."""
    layers = [keras.Input(shape=tuple(input_shape)), keras.layers.Flatten()]
    layers += [keras.layers.Dense(units, activation=activation) for units in hidden_units]
    layers.append(keras.layers.Dense(latent_dim, activation=code_activation))
    return keras.Sequential(layers, name=name)


def dense_decoder(latent_dim, hidden_units, output_shape, activation, name):
    """h (batch, latent_dim) -> Dense(reversed hidden_units...) -> Dense(prod(output_shape)) -> reshape.

    The last layer is linear: the caller applies the output activation (or
    reads it as logits).
    """
    num_outputs = 1
    for d in output_shape:
        num_outputs *= d
    layers = [keras.Input(shape=(latent_dim,))]
    layers += [keras.layers.Dense(units, activation=activation) for units in reversed(hidden_units)]
    layers += [keras.layers.Dense(num_outputs), keras.layers.Reshape(tuple(output_shape))]
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
