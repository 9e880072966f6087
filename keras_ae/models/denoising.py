"""The denoising autoencoder (Vincent et al. 2010): reconstruct x from a corrupted x̃."""

import tensorflow as tf

from keras_ae import validation
from keras_ae.models.mlp import MLPAutoencoder
from keras_ae.random_ops import random_normal, random_uniform
from keras_ae.registry import register


def gaussian_noise(x, stddev, seed):
    """x̃ = x + ε, ε ~ N(0, σ²) (Vincent et al. 2010, §4.2 "additive isotropic Gaussian")."""
    return x + stddev * random_normal(tf.shape(x), seed, dtype=x.dtype)


def masking_noise(x, fraction, seed):
    """x̃_i = 0 for a random `fraction` of the inputs ("masking noise", §4.2)."""
    keep = random_uniform(tf.shape(x), seed, dtype=x.dtype) >= fraction
    return tf.where(keep, x, tf.zeros_like(x))


def salt_and_pepper_noise(x, fraction, low, high, seed):
    """A random `fraction` of the inputs set to `low` or `high`, each with
    probability 1/2 ("salt-and-pepper noise", §4.2)."""
    u = random_uniform(tf.shape(x), seed, dtype=x.dtype)
    # u < fraction picks the corrupted inputs; u < fraction / 2 of them go low.
    corrupted_value = tf.where(u < fraction / 2.0, tf.cast(low, x.dtype), tf.cast(high, x.dtype))
    return tf.where(u < fraction, corrupted_value, x)


CORRUPTIONS = ("gaussian", "masking", "salt_and_pepper")


@register("denoising")
class DenoisingAutoencoder(MLPAutoencoder):
    """An MLP autoencoder trained to reconstruct the clean x from x̃ ~ q(x̃|x).

    The corruption is applied in training steps only: `evaluate`, `predict`
    and `model(x)` see the clean input.

    Args:
        corruption: "gaussian", "masking" or "salt_and_pepper".
        noise_level: σ for "gaussian"; the corrupted fraction, in [0, 1], for
            the other two.
        value_range: (low, high), the values salt-and-pepper noise writes.
        Other arguments: see `MLPAutoencoder`.
    """

    def __init__(
        self,
        input_shape,
        latent_dim,
        corruption="masking",
        noise_level=0.25,
        value_range=(0.0, 1.0),
        **kwargs,
    ):
        super().__init__(input_shape, latent_dim, **kwargs)
        validation.check_choice(corruption=(corruption, CORRUPTIONS))
        validation.check_non_negative(noise_level=noise_level)
        if corruption != "gaussian" and noise_level > 1:
            raise ValueError(f"noise_level is a fraction for {corruption!r} and must be <= 1; got {noise_level}.")
        low, high = (float(v) for v in value_range)
        if not low < high:
            raise ValueError(f"value_range must be (low, high) with low < high; got {value_range!r}.")
        self.corruption = corruption
        self.noise_level = float(noise_level)
        self.value_range = (low, high)

    def corrupt(self, x):
        seed = self.seed_generator
        if self.corruption == "gaussian":
            return gaussian_noise(x, self.noise_level, seed)
        if self.corruption == "masking":
            return masking_noise(x, self.noise_level, seed)
        return salt_and_pepper_noise(x, self.noise_level, *self.value_range, seed)

    def get_config(self):
        return {
            **super().get_config(),
            "corruption": self.corruption,
            "noise_level": self.noise_level,
            "value_range": list(self.value_range),
        }
