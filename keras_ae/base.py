"""The `Autoencoder` base: the one `train_step`/`test_step` of the zoo.

A variant builds its encoder and decoder and contributes named loss terms
through `loss_terms`; it never writes a training step. The base owns:

- the GradientTape step, right under `tf.distribute` (the per-replica loss is
  divided by the number of replicas, since gradients are all-reduced with SUM)
  and under mixed precision (`optimizer.scale_loss`);
- one `keras.metrics.Mean` per loss term, so `fit` and `evaluate` report
  every term beside `loss`;
- input checks that turn bad data into a `ValueError` before any weight moves;
- the workarounds for Keras 3 under `MultiWorkerMirroredStrategy`.
"""

import contextlib

import keras
import numpy as np
import tensorflow as tf

from keras_ae import layers, losses, validation


def _is_multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


# ------------------------------------------------------------- random draws
# `keras.random.normal/uniform` call TF's stateless ops with alg="auto_select".
# Under XLA on CPU that lowers to an RngBitGenerator that is 10-30x slower
# than naming its algorithm, Philox (0.6 ms instead of 0.06 ms for 2,000
# normals; 19 ms instead of 1 ms for a 100x784 batch) while giving the same
# bits, as auto_select also picks Philox without XLA. These are
# `keras.random.normal/uniform` bit for bit (tests/test_fast_defaults.py),
# with the algorithm named. Only for a `SeedGenerator` (a model's
# `seed_generator`): an int or None seed goes to keras.random itself, as
# under XLA a constant seed's auto_select stream is not Philox's.
def _draw_seed(seed_generator):
    seed = seed_generator.next()
    if seed.dtype != tf.int32:  # as keras.src.backend.tensorflow.random._cast_seed
        seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)
    return seed


def random_normal(shape, seed, dtype=None):
    """`keras.random.normal(shape, dtype=dtype, seed=seed)`, fast under XLA.

    `seed`: a `keras.random.SeedGenerator` (a model's `seed_generator`), an int, or None.
    """
    if not isinstance(seed, keras.random.SeedGenerator):
        return keras.random.normal(shape, dtype=dtype, seed=seed)
    dtype = dtype or keras.config.floatx()
    return tf.random.stateless_normal(shape, seed=_draw_seed(seed), dtype=dtype, alg="philox")


def random_uniform(shape, seed, dtype=None):
    """`keras.random.uniform(shape, dtype=dtype, seed=seed)` on [0, 1), fast under XLA."""
    if not isinstance(seed, keras.random.SeedGenerator):
        return keras.random.uniform(shape, dtype=dtype, seed=seed)
    dtype = dtype or keras.config.floatx()
    return tf.random.stateless_uniform(shape, seed=_draw_seed(seed), dtype=dtype, alg="philox")


# `compile`'s default `steps_per_execution`: training steps per call of the
# compiled function. It spares Keras' per-call Python work (callbacks, the
# iterator, the function call), a tenth of a small model's step time on CPU.
STEPS_PER_EXECUTION = 32


