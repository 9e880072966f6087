"""The model selection and the filter measure that the paper reproductions
(benchmarks/reproduce/) report their numbers with."""

import keras
import numpy as np

from benchmarks.reproduce import vae
from benchmarks.reproduce.common import TimeBudget
from benchmarks.reproduce.filters import dc_fraction


def test_select_on_validation_decays_at_plateaus_stops_at_the_third_and_restores_the_best():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1.0), loss="mse")
    every = vae.Config().validation_freq
    assert every == 5  # the reported runs validated every 5 epochs, with the budget's default schedule
    budget = TimeBudget(1e9, select_on_validation=True)
    budget.set_model(model)
    budget.on_train_begin()
    # One validation loss every 5 epochs. Bests at checks 3 and 8 (epochs 15 and 40); 4 checks without a new best
    # end a plateau at checks 7, 12 and 16 (epochs 35, 60, 80): lr x0.3, x0.3, then stop; the best between the
    # first two plateaus does not reset their count.
    val_losses = [5.0, 4.0, 3.0, 3.5, 3.2, 3.1, 3.3, 2.9, 3.0, 3.1, 3.2, 3.3, 3.4, 3.5, 3.6, 3.7, 1.0]
    learning_rates = []
    for epoch in range(every * len(val_losses)):
        model.layers[0].bias.assign([float(epoch + 1)])  # marks the weights of each epoch
        logs = {"loss": 1.0}
        if (epoch + 1) % every == 0:
            logs["val_loss"] = val_losses[(epoch + 1) // every - 1]
        budget.on_epoch_end(epoch, logs)
        learning_rates.append(round(float(model.optimizer.learning_rate.numpy()), 6))
        if model.stop_training:
            break
    assert learning_rates == [1.0] * 34 + [0.3] * 25 + [0.09] * 21
    assert [row["epoch"] for row in budget.curve if "learning_rate" in row] == [35, 60]
    budget.on_train_end()
    assert budget.selected_epoch == 40
    np.testing.assert_array_equal(model.layers[0].bias.numpy(), [40.0])


def test_dc_fraction_is_the_share_of_filter_energy_in_its_mean():
    flat = np.full(64, -0.3)
    edge = np.concatenate([np.ones(32), -np.ones(32)])
    mixed = edge + 1.0  # mean 1, deviations ±1: half of Σw² = 64·1² + 64·1² is in the mean
    fractions = dc_fraction(np.stack([flat, edge, mixed], axis=1))
    np.testing.assert_allclose(fractions, [1.0, 0.0, 0.5])
