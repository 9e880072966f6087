"""The training entry point: outputs, TensorBoard summaries, configuration,
errors, distribution, reproducibility, NaN stop and resume after a kill."""

import json
import os
import socket
import subprocess
import sys
import types
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import config as tf_config

import keras_ae
from keras_ae import data
from training import callbacks, train

REPO = Path(__file__).resolve().parents[1]
QUIET = ["--verbose", "0", "--no-export"]


@pytest.fixture(autouse=True)
def _no_lasting_op_determinism():
    """A seeded run turns op determinism on for the whole process, which would
    silently keep later tests' models from compiling with XLA."""
    yield
    tf_config.disable_op_determinism()


def summaries(folder):
    """{tag: [(step, value)]} of the event files directly in `folder`: the
    tensor of each value as an array, with `(tag, "plugin")` giving its plugin."""
    found = {}
    for path in sorted(Path(folder).glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                found.setdefault(value.tag, []).append((event.step, tf.make_ndarray(value.tensor)))
                if value.metadata.plugin_data.plugin_name:
                    found[(value.tag, "plugin")] = value.metadata.plugin_data
    return found


def image_shapes(values):
    """The (h, w, c) of each image of an image summary's tensor [width, height, png...]."""
    return [tuple(tf.io.decode_png(png).shape) for png in values[2:]]


def weights(model_path):
    return [np.asarray(w) for w in keras.saving.load_model(model_path).weights]


def subprocess_env():
    return {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}


# ------------------------------------------------------------ one full run
def test_run_writes_models_config_tensorboard_and_export(tmp_path, monkeypatch, capsys):
    exported = []
    fake = types.ModuleType("export.export")
    fake.export_model = lambda model, **kwargs: exported.append(kwargs) or os.makedirs(kwargs["out_dir"])
    monkeypatch.setitem(sys.modules, "export.export", fake)
    out = tmp_path / "run"
    argv = ["--model", "sparse", "--epochs", "2", "--image-every", "1", "--out", str(out), "--verbose", "0"]
    assert train.main(argv) == 0

    assert json.loads((out / "config.json").read_text()) == train.parse_config(argv)
    assert (out / "model.keras").is_file() and not (out / "backup").exists()
    [call] = exported
    # Written under a temporary name, then renamed: a kill leaves no partial export.
    assert call["out_dir"] == str(out / "export.partial") and call["tflite"] == "float32"
    assert (out / "export").is_dir() and not (out / "export.partial").exists()
    assert call["representative_data"].shape == (100, 8, 8, 1)
    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    assert last_line.startswith("Done: loss ") and "val_sparsity" in last_line and "best val_loss" in last_line

    # Scalars: every loss term, train and validation, and the learning rate.
    train_logs, valid_logs = summaries(out / "logs" / "train"), summaries(out / "logs" / "validation")
    for tag in ("epoch_loss", "epoch_reconstruction", "epoch_sparsity"):
        assert [step for step, _ in train_logs[tag]] == [0, 1]
        assert [step for step, _ in valid_logs[tag]] == [0, 1]
    np.testing.assert_allclose([float(v) for _, v in train_logs["epoch_learning_rate"]], [3e-3, 3e-3])
    # best.keras holds the lowest validation loss.
    val_losses = [float(v) for _, v in valid_logs["epoch_loss"]]
    best = keras.saving.load_model(out / "best.keras")
    x_valid = data.load("digits", "validation")
    best_loss = best.evaluate(data.make_dataset(x_valid, 64), verbose=0, return_dict=True)["loss"]
    assert best_loss == pytest.approx(min(val_losses), rel=1e-5)

    # Images and histograms, every epoch: 16 pairs (input, reconstruction) of
    # 8x8 digits 8 tiles across, the 16 filters of the 16 code units 4 across.
    images = summaries(out / "logs" / "images")
    assert [step for step, _ in images["reconstructions"]] == [0, 1]
    assert image_shapes(images["reconstructions"][-1][1]) == [(4 * 9 - 1, 8 * 9 - 1, 1)]
    assert image_shapes(images["filters"][-1][1]) == [(4 * 9 - 1, 4 * 9 - 1, 1)]
    histogram = images["codes"][-1][1]  # (buckets, [left, right, count])
    assert histogram.shape[1] == 3 and histogram[:, 2].sum() == len(x_valid) * 16
    assert images[("codes", "plugin")].plugin_name == "histograms"
    assert "prior_samples" not in images  # VAE only

    hparams = summaries(out / "logs")
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(hparams)
    assert b"sparse" in hparams[("_hparams_/session_start_info", "plugin")].content


def test_vae_writes_prior_samples_and_latent_manifold(tmp_path):
    result = train.run(
        model="vae",
        latent_dim=2,
        model_options={"hidden_units": [32]},
        epochs=1,
        image_every=1,
        out=str(tmp_path),
        verbose=0,
        export=False,
    )
    images = summaries(Path(result.out) / "logs" / "images")
    assert image_shapes(images["prior_samples"][0][1]) == [(2 * 9 - 1, 8 * 9 - 1, 1)]
    assert image_shapes(images["latent_manifold"][0][1]) == [(10 * 9 - 1, 10 * 9 - 1, 1)]


def test_filter_images_are_the_first_layer_kernels_and_tile_scales_each():
    mlp = keras_ae.get_model("autoencoder", input_shape=(8, 8, 1), latent_dim=3, hidden_units=[5])
    kernel = np.asarray(mlp.encoder.layers[1].kernel)  # after the Flatten: (64, 5)
    np.testing.assert_array_equal(mlp.filter_images(), kernel.T.reshape(5, 8, 8, 1))
    conv = keras_ae.get_model("conv", input_shape=(8, 8, 1), latent_dim=3, filters=[6], kernel_size=3)
    filters = conv.filter_images()
    np.testing.assert_array_equal(filters, np.transpose(np.asarray(conv.encoder.layers[0].kernel), (3, 0, 1, 2)))
    grid = keras_ae.images.tile(filters, columns=4, normalize="each")
    assert grid.shape == (2 * 4 - 1, 4 * 4 - 1, 1)  # 6 tiles of 3x3, 4 across, 1-pixel gaps
    for i, f in enumerate(filters):  # each filter mapped to [0, 1] by its own min and max
        top, left = (i // 4) * 4, (i % 4) * 4
        np.testing.assert_allclose(grid[top : top + 3, left : left + 3], (f - f.min()) / (f.max() - f.min()), atol=1e-6)
    assert np.all(grid[3, :] == 1.0) and np.all(grid[4:, 8:] == 1.0)  # gaps and the missing tiles are white
    patches = keras_ae.get_model("autoencoder", input_shape=(144,), latent_dim=2)
    assert patches.filter_images().shape == (2, 12, 12, 1)  # 144 features shown as 12 x 12


# --------------------------------------------------------- configuration
def test_flags_override_the_config_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(
        "model: denoising\nepochs: 7\nbinarize: none\nmodel_options:\n  hidden_units: [32]\n  corruption: gaussian\n"
    )
    config = train.parse_config(
        ["--config", str(path), "--epochs", "3", "--model-option", "noise_level=0.5", "--no-shuffle"]
    )
    assert config["model"] == "denoising" and config["epochs"] == 3 and config["shuffle"] is False
    assert config["model_options"] == {"hidden_units": [32], "corruption": "gaussian", "noise_level": 0.5}
    assert config["out"] == os.path.join("runs", "denoising-digits")
    assert config["learning_rate"] == 3e-3 and config["binarize"] is None


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "nope"], "Unknown model 'nope'. Known models: "),
        (["--dataset", "cifar"], "Unknown data set 'cifar'"),
        (
            ["--model", "conv", "--dataset", "patches"],
            "conv needs image inputs of shape (height, width, channels); got input_shape=(64,)",
        ),
        (["--epochs", "-2"], "epochs must be an int >= 1; got -2"),
        (
            ["--model-option", "colour=red"],
            "Unrecognized keyword arguments passed to MLPAutoencoder: {'colour': 'red'}",
        ),
        (["--dataset", "mnist", "--data-dir", "{tmp}"], "mnist is not in {tmp}: put mnist.npz with arrays"),
        (["--strategy", "multi_worker"], "strategy multi_worker reads its cluster from TF_CONFIG"),
    ],
)
def test_invalid_options_stop_with_one_line_before_writing(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    out = tmp_path / "run"
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    with pytest.raises(SystemExit) as stop:
        train.main(argv + ["--out", str(out)])
    assert stop.value.code == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and message.replace("{tmp}", str(tmp_path)) in captured.err
    assert not out.exists()


# ------------------------------------------------------ reproducibility
def test_seed_makes_runs_bit_identical_and_config_json_reproduces(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    # Shuffling and Gaussian corruption both draw random numbers.
    argv = [
        "--model",
        "denoising",
        "--model-option",
        "corruption=gaussian",
        "--epochs",
        "2",
        "--seed",
        "7",
        "--image-every",
        "0",
    ]
    assert train.main(argv + ["--out", str(first)] + QUIET) == 0
    assert train.main(["--config", str(first / "config.json"), "--out", str(second)]) == 0
    for a, b in zip(weights(first / "model.keras"), weights(second / "model.keras"), strict=True):
        np.testing.assert_array_equal(a, b)


def test_mirrored_over_two_cpus_matches_one_device(tmp_path, mirrored_strategy):
    """Same global batch, no shuffle, same seed; SGD, whose step size scales
    with the gradient, so a missing 1/replicas loss scaling would show."""
    common = dict(
        epochs=2,
        batch_size=32,
        shuffle=False,
        seed=0,
        optimizer="sgd",
        learning_rate=1e-3,
        image_every=0,
        verbose=0,
        export=False,
    )
    one = train.run(out=str(tmp_path / "one"), **common)
    mirrored = train.run(out=str(tmp_path / "mirrored"), shared_strategy=mirrored_strategy, **common)
    assert one.model.distribute_strategy.num_replicas_in_sync == 1
    assert mirrored.model.distribute_strategy is mirrored_strategy and mirrored_strategy.num_replicas_in_sync == 2
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(mirrored.history.history[key], one.history.history[key], rtol=1e-5)
    for a, b in zip(one.model.weights, mirrored.model.weights, strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=1e-5)


def test_speed_flags_keep_the_losses(tmp_path):
    common = dict(epochs=2, shuffle=False, seed=1, image_every=0, verbose=0, export=False)
    plain = train.run(out=str(tmp_path / "plain"), **common)
    tf_config.disable_op_determinism()  # as in a fresh `--jit-compile` process
    fast = train.run(out=str(tmp_path / "fast"), jit_compile=True, steps_per_execution=4, **common)
    assert fast.model.jit_compile and fast.model.steps_per_execution == 4
    np.testing.assert_allclose(fast.history.history["loss"], plain.history.history["loss"], rtol=1e-4)
    mixed = train.run(out=str(tmp_path / "mixed"), mixed_precision=True, **common)
    assert mixed.model.dtype_policy.name == "mixed_float16"
    assert isinstance(mixed.model.optimizer, keras.optimizers.LossScaleOptimizer)
    np.testing.assert_allclose(mixed.history.history["loss"], plain.history.history["loss"], rtol=2e-2)
    assert keras.mixed_precision.global_policy().name == "float32"  # restored for what runs next


# ------------------------------------------------------------------- NaN
def test_nan_loss_stops_the_run_and_names_the_likely_cause(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--model", "linear", "--scale", "raw", "--optimizer", "sgd", "--learning-rate", "0.1", "--out", str(out)]
    assert train.main(argv + QUIET) == 1
    printed = capsys.readouterr().out
    assert "The loss became NaN or Inf in epoch 1" in printed
    assert "lower the learning rate (now 0.1; try --learning-rate 0.01)" in printed
    assert not (out / "model.keras").exists() and not (out / "backup").exists()


def test_nan_hint_blames_unscaled_data_for_a_sigmoid_decoder():
    x_raw = data.load("digits", scale="raw")
    sigmoid = keras_ae.get_model("autoencoder", input_shape=(8, 8, 1), latent_dim=2, reconstruction_loss="bce")
    hint = callbacks.nan_hint(sigmoid, x_raw, 1e-3)
    assert "the data lie in [0, 16]" in hint and "--scale unit" in hint
    assert "--scale unit" not in callbacks.nan_hint(sigmoid, data.load("digits"), 1e-3)


# ------------------------------------------------------------ subprocesses
def _command(*args):
    return [sys.executable, "-m", "training.train", "--verbose", "2", "--no-export", "--image-every", "0", *args]


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_two_workers(command, cwd, timeout=240):
    """`command(index)` in two processes, a cluster of two workers on 127.0.0.1; their outputs, once both succeed."""
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        processes.append(
            subprocess.Popen(
                command(index),
                cwd=cwd,
                env={**subprocess_env(), "TF_CONFIG": tf_config},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    try:
        logs = [p.communicate(timeout=timeout)[0] for p in processes]
    finally:
        for p in processes:
            p.kill()
    assert [p.returncode for p in processes] == [0, 0], "\n".join(log[-2000:] for log in logs)
    return logs


def test_multi_worker_run_of_two_processes_ends_with_identical_weights(tmp_path):
    command = _command("--strategy", "multi_worker", "--epochs", "2", "--seed", "0", "--out", "run")
    logs = run_two_workers(lambda index: command, tmp_path)
    assert all("CollectiveAllReduceStrategy (2 replica(s))" in log for log in logs)
    # The workers report the same all-reduced losses, and the loss fell.
    losses = [[line.split(" - loss: ")[1] for line in log.splitlines() if " - val_loss: " in line] for log in logs]
    assert len(losses[0]) == 2 and losses[0] == losses[1]
    first, last = (float(line.split()[0]) for line in losses[0])
    assert last < first
    chief, other = tmp_path / "run" / "model.keras", tmp_path / "run" / "worker-1" / "model.keras"
    for a, b in zip(weights(chief), weights(other), strict=True):
        np.testing.assert_array_equal(a, b)