class Autoencoder(keras.Model):
    """Base of every keras-ae model.

    Args:
        input_shape: shape of one example, without the batch axis.
        latent_dim: size of the code h.
        seed: int seed of the model's random draws (corruption noise, posterior
            samples), or None for a fresh one.

    Subclasses create their sub-networks in `__init__` and override:
        `encode(x, training)`, `decode(h, training)` and `loss_terms(x, training)`;
        `loss_term_names`: the names `loss_terms` returns, reported as metrics;
        `loss_terms` may also return "loss" when the optimized loss is not the
        plain sum of the terms.
    """

    loss_term_names = ("reconstruction",)

    def __init__(self, input_shape, latent_dim, seed=None, **kwargs):
        super().__init__(**kwargs)
        try:
            feature_shape = tuple(int(d) for d in input_shape)
        except (TypeError, ValueError):
            raise ValueError(
                f"input_shape must be a tuple of positive ints without the batch axis; got {input_shape!r}."
            ) from None
        if not feature_shape or any(d < 1 for d in feature_shape):
            raise ValueError(
                f"input_shape must be a non-empty tuple of positive ints; got {input_shape!r}."
            )
        if isinstance(latent_dim, bool) or int(latent_dim) != latent_dim or latent_dim < 1:
            raise ValueError(f"latent_dim must be an int >= 1; got {latent_dim!r}.")
        self.feature_shape = feature_shape
        self.num_features = int(np.prod(feature_shape))
        self.latent_dim = int(latent_dim)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_trackers = [
            keras.metrics.Mean(name=name) for name in ("loss",) + tuple(self.loss_term_names)
        ]
        # Every sub-network is created with its input shape known, so a model
        # is complete at construction: mark it built (a train_step that never
        # calls self(x) would leave it unbuilt for saving and export).
        self.built = True

    # ----------------------------------------------------------------- model API
    def encode(self, x, training=False):
        """The code h of x, shape (batch, latent_dim)."""
        raise NotImplementedError

    def decode(self, h, training=False):
        """The reconstruction x~ of a code h, shape (batch, *input_shape)."""
        raise NotImplementedError

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

    # ---------------------------------------------------------------- the step
    def compile(self, optimizer="adam", jit_compile="auto", steps_per_execution=None, **kwargs):
        """Like `keras.Model.compile`, with Adam by default and no `loss`: each
        model knows its own, and with defaults for speed (benchmarks/README.md).

        `jit_compile="auto"` (the default) compiles the training step with XLA
        wherever it can run: on CPU too, where Keras' own "auto" never does,
        but for the models XLA's CPU code makes slower (convolutional ones,
        the contractive AE's tape Jacobian). It stays off, as in Keras, with
        `run_eagerly`, under a `tf.distribute` strategy, with op determinism enabled
        (`tf.config.experimental.enable_op_determinism`), or when a layer does
        not support XLA. Pass `jit_compile=False` to turn it off.

        `steps_per_execution` defaults to `STEPS_PER_EXECUTION` (32), or 1
        under a `tf.distribute` strategy: `fit` runs that many steps per call
        of its compiled function, so batch-level callbacks
        (`on_train_batch_end`, progress bars, `save_freq` counted in batches)
        see every 32nd batch; epochs, metrics and the optimizer's step count
        are unchanged. Pass `steps_per_execution=1` for every batch. With XLA
        on one device the steps of one call run as a single XLA program
        (`make_train_function`).
        """
        if kwargs.get("loss") is not None:
            raise ValueError(
                f"{type(self).__name__} defines its own loss terms {self.loss_term_names}; "
                "compile it without `loss`."
            )
        if jit_compile == "auto" and self._xla_by_default(kwargs.get("run_eagerly", False)):
            jit_compile = True
        if steps_per_execution is None:
            # Under tf.distribute, Keras 3.15's multi-step loop fails ("You must
            # feed a value for placeholder tensor .../while/cond/Placeholder").
            steps_per_execution = STEPS_PER_EXECUTION if self._distribute_strategy is None else 1
        super().compile(optimizer=optimizer, jit_compile=jit_compile, steps_per_execution=steps_per_execution, **kwargs)

    def _xla_by_default(self, run_eagerly):
        """Whether "auto" means XLA: Keras' own rule, on CPU too where the
        model is faster under XLA (`_faster_under_xla_on_cpu`)."""
        if run_eagerly or self._distribute_strategy is not None:
            return False
        try:
            from keras.src.trainers.trainer import model_supports_jit
        except ImportError:  # a Keras without it: leave "auto" to Keras
            return False
        if not tf.config.list_physical_devices("GPU") and not self._faster_under_xla_on_cpu():
            return False
        # False for a layer without XLA support, and with op determinism on.
        return model_supports_jit(self)

    def _faster_under_xla_on_cpu(self):
        """False where XLA's CPU code is slower than TF's own kernels: for
        convolutions (oneDNN's are faster: the conv VAE runs 0.6x as many
        steps per second under XLA). A variant overrides it for its own step."""
        return not any("Conv" in type(layer).__name__ for layer in self._flatten_layers())

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
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        # Traced once per input signature: a wrong shape fails here, at trace time.
        validation.check_feature_shape(x.shape, self.feature_shape)
        return tf.cast(x, tf.float32)

    def train_step(self, data):
        x = self._inputs(data)
        with tf.GradientTape() as tape:
            terms = self.loss_terms(x, training=True)
            loss = self.total_loss(terms)
            # Gradients are all-reduced with SUM across replicas: scale the
            # per-replica mean so the update equals the global-batch mean.
            scaled = loss / tf.cast(self.distribute_strategy.num_replicas_in_sync, loss.dtype)
            # Mixed precision: LossScaleOptimizer scales here and unscales in apply().
            scaled = self.optimizer.scale_loss(scaled)
        gradients = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        return self._update_trackers(loss, terms, tf.shape(x)[0])

    def test_step(self, data):
        x = self._inputs(data)
        terms = self.loss_terms(x, training=False)
        return self._update_trackers(self.total_loss(terms), terms, tf.shape(x)[0])

    def make_train_function(self, force=False):
        """Keras' train function, but for an XLA-compiled model on one device
        with `steps_per_execution` k > 1: the k steps of an execution run as
        one XLA program (`_fused_train_function`)."""
        if self.train_function is not None and not force:
            return self.train_function
        super().make_train_function(force=True)
        if self.jit_compile and self.steps_per_execution > 1 and self._distribute_strategy is None:
            self.train_function = self._fused_train_function(self.train_function)
        return self.train_function

    def _fused_train_function(self, keras_train_function):
        """One XLA program for the k = `steps_per_execution` steps of an execution.

        Keras runs the k steps as a graph while-loop that launches one XLA
        program per step, each behind an iterator read and a conditional: on
        a 2-core CPU that overhead was a quarter of the MLP VAE's step
        (README.md, Performance). Here the next k batches are taken from the
        iterator first and stacked, and one XLA while-loop runs the steps on
        them. Batches of another size than the first (the short last batch
        of an epoch) run after them, one at a time. The same steps in the
        same order, so the same weights as Keras' loop
        (tests/test_fast_defaults.py).
        Other iterators (a Python generator in `train_on_batch`) go to
        `keras_train_function`.
        """
        steps = self.steps_per_execution
        log_names = [tracker.name for tracker in self.loss_trackers]

        def no_logs():
            return {name: tf.zeros([]) for name in log_names}

        @tf.function(jit_compile=True, autograph=False)
        def fused_steps(batches, count):
            # batches: (n, batch, ...) per tensor; trains on the first `count` of the n batches.
            def body(i, logs):
                return i + 1, self.train_step(tf.nest.map_structure(lambda b: b[i], batches))

            return tf.while_loop(lambda i, _: i < count, body, (tf.constant(0), no_logs()))[1]

        def batch_size(batch):
            return tf.shape(tf.nest.flatten(batch)[0])[0]

        @tf.function(reduce_retracing=True, autograph=False)
        def run_execution(iterator):
            # Take up to k batches of the first one's size into TensorArrays.
            first_optional = iterator.get_next_as_optional()
            spec = first_optional.element_spec
            # One traced program for any number and size of batches.
            fused = fused_steps.get_concrete_function(
                tf.nest.map_structure(lambda s: tf.TensorSpec([None, None, *s.shape[1:]], s.dtype), spec),  # (n, batch, ...)
                tf.TensorSpec([], tf.int32),
            )
            empty = lambda: tf.nest.map_structure(lambda s: tf.zeros([d or 0 for d in s.shape], s.dtype), spec)  # noqa: E731
            first = tf.cond(first_optional.has_value(), first_optional.get_value, empty)
            arrays = tf.nest.map_structure(lambda s: tf.TensorArray(s.dtype, size=steps, element_shape=s.shape), spec)
            arrays = tf.nest.map_structure(lambda a, t: a.write(0, t), arrays, first)

            def take(i, count, arrays, pending, stopped):
                optional = iterator.get_next_as_optional()
                value = tf.cond(optional.has_value(), optional.get_value, lambda: first)
                same_size = tf.logical_and(optional.has_value(), batch_size(value) == batch_size(first))
                value = tf.cond(same_size, lambda: value, lambda: first)
                arrays = tf.nest.map_structure(lambda a, t: a.write(i, t), arrays, value)
                return i + 1, count + tf.cast(same_size, tf.int32), arrays, optional, tf.logical_not(same_size)

            def pad(i, count, arrays, pending, stopped):  # after the last batch taken: copies of the first
                return i + 1, count, tf.nest.map_structure(lambda a: a.write(i, first), arrays), pending, stopped

            state = (tf.constant(1), tf.cast(first_optional.has_value(), tf.int32), arrays, first_optional,
                     tf.logical_not(first_optional.has_value()))
            state = tf.while_loop(lambda i, c, a, p, stopped: tf.logical_and(i < steps, tf.logical_not(stopped)), take, state)
            count, arrays, pending = state[1], state[2], state[3]
            arrays = tf.while_loop(lambda i, *_: i < steps, pad, state)[2]
            batches = tf.nest.map_structure(lambda a: a.stack(), arrays)  # always k batches: one XLA program
            logs = tf.cond(count > 0, lambda: fused(batches, count), no_logs)

            # A batch of another size (the short last batch of an epoch) and
            # any after it, up to k in all: one at a time, in order.
            def one_more(i, pending, logs):
                logs = fused(tf.nest.map_structure(lambda t: t[tf.newaxis], pending.get_value()), tf.constant(1))
                pending = tf.cond(i + 1 < steps, iterator.get_next_as_optional, lambda: pending)
                return i + 1, pending, logs

            more = lambda i, pending, logs: tf.logical_and(i < steps, pending.has_value())  # noqa: E731
            logs = tf.while_loop(more, one_more, (count, pending, logs))[2]
            return first_optional.has_value(), logs

        # Each model traces its own run_execution once. TF counts traces per
        # code object, across models, so training a few models in a loop (a
        # sweep) would log a false "triggered tf.function retracing" warning.
        run_execution._omit_frequent_tracing_warning = True

        def function(iterator):
            if not isinstance(iterator, tf.data.Iterator):
                return keras_train_function(iterator)
            has_data, logs = run_execution(iterator)
            if not has_data:
                raise StopIteration
            return logs

        return function

    def _update_trackers(self, loss, terms, batch_size):
        values = {**terms, "loss": loss}
        # Weighted by the batch size, so an epoch's value is the mean over
        # examples even when the last batch is short.
        for tracker in self.loss_trackers:
            tracker.update_state(values[tracker.name], sample_weight=batch_size)
        logs = {tracker.name: tracker.result() for tracker in self.loss_trackers}
        if _is_multi_worker(self.distribute_strategy):
            # keras#20585 / tensorflow#72388: under collective all-reduce Keras
            # reduces step logs with MEAN along axis 0, which a scalar lacks.
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # keras#20585 / tensorflow#72388: Keras MEAN-reduces the first
        # distributed batch to build the model, which fails under collective
        # all-reduce. The first local replica's batch has the right spec.
        if self._distribute_strategy is None or iterator is None:
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        for _, _, it in iterator:
            batch = next(it)
            break
        first_replica = self._distribute_strategy.experimental_local_results
        batch = tf.nest.map_structure(
            lambda v: first_replica(v)[0] if isinstance(v, tf.distribute.DistributedValues) else v,
            batch,
        )
        with self._distribute_strategy.scope():
            self._symbolic_build(data_batch=batch)

    # ------------------------------------------------------ checked entry points
    def _checked(self, x):
        if x is None:
            return None
        if isinstance(x, tf.data.Dataset):
            return validation.check_dataset(x, self.feature_shape)
        if isinstance(x, tuple) and len(x) == 1:
            x = x[0]
        return validation.check_array(x, self.feature_shape)

    @contextlib.contextmanager
    def _input_errors_as_value_errors(self):
        try:
            yield
        except tf.errors.InvalidArgumentError as error:
            if validation.NON_FINITE_MESSAGE in str(error):
                raise ValueError(validation.NON_FINITE_MESSAGE) from None
            raise

    def fit(self, x=None, y=None, *args, validation_data=None, **kwargs):
        """`keras.Model.fit` on inputs alone: an autoencoder's target is its input."""
        if y is not None:
            raise ValueError(
                "Autoencoders are trained on inputs only: call fit(x), not fit(x, y)."
            )
        x = self._checked(x)
        validation_data = self._checked(validation_data)
        with self._input_errors_as_value_errors():
            return super().fit(x, None, *args, validation_data=validation_data, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        with self._input_errors_as_value_errors():
            return super().evaluate(self._checked(x), None, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        with self._input_errors_as_value_errors():
            return super().predict(self._checked(x), *args, **kwargs)

    # ---------------------------------------------------------------- config
    def get_config(self):
        return {
            "name": self.name,
            "input_shape": list(self.feature_shape),
            "latent_dim": self.latent_dim,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


RECONSTRUCTION_LOSSES = ("mse", "bce")


class ReconstructingAutoencoder(Autoencoder):
    """A deterministic autoencoder: x -> h = encode(x) -> x~ = decode(h).

    Its loss is `reconstruction` (summed over features, mean over the batch)
    plus the terms of the variant's one regularizer hook, `penalties`; a
    denoising variant also overrides `corrupt`.

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
        layers.check_choice(reconstruction_loss=(reconstruction_loss, RECONSTRUCTION_LOSSES))
        layers.check_non_negative(weight_decay=weight_decay)
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

    def decoder_output(self, h, training=False):
        """The decoder's pre-activation output (logits for a sigmoid output)."""
        return self.decoder(h, training=training)

    def decode(self, h, training=False):
        return self.output_activation_fn(self.decoder_output(h, training=training))

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
        if self.reconstruction_loss == "bce":
            reconstruction = losses.sigmoid_cross_entropy(x, output)
        else:
            reconstruction = losses.squared_error(x, self.output_activation_fn(output))
        terms = {"reconstruction": tf.reduce_mean(reconstruction), **self.penalties(inputs, h, training)}
        if self.weight_decay:
            terms["weight_decay"] = self.weight_decay * self.squared_kernel_norm()
        return terms

    def squared_kernel_norm(self):
        """Σ ||W||² over the model's kernels (biases excluded; a tied kernel once)."""
        kernels = [v for v in self.trainable_variables if v.path.endswith("kernel")]
        return tf.add_n([tf.reduce_sum(tf.square(tf.cast(kernel, tf.float32))) for kernel in kernels])

    def get_config(self):
        return {
            **super().get_config(),
            "output_activation": self.output_activation,
            "reconstruction_loss": self.reconstruction_loss,
            "weight_decay": self.weight_decay,
        }
