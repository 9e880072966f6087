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


def inverse_multiquadratic_mmd(x, y, scales=(1.0,)):
    """The unbiased estimate of MMD²(P, Q) from samples x ~ P (n, d) and y ~ Q (m, d).

    The U-statistic of Gretton et al. (2012, "A kernel two-sample test") with the inverse
    multiquadratic kernel k(a, b) = Σ_s C_s / (C_s + ||a − b||²), C_s = 2 d s: WAE-MMD's (Tolstikhin et al.
    2018, Algorithm 2), whose C = 2 d σ² for a N(0, σ² I) prior is s = σ² = 1; their code sums the scales
    s ∈ {.1, .2, .5, 1, 2, 5, 10}. Its expectation is 0 when P = Q. 0 when n or m is below 2, where the
    estimate is undefined.
    """
    x, y = tf.cast(x, tf.float32), tf.cast(y, tf.float32)
    constants = [2.0 * tf.cast(tf.shape(x)[1], tf.float32) * float(s) for s in scales]

    def kernel_sum(a, b, off_diagonal=False):
        # ||a_i − b_j||² = ||a_i||² + ||b_j||² − 2 a_iᵀb_j, kept >= 0 against rounding
        norms_a, norms_b = tf.reduce_sum(tf.square(a), axis=1), tf.reduce_sum(tf.square(b), axis=1)
        distances = tf.maximum(norms_a[:, None] + norms_b[None, :] - 2.0 * tf.matmul(a, b, transpose_b=True), 0.0)
        k = tf.add_n([c / (c + distances) for c in constants])  # Σ_s C_s / (C_s + ||a_i − b_j||²)
        return tf.reduce_sum(k) - (tf.linalg.trace(k) if off_diagonal else 0.0)

    n, m = tf.cast(tf.shape(x)[0], tf.float32), tf.cast(tf.shape(y)[0], tf.float32)
    # MMD²_u = Σ_{i≠j} k(x_i, x_j) / (n(n−1)) + Σ_{i≠j} k(y_i, y_j) / (m(m−1)) − 2 Σ_{i,j} k(x_i, y_j) / (nm)
    mmd = (
        kernel_sum(x, x, off_diagonal=True) / tf.maximum(n * (n - 1.0), 1.0)
        + kernel_sum(y, y, off_diagonal=True) / tf.maximum(m * (m - 1.0), 1.0)
        - 2.0 * kernel_sum(x, y) / tf.maximum(n * m, 1.0)
    )
    return tf.where(tf.minimum(n, m) >= 2.0, mmd, 0.0)
