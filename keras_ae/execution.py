"""How a keras-ae model's training steps run: the fast defaults of `compile`
and the fused XLA execution of `fit` (measurements: benchmarks/README.md).

- XLA by default wherever the model runs faster with it: on a GPU, and on CPU
  unless the model says otherwise (`Autoencoder.faster_under_xla_on_cpu`).
- `STEPS_PER_EXECUTION` training steps per call of the compiled function.
- With XLA on one device, the steps of one call run as one XLA program.
"""

import tensorflow as tf

from keras_ae import compat

# `compile`'s default `steps_per_execution`: training steps per call of the
# compiled function, sparing Keras' per-call Python work.
STEPS_PER_EXECUTION = 32


def default_jit_compile(model, run_eagerly=False):
    """What `jit_compile="auto"` means for `model`: Keras' own rule (no XLA
    eagerly, under a tf.distribute strategy, with op determinism, or for a
    layer without XLA support), on CPU too where the model is faster under XLA."""
    if run_eagerly or model._distribute_strategy is not None:
        return False
    if not tf.config.list_physical_devices("GPU") and not model.faster_under_xla_on_cpu:
        return False
    return compat.model_supports_jit(model)


def default_steps_per_execution(model):
    """`STEPS_PER_EXECUTION` on one device; under a tf.distribute strategy the
    one step Keras can run there."""
    if model._distribute_strategy is None:
        return STEPS_PER_EXECUTION
    return compat.STEPS_PER_EXECUTION_UNDER_DISTRIBUTION


def train_function(model, keras_train_function):
    """The function `fit` calls per execution: Keras' own, or, for an
    XLA-compiled model on one device with steps_per_execution k > 1, the k
    steps fused into one XLA program (`fused_train_function`)."""
    if model.jit_compile and model.steps_per_execution > 1 and model._distribute_strategy is None:
        return fused_train_function(model, keras_train_function)
    return keras_train_function


def fused_train_function(model, keras_train_function):
    """One XLA program for the k = `steps_per_execution` steps of an execution.

    Keras runs the k steps as a graph while-loop that launches one XLA
    program per step, each behind an iterator read and a conditional, an
    overhead of about a quarter of the MLP VAE's step on CPU. Here the next
    k batches are taken from the iterator first and stacked, and one XLA
    while-loop runs the steps on them. Batches of another size than the first
    (the short last batch of an epoch) run after them, one at a time. The same
    steps in the same order, so the same weights as Keras' loop
    (tests/test_fast_defaults.py). Other iterators (a Python generator in
    `train_on_batch`) go to `keras_train_function`.
    """
    steps = model.steps_per_execution
    log_names = [metric.name for metric in model.metrics]

    def no_logs():
        return {name: tf.zeros([]) for name in log_names}

    @tf.function(jit_compile=True, autograph=False)
    def fused_steps(batches, count):
        # batches: (n, batch, ...) per tensor; trains on the first `count` of the n batches.
        def body(i, logs):
            return i + 1, model.train_step(tf.nest.map_structure(lambda b: b[i], batches))

        return tf.while_loop(lambda i, _: i < count, body, (tf.constant(0), no_logs()))[1]

    def batch_size(batch):
        return tf.shape(tf.nest.flatten(batch)[0])[0]

    @compat.quiet_retracing_warning
    @tf.function(reduce_retracing=True, autograph=False)
    def run_execution(iterator):
        # Take up to k batches of the first one's size into TensorArrays.
        first_optional = iterator.get_next_as_optional()
        spec = first_optional.element_spec
        # One traced program for any number and size of batches.
        fused = fused_steps.get_concrete_function(
            tf.nest.map_structure(lambda s: tf.TensorSpec([None, None, *s.shape[1:]], s.dtype), spec),
            tf.TensorSpec([], tf.int32),
        )

        def empty():
            return tf.nest.map_structure(lambda s: tf.zeros([d or 0 for d in s.shape], s.dtype), spec)

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
            return i + 1, count, tf.nest.map_structure(lambda a, t: a.write(i, t), arrays, first), pending, stopped

        def taking(i, count, arrays, pending, stopped):
            return tf.logical_and(i < steps, tf.logical_not(stopped))

        state = (
            tf.constant(1),
            tf.cast(first_optional.has_value(), tf.int32),
            arrays,
            first_optional,
            tf.logical_not(first_optional.has_value()),
        )
        state = tf.while_loop(taking, take, state)
        count, pending = state[1], state[3]
        arrays = tf.while_loop(lambda i, *_: i < steps, pad, state)[2]
        batches = tf.nest.map_structure(lambda a: a.stack(), arrays)  # always k batches: one XLA program
        logs = tf.cond(count > 0, lambda: fused(batches, count), no_logs)

        # A batch of another size (the short last batch of an epoch) and
        # any after it, up to k in all: one at a time, in order.
        def one_more(i, pending, logs):
            logs = fused(tf.nest.map_structure(lambda t: t[tf.newaxis], pending.get_value()), tf.constant(1))
            pending = tf.cond(i + 1 < steps, iterator.get_next_as_optional, lambda: pending)
            return i + 1, pending, logs

        def more(i, pending, logs):
            return tf.logical_and(i < steps, pending.has_value())

        logs = tf.while_loop(more, one_more, (count, pending, logs))[2]
        return first_optional.has_value(), logs

    def function(iterator):
        if not isinstance(iterator, tf.data.Iterator):
            return keras_train_function(iterator)
        has_data, logs = run_execution(iterator)
        if not has_data:
            raise StopIteration
        return logs

    return function
