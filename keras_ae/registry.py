"""The model registry: one key per autoencoder variant."""

import keras

_MODELS = {}


def register(name):
    """Class decorator: registers a model under `name` and for `.keras` loading."""

    def wrap(cls):
        if name in _MODELS:
            raise ValueError(f"A model is already registered as {name!r}.")
        cls = keras.saving.register_keras_serializable(package="keras_ae")(cls)
        cls.registry_name = name
        _MODELS[name] = cls
        return cls

    return wrap


def available_models():
    """The registry keys, sorted."""
    return sorted(_MODELS)


def get_model(name, **config):
    """Builds the model registered as `name` from its configuration."""
    if name not in _MODELS:
        raise ValueError(f"Unknown model {name!r}. Known models: {', '.join(available_models())}.")
    return _MODELS[name](**config)
