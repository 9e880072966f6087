"""Regularized autoencoders (Ghosh et al. 2020): a deterministic autoencoder with a code penalty and an L2
penalty on the decoder, sampled through an ex-post density."""

import tensorflow as tf

from keras_ae import validation
from keras_ae.models.mlp import MLPAutoencoder
from keras_ae.registry import register


@register("rae")
class RegularizedAutoencoder(MLPAutoencoder):
    """The RAE-L2 of Ghosh et al. (2020): an MLP autoencoder with a linear code and the RAE-L2 penalties on the
    base's `penalties` hook.

    "From variational to deterministic autoencoders" (Ghosh et al. 2020, §3): L_RAE = ||x − x~||² + β L_Z +
    λ L_REG, with L_Z = ½||z||² (`code_penalty`, mean over the batch) and, for RAE-L2, L_REG = Σ ||W||² over
    the decoder's kernels (`decoder_l2`; biases excluded, tied kernels included). Sample through the ex-post
    mixture the paper fits on the training codes (§4),
    `keras_ae.ex_post.ExPostDensity().fit(model, x_train).sample(model, n)`.

    Args:
        code_penalty_weight: β; 1e-4, the authors' MNIST RAE-L2 (github.com/ParthaEth/Regularized_autoencoders-RAE-,
            configurations/config.py).
        decoder_l2_weight: λ; 1e-7, the same configuration's. 0 gives the paper's plain RAE.
        (The authors' code averages the squared error over the P pixels and z² over the d code units: there
        the same β and λ weigh P/d and P times more against the reconstruction than here, where both are sums.)
        Other arguments: see `MLPAutoencoder`.
    """

    linear_code = True
    loss_term_names = ("reconstruction", "code_penalty", "decoder_l2")

    def __init__(self, input_shape, latent_dim, code_penalty_weight=1e-4, decoder_l2_weight=1e-7, **kwargs):
        super().__init__(input_shape, latent_dim, **kwargs)
        validation.check_non_negative(code_penalty_weight=code_penalty_weight, decoder_l2_weight=decoder_l2_weight)
        self.code_penalty_weight = float(code_penalty_weight)
        self.decoder_l2_weight = float(decoder_l2_weight)

    def penalties(self, x, h, training=False):
        z = tf.cast(h, tf.float32)
        return {
            # β · ½||z||², mean over the batch
            "code_penalty": self.code_penalty_weight * tf.reduce_mean(0.5 * tf.reduce_sum(tf.square(z), axis=1)),
            # λ · Σ ||W_dec||²
            "decoder_l2": self.decoder_l2_weight * self.squared_kernel_norm(self.decoder),
        }

    def get_config(self):
        return {
            **super().get_config(),
            "code_penalty_weight": self.code_penalty_weight,
            "decoder_l2_weight": self.decoder_l2_weight,
        }
