"""keras-ae: the autoencoder family as Keras models.

import keras_ae
model = keras_ae.get_model("denoising", input_shape=(64,), latent_dim=32)
model.compile()
model.fit(x, epochs=10)
"""

__version__ = "0.4.0"  # the one place; pyproject.toml reads it without importing the package

from keras_ae import models  # noqa: F401  (registers the zoo)
from keras_ae.base import Autoencoder, ReconstructingAutoencoder
from keras_ae.presets import from_preset
from keras_ae.registry import available_models, get_model

__all__ = ["Autoencoder", "ReconstructingAutoencoder", "available_models", "from_preset", "get_model"]
