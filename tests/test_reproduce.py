"""The model selection and the filter measure that the paper reproductions
(benchmarks/reproduce.py) report their numbers with."""

import keras
import numpy as np

from benchmarks.reproduce import TimeBudget, dc_fraction


def test_select_on_validation_decays_at_plateaus_stops_at_the_third_and_restores_the_best():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1.0), loss="mse")
    budget = TimeBudget(1e9, select_on_validation=True, patience=2)
    budget.set_model(model)
    # Validation losses, one per epoch; the best is 3.0 at epoch 4 (1-based).
    val_losses = [5.0, 4.0, 4.5, 3.0, 3.5, 3.2, 3.1, 3.3, 3.4, 3.6, 9.0]
    learning_rates = []
    for epoch, val_loss in enumerate(val_losses):
        model.layers[0].bias.assign([float(epoch + 1)])  # marks the weights of each epoch
        budget.on_epoch_end(epoch, {"loss": 1.0, "val_loss": val_loss})
        learning_rates.append(round(float(model.optimizer.learning_rate.numpy()), 6))
        if model.stop_training:
            break
    # Plateaus (2 checks without a new best) end at epochs 6 and 8: lr x0.3 each; the third, at 10, stops.
    assert learning_rates == [1.0] * 5 + [0.3] * 2 + [0.09] * 3
    assert model.stop_training and len(learning_rates) == 10
    budget.on_train_end()
    assert budget.selected_epoch == 4
    np.testing.assert_array_equal(model.layers[0].bias.numpy(), [4.0])


def test_dc_fraction_is_the_share_of_filter_energy_in_its_mean():
    flat = np.full(64, -0.3)
    edge = np.concatenate([np.ones(32), -np.ones(32)])
    mixed = edge + 1.0  # mean 1, deviations ±1: half of Σw² = 64·1² + 64·1² is in the mean
    fractions = dc_fraction(np.stack([flat, edge, mixed], axis=1))
    np.testing.assert_allclose(fractions, [1.0, 0.0, 0.5])
