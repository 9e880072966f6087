"""Workarounds for upstream bugs of the pinned Keras 3.15 / TensorFlow 2.21.

Every piece of keras-ae that works around Keras or TensorFlow lives here, each
naming its upstream issue; delete one when the pinned version fixes it. The
model contract (`keras_ae.base`) and the execution (`keras_ae.execution`) only
call these.
"""

import contextlib

import tensorflow as tf
from keras.src.backend.tensorflow import trainer as tf_trainer

from keras_ae import replicas

# keras#19246: under a tf.distribute strategy, Keras' multi-step training loop
# (steps_per_execution > 1) fails with "You must feed a value for placeholder
# tensor .../while/cond/Placeholder"; one step per execution works.
STEPS_PER_EXECUTION_UNDER_DISTRIBUTION = 1


def model_supports_jit(model):
    """Keras' own test of whether a model can be XLA-compiled (False for a
    layer without XLA support, and with op determinism on). Keras has no
    public API for it, so this reads the private one; False if it is gone."""
    try:
        from keras.src.trainers.trainer import model_supports_jit as supports_jit
    except ImportError:
        return False
    return supports_jit(model)


def distributable_logs(logs, strategy):
    """keras#20585 / tensorflow#72388: under collective all-reduce Keras reduces
    a step's logs with MEAN along axis 0, which a scalar lacks: give each log
    shape [1] there."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return {name: tf.reshape(value, [1]) for name, value in logs.items()}
    return logs


def symbolic_build_from_first_replica(model, iterator):
    """keras#20585 / tensorflow#72388: to build a model, Keras MEAN-reduces the
    first distributed batch, which fails under collective all-reduce. The
    first local replica's batch has the right spec: build from it."""
    for _, _, it in iterator:
        batch = next(it)
        break
    first_replica = model.distribute_strategy.experimental_local_results
    batch = tf.nest.map_structure(
        lambda v: first_replica(v)[0] if isinstance(v, tf.distribute.DistributedValues) else v,
        batch,
    )
    with model.distribute_strategy.scope():
        model._symbolic_build(data_batch=batch)


def on_examples(inputs, compute, output_shape, dtype):
    """`compute()` for a batch `inputs` of examples, never run on an empty one.

    A replica's batch is empty when a global batch of one is split 1/0; two
    ops fail on it (TF 2.21, no upstream issue found for either):
    - oneDNN's CPU Conv2D, on in TensorFlow's CPU wheels, gives it the input's
      shape, not the output's, and the next layer fails ("input depth must be
      evenly divisible by filter depth"); tensorflow#30968 fixed this in Conv3D;
    - `GradientTape.batch_jacobian` divides by the batch size.
    Under several replicas an empty batch gets zeros of shape (0, *output_shape)
    without the computation; one device runs `compute()`.
    """
    if replicas.sync_context() is None:
        return compute()
    return tf.cond(tf.shape(inputs)[0] > 0, compute, lambda: tf.zeros([0, *output_shape], dtype))


def call_network(network, inputs, training=False):
    """`network(inputs, training=training)`, never run on an empty batch (`on_examples`)."""
    return on_examples(
        inputs, lambda: network(inputs, training=training), network.output_shape[1:], network.compute_dtype
    )


def quiet_retracing_warning(function):
    """TensorFlow counts traces per Python code object, across every
    `tf.function` made from it, so each model tracing its own copy once
    (training several models in a loop) logs a false "triggered tf.function
    retracing" warning (the counting of tensorflow#34025). Marks `function`
    as traced on purpose."""
    function._omit_frequent_tracing_warning = True
    return function


class _TrueCountEpochIterator(tf_trainer.TFEpochIterator):
    """keras#20861 (fix proposed in keras#21422): with steps_per_execution k,
    Keras reports the last call of an epoch as ending at step ⌈n/k⌉·k, so a
    23-batch epoch shows 32/23 in the progress bar and in every callback's
    batch index. The end step is capped at the epoch's last batch."""

    def _enumerate_iterator(self):
        for begin_step, end_step, iterator in super()._enumerate_iterator():
            if self.num_batches:
                end_step = min(end_step, self.num_batches - 1)
            yield begin_step, end_step, iterator


@contextlib.contextmanager
def true_batch_counts():
    """Within it, `fit`, `evaluate` and `predict` report true batch counts (keras#20861)."""
    original = tf_trainer.TFEpochIterator
    tf_trainer.TFEpochIterator = _TrueCountEpochIterator
    try:
        yield
    finally:
        tf_trainer.TFEpochIterator = original
