"""A run killed at any moment and started again with the same command ends
bit-identical to an uninterrupted run, with no step trained twice; a damaged
backup is found and reported; a run folder is never shared or mixed up."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from tensorflow.python.framework import config as tf_config

import keras_ae
from keras_ae import data
from training import backup, run_folder, train

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 4
STEPS_PER_EPOCH = 23  # digits: 1437 examples in batches of 64
# A VAE with dynamic binarization: weights, optimizer, the model's random state and the data stream all matter.
ARGS = [
    "--model",
    "vae",
    "--latent-dim",
    "4",
    "--model-option",
    "hidden_units=[16]",
    "--binarize",
    "dynamic",
    "--epochs",
    str(EPOCHS),
    "--seed",
    "3",
    "--image-every",
    "0",
    "--verbose",
    "2",
]


@pytest.fixture(autouse=True)
def _no_lasting_op_determinism():
    yield
    tf_config.disable_op_determinism()


def _env(**extra):
    return {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", **extra}


def _train(cwd, *args, fault=None):
    command = [sys.executable, "-m", "training.train", *ARGS, *args]
    env = _env(KERAS_AE_FAULT=fault) if fault else _env()
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _model_state(path):
    model = keras.saving.load_model(path)
    return [np.asarray(w) for w in model.weights], int(model.optimizer.iterations)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The weights and optimizer step of the same seeded run, never killed."""
    cwd = tmp_path_factory.mktemp("reference")
    result = _train(cwd, "--out", "run", "--no-export")
    assert result.returncode == 0, result.stderr[-3000:]
    return _model_state(cwd / "run" / "model.keras")


