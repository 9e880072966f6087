"""The input pipeline of a split: one pass an epoch, in an order keyed by (seed, epoch), read a batch at a time.

    source = sources.open_source("photos/", image_size=64, channels=3)
    epoch = tf.Variable(0, dtype=tf.int64)
    dataset = pipeline.stream(source, "train", batch_size=64, shuffle=True, seed=0, epoch=epoch)

Every source, in memory or on disk, goes through `stream`: the keys of a split
(row indices, file paths, encoded records) are ordered, batched into global
batches, and only then read, scaled and binarized. So a pass's batches are a
function of (seed, epoch) alone, a run resumed at any epoch sees the batches
of one uninterrupted run, and under several workers each worker reads and
decodes only its own rows of each global batch (see `Shard`).
"""

import dataclasses

import numpy as np
import tensorflow as tf

SPLITS = ("train", "validation", "test")

# Keys of the stateless draws: an epoch's permutation ([seed, 2e]), a training
# batch's binarization ([seed, 2k + 1]) and a held-out batch's fixed
# binarization ([seed, -1 - k]) never share a Philox stream.
_SHUFFLE_KEY, _BINARIZATION_KEY = 0, 1
# Examples held in a sequential source's shuffle buffer (TFRecord, CSV).
SHUFFLE_BUFFER = 10000


class Source:
    """A data set the pipeline reads. A subclass sets `element_shape` (one
    example as read) and `scaling`, and gives:

    count(split): the number of examples of a split;
    keys(split, shuffle_seed): a dataset of the split's keys in one pass's
        order; `shuffle_seed` is None (the stored order) or an int64 tensor
        pair (seed, epoch) that the order must be a function of;
    read(split, keys): the examples (n, *element_shape), float32 and
        unscaled, of a batch of the split's keys.

    A source with class labels (a conditional model's data) also sets
    `classes`, the class names (label i names classes[i]), and gives
    read_labels(split, keys): their labels, int32 (n,).
    """

    element_shape: tuple
    scaling: "Scaling"
    description: str
    skipped = 0  # bad files left out, and the first of them
    skipped_example = None
    classes = None  # no class labels

    def read_labels(self, split, keys):
        raise NotImplementedError

    def count(self, split):
        raise NotImplementedError

    def keys(self, split, shuffle_seed):
        raise NotImplementedError

    def read(self, split, keys):
        raise NotImplementedError


def block_shuffle(dataset, shuffle_seed):
    """A sequential source's examples shuffled within consecutive blocks of
    `SHUFFLE_BUFFER`, each block's permutation keyed by (seed, epoch, block).
    Written here because `Dataset.shuffle` refuses a tensor seed once a
    global seed is set (`keras.utils.set_random_seed`)."""

    def permute(index, block):
        return tf.random.experimental.stateless_shuffle(
            block, seed=tf.random.experimental.stateless_fold_in(shuffle_seed, index)
        )

    return dataset.batch(SHUFFLE_BUFFER).enumerate().map(permute).unbatch()


@dataclasses.dataclass(frozen=True)
class Scaling:
    """How raw values become model inputs: "unit" divides by `max_value` (the
    dtype's maximum), "standard" is (x - mean) / std per channel or column with
    the training split's statistics, "raw" keeps the values. With a
    `threshold`, values above it become 1 and the others 0 (static binarization)."""

    kind: str = "raw"
    max_value: float = 1.0
    mean: tuple = ()
    std: tuple = ()
    threshold: float | None = None

    def __call__(self, x):
        if self.kind == "unit" and self.max_value != 1.0:
            x = x / self.max_value
        elif self.kind == "standard":
            x = (x - tf.constant(self.mean, tf.float32)) / tf.constant(self.std, tf.float32)
        if self.threshold is not None:
            x = tf.cast(x > self.threshold, tf.float32)
        return x


