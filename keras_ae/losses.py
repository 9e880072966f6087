"""Loss terms shared by the zoo.

Reduction convention, everywhere in keras-ae: a term is summed over the
features (pixels, code units) of one example and averaged over the batch. So
`reconstruction` is the per-example squared error or cross-entropy, in the same
units as a VAE's negative log-likelihood, and a penalty weight means the same
thing at every input size.
"""

import tensorflow as tf

from keras_ae import replicas


def _per_example_sum(values):
    """Sums every axis but the batch axis: (batch, ...) -> (batch,)."""
    return tf.reduce_sum(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)


def squared_error(x, x_hat):
    """Per-example ||x - x~||², shape (batch,)."""
    x_hat = tf.cast(x_hat, tf.float32)
    return _per_example_sum(tf.square(tf.cast(x, tf.float32) - x_hat))


def sigmoid_cross_entropy(x, logits):
    """Per-example -Σ_i [x_i log x~_i + (1-x_i) log(1-x~_i)], x~ = σ(logits).

    Computed from the logits, so a saturated sigmoid never gives log(0).
    """
    logits = tf.cast(logits, tf.float32)
    return _per_example_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(x, tf.float32), logits=logits))


def kl_sparsity(codes, target_rate):
    """Σ_j KL(Bernoulli(ρ) || Bernoulli(p̂_j)) of Ng (2011), sparse autoencoder notes §3.

    p̂_j = mean over the minibatch of the sigmoid code h_j, shape (latent,):
    under several replicas, over the global batch (`replicas.batch_mean`), as
    the penalty is not a mean of per-example terms.
    KL(ρ||p̂) = ρ log(ρ/p̂) + (1-ρ) log((1-ρ)/(1-p̂)); its derivative is
    ∂KL/∂p̂ = -ρ/p̂ + (1-ρ)/(1-p̂).
    """
    rho = tf.constant(target_rate, tf.float32)
    p_hat = replicas.batch_mean(tf.cast(codes, tf.float32))
    # Keep p̂ away from {0, 1}, where the KL is infinite; the clip is far from
    # any sparsity target a user would set.
    p_hat = tf.clip_by_value(p_hat, 1e-7, 1.0 - 1e-7)
    kl = rho * tf.math.log(rho / p_hat) + (1.0 - rho) * tf.math.log((1.0 - rho) / (1.0 - p_hat))
    return tf.reduce_sum(kl)


def l1_activity(codes):
    """Per-example Σ_j |h_j|, averaged over the batch."""
    return tf.reduce_mean(_per_example_sum(tf.abs(tf.cast(codes, tf.float32))))


def sigmoid_jacobian_frobenius(codes, kernel):
    """Closed-form ||∂h/∂x||²_F for h = σ(xW + b) (Rifai et al. 2011, eq. 3 and 4).

    ∂h_j/∂x_i = h_j(1-h_j) W_ij, hence ||J||²_F = Σ_j (h_j(1-h_j))² Σ_i W_ij².
    `codes` is (batch, latent), `kernel` is W with shape (features, latent).
    Returns shape (batch,).
    """
    codes = tf.cast(codes, tf.float32)
    column_norms = tf.reduce_sum(tf.square(tf.cast(kernel, tf.float32)), axis=0)  # Σ_i W_ij², (latent,)
    return tf.reduce_sum(tf.square(codes * (1.0 - codes)) * column_norms, axis=1)