def _assert_same_run(path, uninterrupted):
    weights, step = _model_state(path)
    expected_weights, expected_step = uninterrupted
    assert step == expected_step == EPOCHS * STEPS_PER_EPOCH  # no step trained twice
    for got, want in zip(weights, expected_weights, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("fault", ["step:40", "epoch:2"])  # in the middle of epoch 2; at the end of epoch 2
def test_a_run_killed_anywhere_resumes_to_the_uninterrupted_weights(fault, tmp_path, uninterrupted):
    killed = _train(tmp_path, "--out", "run", "--no-export", fault=fault)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert not (tmp_path / "run" / "model.keras").exists()
    resumed = _train(tmp_path, "--out", "run", "--no-export")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    first = 2 if fault == "step:40" else 3  # step 40 lies in epoch 2, after the backup of epoch 1
    assert f"Resuming from the backup in {os.path.join('run', 'backup')}: epoch {first} of {EPOCHS}." in resumed.stdout
    assert f"Epoch {first}/{EPOCHS}" in resumed.stdout and f"Epoch {first - 1}/{EPOCHS}" not in resumed.stdout
    _assert_same_run(tmp_path / "run" / "model.keras", uninterrupted)
    assert not (tmp_path / "run" / "backup").exists() and (tmp_path / "run" / "complete.json").is_file()


def test_a_run_killed_during_export_keeps_its_backup_and_leaves_no_partial_export(tmp_path, uninterrupted):
    killed = _train(tmp_path, "--out", "run", fault="export")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    run = tmp_path / "run"
    assert not (run / "export").exists() and (run / "backup" / backup.STATE).is_file()
    assert not (run / "complete.json").exists()
    resumed = _train(tmp_path, "--out", "run")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"epoch {EPOCHS + 1} of {EPOCHS}" in resumed.stdout  # nothing left to train
    assert "Epoch " not in resumed.stdout
    _assert_same_run(run / "model.keras", uninterrupted)
    assert (run / "export" / "report.json").is_file() and not (run / "export.partial").exists()


def test_a_real_sigkill_from_outside_resumes_to_the_uninterrupted_weights(tmp_path, uninterrupted):
    state = tmp_path / "run" / "backup" / backup.STATE
    command = [sys.executable, "-m", "training.train", *ARGS, "--out", "run", "--no-export"]
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(command, cwd=tmp_path, env=_env(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not state.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=30) == -signal.SIGKILL, (tmp_path / "first.log").read_text()
    resumed = _train(tmp_path, "--out", "run", "--no-export")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _assert_same_run(tmp_path / "run" / "model.keras", uninterrupted)


# ------------------------------------------------------------ damaged backups
def _backed_up_model(tmp_path, epochs):
    """A model trained `epochs` epochs with a backup after each; (model, backup folder, weights per epoch)."""
    x = data.load("digits").reshape(-1, 64)
    model = keras_ae.get_model("autoencoder", input_shape=(64,), latent_dim=4, seed=0)
    model.compile()
    folder = str(tmp_path / "backup")
    snapshots = {}

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots[epoch + 1] = [np.asarray(w) for w in model.get_weights()]

    model.fit(x, epochs=epochs, batch_size=64, verbose=0, callbacks=[backup.RunBackup(folder), Snapshot()])
    return model, folder, snapshots


def _fresh_model():
    model = keras_ae.get_model("autoencoder", input_shape=(64,), latent_dim=4, seed=0)
    model.compile()
    return model


def test_backups_keep_the_two_newest_and_restore_the_newest(tmp_path):
    _, folder, snapshots = _backed_up_model(tmp_path, 3)
    assert sorted(os.listdir(folder)) == ["epoch-2.npz", "epoch-3.npz", backup.STATE]
    model = _fresh_model()
    assert backup.restore(model, folder) == (3, None)
    for got, want in zip(model.get_weights(), snapshots[3], strict=True):
        np.testing.assert_array_equal(got, want)
    assert int(model.optimizer.iterations) == 3 * STEPS_PER_EPOCH


def test_a_damaged_backup_is_reported_and_the_one_before_it_used(tmp_path, capsys):
    _, folder, snapshots = _backed_up_model(tmp_path, 3)
    newest = os.path.join(folder, "epoch-3.npz")
    with open(newest, "r+b") as f:
        f.truncate(os.path.getsize(newest) // 2)
    model = _fresh_model()
    assert backup.restore(model, folder)[0] == 2
    assert "is damaged (its checksum differs); resuming from the one before it (epoch 2)." in capsys.readouterr().out
    for got, want in zip(model.get_weights(), snapshots[2], strict=True):
        np.testing.assert_array_equal(got, want)


def test_with_every_backup_damaged_training_restarts_from_the_start(tmp_path, capsys):
    _, folder, _ = _backed_up_model(tmp_path, 2)
    for name in ("epoch-1.npz", "epoch-2.npz"):
        Path(folder, name).write_bytes(b"\0" * 100)
    assert backup.restore(_fresh_model(), folder) == (0, None)
    assert "training restarts from the first epoch." in capsys.readouterr().out
    assert not os.path.exists(folder)  # the next run starts clean


def test_a_damaged_state_file_restarts_training_with_one_line(tmp_path, capsys):
    _, folder, _ = _backed_up_model(tmp_path, 1)
    Path(folder, backup.STATE).write_text('{"backups": [{"epo')
    assert backup.restore(_fresh_model(), folder) == (0, None)
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed == [
        f"The backup is unusable: {os.path.join(folder, backup.STATE)} is damaged (JSONDecodeError); "
        "training restarts from the first epoch."
    ]


# ------------------------------------------------------------ the run folder
QUIET = ["--epochs", "1", "--verbose", "0", "--no-export", "--image-every", "0"]


def test_a_folder_in_use_is_refused_and_a_stale_lock_cleared(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / run_folder.LOCK).write_text(f"{holder.pid}\n")
        with pytest.raises(SystemExit) as exit_info:
            train.main(["--out", str(out), *QUIET])
        assert exit_info.value.code == 2
        error = capsys.readouterr().err.strip()
        assert (
            error.endswith(
                f"{out} is in use by process {holder.pid} ({out / run_folder.LOCK}); "
                "wait for it to end or choose another --out."
            )
            and "\n" not in error
        )
    finally:
        holder.kill()
        holder.wait()
    assert train.main(["--out", str(out), *QUIET]) == 0  # the holder is gone: its lock is cleared
    assert not (out / run_folder.LOCK).exists() and (out / "complete.json").is_file()


def test_a_finished_folder_is_kept_from_another_configuration_unless_overwritten(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert train.main(["--out", out, *QUIET]) == 0
    first = (tmp_path / "run" / "model.keras").read_bytes()
    capsys.readouterr()
    assert train.main(["--out", out, *QUIET]) == 0  # the same configuration: complete, nothing trained
    assert "holds this run, complete" in capsys.readouterr().out
    assert (tmp_path / "run" / "model.keras").read_bytes() == first
    again = train.run(out=out, epochs=1, verbose=0, export=False, image_every=0)  # the API returns the run's model
    saved = keras.saving.load_model(tmp_path / "run" / "model.keras")
    for got, want in zip(again.model.get_weights(), saved.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(SystemExit):
        train.main(["--out", out, *QUIET, "--latent-dim", "8"])
    assert "holds a run of another configuration (latent_dim: 16 -> 8); pass --overwrite" in capsys.readouterr().err
    assert json.loads((tmp_path / "run" / "config.json").read_text())["latent_dim"] == 16
    assert train.main(["--out", out, *QUIET, "--latent-dim", "8", "--overwrite"]) == 0
    assert keras.saving.load_model(tmp_path / "run" / "model.keras").latent_dim == 8


def test_an_impossible_folder_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--out", "/dev/null/x", *QUIET])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert "Cannot create the run folder /dev/null/x" in error and "\n" not in error
