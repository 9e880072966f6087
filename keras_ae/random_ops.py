"""The models' random draws: `keras.random.normal/uniform`, bit for bit, with
the Philox algorithm named.

Keras calls TF's stateless ops with alg="auto_select". Under XLA on CPU that
lowers to an RngBitGenerator many times slower than naming Philox, while
giving the same bits, as auto_select also picks Philox without XLA (figures:
benchmarks/README.md). Only for a `SeedGenerator` (a model's
`seed_generator`): an int or None seed goes to keras.random itself, as under
XLA a constant seed's auto_select stream is not Philox's.

Under several replicas a draw per example is the same as on one device: each
replica takes its own examples' rows of the draw for the global batch
(`keras_ae.replicas`), not a draw of its slice's shape, which would repeat
the first slice's numbers on every replica.
"""

import keras
import tensorflow as tf

from keras_ae import replicas


def _draw_seed(seed_generator):
    seed = seed_generator.next()
    if seed.dtype != tf.int32:  # as keras.src.backend.tensorflow.random._cast_seed
        seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)
    return seed


def _per_example(draw, shape, batch_axis):
    """`draw(shape)`; under several replicas, this replica's rows along
    `batch_axis` of `draw` for the global batch."""
    if replicas.sync_context() is None:
        return draw(shape)
    shape = tf.convert_to_tensor(shape, tf.int32)
    offset, total = replicas.rows(shape[batch_axis])
    global_shape = tf.tensor_scatter_nd_update(shape, [[batch_axis]], [total])
    begin = tf.tensor_scatter_nd_update(tf.zeros_like(shape), [[batch_axis]], [offset])
    return tf.slice(draw(global_shape), begin, shape)


def random_normal(shape, seed, dtype=None, batch_axis=0):
    """`keras.random.normal(shape, dtype=dtype, seed=seed)`, fast under XLA.

    `seed`: a `keras.random.SeedGenerator` (a model's `seed_generator`), an int, or None.
    `batch_axis`: the axis of `shape` that runs over the examples of the batch.
    """
    if isinstance(seed, keras.random.SeedGenerator):
        key, dtype = _draw_seed(seed), dtype or keras.config.floatx()
        return _per_example(lambda s: tf.random.stateless_normal(s, key, dtype=dtype, alg="philox"), shape, batch_axis)
    return _per_example(lambda s: keras.random.normal(s, dtype=dtype, seed=seed), shape, batch_axis)


def random_uniform(shape, seed, dtype=None, batch_axis=0):
    """`keras.random.uniform(shape, dtype=dtype, seed=seed)` on [0, 1), fast under XLA."""
    if isinstance(seed, keras.random.SeedGenerator):
        key, dtype = _draw_seed(seed), dtype or keras.config.floatx()
        return _per_example(lambda s: tf.random.stateless_uniform(s, key, dtype=dtype, alg="philox"), shape, batch_axis)
    return _per_example(lambda s: keras.random.uniform(s, dtype=dtype, seed=seed), shape, batch_axis)
