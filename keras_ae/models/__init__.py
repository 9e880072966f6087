"""The model zoo; importing this package registers every model."""

from keras_ae.models import contractive, conv, denoising, mlp, pca, sparse, tied, vae  # noqa: F401
