"""The model contract of keras-ae: what a new variant reads.

`Autoencoder` owns the one `train_step`/`test_step` of the zoo, one
`keras.metrics.Mean` per loss term, and the checked entry points: `fit`,
`evaluate`, `predict`, their `*_on_batch` forms, `model(x)`, and every
variant's `encode` and `decode`, which turn bad data into a one-line
`ValueError` and leave the weights as they were. A variant builds its
sub-networks in `__init__` and fills in hooks:

- `encode`, `decode` and `loss_terms` (or, for a deterministic autoencoder,
  `ReconstructingAutoencoder`'s `penalties` and `corrupt`);
- what it offers beyond that: `anomaly_score_batch` (how far an example is
  from the data it learned; the squared reconstruction error by default),
  `export_endpoints` (what an export serves) and `unexported_endpoints` (what
  it cannot serve, and why), `output_range` (the data its decoder models),
  `input_range` (the data its loss is defined on), `summary_images` (what
  TensorBoard shows), `faster_under_xla_on_cpu`.

Code outside `keras_ae/models/` asks a model through these, never for its class.
Elsewhere: how steps execute (`keras_ae.execution`), random draws
(`keras_ae.random_ops`), what a replica reads of the global batch under
`tf.distribute` (`keras_ae.replicas`), workarounds of upstream bugs
(`keras_ae.compat`).
"""

import contextlib
import functools
import inspect
import math

import keras
import numpy as np
import tensorflow as tf

from keras_ae import compat, execution, images, losses, replicas, validation
from keras_ae.endpoints import Endpoint, anomaly_differences


