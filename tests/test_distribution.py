"""Two mirrored replicas train what one device trains (issue 17, item 2).

Under `tf.distribute` each replica runs the step on its slice of the global
batch, and the slices differ in size on uneven batches: 8/7 for a batch of
15, 1/0 for a batch of one. The step weights each replica's batch mean by its
share of the global batch, the KL sparsity's p̂ is the global batch's mean,
each example's random draws are the ones it gets on one device, and a replica
without examples adds nothing (`keras_ae.replicas`). Every test compares a
mirrored result with the one-device result on the same data.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import config as tf_config  # no public disable_op_determinism

import keras_ae
from keras_ae import data, losses, random_ops, replicas
from training import train

from small_models import IMAGE_MODELS, SMALL_CONFIGS, labels_for

# Every model small; the tied one with weight decay, a term that is not per example.
CONFIGS = {**SMALL_CONFIGS, "tied": {"weight_decay": 1e-2}}
# Each model, and the exact Jacobian, whose batch_jacobian fails on an empty batch.
VARIANTS = [pytest.param(name, CONFIGS.get(name), id=name) for name in sorted(keras_ae.available_models())]
VARIANTS.append(pytest.param("contractive", {"jacobian": "tape"}, id="contractive-tape"))
# 121 examples in batches of 15: every batch splits 8/7 and the last, of one example, 1/0.
EXAMPLES, BATCH = 121, 15


def _per_replica(strategy, arrays):
    """Distributed values holding arrays[r] on replica r."""
    return strategy.experimental_distribute_values_from_function(
        lambda context: tf.constant(arrays[context.replica_id_in_sync_group])
    )


def _local(strategy, values):
    return [np.asarray(v) for v in strategy.experimental_local_results(values)]


def _trained(name, options, x, initial_weights=None):
    """A model trained one shuffled epoch in the current strategy scope: its initial weights, epoch loss and weights."""
    model = keras_ae.get_model(name, input_shape=x.shape[1:], latent_dim=4, seed=3, **options)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    if initial_weights is not None:
        model.set_weights(initial_weights)
    initial = model.get_weights()
    # The batches of an epoch are a function of (seed, epoch): the same for one device and two replicas.
    labels = labels_for(model, x) if model.conditional else None
    dataset = data.make_dataset(x, BATCH, shuffle=True, seed=5, epoch=tf.Variable(0, dtype=tf.int64), labels=labels)
    history = model.fit(dataset, epochs=1, verbose=0)
    return initial, history.history["loss"][0], model.get_weights()


@pytest.mark.parametrize("name, options", VARIANTS)
def test_every_model_trains_the_same_weights_on_one_device_and_on_two_replicas(name, options, mirrored_strategy):
    assert options is not None, f"give {name} a small configuration in CONFIGS"
    x = data.load("digits")[:EXAMPLES]
    if name not in IMAGE_MODELS:
        x = x.reshape(len(x), -1)
    keras.utils.set_random_seed(1)
    initial, one_loss, one_weights = _trained(name, options, x)
    with mirrored_strategy.scope():
        _, mirrored_loss, mirrored_weights = _trained(name, options, x, initial)
    # The epoch's loss is the mean over its examples: no NaN from the empty replica.
    assert mirrored_loss == pytest.approx(one_loss, rel=1e-5)
    for one, mirrored in zip(one_weights, mirrored_weights, strict=True):
        np.testing.assert_allclose(mirrored, one, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["sparse", "conv"])
def test_evaluate_on_two_replicas_is_the_one_device_mean_over_examples(name, mirrored_strategy):
    x = data.load("digits")[: 2 * BATCH + 1]  # batches split 8/7, 8/7 and 1/0
    if name == "sparse":
        x = x.reshape(len(x), -1)
    model = keras_ae.get_model(name, input_shape=x.shape[1:], latent_dim=4, seed=3, **CONFIGS[name])
    model.compile(jit_compile=False)
    with mirrored_strategy.scope():
        mirrored = keras_ae.get_model(name, input_shape=x.shape[1:], latent_dim=4, seed=3, **CONFIGS[name])
        mirrored.compile()
    mirrored.set_weights(model.get_weights())
    expected = model.evaluate(data.make_dataset(x, BATCH), verbose=0, return_dict=True)
    got = mirrored.evaluate(data.make_dataset(x, BATCH), verbose=0, return_dict=True)
    assert got == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("split", [(3, 2), (1, 0)])
def test_kl_sparsity_under_replicas_is_the_global_batch_s_with_its_gradient(split, mirrored_strategy):
    codes = np.random.default_rng(0).uniform(0.05, 0.95, size=(sum(split), 3)).astype(np.float32)

    def value_and_gradient(local_codes):
        with tf.GradientTape() as tape:
            tape.watch(local_codes)
            value = losses.kl_sparsity(local_codes, 0.1)
            weighted = value * replicas.share(tf.shape(local_codes)[0])
        return value, tape.gradient(weighted, local_codes)

    expected_value, expected_gradient = value_and_gradient(tf.constant(codes))
    slices = np.split(codes, np.cumsum(split)[:-1])
    values, gradients = tf.function(lambda c: mirrored_strategy.run(value_and_gradient, args=(c,)))(
        _per_replica(mirrored_strategy, slices)
    )
    for value in _local(mirrored_strategy, values):  # p̂ of the global batch on every replica
        np.testing.assert_allclose(value, expected_value, rtol=1e-6)
    # The SUM of the replicas' share-weighted gradients is the one-device gradient.
    np.testing.assert_allclose(np.concatenate(_local(mirrored_strategy, gradients)), expected_gradient, rtol=1e-5)


@pytest.mark.parametrize("split", [(3, 2), (1, 0)])
def test_random_draws_under_replicas_are_each_example_s_draws_on_one_device(split, mirrored_strategy):
    def draws(rows, generator):
        return (
            random_ops.random_normal(tf.stack([rows, 4]), generator),
            random_ops.random_uniform(tf.stack([2, rows, 3]), generator, batch_axis=1),
        )

    expected = draws(sum(split), keras.random.SeedGenerator(7))
    with mirrored_strategy.scope():
        generator = keras.random.SeedGenerator(7)
    rows = _per_replica(mirrored_strategy, [np.int32(n) for n in split])
    normal, uniform = tf.function(lambda r: mirrored_strategy.run(draws, args=(r, generator)))(rows)
    np.testing.assert_array_equal(np.concatenate(_local(mirrored_strategy, normal)), expected[0])
    np.testing.assert_array_equal(np.concatenate(_local(mirrored_strategy, uniform), axis=1), expected[1])


def test_a_shuffled_mirrored_run_trains_the_weights_of_one_device(tmp_path, mirrored_strategy):
    """The entry point: one device and two replicas shuffle alike. Under a
    strategy Keras starts a pass over the data to build the model, which moved
    TF's stateful shuffle on by one epoch; `make_dataset(..., epoch=)` orders
    an epoch by (seed, epoch) alone. Digits: 1437 examples in batches of 64,
    the last one of 29 split 15/14."""
    common = dict(epochs=1, shuffle=True, seed=0, latent_dim=4, image_every=0, verbose=0, export=False)
    try:
        one = train.run(out=str(tmp_path / "one"), **common)
        mirrored = train.run(out=str(tmp_path / "mirrored"), shared_strategy=mirrored_strategy, **common)
    finally:  # a seeded run turns op determinism on for the process, and XLA off for later tests
        tf_config.disable_op_determinism()
    assert mirrored.model.distribute_strategy.num_replicas_in_sync == 2
    for a, b in zip(one.model.weights, mirrored.model.weights, strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=0, atol=1e-5)
