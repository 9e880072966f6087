"""The Wasserstein autoencoder WAE-MMD (Tolstikhin et al. 2018): the codes' distribution matched to the prior by MMD."""

import tensorflow as tf

from keras_ae import losses, validation
from keras_ae.models.mlp import MLPAutoencoder
from keras_ae.random_ops import random_normal
from keras_ae.registry import register
from keras_ae.replicas import global_batch

# The scales s of the kernel constants C_s = 2 d s in the authors' code (github.com/tolstikhin/wae, `mmd_penalty`).
AUTHORS_KERNEL_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


@register("wae")
class WassersteinAutoencoder(MLPAutoencoder):
    """A deterministic MLP autoencoder whose code distribution q(z) is matched to the prior p(z) = N(0, I).

    WAE-MMD (Tolstikhin et al. 2018, "Wasserstein auto-encoders", Algorithm 2): the loss is the squared error
    ||x − x~||² plus λ MMD²(q(z), p(z)), the unbiased estimate from the batch's codes and as many draws from
    the prior (`losses.inverse_multiquadratic_mmd`), reported as `mmd`. The code layer is linear. Sample by
    decoding prior draws, `model.decode(z)` with z ~ N(0, I), or through the ex-post mixture,
    `keras_ae.ex_post.ExPostDensity().fit(model, x_train).sample(model, n)` (Ghosh et al. 2020).

    The prior draws come from the model's seed generator, so a seeded run is reproducible. Under several
    replicas the MMD is the global batch's, as on one device: every replica gathers the codes and the prior
    draws of the whole global batch (`global_batch`), as the MMD is not a mean over examples.

    Args:
        mmd_weight: λ; 10, the paper's for MNIST (§4).
        kernel_scales: the scales s of the kernel's C_s = 2 d s, summed: (1,), the paper's C = 2 d σ² for
            its N(0, I) prior (§4), or `AUTHORS_KERNEL_SCALES`, the authors' code's (.1, .2, .5, 1, 2, 5, 10).
        Other arguments: see `MLPAutoencoder`.
    """

    loss_term_names = ("reconstruction", "mmd")
    linear_code = True

    def __init__(self, input_shape, latent_dim, mmd_weight=10.0, kernel_scales=(1.0,), **kwargs):
        super().__init__(input_shape, latent_dim, **kwargs)
        validation.check_non_negative(mmd_weight=mmd_weight)
        scales = list(kernel_scales) if isinstance(kernel_scales, (list, tuple)) else []
        if not scales or not all(isinstance(s, (int, float)) and not isinstance(s, bool) and s > 0 for s in scales):
            raise ValueError(f"kernel_scales must be a non-empty list of numbers > 0; got {kernel_scales!r}.")
        self.mmd_weight = float(mmd_weight)
        self.kernel_scales = [float(s) for s in scales]

    def penalties(self, x, h, training=False):
        z = tf.cast(h, tf.float32)
        prior_draws = random_normal(tf.shape(z), self.seed_generator)  # z~ ~ N(0, I), one per code
        mmd = losses.inverse_multiquadratic_mmd(global_batch(z), global_batch(prior_draws), self.kernel_scales)
        return {"mmd": self.mmd_weight * mmd}  # λ MMD²_u(q(z), p(z))  (Algorithm 2)

    def get_config(self):
        return {**super().get_config(), "mmd_weight": self.mmd_weight, "kernel_scales": self.kernel_scales}
