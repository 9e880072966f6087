"""PCA as an autoencoder: the closed-form reference for the linear models."""

import keras
import numpy as np
import tensorflow as tf

from keras_ae import images, losses
from keras_ae.base import Autoencoder
from keras_ae.registry import register


@register("pca")
class PCA(Autoencoder):
    """Principal component analysis with the autoencoder interface.

    h = V(x - μ), x~ = Vᵀh + μ, V the top `latent_dim` eigenvectors of the
    data covariance (the right singular vectors of the centred data), as
    rows. `fit` computes them in closed form in one pass over the data; there
    is no gradient step. `evaluate` reports the residual squared error.
    """

    def __init__(self, input_shape, latent_dim, **kwargs):
        super().__init__(input_shape, latent_dim, **kwargs)
        if self.latent_dim > self.num_features:
            raise ValueError(
                f"PCA keeps at most {self.num_features} components for input_shape {self.feature_shape}; "
                f"got latent_dim={self.latent_dim}."
            )
        self.mean = self.add_weight(shape=(self.num_features,), initializer="zeros", trainable=False, name="mean")
        self.components = self.add_weight(
            shape=(self.latent_dim, self.num_features), initializer="zeros", trainable=False, name="components"
        )
        self.explained_variance = self.add_weight(
            shape=(self.latent_dim,), initializer="zeros", trainable=False, name="explained_variance"
        )

    def encode(self, x, training=False):
        flat = tf.reshape(tf.cast(x, tf.float32), (-1, self.num_features))
        return tf.matmul(flat - self.mean, self.components, transpose_b=True)  # h = V(x - μ)

    def decode(self, h, training=False):
        flat = tf.matmul(h, self.components) + self.mean  # x~ = Vᵀh + μ
        return tf.reshape(flat, (-1,) + self.feature_shape)

    def filter_images(self):
        """The principal directions, the rows of V, as images (eigen-images)."""
        components = keras.ops.convert_to_numpy(self.components)[: images.MAX_FILTERS]
        return components.reshape((-1, *images.display_shape(self.feature_shape)))

    def loss_terms(self, x, training=False):
        return {"reconstruction": tf.reduce_mean(losses.squared_error(x, self.call(x)))}

    def fit(self, x=None, y=None, batch_size=None, verbose="auto", **kwargs):
        """Fits μ and V in one pass: accumulates Σx and Σxxᵀ in float64 over the
        batches, then takes the eigendecomposition of the covariance.

        Keras training arguments such as `epochs` have no effect.
        Returns a `keras.callbacks.History` holding the residual error.
        """
        x = self._checked(x, y)
        count, total, outer = 0, np.zeros(self.num_features), np.zeros((self.num_features,) * 2)
        batches = x if isinstance(x, tf.data.Dataset) else [x]
        with self._input_errors_as_value_errors():
            for batch in batches:
                flat = np.asarray(batch, np.float64).reshape(-1, self.num_features)
                count += len(flat)
                total += flat.sum(axis=0)
                outer += flat.T @ flat
        if count < 2:
            raise ValueError("PCA needs at least 2 examples.")
        mean = total / count
        covariance = outer / count - np.outer(mean, mean)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)  # ascending
        order = np.argsort(eigenvalues)[::-1]
        eigenvalues, eigenvectors = np.clip(eigenvalues[order], 0, None), eigenvectors[:, order]
        self.mean.assign(mean.astype(np.float32))
        self.components.assign(eigenvectors[:, : self.latent_dim].T.astype(np.float32))
        self.explained_variance.assign(eigenvalues[: self.latent_dim].astype(np.float32))
        # The per-example residual ||x - x~||² averages to the discarded variance.
        residual = float(eigenvalues[self.latent_dim :].sum())
        if not self.compiled:
            self.compile()
        history = keras.callbacks.History()
        history.set_model(self)
        history.on_train_begin()
        history.on_epoch_end(0, {"loss": residual, "reconstruction": residual})
        if verbose not in (0, "silent"):
            print(f"PCA: {self.latent_dim} of {self.num_features} components, residual {residual:.6g} per example")
        return history
