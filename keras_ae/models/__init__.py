"""The model zoo; importing this package registers every model."""

from keras_ae.models import (  # noqa: F401
    contractive,
    conv,
    cvae,
    denoising,
    hierarchical_vae,
    mlp,
    pca,
    rae,
    sparse,
    tied,
    vae,
    vqvae,
    wae,
)
