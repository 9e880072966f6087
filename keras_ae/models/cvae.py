"""The conditional VAE (Sohn et al. 2015; the generative model of Kingma et al. 2014's M2), on the VAE hooks.

Encoder and decoder read a class label y (an int in [0, num_classes), one-hot inside):
q(z|x, y) = N(μ(x, y), diag σ(x, y)²), p(x|z, y) the configured likelihood, p(z) = N(0, I).
The objective is the VAE's with every density conditioned on y,
    ELBO(x|y) = E_q(z|x,y)[log p(x|z, y)] − KL(q(z|x, y) ‖ p(z))
(Kingma et al. 2014, eq. 6, without the constant log p(y); Sohn et al. 2015, eq. 4, with
the prior p(z|y) = N(0, I)), so β, KL warm-up, IWAE and the estimators come from the base.

How y travels: the argument `labels`, int (batch,), of this model's `loss_terms`, `encode`,
`decode` and `sample`, after x (or z), which stays first, where the base's checks read it;
an unconditional model's hooks keep their signatures, as the base passes labels to a
conditional model only (`Autoencoder.conditional`: `fit(x, labels)`, a dataset of (x,
labels)). `model((x, labels))` and `predict((x, labels))` take the pair, Keras' convention
for a model of two inputs. Inside, the VAE's hooks `posterior_parameters` and
`decoder_parameters` get the pair (x, y) or (z, y) in place of x or z, and `observed` and
`decoder_inputs` say where x and y are in it, so the VAE's `posterior_draws`, `loss_terms`,
`encode` and `decode` run unchanged around them: no copy of them.
"""

import keras
import numpy as np
import tensorflow as tf

from keras_ae import images, validation
from keras_ae.endpoints import Endpoint, label_input, sample_endpoint
from keras_ae.models.vae import MLPVariationalAutoencoder
from keras_ae.registry import register


