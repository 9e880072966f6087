"""The model selection and the filter measure that the paper reproductions
(benchmarks/reproduce/) report their numbers with."""

import dataclasses
import os
import shutil

import keras
import numpy as np
import pytest

from benchmarks.reproduce import vae
from benchmarks.reproduce.common import TimeBudget
from benchmarks.reproduce.filters import dc_fraction

SHARED_DATA = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "shared", "data")


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


def test_the_paper_schedule_is_3_to_the_i_epochs_at_lr_1e_3_times_10_to_the_minus_i_over_7():
    from benchmarks.reproduce.__main__ import build_parser

    config = vae.configure(build_parser().parse_args(["vae", "--schedule", "paper"]))
    schedule = vae.paper_schedule(config)
    epochs = [e for e, _ in schedule]
    assert epochs == [1, 3, 9, 27, 81, 243, 729, 2187] and config.epochs == 3280
    np.testing.assert_allclose([lr for _, lr in schedule], [1e-3 * 10 ** (-i / 7) for i in range(8)])
    assert config.adam_epsilon == 1e-4 and config.batch_size == 100
    # LearningRateScheduler passes the 0-based epoch index: stage i starts at index Σ_{j<i} 3^j.
    learning_rate = vae.paper_learning_rate(schedule)
    for i, start in enumerate(np.cumsum([0, *epochs[:-1]])):
        assert learning_rate(int(start)) == schedule[i][1]
        if start:
            assert learning_rate(int(start) - 1) == schedule[i - 1][1]
    assert learning_rate(3279) == schedule[-1][1]
    # --epochs-scale compresses every stage (at least one epoch each), e.g. to about 300 epochs.
    scaled = vae.configure(build_parser().parse_args(["vae", "--schedule", "paper", "--epochs-scale", "0.0915"]))
    assert [e for e, _ in vae.paper_schedule(scaled)] == [1, 1, 1, 2, 7, 22, 67, 200] and scaled.epochs == 301
    assert vae.configure(build_parser().parse_args(["vae", "--schedule", "paper", "--quick"])).epochs == 10


def _paper_run(directory, x_train, x_valid, *callbacks):
    # 8 stages of 1 epoch; a backup and a validation every 2 epochs; 2 steps an epoch.
    config = vae.Config(
        schedule="paper", epochs_scale=3.0**-7, checkpoint_every=2, validation_freq=2, hidden_units=(16,), latent_dim=4
    )
    config = dataclasses.replace(config, epochs=sum(e for e, _ in vae.paper_schedule(config)), batch_size=50)
    return vae.train_paper(config, str(directory), x_train, x_valid, callbacks=callbacks)


