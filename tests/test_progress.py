"""`fit`'s progress bar and callbacks count true batches when
`steps_per_execution` does not divide an epoch (keras#20861, worked around in
keras_ae.compat), and a call longer than an epoch trains the epoch once."""

import keras
import numpy as np
import pytest

import keras_ae
from keras_ae import data


class BatchIndices(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.ends = []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(batch)


@pytest.mark.parametrize("jit_compile", ["auto", False])
def test_an_epoch_of_23_batches_shows_23_of_23_and_trains_23_steps(jit_compile, capsys):
    x = data.load("digits").reshape(-1, 64)  # 1437 examples: 23 batches of 64, the last of 29
    model = keras_ae.get_model("autoencoder", input_shape=(64,), latent_dim=4, seed=0)
    model.compile(jit_compile=jit_compile)  # steps_per_execution 32 by default: more than an epoch
    assert model.steps_per_execution == 32
    indices = BatchIndices()
    model.fit(x, batch_size=64, epochs=2, verbose=1, callbacks=[indices])
    printed = capsys.readouterr().out
    assert printed.count("23/23") >= 2 and "32/23" not in printed
    assert indices.ends == [22, 22]  # the last batch of each epoch, 0-based
    assert int(model.optimizer.iterations) == 2 * 23


def test_a_call_longer_than_an_epoch_trains_what_one_step_per_call_trains():
    x = data.load("digits").reshape(-1, 64)
    weights = {}
    for steps in (1, 100):
        keras.utils.set_random_seed(0)
        model = keras_ae.get_model("autoencoder", input_shape=(64,), latent_dim=4, seed=0)
        model.compile(jit_compile=False, steps_per_execution=steps)
        model.fit(x, batch_size=64, epochs=3, shuffle=False, verbose=0)
        assert int(model.optimizer.iterations) == 3 * 23
        weights[steps] = model.get_weights()
    for a, b in zip(weights[1], weights[100], strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