class InMemory(Source):
    """Arrays already in memory, one a split: the built-in data sets, and a cached file source;
    with `labels` ({split: int (n,)}) and `classes` (their names; by default "0", "1", ...), labelled."""

    def __init__(self, splits, description="arrays in memory", labels=None, classes=None):
        # Made inside the pipeline's functions, a split's constant made each MNIST epoch 40x slower.
        self._splits = {name: eager_constant(np.asarray(x, np.float32)) for name, x in splits.items()}
        self.element_shape = tuple(next(iter(self._splits.values())).shape[1:])
        self.scaling = Scaling()
        self.description = description
        if labels is not None:
            self._labels = {name: eager_constant(np.asarray(y, np.int32)) for name, y in labels.items()}
            count = 1 + max(int(np.max(y, initial=0)) for y in labels.values())
            self.classes = tuple(classes) if classes is not None else tuple(str(c) for c in range(count))

    def count(self, split):
        return int(self._splits[split].shape[0])

    def array(self, split):
        return self._splits[split].numpy()

    def keys(self, split, shuffle_seed):
        return ordered(self.count(split), shuffle_seed)

    def read(self, split, keys):
        return tf.gather(self._splits[split], keys)

    def read_labels(self, split, keys):
        return tf.gather(self._labels[split], keys)


def eager_constant(value, dtype=None):
    """A tensor made outside any traced function, which the pipeline's functions capture by reference: a
    constant made inside one is copied into every iterator (each epoch) and cannot pass 2 GB."""
    with tf.init_scope():
        return tf.constant(value, dtype)


def ordered(count, shuffle_seed, keys=None):
    """A dataset of a split's `count` keys (the indices, or `keys[i]` of an `eager_constant`) in the stored
    order, or in the permutation keyed by `shuffle_seed` (seed, epoch)."""
    order = tf.range(count, dtype=tf.int32)
    if shuffle_seed is not None:
        order = tf.random.experimental.stateless_shuffle(order, seed=shuffle_seed)
    dataset = tf.data.Dataset.from_tensor_slices(order)
    return dataset if keys is None else dataset.map(lambda i: tf.gather(keys, i))


@dataclasses.dataclass(frozen=True)
class Shard:
    """Which rows of each global batch one input pipeline reads: those of its
    `replicas` consecutive replicas, from replica `first`, of `total` in all.
    Rows are dealt in blocks of ceil(n / total), so a short last batch leaves
    the last replicas fewer (or no) rows; the model's losses average over the
    global batch, so any split gives the one-device step."""

    first: int = 0
    replicas: int = 1
    total: int = 1

    @classmethod
    def of(cls, input_context):
        """The shard of a `tf.distribute.InputContext`."""
        per_pipeline = input_context.num_replicas_in_sync // input_context.num_input_pipelines
        return cls(input_context.input_pipeline_id * per_pipeline, per_pipeline, input_context.num_replicas_in_sync)

    def bounds(self, n, replica):
        block = (n + self.total - 1) // self.total
        return tf.minimum(n, (self.first + replica) * block), tf.minimum(n, (self.first + replica + 1) * block)


