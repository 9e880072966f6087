"""The global batch of a step under `tf.distribute`: what a replica's step
needs so that several replicas compute what one device computes.

Under a strategy every replica runs the step on its own slice of the global
batch, the replicas' slices in the order of their ids; the slices differ in
size on an epoch's short last batch (15/14, or 1/0 for a batch of one). Each
function here reads the other replicas' slices with a collective op where one
device would read the whole batch, and is the plain computation on one device
(or outside a step), so single-device runs are unchanged bit for bit.
"""

import tensorflow as tf


def sync_context():
    """The replica context of a step that several replicas run in sync; None on one device or outside a step."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context


def share(batch_size):
    """This replica's share of the global batch, n_r / N with N = Σ_r n_r; 1 on one device.

    Gradients are all-reduced with SUM, so a replica's batch-mean loss weighted
    by its share adds up to the global batch's mean, Σ_r (n_r / N) mean_r =
    (1/N) Σ_i loss_i, on any split, and a term equal on every replica (a weight
    penalty, a statistic of the global batch) counts once, as Σ_r n_r / N = 1.
    An empty slice weighs 0.
    """
    context = sync_context()
    if context is None:
        return 1.0
    count = tf.cast(batch_size, tf.float32)
    return count / context.all_reduce(tf.distribute.ReduceOp.SUM, count)  # n_r / Σ_r n_r


def batch_mean(values):
    """The mean over the global batch of `values` (batch, ...), along axis 0.

    Σ_r Σ_i v_ri / N from the all-reduced sums and counts, the same on every
    replica. Differentiable: the gradient of an all-reduced sum is the
    all-reduced sum of the replicas' gradients, so each replica's examples get
    the derivative of the global mean.
    """
    context = sync_context()
    if context is None:
        return tf.reduce_mean(values, axis=0)
    count = tf.cast(tf.shape(values)[0], values.dtype)
    total, count = context.all_reduce(tf.distribute.ReduceOp.SUM, [tf.reduce_sum(values, axis=0), count])
    return total / count  # Σ_r Σ_i v_ri / Σ_r n_r


def rows(count):
    """(offset, total): this replica's `count` examples are rows offset to
    offset + count of the global batch, which holds `total`. Several replicas only."""
    context = sync_context()
    sizes = context.all_gather(tf.reshape(tf.cast(count, tf.int32), [1]), axis=0)  # n_r of every replica, by id
    return tf.reduce_sum(sizes[: context.replica_id_in_sync_group]), tf.reduce_sum(sizes)


def global_batch(values):
    """The rows of `values` (batch, ...) of every replica, in replica order: the global batch, the same on
    every replica; `values` on one device. Differentiable, as `batch_mean`: each replica pads its
    rows to their place in the global batch, and the padded tensors are all-reduced (summed)."""
    context = sync_context()
    if context is None:
        return values
    count = tf.shape(values)[0]
    offset, total = rows(count)
    padding = tf.concat([[[offset, total - offset - count]], tf.zeros([values.shape.rank - 1, 2], tf.int32)], 0)
    return context.all_reduce(tf.distribute.ReduceOp.SUM, tf.pad(values, padding))