class Autoencoder(keras.Model):
    """Base of every keras-ae model.

    Args:
        input_shape: shape of one example, without the batch axis.
        latent_dim: size of the code h.
        seed: int seed of the model's random draws (corruption noise, posterior
            samples), or None for a fresh one.
        anomaly_threshold: the anomaly score above which `is_anomaly` flags an
            example, as `fit_anomaly_threshold` sets it; None until fitted.

    Subclasses create their sub-networks in `__init__` and override:
        `encode(x, training)`, `decode(h, training)` and `loss_terms(x, training)`;
        `loss_term_names`: the names `loss_terms` returns, reported as metrics;
        `loss_terms` may also return "loss" when the optimized loss is not the
        plain sum of the terms.
    """

    loss_term_names = ("reconstruction",)
    # The registry key, set by `keras_ae.registry.register`.
    registry_name = None
    # Whether XLA's CPU code runs this model's training step faster than TF's
    # own kernels: `compile`'s "auto" turns XLA on for it on CPU. False for
    # convolutions (oneDNN's are faster); a variant sets it for its own step.
    faster_under_xla_on_cpu = True
    # Whether the model is conditioned on a class label y (`cvae`): it then sets `num_classes`, takes
    # `fit(x, labels)` (or a dataset of (x, labels)) and `model((x, labels))`, and its hooks (`loss_terms`,
    # `encode`, `decode`) take the argument `labels`, int (batch,). Any other model refuses y.
    conditional = False
    # Whether the model has a prior learned after it (`vqvae`'s PixelCNN): it then has
    # `fit_prior(x, epochs, batch_size, validation_data, verbose)`, which `keras-ae train` calls after
    # `fit`, and `prior_fitted`, after which `sample(n, seed)` draws from it.
    learned_prior = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # A variant's own encode and decode check what they are given, as model(x) does.
        for name, expected_shape in (
            ("encode", lambda model: model.feature_shape),
            ("decode", lambda model: model.code_shape),
        ):
            if name in vars(cls):
                setattr(cls, name, _checking(vars(cls)[name], expected_shape))

    def __init__(self, input_shape, latent_dim, seed=None, anomaly_threshold=None, **kwargs):
        super().__init__(**kwargs)
        self.feature_shape = validation.check_input_shape(input_shape)
        self.num_features = math.prod(self.feature_shape)
        self.latent_dim = validation.check_positive_int(latent_dim=latent_dim)
        self.seed = seed
        number = isinstance(anomaly_threshold, (int, float, np.number)) and not isinstance(anomaly_threshold, bool)
        if anomaly_threshold is not None and not (number and math.isfinite(anomaly_threshold)):
            raise ValueError(f"anomaly_threshold must be a finite number or None; got {anomaly_threshold!r}.")
        self.anomaly_threshold = None if anomaly_threshold is None else float(anomaly_threshold)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_trackers = [keras.metrics.Mean(name=name) for name in ("loss", *self.loss_term_names)]
        # Every sub-network is created with its input shape known, so a model
        # is complete at construction: mark it built (a train_step that never
        # calls self(x) would leave it unbuilt for saving and export).
        self.built = True

    # ----------------------------------------------------------------- model API
    @property
    def code_shape(self):
        """The shape of one code, without the batch axis: what `decode` takes. (latent_dim,)
        but for a model with a grid of codes (a VQ-VAE's code indices)."""
        return (self.latent_dim,)

    def encode(self, x, training=False):
        """The code h of x, shape (batch, latent_dim)."""
        raise NotImplementedError

    def decode(self, h, training=False):
        """The reconstruction x~ of a code h, shape (batch, *input_shape)."""
        raise NotImplementedError

    def __call__(self, x, *args, **kwargs):
        # x is checked here, as Keras adds lines to the errors raised in `call`.
        validation.check_inputs(x, self.feature_shape, self.num_classes if self.conditional else None)
        return super().__call__(x, *args, **kwargs)

    def call(self, x, training=False):
        return self.decode(self.encode(x, training=training), training=training)

    def loss_terms(self, x, training=False):
        """Named scalar terms for a batch x, each summed over features, mean over the batch."""
        raise NotImplementedError

    def total_loss(self, terms):
        """The optimized loss: `terms["loss"]` when a model gives it (a VAE's
        β-weighted or IWAE objective), else the sum of the named terms."""
        if "loss" in terms:
            return terms["loss"]
        return tf.add_n([terms[name] for name in self.loss_term_names])

    # ------------------------------------------------------ what a model offers
    def output_range(self):
        """(low, high): the values the decoder's output can take, and so the
        data it models; None when unbounded."""
        return None

    def input_range(self):
        """(low, high): the values data must take for the model's loss to be
        defined, e.g. [0, 1] for a Bernoulli likelihood; None for any. `fit`,
        `evaluate`, `predict` and their `*_on_batch` forms refuse data outside it."""
        return None

    def anomaly_score_batch(self, x):
        """The anomaly score of each example of a batch x, a float32 tensor (batch,):
        higher is farther from the data the model learned. The hook of `anomaly_score`,
        `is_anomaly` and the exported `anomaly_score` and `is_anomaly`, so deterministic.
        By default the squared reconstruction error ||x - x~||² summed over the features,
        the score of alibi-detect's and PyOD's autoencoder detectors."""
        return losses.squared_error(x, self(x, training=False))

    def export_endpoints(self):
        """The functions an export serves, in signature order (`Endpoint`):
        reconstruct (also `serving_default`), encode, decode, anomaly_score
        (x -> its score) and, once a threshold is fitted, is_anomaly (x -> the
        flag score > threshold, a bool, and the score); less `unexported_endpoints`."""
        features, code = self.feature_shape, self.code_shape
        threshold = self.anomaly_threshold

        def reconstruct(x):
            return {"reconstruction": self(x, training=False)}

        def encode(x):
            return {"code": self.encode(x)}

        def decode(h):
            return {"reconstruction": self.decode(h)}

        def codes_of(x):
            return keras.ops.convert_to_numpy(self.encode(x))

        def anomaly_score(x):
            return {"anomaly_score": self.anomaly_score_batch(x)}

        def is_anomaly(x):
            score = self.anomaly_score_batch(x)
            return {"is_anomaly": score > threshold, "anomaly_score": score}

        endpoints = [
            Endpoint("serving_default", "x", features, reconstruct),
            Endpoint("encode", "x", features, encode),
            Endpoint("decode", "code", code, decode, example=codes_of),
            Endpoint("reconstruct", "x", features, reconstruct, same_as="serving_default"),
            Endpoint("anomaly_score", "x", features, anomaly_score, compare=anomaly_differences(self.num_features)),
        ]
        if threshold is not None:
            compare = anomaly_differences(self.num_features, threshold)
            endpoints.append(Endpoint("is_anomaly", "x", features, is_anomaly, compare=compare))
        unexported = self.unexported_endpoints()
        return [endpoint for endpoint in endpoints if endpoint.name not in unexported]

    def unexported_endpoints(self):
        """{endpoint name: why an export leaves it out, in one line}: what the model
        computes but cannot serve, e.g. a score that needs random draws."""
        return {}

    def filter_images(self):
        """The first layer's filters as images (n, h, w, c), or None."""
        encoder = getattr(self, "encoder", None)
        return None if encoder is None else images.first_layer_filters(encoder, self.feature_shape)

    def summary_images(self, examples):
        """Pictures of the model on `examples` (inputs, at least one):
        {name: (H, W, C) image in [0, 1]}. Inputs beside their
        reconstructions and the first layer's filters; a generative model
        adds its samples."""
        shape = images.display_shape(self.feature_shape)
        shown = np.asarray(examples[:16], np.float32)
        reconstructions = keras.ops.convert_to_numpy(self(shown, training=False)).astype(np.float32)
        pairs = np.stack([shown.reshape((-1, *shape)), reconstructions.reshape((-1, *shape))], axis=1)
        pictures = {"reconstructions": images.tile(pairs.reshape((-1, *shape)), columns=8)}
        filters = self.filter_images()
        if filters is not None:
            pictures["filters"] = images.tile(filters, math.ceil(math.sqrt(len(filters))), normalize="each")
        return pictures

    # ------------------------------------------------------- anomaly detection
    def anomaly_score(self, x, batch_size=256):
        """The anomaly score of every example of x (`anomaly_score_batch`), numpy (N,) float32.

        Args:
            x: an array (N, *input_shape), or a `tf.data.Dataset` of batches of x
                (or of (x,)), checked as `predict` checks them.
            batch_size: examples per batch of an array.
        """
        with self._input_errors_as_value_errors():
            batches = evaluation_batches(self._checked(x), batch_size)
            return np.concatenate([self._anomaly_score_function(tf.cast(b, tf.float32)).numpy() for b in batches])

    @functools.cached_property
    def _anomaly_score_function(self):
        """`anomaly_score_batch` as one tf.function a model, traced once per batch shape."""
        return tf.function(self.anomaly_score_batch)

    def fit_anomaly_threshold(self, x, false_positive_rate=0.01, batch_size=256):
        """Sets `anomaly_threshold` so that at most `false_positive_rate` of x, normal
        (validation) data, score above it, and returns it.

        The threshold is the (n - ⌊rate · n⌋)-th smallest of the n scores: the
        smallest score above which at most rate · n of x lie, so on fresh data of
        x's distribution about that fraction is flagged. It is stored in the
        model's config: a saved model, a preset and an export keep it.
        """
        rate = false_positive_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.number)) or not 0 <= rate < 1:
            raise ValueError(f"false_positive_rate must be a number in [0, 1); got {rate!r}.")
        scores = np.sort(self.anomaly_score(x, batch_size))
        self.anomaly_threshold = float(scores[len(scores) - 1 - math.floor(rate * len(scores))])
        return self.anomaly_threshold

    def is_anomaly(self, x, batch_size=256):
        """Whether each example of x scores above `anomaly_threshold`: numpy (N,) bool."""
        if self.anomaly_threshold is None:
            raise ValueError("No anomaly threshold: call model.fit_anomaly_threshold(x_validation) first.")
        return self.anomaly_score(x, batch_size) > np.float32(self.anomaly_threshold)

    # ---------------------------------------------------------------- the step
    def compile(self, optimizer="adam", jit_compile="auto", steps_per_execution=None, **kwargs):
        """Like `keras.Model.compile`, with Adam by default and no `loss`: each
        model knows its own, and with defaults for speed (`keras_ae.execution`).

        `jit_compile="auto"` (the default) compiles the training step with XLA
        wherever the model runs faster with it: on CPU too, where Keras' own
        "auto" never does, but for the models XLA's CPU code makes slower
        (`faster_under_xla_on_cpu`). It stays off, as in Keras, with
        `run_eagerly`, under a `tf.distribute` strategy, with op determinism enabled
        (`tf.config.experimental.enable_op_determinism`), or when a layer does
        not support XLA. Pass `jit_compile=False` to turn it off.

        `steps_per_execution` defaults to `execution.STEPS_PER_EXECUTION` (32),
        or 1 under a `tf.distribute` strategy: `fit` runs that many steps per
        call of its compiled function, so batch-level callbacks
        (`on_train_batch_end`, `save_freq` counted in batches) see every 32nd
        batch; epochs, metrics, the progress bar's counts and the optimizer's
        step count are unchanged. Pass `steps_per_execution=1` for every
        batch. With XLA on one device the steps of one call run as a single
        XLA program.
        """
        if kwargs.get("loss") is not None:
            raise ValueError(
                f"{type(self).__name__} defines its own loss terms {self.loss_term_names}; compile it without `loss`."
            )
        if jit_compile == "auto" and execution.default_jit_compile(self, kwargs.get("run_eagerly", False)):
            jit_compile = True
        if steps_per_execution is None:
            steps_per_execution = execution.default_steps_per_execution(self)
        super().compile(optimizer=optimizer, jit_compile=jit_compile, steps_per_execution=steps_per_execution, **kwargs)

    def compile_from_config(self, config):
        # Keras skips compiling a loaded model whose compile() is overridden.
        config = keras.saving.deserialize_keras_object(config)
        config.pop("loss", None)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    @property
    def metrics(self):
        return list(self.loss_trackers)

    def _inputs(self, data):
        """(x, the keywords of the condition): {"labels": y} for a conditional model, else {}."""
        x, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        if self.conditional and labels is None:  # the pair as Keras' x (`_checked_with_labels`), not as (x, y)
            x, labels = x
        # Traced once per input signature: a wrong shape fails here, at trace time.
        validation.check_feature_shape(x.shape, self.feature_shape)
        return tf.cast(x, tf.float32), {"labels": labels} if self.conditional else {}

    def train_step(self, data):
        x, condition = self._inputs(data)
        with tf.GradientTape() as tape:
            terms = self.loss_terms(x, training=True, **condition)
            loss = self.total_loss(terms)
            # Gradients are all-reduced with SUM across replicas: this batch's
            # mean weighted by its share n_r / N of the global batch, so the
            # update is the global batch's mean on any split (replicas.share).
            scaled = loss * replicas.share(tf.shape(x)[0])
            # Mixed precision: LossScaleOptimizer scales here and unscales in apply().
            scaled = self.optimizer.scale_loss(scaled)
        gradients = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        return self._update_trackers(loss, terms, tf.shape(x)[0])

    def test_step(self, data):
        x, condition = self._inputs(data)
        terms = self.loss_terms(x, training=False, **condition)
        return self._update_trackers(self.total_loss(terms), terms, tf.shape(x)[0])

    def make_train_function(self, force=False):
        """Keras' train function, or its fused XLA execution (`keras_ae.execution`)."""
        if self.train_function is not None and not force:
            return self.train_function
        super().make_train_function(force=True)
        self.train_function = execution.train_function(self, self.train_function)
        return self.train_function

    def _update_trackers(self, loss, terms, batch_size):
        values = {**terms, "loss": loss}
        # Weighted by the batch size, so an epoch's value is the mean over
        # examples even when the last batch is short. A replica's batch may
        # hold no example (a global batch of one split 1/0): its means are
        # 0/0 = NaN, and it adds nothing.
        for tracker in self.loss_trackers:
            value = values[tracker.name]
            tracker.update_state(tf.where(batch_size > 0, value, tf.zeros_like(value)), sample_weight=batch_size)
        logs = {tracker.name: tracker.result() for tracker in self.loss_trackers}
        return compat.distributable_logs(logs, self.distribute_strategy)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None or iterator is None:
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        return compat.symbolic_build_from_first_replica(self, iterator)

    # ------------------------------------------------------ checked entry points
    def _checked(self, x, y=None):
        """The data of `fit`, `evaluate` and `predict`: inputs alone, in `input_range()`; an
        array checked whole, a dataset batch by batch as it streams. A conditional model's: (x, labels)."""
        if self.conditional:
            return self._checked_with_labels(x, y)
        if y is not None or (isinstance(x, tuple) and len(x) > 1):  # also validation_data=(x, y)
            raise ValueError(f"{validation.TARGETS_MESSAGE} Pass x alone, not (x, y).")
        if x is None:
            return None
        if isinstance(x, tf.data.Dataset):
            return validation.check_dataset(x, self.feature_shape, self.input_range())
        if isinstance(x, tf.distribute.DistributedDataset):  # its workers' datasets are out of reach: the
            return x  # caller checks them (`check_dataset` in the dataset function, as training.train does)
        if isinstance(x, tuple) and len(x) == 1:
            x = x[0]
        return validation.check_array(x, self.feature_shape, self.input_range())

    def _checked_with_labels(self, x, labels):
        """A conditional model's data: arrays x and labels (also as the pair x, as in
        validation_data=(x, labels) and predict((x, labels))), checked whole, or a dataset
        of (x, labels) batches, checked as it streams; either returned as what Keras takes
        for its x, the pair (x, labels), which `_inputs` splits."""
        if labels is None and isinstance(x, (tuple, list)) and len(x) == 2:
            x, labels = x
        if x is None or isinstance(x, tf.distribute.DistributedDataset):  # see `_checked`
            return x
        if isinstance(x, tf.data.Dataset) and labels is None:  # the pair as Keras' x, which `predict` calls on
            spec = x.element_spec
            if isinstance(spec, tuple) and len(spec) == 1 and isinstance(spec[0], tuple):
                x = x.map(lambda pair: pair)  # ((x, labels),), as `fit` gives `evaluate` its validation data
            checked = validation.check_dataset(x, self.feature_shape, self.input_range(), self.num_classes)
            return checked.map(lambda x, labels: ((x, labels),))
        if labels is None or isinstance(x, tf.data.Dataset):
            raise ValueError(f"{validation.LABELS_MESSAGE} Pass (x, labels) arrays, or a dataset of (x, labels).")
        x = validation.check_array(x, self.feature_shape, self.input_range())
        return x, validation.check_labels(labels, self.num_classes, len(x))

    @contextlib.contextmanager
    def _input_errors_as_value_errors(self, restore=None):
        """A batch failing a check of `validation.check_dataset` in the graph, or in the
        `evaluate` that `fit` runs on validation data, raises the check's one-line
        `BadBatchError`, a `ValueError`, after `restore()` when given."""
        try:
            yield
        except (tf.errors.InvalidArgumentError, validation.BadBatchError) as error:
            message = validation.failed_check(error)
            if message is None:
                raise
            if restore is not None:
                restore()
            raise validation.BadBatchError(message) from None

    def _restorer(self):
        """A function that sets the model's and its optimizer's variables back to their values now."""
        if not self.optimizer.built:  # built now, as `fit` would, so that its state is restored too
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)
        variables = [*self.variables, *self.optimizer.variables]
        values = [keras.ops.convert_to_numpy(variable) for variable in variables]

        def restore():
            for variable, value in zip(variables, values, strict=True):
                variable.assign(value)

        return restore

    def fit(self, x=None, y=None, *args, validation_data=None, **kwargs):
        """`keras.Model.fit` on inputs alone: an autoencoder's target is its input.

        A dataset's batches are checked as they stream: a bad one raises with
        the model's and its optimizer's variables as `fit` found them."""
        x = self._checked(x, y)
        validation_data = self._checked(validation_data)
        streamed = not isinstance(x, np.ndarray) or not isinstance(validation_data, (np.ndarray, type(None)))
        restore = self._restorer() if streamed and self.compiled else None
        with compat.true_batch_counts(), self._input_errors_as_value_errors(restore):
            return super().fit(x, None, *args, validation_data=validation_data, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        with compat.true_batch_counts(), self._input_errors_as_value_errors():
            return super().evaluate(self._checked(x, y), None, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        with compat.true_batch_counts(), self._input_errors_as_value_errors():
            return super().predict(self._checked(x), *args, **kwargs)

    def train_on_batch(self, x, y=None, *args, **kwargs):
        return super().train_on_batch(self._checked(x, y), None, *args, **kwargs)

    def test_on_batch(self, x, y=None, *args, **kwargs):
        return super().test_on_batch(self._checked(x, y), None, *args, **kwargs)

    def predict_on_batch(self, x):
        return super().predict_on_batch(self._checked(x))

    # ---------------------------------------------------------------- config
    def get_config(self):
        return {
            "name": self.name,
            # The dtype policy, e.g. mixed_float16, as every Keras layer's config has it.
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "input_shape": list(self.feature_shape),
            "latent_dim": self.latent_dim,
            "seed": self.seed,
            "anomaly_threshold": self.anomaly_threshold,
        }

    @classmethod
    def from_config(cls, config):
        """The model of `config`, built under its dtype policy: the sub-networks
        a model creates in `__init__` take the global policy, not the model's."""
        previous_policy = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy(keras.dtype_policies.get(config.get("dtype")))
        try:
            return cls(**config)
        finally:
            keras.mixed_precision.set_global_policy(previous_policy)


def evaluation_batches(x, batch_size):
    """The inputs of an evaluation (anomaly scores, a VAE's `elbo`, `log_likelihood`, active
    units) in batches: slices of an array, or a dataset's batches (x, or the x of (x,))."""
    if isinstance(x, tf.data.Dataset):
        for batch in x:
            yield batch[0] if isinstance(batch, tuple) else batch
    else:
        x = np.asarray(x, np.float32)
        for start in range(0, len(x), batch_size):
            yield x[start : start + batch_size]


def _checking(method, expected_shape):
    """A variant's `encode` or `decode`, checking its input against `expected_shape(model)`
    (`validation.check_inputs`) when called as the model's own method: not when an override
    calls it through super(), with an input of its own."""
    first = list(inspect.signature(method).parameters)[1]  # after self

    @functools.wraps(method)
    def checked(self, *args, **kwargs):
        if getattr(type(self), method.__name__) is checked:
            validation.check_inputs(args[0] if args else kwargs.get(first), expected_shape(self))
        return method(self, *args, **kwargs)

    return checked


RECONSTRUCTION_LOSSES = ("mse", "bce")


class ReconstructingAutoencoder(Autoencoder):
    """A deterministic autoencoder: x -> h = encode(x) -> x~ = decode(h).

    Its loss is `reconstruction` (summed over features, mean over the batch)
    plus the terms of the variant's one regularizer hook, `penalties`; a
    denoising variant also overrides `corrupt`. A subclass sets
    `self.encoder` (x -> h) and `self.decoder` (h -> the output's
    pre-activation, e.g. logits).

    Args:
        output_activation: activation of the reconstruction, e.g. "sigmoid" for
            data in [0, 1] or None for unbounded (e.g. standardized) data.
        reconstruction_loss: "mse" for the squared error ||x - x~||², or "bce"
            for the cross-entropy of data in [0, 1] (needs a sigmoid output,
            computed from the logits so it never takes log(0)).
        weight_decay: λ of the L2 penalty λ Σ ||W||² on every kernel (a tied
            kernel once), reported as the `weight_decay` term: the "autoencoder
            with weight decay" of Vincent et al. (2010) and Ng (2011), whose
            J = ½||x - x~||² + λ/2 Σ W² is half of ours at the same λ.
    """

    def __init__(
        self,
        input_shape,
        latent_dim,
        output_activation="sigmoid",
        reconstruction_loss="mse",
        weight_decay=0.0,
        **kwargs,
    ):
        super().__init__(input_shape, latent_dim, **kwargs)
        validation.check_choice(reconstruction_loss=(reconstruction_loss, RECONSTRUCTION_LOSSES))
        validation.check_non_negative(weight_decay=weight_decay)
        if reconstruction_loss == "bce" and output_activation != "sigmoid":
            raise ValueError(
                'reconstruction_loss="bce" models data in [0, 1] and needs output_activation="sigmoid"; '
                f"got {output_activation!r}."
            )
        self.output_activation = output_activation
        self.output_activation_fn = keras.activations.get(output_activation)
        self.reconstruction_loss = reconstruction_loss
        self.weight_decay = float(weight_decay)
        if self.weight_decay:  # one more reported term
            self.loss_term_names = (*self.loss_term_names, "weight_decay")
            self.loss_trackers.append(keras.metrics.Mean(name="weight_decay"))

    def encode(self, x, training=False):
        return compat.call_network(self.encoder, tf.cast(x, self.compute_dtype), training=training)

    def decoder_output(self, h, training=False):
        """The decoder's pre-activation output (logits for a sigmoid output)."""
        return compat.call_network(self.decoder, h, training=training)

    def decode(self, h, training=False):
        return self.output_activation_fn(self.decoder_output(h, training=training))

    def output_range(self):
        return (0.0, 1.0) if self.output_activation == "sigmoid" else None

    def input_range(self):
        return (0.0, 1.0) if self.reconstruction_loss == "bce" else None

    def corrupt(self, x):
        """The training-time corruption of the input; none by default."""
        return x

    def penalties(self, x, h, training=False):
        """The regularizer hook: named terms added to the loss, given the
        (possibly corrupted) input x and its code h."""
        return {}

    def loss_terms(self, x, training=False):
        inputs = self.corrupt(x) if training else x
        h = self.encode(inputs, training=training)
        output = self.decoder_output(h, training=training)
        return {
            "reconstruction": self.reconstruction_error(x, output),
            **self.penalties(inputs, h, training),
            **self.weight_decay_term(),
        }

    def reconstruction_error(self, x, output):
        """The configured loss of x against the decoder's raw `output` (logits for "bce"), mean over the batch."""
        if self.reconstruction_loss == "bce":
            return tf.reduce_mean(losses.sigmoid_cross_entropy(x, output))
        return tf.reduce_mean(losses.squared_error(x, self.output_activation_fn(output)))

    def weight_decay_term(self):
        """{"weight_decay": λ Σ ||W||²} with a weight decay λ, else {}."""
        return {"weight_decay": self.weight_decay * self.squared_kernel_norm()} if self.weight_decay else {}

    def squared_kernel_norm(self, network=None):
        """Σ ||W||² over the kernels of `network` (by default the model; biases excluded; a tied kernel once)."""
        kernels = [v for v in (self if network is None else network).trainable_variables if v.path.endswith("kernel")]
        return tf.add_n([tf.reduce_sum(tf.square(tf.cast(kernel, tf.float32))) for kernel in kernels])

    def get_config(self):
        return {
            **super().get_config(),
            "output_activation": self.output_activation,
            "reconstruction_loss": self.reconstruction_loss,
            "weight_decay": self.weight_decay,
        }