def stream(
    source,
    split,
    batch_size,
    shuffle=False,
    seed=None,
    epoch=None,
    dynamic_binarization=False,
    shard=None,
    labels=False,
):
    """The batches of one pass of `split` a dataset iteration.

    Args:
        source: a `Source`.
        split: "train", "validation" or "test".
        batch_size: the global batch size.
        shuffle: a new order every epoch, a function of (seed, epoch).
        seed: the seed of the order and the draws; None picks one for the dataset.
        epoch: an int64 `tf.Variable` holding the epoch, read as each pass
            starts (set it as each epoch begins); None: always epoch 0.
        dynamic_binarization: with `epoch`, a fresh Bernoulli draw of each
            training batch's intensities every epoch (Salakhutdinov & Murray
            2008); without, one fixed draw per example for held-out data.
        shard: None for whole global batches (one worker; Keras splits them
            among local replicas), or the `Shard` this pipeline reads, whose
            replicas' slices come as consecutive elements
            (`tf.distribute.Strategy.distribute_datasets_from_function`).
        labels: also read the class label of each example (a labelled source's
            `read_labels`), for a conditional model: the same rows as x.

    Returns:
        A dataset of float32 batches (n, *source.element_shape), or with
        `labels` of pairs (those, int32 labels (n,)).
    """
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1; got {batch_size!r}.")
    if shuffle and epoch is None:
        raise ValueError("A shuffled stream needs `epoch`, the variable its order is keyed on.")
    if labels and source.classes is None:
        raise ValueError(f"{source.description} has no class labels.")
    batch_size = int(batch_size)
    if seed is None:
        seed = int(np.random.default_rng().integers(2**31))  # any seed, fixed for the dataset
    count = source.count(split)
    batches = -(-count // batch_size)
    keyed = epoch is not None
    replicas = 1 if shard is None else shard.replicas
    element_shape = tuple(source.element_shape)

    def binarize(x, index, current, rows):
        # The draw of the whole global batch, then this shard's rows: the one-device draw.
        if keyed:
            key = tf.stack([tf.cast(seed, tf.int64), _BINARIZATION_KEY + 2 * (current * batches + index)])
        else:
            key = tf.stack([tf.cast(seed, tf.int64), -1 - index])
        noise = tf.random.stateless_uniform(tf.concat([[rows[2]], element_shape], 0), seed=key)
        return tf.cast(noise[rows[0] : rows[1]] < x, tf.float32)

    def one_pass(_):
        current = epoch.read_value() if keyed else tf.constant(0, tf.int64)
        shuffle_seed = tf.stack([tf.cast(seed, tf.int64), _SHUFFLE_KEY + 2 * current]) if shuffle else None

        def read(index, keys):
            n = tf.shape(keys)[0]
            low, high = (0, n) if shard is None else (shard.bounds(n, 0)[0], shard.bounds(n, replicas - 1)[1])
            x = source.scaling(source.read(split, keys[low:high]))
            x = tf.ensure_shape(x, (None, *element_shape))
            if dynamic_binarization:
                x = binarize(x, tf.cast(index, tf.int64), current, (low, high, n))
            rows = (x, source.read_labels(split, keys[low:high])) if labels else x
            if shard is None:
                return rows

            def replica_rows(replica):  # one element a local replica: its block of this pipeline's rows
                start, stop = shard.bounds(n, tf.cast(replica, tf.int32))
                return tf.nest.map_structure(lambda part: part[start - low : stop - low], rows)

            return tf.data.Dataset.range(replicas).map(replica_rows)

        passes = source.keys(split, shuffle_seed).batch(batch_size).enumerate()
        if shard is None:
            return passes.map(read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return passes.map(read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).flat_map(lambda d: d)

    dataset = tf.data.Dataset.range(1).flat_map(one_pass)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches * replicas))
    options = tf.data.Options()
    # Sharded here, by rows of the global batch; under one worker Keras splits whole batches.
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.OFF if shard is not None else tf.data.experimental.AutoShardPolicy.DATA
    )
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def distributed(strategy, make):
    """`make(shard)` as the strategy's input: whole global batches under one
    worker, and under several workers each worker's own rows
    (`distribute_datasets_from_function`), so that no worker reads another's files."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return strategy.distribute_datasets_from_function(lambda context: make(Shard.of(context)))
    return make(None)


def head(source, split, count, labels=False):
    """The first `count` examples of a split, in stored order and scaled, as a numpy array; with `labels`, the
    pair (examples, their class labels (count,))."""
    dataset = stream(source, split, batch_size=min(count, 256), seed=0, labels=labels)
    parts, total = [], 0
    for batch in dataset:
        parts.append(tuple(part.numpy() for part in batch) if labels else (batch.numpy(),))
        total += len(parts[-1][0])
        if total >= count:
            break
    columns = tuple(np.concatenate(column)[:count] for column in zip(*parts, strict=True))
    return columns if labels else columns[0]