@register("cvae")
class ConditionalVariationalAutoencoder(MLPVariationalAutoencoder):
    """A VAE whose MLP encoder reads [x, one_hot(y)] and whose decoder reads [z, one_hot(y)].

    Args:
        num_classes: K, the number of classes; labels are ints in [0, K).
        Other arguments: see `MLPVariationalAutoencoder`.
    """

    conditional = True

    def __init__(self, input_shape, latent_dim, num_classes=10, **kwargs):
        self.num_classes = validation.check_positive_int(num_classes=num_classes)  # the networks' input sizes
        super().__init__(input_shape, latent_dim, **kwargs)

    def encoder_input_shape(self):
        return (self.num_features + self.num_classes,)

    def decoder_input_size(self):
        return self.latent_dim + self.num_classes

    def one_hot(self, labels, count=None):
        """one_hot(y), float32 (batch, K), of labels int (batch,) for `count` examples, checked
        (`validation.check_labels`): tf.one_hot would give a zero row for a label out of range."""
        return tf.one_hot(validation.check_labels(labels, self.num_classes, count), self.num_classes)

    # ---------------------------------------------------- the VAE's hooks, conditioned
    def posterior_parameters(self, inputs, training=False):
        """(loc, scale) of q(z|x, y) for the pair (x, y), each (batch, latent_dim), float32."""
        x, labels = inputs
        flat = tf.reshape(tf.cast(x, tf.float32), (-1, self.num_features))
        conditioned = tf.concat([flat, self.one_hot(labels, x.shape[0])], axis=-1)
        return self.gaussian_parameters(self.encoder, conditioned, training=training)

    def decoder_parameters(self, inputs, training=False):
        """The decoder's output for the pair (z (..., batch, latent_dim), y (batch,)): (..., batch, *input_shape)."""
        z, labels = inputs
        z = tf.cast(z, tf.float32)
        y = self.one_hot(labels, z.shape[-2])  # the same y for every draw of an example
        y = tf.broadcast_to(y, tf.concat([tf.shape(z)[:-1], [self.num_classes]], axis=0))
        return self.apply_network(self.decoder, tf.concat([z, y], axis=-1), training=training)

    def observed(self, inputs):
        """x, of the pair (x, y)."""
        return inputs[0]

    def decoder_inputs(self, z, inputs):
        """(z, y) for draws z of the pair (x, y)."""
        return z, inputs[1]

    def _binarize(self, inputs):
        x, labels = inputs
        return super()._binarize(x), labels

    # ----------------------------------------------------------------- model API
    def loss_terms(self, x, labels, training=False):
        """The VAE's terms for x (batch, *input_shape) given its labels (batch,): −ELBO(x|y) and its parts."""
        return super().loss_terms((x, labels), training=training)

    def encode(self, x, labels, training=False):
        """E_q[z|x, y], (batch, latent_dim)."""
        return super().encode((x, labels), training=training)

    def decode(self, z, labels, training=False):
        """The mean of p(x|z, y), (batch, *input_shape)."""
        return super().decode((z, labels), training=training)

    def call(self, inputs, training=False):
        """The reconstruction of the pair (x, labels): the decoder mean at z = E_q[z|x, y]."""
        x, labels = inputs
        return self.decode(self.encode(x, labels, training=training), labels, training=training)

    def sample(self, n, labels, seed=None):
        """n draws of the decoder mean at z ~ p(z) given labels, an int (every draw's class)
        or ints (n,): (n, *input_shape)."""
        labels = np.full(int(n), labels) if np.ndim(labels) == 0 else labels
        return self.decode(self.prior_draws(n, seed), labels)

    # ------------------------------------------------------ what it offers
    def summary_images(self, examples):
        """Of the pair `examples` (x, labels): inputs beside their reconstructions given their labels,
        and prior samples, a row of 8 per class."""
        x, labels = (np.asarray(part[:16]) for part in examples)
        shape = images.display_shape(self.feature_shape)
        reconstructions = keras.ops.convert_to_numpy(self((x.astype(np.float32), labels), training=False))
        pairs = np.stack([x.reshape((-1, *shape)), reconstructions.reshape((-1, *shape))], axis=1)
        classes = np.repeat(np.arange(self.num_classes), 8)
        samples = keras.ops.convert_to_numpy(self.sample(len(classes), classes, seed=0))
        return {
            "reconstructions": images.tile(pairs.reshape((-1, *shape)), columns=8),
            "prior_samples": images.tile(samples.reshape((-1, *shape)), columns=8),
        }

    def anomaly_score(self, x, batch_size=256):
        raise ValueError(f"cvae has no anomaly_score: {self.unexported_endpoints()['anomaly_score']}")

    def unexported_endpoints(self):
        why = "a conditional model's ELBO needs the example's label, and an anomaly score is of x alone."
        return dict.fromkeys(("anomaly_score", "is_anomaly"), why)

    def export_endpoints(self):
        """The VAE's endpoints, each taking the class `label` (int32 (batch,)) after its first
        input: serving_default and reconstruct (x, label), encode (x, label) -> mean,
        log_variance, decode (z, label), sample (eps, label) with eps ~ N(0, I) drawn by the caller."""
        label = label_input(self.num_classes)
        features, latent = self.feature_shape, (self.latent_dim,)

        def reconstruct(x, y):
            return {"reconstruction": self((x, y), training=False)}

        def encode(x, y):
            return self.posterior_outputs((x, y))

        def decode(z, y):
            return {"reconstruction": self.decode(z, y)}

        def sample(eps, y):  # the prior is N(0, I): z = eps
            return {"sample": self.decode(eps, y)}

        def codes_of(x):
            return keras.ops.convert_to_numpy(self.encode(x, label.example(x)))

        conditioned = {"more_inputs": (label,)}
        return [
            Endpoint("serving_default", "x", features, reconstruct, **conditioned),
            Endpoint("encode", "x", features, encode, **conditioned),
            Endpoint("decode", "z", latent, decode, example=codes_of, **conditioned),
            Endpoint("reconstruct", "x", features, reconstruct, same_as="serving_default", **conditioned),
            sample_endpoint(self.latent_dim, sample, **conditioned),
        ]

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}
