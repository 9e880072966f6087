"""The models' random draws: `keras.random.normal/uniform`, bit for bit, with
the Philox algorithm named.

Keras calls TF's stateless ops with alg="auto_select". Under XLA on CPU that
lowers to an RngBitGenerator many times slower than naming Philox, while
giving the same bits, as auto_select also picks Philox without XLA (figures:
benchmarks/README.md). Only for a `SeedGenerator` (a model's
`seed_generator`): an int or None seed goes to keras.random itself, as under
XLA a constant seed's auto_select stream is not Philox's.
"""

import keras
import tensorflow as tf


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
