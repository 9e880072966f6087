"""The variational autoencoder (Kingma & Welling 2014) on TensorFlow Probability.

Keras layers produce tensors (the posterior's loc and raw scale, the
likelihood's parameters); the `tfd` distributions are built from them inside
the loss, never returned by `call` (exports need tensors) nor kept as
attributes. All log-probabilities and KLs are float32, whatever the layers'
dtype policy.

`VariationalAutoencoder` is a base with hooks, as disentanglement_lib's
`BaseVAE`: a new VAE variant (β-TCVAE, VampPrior, a flow posterior, a
conditional VAE) is a subclass in one file that overrides one of them:

- `prior()`: p(z);
- `reconstruction_term(draws)`: −E_q log p(x|z) per example;
- `regularizer(draws)`: KL(q(z|x) ‖ p(z)) per example by default;
- `bound(draws, reconstruction, regularizer)`: the objective maximized per
  example, the β-weighted ELBO, or the IWAE bound with `num_samples` > 1;
- `posterior_draws(x, num_samples, at_mean)`: z ~ q(z|x) and the
  log-densities, for a posterior of another form (`hierarchical_vae`);
- `observed(inputs)`, `decoder_inputs(z, inputs)`: where x and the
  decoder's input are when the inputs hold more than x (`cvae`).

Shapes: x is (batch, *input_shape); z is (batch, latent_dim), or
(samples, batch, latent_dim) when several posterior samples are drawn.
"""

import dataclasses
import functools
import math

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from keras_ae import compat, images, layers, validation
from keras_ae.base import Autoencoder, evaluation_batches
from keras_ae.endpoints import Endpoint, sample_endpoint
from keras_ae.random_ops import random_normal, random_uniform
from keras_ae.registry import register

tfd = tfp.distributions

LIKELIHOODS = ("bernoulli", "gaussian", "continuous_bernoulli")
KL_ESTIMATORS = ("analytic", "monte_carlo")
SCALE_ACTIVATIONS = ("softplus", "exp")
ANOMALY_SCORE_METHODS = ("negative_elbo", "negative_log_likelihood")


def _standard_normal_prior(latent_dim):
    """p(z) = N(0, I); batch shape (), event shape (latent_dim,)."""
    return tfd.MultivariateNormalDiag(loc=tf.zeros([latent_dim]), scale_diag=tf.ones([latent_dim]))


@dataclasses.dataclass
class PosteriorDraws:
    """k draws z_i ~ q(z|x) per example, by reparameterization, and the
    log-densities at them: what every piece of a VAE objective reads.

    Attributes:
        z: (samples, batch, latent_dim).
        log_px_z, log_qz, log_pz: log p(x|z_i), log q(z_i|x), log p(z_i), each (samples, batch).
        posterior, prior: q(z|x) (batch shape (batch,)) and p(z), when the
            KL between them has a closed form; else None.
    """

    z: tf.Tensor
    log_px_z: tf.Tensor
    log_qz: tf.Tensor
    log_pz: tf.Tensor
    posterior: tfd.Distribution = None
    prior: tfd.Distribution = None

    @property
    def log_weights(self):
        """log p(x, z_i) / q(z_i|x), (samples, batch): the importance weights of Burda et al. (2016)."""
        return self.log_px_z + self.log_pz - self.log_qz

    @functools.cached_property
    def kl(self):
        """KL(q(z|x) ‖ p(z)), (batch,): analytic where the draws name q and p,
        else the Monte Carlo mean of log q(z|x) − log p(z) over the draws."""
        if self.posterior is None:
            return tf.reduce_mean(self.log_qz - self.log_pz, axis=0)
        return tfd.kl_divergence(self.posterior, self.prior)