def test_a_paper_run_killed_after_a_backup_resumes_at_its_epoch_and_lr_and_ends_bit_identical(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    x_train = rng.random((100, 784), dtype=np.float32)  # intensities, binarized anew at every step by the model
    x_valid = (rng.random((50, 784)) < 0.3).astype(np.float32)
    uninterrupted_dir, killed_dir = tmp_path / "uninterrupted", tmp_path / "killed"

    class KilledAfterEpoch5(keras.callbacks.Callback):
        """Copies the run folder as a kill at the end of epoch 5 leaves it: backups at epochs 2 and 4, the curve and
        the selected weights of 5 epochs."""

        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == 5:
                shutil.copytree(uninterrupted_dir, killed_dir)

    model, _ = _paper_run(uninterrupted_dir, x_train, x_valid, KilledAfterEpoch5())
    assert len(vae.read_curve(killed_dir / vae.CURVE)) == 5
    uninterrupted = [v.numpy() for v in (*model.variables, *model.optimizer.variables)]
    # The resumed run trains the same model object, its functions already compiled (XLA takes seconds): the backup
    # must set every variable (the seed generator's state too) back from epoch 8 to epoch 4. A fresh process:
    # the real run's kill and restart.
    monkeypatch.setattr(vae, "build_model", lambda config: model)
    seen = {}

    class Watch(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen["steps"] = int(self.model.optimizer.iterations.numpy())

        def on_epoch_begin(self, epoch, logs=None):  # after LearningRateScheduler's
            seen.setdefault("first_epoch", (epoch, float(self.model.optimizer.learning_rate.numpy())))

    _, initial_epoch = _paper_run(killed_dir, x_train, x_valid, Watch())
    assert initial_epoch == 4 and seen["steps"] == 4 * 2
    assert seen["first_epoch"][0] == 4  # epoch 5 again, stage 4: lr 1e-3·10^(-4/7)
    np.testing.assert_allclose(seen["first_epoch"][1], 1e-3 * 10 ** (-4 / 7), rtol=1e-6)
    # Every variable of the model and of Adam, the curve and the selected weights: those of the uninterrupted run.
    for a, b in zip(uninterrupted, (*model.variables, *model.optimizer.variables), strict=True):
        np.testing.assert_array_equal(a, b.numpy())
    curves = [vae.read_curve(run / vae.CURVE) for run in (uninterrupted_dir, killed_dir)]
    assert [r["epoch"] for r in curves[1]] == list(range(1, 9))
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in curves[1]] == [
        {k: v for k, v in r.items() if k != "seconds"} for r in curves[0]
    ]
    np.testing.assert_allclose(
        [r["learning_rate"] for r in curves[1]], [1e-3 * 10 ** (-e / 7) for e in range(8)], rtol=1e-6
    )
    selected = []
    for run in (uninterrupted_dir, killed_dir):
        model.load_weights(run / vae.SELECTED)
        selected.append(model.get_weights())
    for a, b in zip(*selected, strict=True):
        np.testing.assert_array_equal(a, b)
    # Started again once done, it runs no epoch.
    assert _paper_run(killed_dir, x_train, x_valid)[1] == 8


@pytest.mark.skipif(not os.path.isfile(os.path.join(SHARED_DATA, "mnist.npz")), reason="needs ../shared/data/mnist.npz")
def test_the_authors_code_recipe_trains_on_mnists_first_59600_images_and_keeps_the_test_draw():
    paper = vae.load_splits(SHARED_DATA, "dynamic")
    authors = vae.load_splits(SHARED_DATA, "dynamic", "authors_code")
    with np.load(os.path.join(SHARED_DATA, "mnist.npz"), allow_pickle=False) as f:
        raw = f["x_train"].reshape(-1, 784) / np.float32(255)
    assert authors[0].shape == (59600, 784) and authors[1].shape == (400, 784)
    np.testing.assert_allclose(authors[0], raw[:59600], atol=1e-7)  # MNIST's own order, the last 400 held out
    np.testing.assert_array_equal(authors[1], paper[1][-400:])
    np.testing.assert_array_equal(authors[2], paper[2])  # the test images scored are the same binarized draw


def test_the_authors_code_recipe_starts_the_decoder_at_the_mean_image_and_matches_adam_on_the_summed_gradient():
    from benchmarks.reproduce.__main__ import build_parser

    args = ["vae", "--schedule", "paper", "--recipe", "authors_code", "--batch-size", "20"]
    config = vae.configure(build_parser().parse_args(args))
    assert config.output_bias == "data_logit" and not vae.ablated(vae.Config())
    model = vae.build_model(dataclasses.replace(config, hidden_units=(8,), latent_dim=2))
    x = np.random.default_rng(0).random((30, 784), dtype=np.float32) ** 3
    x[:, 0] = 0.0  # clipped to 0.001
    vae.set_output_bias_to_data_logit(model, x)
    last = model.decoder.layers[-2]
    last.kernel.assign(np.zeros(last.kernel.shape))  # the output is then the bias alone
    p = keras.ops.sigmoid(model.decoder(np.zeros((1, 2), np.float32))).numpy().reshape(-1)
    np.testing.assert_allclose(p, np.clip(x.mean(axis=0), 0.001, 0.999), rtol=1e-5)
    # The authors' first Adam step (beta_1 0.99, eps 1e-4 on √v, not on the debiased √v̂) on the batch's summed
    # gradient, in numpy, against Keras's on the mean, with the second moment starting at 0 (theirs starts at 1).
    variable = keras.Variable(np.zeros(3, np.float32))
    mean_gradient = np.array([1e-5, -3e-4, 2e-2], np.float32)  # eps matters for the first two
    model.optimizer.apply([mean_gradient], [variable])
    summed = config.batch_size * mean_gradient.astype(np.float64)
    m, v = (1 - 0.99) * summed, (1 - 0.999) * summed**2
    step = -config.learning_rate * np.sqrt(1 - 0.999) / (1 - 0.99) * m / (np.sqrt(v) + 1e-4)
    np.testing.assert_allclose(variable.numpy(), step, rtol=1e-4)
