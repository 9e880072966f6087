"""The VQ-VAE (van den Oord et al. 2017): a convolutional autoencoder whose code is a grid of indices into a
learned codebook, with a PixelCNN prior over the grid to sample from."""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from keras_ae import compat, layers, replicas, validation
from keras_ae.base import ReconstructingAutoencoder, evaluation_batches
from keras_ae.models.pixelcnn import PixelCNN
from keras_ae.registry import register

CODEBOOK_UPDATES = ("loss", "ema")
# ε of the Laplace smoothing of the EMA counts (Sonnet's VectorQuantizerEMA `epsilon`).
LAPLACE_EPSILON = 1e-5


@register("vqvae")
class VQVAE(ReconstructingAutoencoder):
    """Vector-quantized VAE: "Neural discrete representation learning" (van den Oord, Vinyals & Kavukcuoglu
    2017).

    x (batch, H, W, C) -> the encoder's grid z_e (batch, h, w, D), D = latent_dim, h = ceil(H / 2^L) for L
    `filters` -> each vector replaced by its nearest code of the codebook e (K, D): the code indices
    (batch, h, w), what `encode` gives and `decode` takes -> the decoder -> x~. The gradient of the
    reconstruction passes the quantization straight through, from z_q to z_e (§3.2). The loss (eq. 3),
    each term summed over the grid and D, mean over the batch:

        reconstruction  ||x − x~||² (or the cross-entropy, `reconstruction_loss`)
        codebook        ||sg[z_e] − e||²        (moves the codes; 0 with codebook_update="ema")
        commitment      β ||z_e − sg[e]||²      (keeps the encoder near its codes)

    `fit` also reports, per batch and averaged over the epoch, `perplexity`, exp(−Σ_k p_k log p_k) of the
    batch's code frequencies p_k (K when every code is used equally, 1 when one code takes all), and
    `codes_used`, the fraction of the K codes the batch uses.

    With codebook_update="ema" the codebook is not trained by the loss but set, each training step, to
    exponential moving averages (the paper's appendix A.1, eqs. 6-8): the counts N_k and sums m_k of the
    encoder outputs assigned to code k, e_k = m_k / N_k, with N_k Laplace-smoothed as in Sonnet's
    VectorQuantizerEMA. Under several replicas the counts and sums are the global batch's. With
    `restart_unused_codes`, each step a code whose EMA count N_k is below `dead_code_threshold` is re-seeded
    with a random encoder output of the global batch (as Dhariwal et al. 2020's Jukebox restarts codes).

    The prior (`prior`, a `PixelCNN` over the code grid) is trained after the autoencoder, on the codes of the
    training set: `model.fit_prior(x_train)`; then `model.sample(n, seed)` decodes grids drawn from it. It is
    saved with the model.

    Args:
        latent_dim: D, the size of a code vector.
        num_codes: K, the codebook's size.
        filters, kernel_size, activation, batch_norm, residual_blocks: the stride-2 stages of the encoder,
            mirrored by the decoder (`layers.conv_grid_networks`); "auto" filters as `ConvAutoencoder`'s.
        commitment_weight: β; 0.25, the paper's (§3.2).
        codebook_update: "loss" (the codebook term trains the codebook) or "ema".
        ema_decay: γ of the moving averages; 0.99, the paper's.
        restart_unused_codes: re-seed codes whose EMA count falls below `dead_code_threshold` (EMA only).
        dead_code_threshold: in expected assignments per batch.
        prior_filters, prior_kernel_size, prior_residual_blocks, prior_output_layers: the `PixelCNN`'s.
        prior_fitted: whether `fit_prior` has trained the prior (kept in the config).
        output_activation, reconstruction_loss, weight_decay: see `ReconstructingAutoencoder`.
    """

    loss_term_names = ("reconstruction", "codebook", "commitment")
    faster_under_xla_on_cpu = False  # convolutions, as ConvAutoencoder

    learned_prior = True

    def __init__(
        self,
        input_shape,
        latent_dim,
        num_codes=512,
        filters=(32, 64),
        kernel_size=3,
        activation="relu",
        batch_norm=False,
        residual_blocks=0,
        commitment_weight=0.25,
        codebook_update="loss",
        ema_decay=0.99,
        restart_unused_codes=False,
        dead_code_threshold=1.0,
        prior_filters=128,
        prior_kernel_size=7,
        prior_residual_blocks=2,
        prior_output_layers=2,
        prior_fitted=False,
        **kwargs,
    ):
        super().__init__(input_shape, latent_dim, **kwargs)
        self.filters, self.batch_norm, self.residual_blocks = validation.check_conv_network(
            self.feature_shape, filters, batch_norm, residual_blocks, "vqvae"
        )
        self.num_codes = validation.check_positive_int(num_codes=num_codes)
        self.kernel_size = validation.check_positive_int(kernel_size=kernel_size)
        self.activation = activation
        validation.check_non_negative(commitment_weight=commitment_weight, dead_code_threshold=dead_code_threshold)
        validation.check_choice(codebook_update=(codebook_update, CODEBOOK_UPDATES))
        if not (isinstance(ema_decay, (int, float)) and not isinstance(ema_decay, bool) and 0 <= ema_decay < 1):
            raise ValueError(f"ema_decay must be a number in [0, 1); got {ema_decay!r}.")
        if restart_unused_codes and codebook_update != "ema":
            raise ValueError('restart_unused_codes needs codebook_update="ema", whose counts tell unused codes.')
        self.commitment_weight = float(commitment_weight)
        self.codebook_update = codebook_update
        self.ema_decay = float(ema_decay)
        self.restart_unused_codes = bool(restart_unused_codes)
        self.dead_code_threshold = float(dead_code_threshold)
        self.prior_fitted = bool(prior_fitted)

        self.encoder, self.decoder = layers.conv_grid_networks(
            self.feature_shape,
            self.filters,
            self.kernel_size,
            activation,
            self.latent_dim,
            batch_norm=self.batch_norm,
            residual_blocks=self.residual_blocks,
        )
        ema = codebook_update == "ema"
        # Under several replicas every replica computes the same EMA values from the global batch's
        # statistics; "mean" keeps them (an all-reduce of equal values).
        state = {"trainable": False, "aggregation": "mean"} if ema else {}
        self.codebook = self.add_weight(
            shape=(self.num_codes, self.latent_dim), initializer="random_uniform", name="codebook", **state
        )
        if ema:
            # N_k start at one observation of the initial code, m_k = e_k: e = m / N starts as the initial
            # codebook, and a code not used keeps about its value until N_k decays towards ε.
            self.ema_counts = self.add_weight(shape=(self.num_codes,), initializer="ones", name="ema_counts", **state)
            self.ema_sums = self.add_weight(
                shape=(self.num_codes, self.latent_dim), initializer="zeros", name="ema_sums", **state
            )
            self.ema_sums.assign(self.codebook)
        self.prior = PixelCNN(
            self.code_shape,
            self.num_codes,
            filters=prior_filters,
            kernel_size=prior_kernel_size,
            residual_blocks=prior_residual_blocks,
            output_layers=prior_output_layers,
            name="prior",
        )
        self.prior.trainable = False  # trained by `fit_prior`, not by the autoencoder's steps
        self.loss_trackers.extend(keras.metrics.Mean(name=name) for name in ("perplexity", "codes_used"))

    @property
    def code_shape(self):
        """(h, w): the grid of code indices that `encode` gives and `decode` takes."""
        return tuple(self.decoder.input_shape[1:3])

    # ------------------------------------------------------------ quantization
    def encoder_outputs(self, x, training=False):
        """z_e, the encoder's grid (batch, h, w, D), float32."""
        z = compat.call_network(self.encoder, tf.cast(x, self.compute_dtype), training=training)
        return tf.cast(z, tf.float32)

    def nearest_codes(self, z):
        """The index of the code nearest to each vector of z (..., D): argmin_k ||z − e_k||² (eq. 1), int32."""
        codebook = tf.cast(self.codebook, tf.float32)
        flat = tf.reshape(z, [-1, self.latent_dim])
        # ||z − e_k||² = ||z||² − 2 z·e_k + ||e_k||²
        distances = (
            tf.reduce_sum(tf.square(flat), axis=1, keepdims=True)
            - 2.0 * tf.matmul(flat, codebook, transpose_b=True)
            + tf.reduce_sum(tf.square(codebook), axis=1)
        )
        return tf.reshape(tf.argmin(distances, axis=1, output_type=tf.int32), tf.shape(z)[:-1])

    def code_vectors(self, codes):
        """z_q = e_{codes}: the codebook's vectors of code indices (batch, h, w) -> (batch, h, w, D)."""
        return tf.gather(tf.cast(self.codebook, tf.float32), tf.cast(codes, tf.int32))

    def encode(self, x, training=False):
        """The code indices of x, (batch, h, w) int32."""
        return self.nearest_codes(self.encoder_outputs(x, training=training))

    def decode(self, codes, training=False):
        """The reconstruction x~ of code indices (batch, h, w)."""
        return self._decode_vectors(self.code_vectors(codes), training)

    def _decode_vectors(self, z, training=False):
        """The reconstruction x~ of a grid of vectors z (batch, h, w, D)."""
        return self.output_activation_fn(self.decoder_output(tf.cast(z, self.compute_dtype), training=training))

    # ------------------------------------------------------------------- loss
    def loss_terms(self, x, training=False):
        z_e = self.encoder_outputs(x, training=training)
        codes = self.nearest_codes(z_e)
        z_q = self.code_vectors(codes)
        # Straight-through estimator (§3.2): the decoder reads z_q, its gradient goes to z_e unchanged.
        output = self.decoder_output(tf.cast(z_e + tf.stop_gradient(z_q - z_e), self.compute_dtype), training)

        def per_example(squares):  # summed over the grid and D, mean over the batch
            return tf.reduce_mean(tf.reduce_sum(squares, axis=[1, 2, 3]))

        one_hot = tf.one_hot(tf.reshape(codes, [-1]), self.num_codes)
        counts = _global_sum(tf.reduce_sum(one_hot, axis=0))  # n_k, of the global batch
        ema = self.codebook_update == "ema"
        terms = {
            "reconstruction": self.reconstruction_error(x, output),
            # ||sg[z_e] − e||²  (eq. 3); the EMA moves the codes instead
            "codebook": tf.zeros([]) if ema else per_example(tf.square(tf.stop_gradient(z_e) - z_q)),
            # β ||z_e − sg[e]||²  (eq. 3)
            "commitment": self.commitment_weight * per_example(tf.square(z_e - tf.stop_gradient(z_q))),
            **code_statistics(counts),
            **self.weight_decay_term(),
        }
        if ema and training:
            self._update_codebook(tf.reshape(z_e, [-1, self.latent_dim]), one_hot, counts)
        return terms

    def _update_codebook(self, z, one_hot, counts):
        """One EMA step (appendix A.1) from the global batch's encoder outputs z (n, D), their one-hot
        assignments (n, K) and counts n_k (K,); then, with `restart_unused_codes`, the restarts."""
        decay = self.ema_decay
        sums = _global_sum(tf.matmul(one_hot, z, transpose_a=True))  # Σ_j z_e,j over the vectors j assigned to k
        ema_counts = decay * self.ema_counts + (1 - decay) * counts  # N_k ← γ N_k + (1 − γ) n_k  (eq. 6)
        ema_sums = decay * self.ema_sums + (1 - decay) * sums  # m_k ← γ m_k + (1 − γ) Σ_j z_e,j  (eq. 7)
        total = tf.reduce_sum(ema_counts)
        # Laplace smoothing: N_k ← (N_k + ε) / (Σ N + K ε) · Σ N, so no code divides by 0 (Sonnet's)
        smoothed = (ema_counts + LAPLACE_EPSILON) / (total + self.num_codes * LAPLACE_EPSILON) * total
        codebook = ema_sums / smoothed[:, None]  # e_k = m_k / N_k  (eq. 8)
        if self.restart_unused_codes:
            ema_counts, ema_sums, codebook = self._restarted(z, ema_counts, ema_sums, codebook)
        self.ema_counts.assign(ema_counts)
        self.ema_sums.assign(ema_sums)
        self.codebook.assign(codebook)

    def _restarted(self, z, ema_counts, ema_sums, codebook):
        """The EMA state with every code whose count N_k is below `dead_code_threshold` re-seeded: e_k a random
        encoder output of the global batch (the same on every replica), N_k = 1 and m_k = e_k, one observation."""
        everyone = replicas.global_batch(z)
        size = tf.shape(everyone)[0]
        # One draw per code from the model's seed generator: the same state, so the same draws, on every replica
        # (not random_ops', which would give each replica the rows of its own examples).
        picks = keras.random.randint([self.num_codes], 0, tf.maximum(size, 1), seed=self.seed_generator)
        seeds = tf.gather(everyone, picks)
        dead = (ema_counts < self.dead_code_threshold) & (size > 0)
        return (
            tf.where(dead, tf.ones_like(ema_counts), ema_counts),
            tf.where(dead[:, None], seeds, ema_sums),
            tf.where(dead[:, None], seeds, codebook),
        )

    # ------------------------------------------------------------------ prior
    def prior_nats_per_code(self, codes, batch_size=256):
        """The prior's cross-entropy −log p(c_i | c_<i) of code grids (N, h, w), mean over their positions: the
        nats per code its training minimizes."""
        logits = self.prior.predict(codes, batch_size=batch_size, verbose=0)
        return float(np.mean(keras.losses.sparse_categorical_crossentropy(codes, logits, from_logits=True)))

    def codes(self, x, batch_size=256):
        """The code indices of x, (N, *input_shape) in batches of `batch_size` or a dataset of x batches: (N, h, w)
        int32 numpy, whole in memory (4 bytes a grid position: 1.6 GB for a million 20x20 grids)."""
        if not isinstance(x, tf.data.Dataset):
            x = validation.check_array(x, self.feature_shape)
        return np.concatenate([self.encode(xb).numpy() for xb in evaluation_batches(x, batch_size)])

    def fit_prior(
        self, x, epochs=10, batch_size=128, validation_data=None, learning_rate=3e-4, verbose="auto", **kwargs
    ):
        """Trains the PixelCNN prior on the codes of x (the training inputs, (N, *input_shape), or a dataset of
        their batches), the VQ-VAE fixed (§3.3), and marks it fitted. Its `loss` (and `val_loss` on the codes of
        `validation_data`, inputs) is the cross-entropy in nats per code. Other keyword arguments go to `fit`.
        Returns the History."""
        codes = self.codes(x, batch_size)
        validation_codes = None if validation_data is None else (self.codes(validation_data, batch_size),) * 2
        self.prior.trainable = True
        try:
            # A model of its own holds the optimizer: the prior's weights, shared, are trained and saved with this one.
            inputs = keras.Input(self.code_shape, dtype="int32")
            trainer = keras.Model(inputs, self.prior(inputs))
            trainer.compile(
                optimizer=keras.optimizers.Adam(learning_rate),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            )
            history = trainer.fit(
                codes,
                codes,
                epochs=epochs,
                batch_size=batch_size,
                validation_data=validation_codes,
                verbose=verbose,
                **kwargs,
            )
        finally:
            self.prior.trainable = False
        self.prior_fitted = True
        return history

    def sample_codes(self, n, seed=None, batch_size=256):
        """n code grids drawn from the prior, position by position, `batch_size` at a time: (n, h, w) int32 numpy."""
        if not self.prior_fitted:
            raise ValueError("The VQ-VAE's prior is not fitted: call model.fit_prior(x_train) first.")
        return self.prior.sample(n, seed, batch_size)

    def sample(self, n, seed=None, batch_size=256):
        """n samples decode(c), c ~ the PixelCNN prior: (n, *input_shape) numpy float32."""
        codes = self.sample_codes(n, seed, batch_size)
        return np.concatenate(
            [np.asarray(self.decode(codes[i : i + batch_size]), np.float32) for i in range(0, n, batch_size)]
        )

    # ---------------------------------------------------------------- export
    def export_endpoints(self):
        """The base's endpoints, `decode` taking int32 code indices (batch, h, w)."""
        endpoints = super().export_endpoints()
        return [dataclasses.replace(e, dtype="int32") if e.name == "decode" else e for e in endpoints]

    def get_config(self):
        prior = self.prior
        return {
            **super().get_config(),
            "num_codes": self.num_codes,
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "activation": self.activation,
            "batch_norm": self.batch_norm,
            "residual_blocks": self.residual_blocks,
            "commitment_weight": self.commitment_weight,
            "codebook_update": self.codebook_update,
            "ema_decay": self.ema_decay,
            "restart_unused_codes": self.restart_unused_codes,
            "dead_code_threshold": self.dead_code_threshold,
            "prior_filters": prior.filters,
            "prior_kernel_size": prior.kernel_size,
            "prior_residual_blocks": prior.residual_blocks,
            "prior_output_layers": prior.output_layers,
            "prior_fitted": self.prior_fitted,
        }


def code_statistics(counts):
    """{"perplexity": exp(−Σ_k p_k log p_k), "codes_used": the fraction of codes with n_k > 0} of the code
    counts n_k (K,), p_k = n_k / Σ n (0 log 0 = 0)."""
    p = counts / tf.maximum(tf.reduce_sum(counts), 1.0)
    return {
        "perplexity": tf.exp(-tf.reduce_sum(tf.math.xlogy(p, p))),
        "codes_used": tf.reduce_mean(tf.cast(counts > 0, tf.float32)),
    }


def _global_sum(values):
    """values summed over the replicas: the global batch's statistic; `values` on one device."""
    context = replicas.sync_context()
    return values if context is None else context.all_reduce(tf.distribute.ReduceOp.SUM, values)