@keras.saving.register_keras_serializable(package="keras_ae")
class VariationalAutoencoder(Autoencoder):
    """The VAE logic shared by the MLP (`vae`) and convolutional (`conv_vae`) models.

    q(z|x) = N(μ(x), diag σ(x)²) with σ = softplus(raw) (or exp(raw / 2), raw
    the log-variance); p(z) = N(0, I); p(x|z) a `likelihood` whose parameters
    the decoder outputs. The loss is the negative of `bound`, summed over
    pixels and latents and averaged over the batch: by default the negative
    ELBO (Kingma & Welling 2014, eq. 10)
        loss = E_q[-log p(x|z)] + β_t KL(q(z|x) || p(z)),
    with β_t rising linearly from 0 to β over `kl_warmup_steps`; with
    `num_samples` k > 1 the negative IWAE bound (Burda et al. 2016, eq. 8).
    `fit` reports `loss`, `reconstruction`, `kl` and the true `elbo` (β = 1)
    in nats per example.

    Args:
        input_shape, latent_dim, seed: see `Autoencoder`.
        likelihood: "bernoulli" (logits; binary data), "gaussian" (continuous
            data), or "continuous_bernoulli" (grey levels in [0, 1]).
        decoder_scale: for "gaussian", "learned" (a trained per-pixel σ) or a
            fixed σ > 0.
        kl_estimator: "analytic" (½ Σ(μ² + σ² − 1 − log σ²)) or
            "monte_carlo" (log q(z|x) − log p(z) at the sampled z).
        beta: the KL weight β >= 0.
        kl_warmup_steps: steps over which β_t rises from 0 to β (0: none).
        num_samples: k posterior samples per example; k > 1 trains on the
            IWAE bound.
        dynamic_binarization: in training steps, replace x by a draw of
            Bernoulli(x) (grey data in [0, 1] with a Bernoulli likelihood).
        scale_activation: "softplus" or "exp".
        anomaly_score_method: what `anomaly_score` computes: "negative_elbo"
            (deterministic, exported; see `anomaly_score_batch`) or
            "negative_log_likelihood", -`log_likelihood(x)` with its default
            1000 importance samples: tighter, but random (two calls differ by
            its Monte Carlo error) and 1000 decoder passes per example, so it
            is scored in Python only and an export leaves out the anomaly
            endpoints (`unexported_endpoints`).
    """

    loss_term_names = ("reconstruction", "kl", "elbo")

    def __init__(
        self,
        input_shape,
        latent_dim,
        likelihood="bernoulli",
        decoder_scale="learned",
        kl_estimator="analytic",
        beta=1.0,
        kl_warmup_steps=0,
        num_samples=1,
        dynamic_binarization=False,
        scale_activation="softplus",
        anomaly_score_method="negative_elbo",
        **kwargs,
    ):
        super().__init__(input_shape, latent_dim, **kwargs)
        validation.check_choice(likelihood=(likelihood, LIKELIHOODS))
        validation.check_choice(kl_estimator=(kl_estimator, KL_ESTIMATORS))
        validation.check_choice(scale_activation=(scale_activation, SCALE_ACTIVATIONS))
        validation.check_choice(anomaly_score_method=(anomaly_score_method, ANOMALY_SCORE_METHODS))
        validation.check_non_negative(beta=beta)
        if decoder_scale != "learned":
            if isinstance(decoder_scale, bool) or not isinstance(decoder_scale, (int, float)) or not decoder_scale > 0:
                raise ValueError(f'decoder_scale must be "learned" or a number > 0; got {decoder_scale!r}.')
            decoder_scale = float(decoder_scale)
        if dynamic_binarization and likelihood != "bernoulli":
            raise ValueError('dynamic_binarization draws binary data and needs likelihood="bernoulli".')
        self.likelihood = likelihood
        self.decoder_scale = decoder_scale
        self.kl_estimator = kl_estimator
        self.beta = float(beta)
        self.kl_warmup_steps = validation.check_int(0, kl_warmup_steps=kl_warmup_steps)
        self.num_samples = validation.check_positive_int(num_samples=num_samples)
        self.dynamic_binarization = bool(dynamic_binarization)
        self.scale_activation = scale_activation
        self.anomaly_score_method = anomaly_score_method
        if likelihood == "gaussian" and decoder_scale == "learned":
            # log σ of p(x|z), one per pixel, shared by all z.
            self.decoder_log_scale = self.add_weight(
                shape=self.feature_shape, initializer="zeros", name="decoder_log_scale"
            )

    # ------------------------------------------------------------ distributions
    def posterior_parameters(self, x, training=False):
        """(loc, scale) of q(z|x), each (batch, latent_dim), float32."""
        return self.gaussian_parameters(self.encoder, x, training=training)

    def gaussian_parameters(self, network, inputs, training=False):
        """(loc, scale) of the diagonal Gaussian whose [loc, raw scale] `network`
        gives for `inputs` (..., d), each (..., d_out), float32."""
        raw = self.apply_network(network, inputs, training=training)
        loc, raw_scale = tf.split(raw, 2, axis=-1)
        if self.scale_activation == "exp":
            scale = tf.exp(0.5 * raw_scale)  # raw_scale = log σ²
        else:
            scale = tf.nn.softplus(raw_scale) + 1e-6
        return loc, scale

    def apply_network(self, network, inputs, training=False):
        """`network` on inputs with any leading axes, (..., *its input shape) -> (..., *its output shape), float32."""
        input_shape, output_shape = tuple(network.input_shape[1:]), tuple(network.output_shape[1:])
        leading = tf.shape(inputs)[: tf.rank(inputs) - len(input_shape)]
        flat = tf.reshape(tf.cast(inputs, self.compute_dtype), (-1, *input_shape))
        out = tf.cast(compat.call_network(network, flat, training=training), tf.float32)
        return tf.reshape(out, tf.concat([leading, output_shape], axis=0))

    def posterior(self, x, training=False):
        """q(z|x): batch shape (batch,), event shape (latent_dim,)."""
        loc, scale = self.posterior_parameters(x, training=training)
        return tfd.MultivariateNormalDiag(loc=loc, scale_diag=scale)

    def prior(self):
        """p(z) = N(0, I)."""
        return _standard_normal_prior(self.latent_dim)

    def decoder_parameters(self, z, training=False):
        """The decoder's output for z (..., latent_dim): (..., *input_shape), float32."""
        return self.apply_network(self.decoder, z, training=training)

    def likelihood_distribution(self, params):
        """p(x|z) from decoder parameters; event shape input_shape."""
        if self.likelihood == "bernoulli":
            base = tfd.Bernoulli(logits=params, dtype=tf.float32)
        elif self.likelihood == "continuous_bernoulli":
            base = tfd.ContinuousBernoulli(logits=params)
        else:
            base = tfd.Normal(loc=params, scale=self._decoder_scale())
        return tfd.Independent(base, reinterpreted_batch_ndims=len(self.feature_shape))

    def log_prob_x_given_z(self, params, x):
        """log p(x|z) for decoder parameters (..., *input_shape): shape (...,).

        `likelihood_distribution(params).log_prob(x)`; for Bernoulli computed
        as -Σ sigmoid_cross_entropy(x, logits), the same value in one fused op
        instead of two softplus and two selects (benchmarks/README.md).
        """
        if self.likelihood == "bernoulli":
            labels = tf.broadcast_to(tf.cast(x, tf.float32), tf.shape(params))
            per_pixel = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=params)
            return -tf.reduce_sum(per_pixel, axis=list(range(-len(self.feature_shape), 0)))
        return self.likelihood_distribution(params).log_prob(x)

    def _decoder_scale(self):
        if self.decoder_scale == "learned":
            return tf.exp(tf.cast(self.decoder_log_scale, tf.float32))
        return tf.constant(self.decoder_scale, tf.float32)

    # ----------------------------------------------------------------- model API
    def encode(self, x, training=False):
        """The posterior mean E_q[z|x], the deterministic code."""
        return self.posterior_parameters(x, training=training)[0]

    def decode(self, z, training=False):
        """The mean of p(x|z): probabilities for Bernoulli, the loc for Gaussian."""
        params = self.decoder_parameters(z, training=training)
        if self.likelihood == "bernoulli":
            return tf.sigmoid(params)
        if self.likelihood == "continuous_bernoulli":
            return self.likelihood_distribution(params).mean()
        return params

    def output_range(self):
        return None if self.likelihood == "gaussian" else (0.0, 1.0)

    def input_range(self):
        return self.output_range()  # a (continuous) Bernoulli's support: [0, 1]

    # --------------------------------------------------------------- objective
    def posterior_draws(self, x, num_samples, training=False, at_mean=False):
        """`num_samples` draws z ~ q(z|x) per example and their log-densities
        (`PosteriorDraws`); `at_mean`: z at the posterior mean instead (`epsilon`)."""
        loc, scale = self.posterior_parameters(x, training=training)
        q = tfd.MultivariateNormalDiag(loc=loc, scale_diag=scale)
        z = loc + scale * self.epsilon(tf.concat([[num_samples], tf.shape(loc)], axis=0), at_mean)
        params = self.decoder_parameters(self.decoder_inputs(z, x), training=training)
        log_px_z = self.log_prob_x_given_z(params, self.observed(x))
        prior = self.prior()
        return PosteriorDraws(z, log_px_z, q.log_prob(z), prior.log_prob(z), posterior=q, prior=prior)

    def observed(self, inputs):
        """The x that p(x|z) scores, of the inputs `posterior_draws` gets: the inputs; a conditional model's x."""
        return inputs

    def decoder_inputs(self, z, inputs):
        """What the decoder reads for draws z of `inputs`: z; a conditional model's (z, y)."""
        return z

    def epsilon(self, shape, at_mean=False):
        """ε ~ N(0, I) of `shape` (samples, batch, ...), drawn per example, for the
        reparameterization z = μ + σ ⊙ ε; zeros `at_mean` (z = μ, no random op)."""
        return tf.zeros(shape) if at_mean else random_normal(shape, self.seed_generator, batch_axis=1)

    def reconstruction_term(self, draws):
        """−E_q log p(x|z), averaged over the draws: (batch,)."""
        return -tf.reduce_mean(draws.log_px_z, axis=0)

    def regularizer(self, draws):
        """KL(q(z|x) ‖ p(z)), (batch,): analytic, or the Monte Carlo mean of
        log q(z|x) − log p(z) over the draws (`kl_estimator`)."""
        if self.kl_estimator == "analytic":
            return draws.kl
        return tf.reduce_mean(draws.log_qz - draws.log_pz, axis=0)

    def bound(self, draws, reconstruction, regularizer):
        """The objective maximized per example, (batch,): with one draw the
        ELBO with its regularizer weighted by β_t (Kingma & Welling 2014,
        eq. 10; Higgins et al. 2017), with k > 1 draws the IWAE bound
        log (1/k) Σ_i p(x, z_i) / q(z_i|x) (Burda et al. 2016, eq. 8)."""
        if self.num_samples > 1:
            return tf.reduce_logsumexp(draws.log_weights, axis=0) - math.log(self.num_samples)
        return -(reconstruction + self.kl_weight() * regularizer)

    def kl_weight(self):
        """β_t = β min(1, step / kl_warmup_steps)."""
        if not self.kl_warmup_steps or not self.compiled:
            return tf.constant(self.beta, tf.float32)
        step = tf.cast(self.optimizer.iterations, tf.float32)
        return self.beta * tf.minimum(1.0, step / float(self.kl_warmup_steps))

    def _binarize(self, x):
        """A draw of Bernoulli(x) (dynamic binarization)."""
        return tf.cast(random_uniform(tf.shape(x), self.seed_generator) < x, tf.float32)

    def loss_terms(self, x, training=False):
        if training and self.dynamic_binarization:
            x = self._binarize(x)
        draws = self.posterior_draws(x, self.num_samples, training)
        reconstruction = self.reconstruction_term(draws)
        regularizer = self.regularizer(draws)
        return {
            "loss": -tf.reduce_mean(self.bound(draws, reconstruction, regularizer)),
            "reconstruction": tf.reduce_mean(reconstruction),
            "kl": tf.reduce_mean(regularizer),
            "elbo": -tf.reduce_mean(reconstruction + draws.kl),
        }

    # ------------------------------------------------------------ evaluation
    def elbo(self, x, batch_size=256, labels=None):
        """Per-example ELBO in nats, log p(x|z) at one posterior sample, analytic KL. (N,) numpy.

        A conditional model's is the ELBO of log p(x|y): pass `labels` (N,), or x as a dataset of (x, labels)."""
        batches = self._scored_batches(x, labels, batch_size)
        return np.concatenate([self._per_example_elbo_function(xb).numpy() for xb in batches])

    @functools.cached_property
    def _per_example_elbo_function(self):
        """x -> log p(x|z) − KL(q(z|x) ‖ p(z)) at one draw z ~ q(z|x), (batch,): one tf.function a model."""

        def per_example_elbo(x):
            draws = self.posterior_draws(x, 1)
            return draws.log_px_z[0] - draws.kl

        return tf.function(per_example_elbo)

    def log_likelihood(self, x, num_samples=1000, batch_size=100, chunk_size=250, verbose=0, labels=None):
        """Per-example importance-weighted estimate of log p(x) in nats, (N,) numpy.

        log p(x) ≈ log (1/k) Σ_i p(x, z_i) / q(z_i|x), z_i ~ q(z|x) (Burda et
        al. 2016). The k samples are drawn `chunk_size` at a time and combined
        with a running logsumexp, so memory is bounded by batch × chunk.
        `verbose=1` shows a Keras progress bar over the examples (k = 5000 on
        10,000 images is 50 million decoder passes: minutes). Runs under XLA
        when the model is compiled with it, as `compile()` does for dense models.
        A conditional model's is log p(x|y), every density given y: pass `labels`
        (N,), or x as a dataset of (x, labels).
        """
        num_samples = validation.check_positive_int(num_samples=num_samples)
        chunks = [chunk_size] * (num_samples // chunk_size)
        if num_samples % chunk_size:
            chunks.append(num_samples % chunk_size)
        log_weight_logsumexp = self._log_weight_logsumexp_functions[bool(self.compiled and self.jit_compile)]
        results = []
        progress = keras.utils.Progbar(None if isinstance(x, tf.data.Dataset) else len(x), unit_name="example")
        for xb in self._scored_batches(x, labels, batch_size):
            total = tf.fill([tf.shape(tf.nest.flatten(xb)[0])[0]], -np.inf)
            for k in chunks:
                total = tf.experimental.numpy.logaddexp(total, log_weight_logsumexp(xb, k))
            results.append((total - math.log(num_samples)).numpy())
            if verbose:
                progress.add(len(results[-1]), [("log p(x)", float(np.mean(results[-1])))])
        return np.concatenate(results)

    def _scored_batches(self, x, labels, batch_size):
        """The batches `elbo` and `log_likelihood` score, as `posterior_draws` takes them: x float32, or
        the pair (x, labels) of a conditional model, from arrays (checked whole) or a dataset."""
        if not self.conditional:
            if labels is not None:
                raise ValueError(f"{self.name} is not conditional: pass x alone, without labels.")
            for xb in evaluation_batches(x, batch_size):
                yield tf.cast(xb, tf.float32)
            return
        with self._input_errors_as_value_errors():
            checked = self._checked_with_labels(x, labels)
            if isinstance(checked, tf.data.Dataset):
                for ((xb, yb),) in checked:
                    yield tf.cast(xb, tf.float32), yb
                return
        x, labels = checked
        for start in range(0, len(x), batch_size):
            yield tf.cast(x[start : start + batch_size], tf.float32), labels[start : start + batch_size]

    @functools.cached_property
    def _log_weight_logsumexp_functions(self):
        """{jit_compile: (x, k) -> log Σ_i p(x, z_i) / q(z_i|x) over k draws z_i ~ q(z|x), (batch,)}: one
        tf.function a model and XLA setting, each traced once per (batch, k). `log_likelihood` takes the XLA one
        when the model is compiled with XLA (`compile`'s default for dense models): XLA fuses the log-densities
        of the (k, batch, *input_shape) decoder output, which TF's kernels run one op at a time, 2.5x faster
        (benchmarks/scoring.py)."""

        def log_weight_logsumexp(x, num_samples):
            return tf.reduce_logsumexp(self.posterior_draws(x, num_samples).log_weights, axis=0)

        return {jit: tf.function(log_weight_logsumexp, jit_compile=jit) for jit in (False, True)}

    def anomaly_score_batch(self, x):
        """The negative ELBO at the posterior mean, deterministic, so exportable:
        -[log p(x | z = E_q[z|x]) - KL(q(z|x) ‖ p(z))], the ELBO's one-draw
        estimate at the draw ε = 0. It replaces E_q log p(x|z) by its value at
        the mean of q, so it is not a bound on -log p(x), and for a posterior
        without a closed-form KL (`hierarchical_vae`) the KL is log q - log p at
        that z. Ranks examples as -`elbo` does, without its sampling noise."""
        draws = self.posterior_draws(x, 1, at_mean=True)
        return draws.kl - draws.log_px_z[0]

    def anomaly_score(self, x, batch_size=256):
        """The anomaly score of `anomaly_score_method` (see the class), numpy (N,) float32."""
        if self.anomaly_score_method == "negative_elbo":
            return super().anomaly_score(x, batch_size)
        with self._input_errors_as_value_errors():
            return -self.log_likelihood(self._checked(x), batch_size=batch_size)

    def unexported_endpoints(self):
        if self.anomaly_score_method == "negative_elbo":
            return {}
        why = (
            'anomaly_score_method="negative_log_likelihood" draws importance samples, random and not exportable; '
            'anomaly_score_method="negative_elbo" exports.'
        )
        endpoints = ("anomaly_score",) if self.anomaly_threshold is None else ("anomaly_score", "is_anomaly")
        return dict.fromkeys(endpoints, why)

    def active_units(self, x, threshold=0.01, batch_size=256, labels=None):
        """How many latent units are used: Cov_x(E_q[z_j|x]) > threshold
        (Burda et al. 2016, §5.2); a collapsed unit's posterior ignores x.
        A conditional model's are of E_q[z_j|x, y], given `labels` (N,)."""
        batches = self._scored_batches(x, labels, batch_size)
        means = np.concatenate([self.posterior_parameters(xb)[0].numpy() for xb in batches])
        return int(np.sum(means.var(axis=0) > threshold))

    def sample(self, n, seed=None):
        """n draws of the decoder mean at z ~ p(z): (n, *input_shape)."""
        return self.decode(self.prior_draws(n, seed))

    def prior_draws(self, n, seed=None):
        """n draws z ~ N(0, I), (n, latent_dim), from `seed` or, without one, the model's seed generator."""
        return keras.random.normal((int(n), self.latent_dim), seed=self.seed_generator if seed is None else seed)

    def latent_grid(self, n, low=0.05, high=0.95):
        """Decodes an n×n grid of standard-Normal quantiles in a 2-D latent
        space (Kingma & Welling 2014, fig. 4): (n*n, *input_shape), row-major,
        z_1 along the rows' columns, z_2 decreasing down the rows."""
        if self.latent_dim != 2:
            raise ValueError(f"latent_grid needs latent_dim=2; this model has latent_dim={self.latent_dim}.")
        quantiles = tfd.Normal(0.0, 1.0).quantile(tf.linspace(low, high, int(n)))
        z1, z2 = tf.meshgrid(quantiles, quantiles[::-1])
        return self.decode(tf.stack([tf.reshape(z1, [-1]), tf.reshape(z2, [-1])], axis=1))

    # ------------------------------------------------------ what it offers
    def posterior_outputs(self, x):
        """q(z|x) as the `encode` endpoint gives it: {"mean": μ, "log_variance": log σ² = 2 log σ}."""
        loc, scale = self.posterior_parameters(x)
        return {"mean": loc, "log_variance": 2.0 * tf.math.log(scale)}

    def export_endpoints(self):
        """The base's endpoints, with `encode` giving q(z|x)'s mean and
        log-variance, `decode` taking z, and `sample`: eps -> the decoder mean
        at z = eps ~ N(0, I), drawn by the caller so no random op is exported."""
        base = {endpoint.name: endpoint for endpoint in super().export_endpoints()}
        latent = (self.latent_dim,)

        def encode(x):
            return self.posterior_outputs(x)

        def decode(z):
            return {"reconstruction": self.decode(z)}

        def sample(eps):  # the prior is N(0, I): z = eps
            return {"sample": self.decode(eps)}

        own = {
            "encode": Endpoint("encode", "x", self.feature_shape, encode),
            "decode": Endpoint("decode", "z", latent, decode, example=base["decode"].example),
        }
        return [
            *(own.get(name, endpoint) for name, endpoint in base.items()),
            sample_endpoint(self.latent_dim, sample),
        ]

    def summary_images(self, examples):
        """The base's pictures, prior samples and, with a 2-D latent, the manifold."""
        pictures = super().summary_images(examples)
        shape = images.display_shape(self.feature_shape)
        samples = keras.ops.convert_to_numpy(self.sample(16, seed=0))
        pictures["prior_samples"] = images.tile(samples.reshape((-1, *shape)), columns=8)
        if self.latent_dim == 2:
            grid = keras.ops.convert_to_numpy(self.latent_grid(10))
            pictures["latent_manifold"] = images.tile(grid.reshape((-1, *shape)), columns=10)
        return pictures

    def get_config(self):
        return {
            **super().get_config(),
            "likelihood": self.likelihood,
            "decoder_scale": self.decoder_scale,
            "kl_estimator": self.kl_estimator,
            "beta": self.beta,
            "kl_warmup_steps": self.kl_warmup_steps,
            "num_samples": self.num_samples,
            "dynamic_binarization": self.dynamic_binarization,
            "scale_activation": self.scale_activation,
            "anomaly_score_method": self.anomaly_score_method,
        }


@register("vae")
class MLPVariationalAutoencoder(VariationalAutoencoder):
    """The VAE with MLP encoder and decoder (Kingma & Welling 2014, appendix C).

    Args:
        hidden_units: sizes of the encoder's hidden layers; the decoder mirrors them.
        activation: the hidden layers' activation ("tanh" in the paper).
        Other arguments: see `VariationalAutoencoder`.
    """

    def __init__(self, input_shape, latent_dim, hidden_units=(500,), activation="tanh", **kwargs):
        super().__init__(input_shape, latent_dim, **kwargs)
        self.hidden_units = validation.check_hidden_units(hidden_units)
        self.activation = activation
        # x -> hidden -> [μ, raw σ] (2 * latent_dim)
        self.encoder = layers.dense_encoder(
            self.encoder_input_shape(), self.hidden_units, 2 * self.latent_dim, activation, None, "encoder"
        )
        # z -> hidden -> likelihood parameters (logits or loc), one per pixel
        self.decoder = layers.dense_decoder(
            self.decoder_input_size(), self.hidden_units, self.feature_shape, activation, "decoder"
        )

    def encoder_input_shape(self):
        """What the encoder reads: x, (*input_shape); a conditional model's [x, one_hot(y)]."""
        return self.feature_shape

    def decoder_input_size(self):
        """What the decoder reads: z, latent_dim; a conditional model's [z, one_hot(y)]."""
        return self.latent_dim

    def get_config(self):
        return {**super().get_config(), "hidden_units": self.hidden_units, "activation": self.activation}


@register("conv_vae")
class ConvVariationalAutoencoder(VariationalAutoencoder):
    """The VAE with a strided Conv2D encoder and a Conv2DTranspose decoder.

    Args:
        filters, kernel_size, activation, batch_norm, residual_blocks: as for
            the `conv` autoencoder (filters="auto" chooses them from the image size).
        Other arguments: see `VariationalAutoencoder`.
    """

    faster_under_xla_on_cpu = False  # oneDNN's CPU convolutions beat XLA's (benchmarks/README.md)

    def __init__(
        self,
        input_shape,
        latent_dim,
        filters=(32, 64),
        kernel_size=3,
        activation="relu",
        batch_norm=False,
        residual_blocks=0,
        **kwargs,
    ):
        super().__init__(input_shape, latent_dim, **kwargs)
        self.filters, self.batch_norm, self.residual_blocks = validation.check_conv_network(
            self.feature_shape, filters, batch_norm, residual_blocks, "conv_vae"
        )
        self.kernel_size = int(kernel_size)
        self.activation = activation
        # x -> [μ, raw σ] (2 * latent_dim); z -> likelihood parameters, one per pixel
        self.encoder, self.decoder = layers.conv_networks(
            self.feature_shape,
            self.filters,
            self.kernel_size,
            activation,
            self.latent_dim,
            2 * self.latent_dim,
            batch_norm=self.batch_norm,
            residual_blocks=self.residual_blocks,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "activation": self.activation,
            "batch_norm": self.batch_norm,
            "residual_blocks": self.residual_blocks,
        }
