"""The fast defaults (benchmarks/): XLA where it can run, Philox draws, the fused
Bernoulli log-likelihood; each must leave results as they were."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import config as tf_config

import keras_ae
from keras_ae.random_ops import random_normal, random_uniform

from small_models import IMAGE_MODELS, inputs_for


def _binary(n, d=784, seed=0):
    return (np.random.default_rng(seed).random((n, d)) < 0.3).astype("float32")


@pytest.mark.parametrize("mode", ["eager", "graph", "xla"])
def test_random_draws_are_keras_random_bit_for_bit(mode):
    ours_gen, keras_gen = keras.random.SeedGenerator(3), keras.random.SeedGenerator(3)

    def ours():
        return (
            random_normal(tf.constant([2, 50, 20]), ours_gen),
            random_uniform((50, 784), ours_gen),
            random_normal((7,), 11),
            random_uniform((7,), 11, dtype="float64"),
        )

    def theirs():
        return (
            keras.random.normal((2, 50, 20), seed=keras_gen),
            keras.random.uniform((50, 784), seed=keras_gen),
            keras.random.normal((7,), seed=11),
            keras.random.uniform((7,), seed=11, dtype="float64"),
        )

    if mode != "eager":
        ours, theirs = tf.function(ours, jit_compile=mode == "xla"), tf.function(theirs, jit_compile=mode == "xla")
    for _ in range(2):  # the generators advance alike
        for a, b in zip(ours(), theirs(), strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("name", keras_ae.available_models())
def test_compile_uses_xla_on_cpu_by_default_but_for_convolutions(name):
    conv = name in IMAGE_MODELS
    shape = (8, 8, 1) if conv else (64,)
    model = keras_ae.get_model(name, input_shape=shape, latent_dim=4)
    model.compile()
    on_cpu = not tf.config.list_physical_devices("GPU")
    tape = name == "contractive"  # jacobian="tape" by default: slower under XLA on CPU
    assert model.jit_compile is not ((conv or tape) and on_cpu)
    model.fit(inputs_for(model, _binary(64, 64).reshape((64,) + shape)), batch_size=32, epochs=1, verbose=0)


def test_contractive_uses_xla_on_cpu_but_for_the_tape():
    on_cpu = not tf.config.list_physical_devices("GPU")
    for jacobian, expected in (("tape", not on_cpu), ("projection", True)):
        model = keras_ae.get_model("contractive", input_shape=(16,), latent_dim=4, jacobian=jacobian)
        model.compile()
        assert model.jit_compile is expected


def test_xla_stays_off_where_keras_turns_it_off():
    model = keras_ae.get_model("vae", input_shape=(16,), latent_dim=2, hidden_units=[8])
    model.compile(jit_compile=False)
    assert model.jit_compile is False
    model.compile(run_eagerly=True)
    assert model.jit_compile is False
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        mirrored = keras_ae.get_model("vae", input_shape=(16,), latent_dim=2, hidden_units=[8])
        mirrored.compile()
    assert mirrored.jit_compile is False
    assert mirrored.steps_per_execution == 1  # Keras' multi-step loop fails under tf.distribute


def test_xla_stays_off_with_op_determinism():
    tf.config.experimental.enable_op_determinism()
    try:
        model = keras_ae.get_model("vae", input_shape=(16,), latent_dim=2, hidden_units=[8], seed=0)
        model.compile()
        assert model.jit_compile is False
    finally:
        tf_config.disable_op_determinism()


def test_xla_training_matches_graph_training():
    """A deterministic model: the same weights with and without XLA, up to float rounding."""
    x = _binary(256)
    weights = []
    for jit in (True, False):
        keras.utils.set_random_seed(0)
        model = keras_ae.get_model("autoencoder", input_shape=(784,), latent_dim=16, hidden_units=[64], seed=0)
        model.compile(jit_compile=jit)
        history = model.fit(x, batch_size=32, epochs=2, shuffle=False, verbose=0)
        weights.append((model.get_weights(), history.history["loss"]))
    (w_xla, loss_xla), (w_graph, loss_graph) = weights
    np.testing.assert_allclose(loss_xla, loss_graph, rtol=1e-4)
    for a, b in zip(w_xla, w_graph, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("grey", [False, True])
def test_bernoulli_log_likelihood_is_tfd_log_prob(grey):
    model = keras_ae.get_model("vae", input_shape=(6, 6, 1), latent_dim=2, hidden_units=[8])
    rng = np.random.default_rng(0)
    params = tf.constant(rng.normal(size=(3, 4, 6, 6, 1)) * 8, tf.float32)
    x = rng.random((4, 6, 6, 1)).astype("float32")
    x = x if grey else (x < 0.4).astype("float32")
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(params)
        fast = model.log_prob_x_given_z(params, x)
        reference = model.likelihood_distribution(params).log_prob(x)
    assert fast.shape == reference.shape == (3, 4)
    np.testing.assert_allclose(fast.numpy(), reference.numpy(), rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(fast, params).numpy(), tape.gradient(reference, params).numpy(), atol=1e-6)


def test_random_draws_match_keras_under_xla_for_many_seeds_and_shapes():
    for seed in (7, 2**31 - 5, None):
        for shape in ((5, 7), (2, 100, 20)):
            ours_gen, keras_gen = keras.random.SeedGenerator(seed), keras.random.SeedGenerator(seed)
            ours_gen.state.assign(keras_gen.state.value)
            ours = tf.function(
                lambda shape=shape, gen=ours_gen: (random_normal(shape, gen), random_uniform(shape, gen)),
                jit_compile=True,
            )
            theirs = tf.function(
                lambda shape=shape, gen=keras_gen: (
                    keras.random.normal(shape, seed=gen),
                    keras.random.uniform(shape, seed=gen),
                ),
                jit_compile=True,
            )
            for _ in range(2):
                for a, b in zip(ours(), theirs(), strict=True):
                    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_steps_per_execution_default_keeps_step_count_and_epochs():
    from keras_ae.execution import STEPS_PER_EXECUTION

    model = keras_ae.get_model("vae", input_shape=(16,), latent_dim=2, hidden_units=[8], kl_warmup_steps=50, seed=0)
    model.compile()
    assert model.steps_per_execution == STEPS_PER_EXECUTION == 32

    class Count(keras.callbacks.Callback):
        batches = 0

        def on_train_batch_end(self, batch, logs=None):
            Count.batches += 1

    x = _binary(37 * 10, 16)  # 37 steps an epoch: one full execution and a short one
    history = model.fit(x, batch_size=10, epochs=2, verbose=0, callbacks=[Count()])
    assert int(model.optimizer.iterations) == 74  # every step counts, for the KL warm-up too
    assert Count.batches == 4
    assert len(history.history["loss"]) == 2
    model.compile(steps_per_execution=1)
    assert model.steps_per_execution == 1


def test_fused_steps_train_as_keras_one_step_at_a_time():
    """XLA with steps_per_execution > 1 runs an execution's steps as one XLA
    program: the same steps in the same order as Keras' loop, here with
    uneven batches mid-execution, a short last one, and random corruption
    drawn at every step."""
    x = _binary(60, 16)
    sizes = [10, 10, 7, 10, 10, 3, 10]
    uneven = tf.data.Dataset.from_generator(
        lambda: (x[sum(sizes[:i]) : sum(sizes[: i + 1])] for i in range(len(sizes))),
        output_signature=tf.TensorSpec((None, 16), tf.float32),
    )
    runs = []
    for steps in (1, 32):
        model = keras_ae.get_model("denoising", input_shape=(16,), latent_dim=2, corruption="gaussian", seed=0)
        model.compile(jit_compile=True, steps_per_execution=steps)
        if runs:
            model.set_weights(runs[0][0])
        initial = model.get_weights()
        history = model.fit(uneven, epochs=2, verbose=0)
        # Keras' own loop for one step per execution, the fused XLA program for 32.
        assert ("fused_train_function" in model.train_function.__qualname__) is (steps > 1)
        runs.append((initial, model.get_weights(), history.history["loss"], int(model.optimizer.iterations)))
    (_, one_at_a_time, loss_keras, steps_keras), (_, fused, loss_fused, steps_fused) = runs
    assert steps_fused == steps_keras == 2 * len(sizes)
    np.testing.assert_allclose(loss_fused, loss_keras, rtol=1e-6)
    for a, b in zip(fused, one_at_a_time, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    # The weights moved: the comparison is not between two untrained models.
    assert max(np.abs(a - b).max() for a, b in zip(fused, runs[0][0], strict=True)) > 1e-3


def test_a_loop_of_models_logs_no_retracing_warning(caplog):
    """Each model traces its fused program once; TF counts traces per code
    object across models, and warned of retracing from the fifth model of a
    sweep on (a false alarm this checks is silenced)."""
    x = _binary(64, 16)
    with caplog.at_level("WARNING", logger="tensorflow"):
        for _ in range(6):
            model = keras_ae.get_model("autoencoder", input_shape=(16,), latent_dim=2)
            model.compile(jit_compile=True)
            model.fit(x, epochs=1, batch_size=16, verbose=0)
    assert "fused_train_function" in model.train_function.__qualname__
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]
