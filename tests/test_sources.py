"""The user's own data (keras_ae.sources): image folders, arrays, TFRecords and CSV, their splits,
scaling and streaming, and a one-line answer to every kind of bad file, before anything is written."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from sklearn.datasets import load_digits, load_sample_images
from tensorflow.python.framework import config as tf_config
from test_training import run_two_workers, subprocess_env

from keras_ae import pipeline, sources
from training import train

DIGITS = (load_digits().images * 255 / 16).astype(np.uint8)  # (1797, 8, 8)


def _write(path, image, fmt=None):
    """An (H, W, C) uint8 image as PNG, JPEG, BMP or GIF by the file's extension."""
    fmt = fmt or os.path.splitext(path)[1][1:].lower()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if fmt == "png":
        encoded = tf.io.encode_png(image).numpy()
    elif fmt in ("jpg", "jpeg"):
        encoded = tf.io.encode_jpeg(image, quality=95).numpy()
    else:  # BMP and GIF: TensorFlow decodes them but cannot write them
        buffer = io.BytesIO()
        Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(buffer, format=fmt.upper())
        encoded = buffer.getvalue()
    with open(path, "wb") as f:
        f.write(encoded)


def _digit_folder(root, count=40, ext="png", colour_every=0):
    """`count` digits as 8x8 images; every `colour_every`-th one as RGB (gray replicated)."""
    for i in range(count):
        image = DIGITS[i][..., None]
        if colour_every and i % colour_every == 0:
            image = np.repeat(image, 3, axis=-1)
        _write(os.path.join(root, f"d{i:03d}.{ext}"), image)
    return root


def _all(source, split, batch_size=16):
    return np.concatenate([b.numpy() for b in pipeline.stream(source, split, batch_size)])


def _error(match, function, *args, **kwargs):
    with pytest.raises(ValueError, match=match) as info:
        function(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------ folders
def test_a_folder_of_mixed_formats_at_any_depth_decodes_to_the_stored_pixels(tmp_path):
    """Lossless PNG, BMP and GIF files, nested, one grayscale among RGB ones: every pixel as written, /255."""
    photo = load_sample_images().images[0][100:116, 200:216]  # (16, 16, 3) RGB
    gray = DIGITS[7][..., None].repeat(2, 0).repeat(2, 1)  # (16, 16, 1)
    _write(str(tmp_path / "a" / "b" / "photo.png"), photo)
    _write(str(tmp_path / "photo.bmp"), photo)
    _write(str(tmp_path / "c" / "gray.png"), gray)
    _write(str(tmp_path / "gray.gif"), np.repeat(gray, 3, -1))
    (tmp_path / "notes.txt").write_text("not an image, and ignored: it has no image extension")
    source = sources.open_source(tmp_path, validation_fraction=0, test_fraction=0)
    assert source.element_shape == (16, 16, 3) and source.count("train") == 4
    got = {tuple(np.round(x * 255).astype(np.uint8).ravel()[:6]): x for x in _all(source, "train")}
    np.testing.assert_array_equal(got[tuple(photo.ravel()[:6])] * 255, photo)  # PNG and BMP: one key, both equal
    gray_rgb = np.repeat(gray, 3, -1).astype(np.float32)
    np.testing.assert_allclose(got[tuple(gray_rgb.ravel()[:6])] * 255, gray_rgb, atol=1e-4)  # gray to RGB


def test_crop_takes_the_central_window_and_resize_keeps_the_aspect_ratio(tmp_path):
    photo = load_sample_images().images[1][:40, :60]  # (40, 60, 3)
    _write(str(tmp_path / "p.png"), photo)
    crop = sources.open_source(tmp_path, image_size=20, image_fit="crop", validation_fraction=0, test_fraction=0)
    np.testing.assert_array_equal(_all(crop, "train")[0] * 255, photo[10:30, 20:40])
    resized = sources.open_source(tmp_path, image_size=20, channels=1, validation_fraction=0, test_fraction=0)
    # Resize crops the centre 40x40 first: a uniform image of the central square's mean stays its mean.
    centre_gray = tf.image.rgb_to_grayscale(photo[:, 10:50].astype(np.float32)).numpy().mean()
    assert abs(_all(resized, "train")[0].mean() * 255 - centre_gray) < 1.0


def test_split_subfolders_are_the_splits_and_a_hash_split_never_moves_an_old_file(tmp_path):
    for split, count in (("train", 6), ("validation", 2), ("test", 3)):
        _digit_folder(str(tmp_path / "split" / split), count)
    source = sources.open_source(tmp_path / "split")
    assert [source.count(s) for s in pipeline.SPLITS] == [6, 2, 3]

    def splits(root):
        source = sources.open_source(root, validation_fraction=0.2, test_fraction=0.2)
        return {split: {tuple(x.ravel()) for x in _all(source, split)} for split in pipeline.SPLITS}

    _digit_folder(str(tmp_path / "hash"), 60)
    before = splits(tmp_path / "hash")
    assert 5 <= len(before["validation"]) <= 20 and 5 <= len(before["test"]) <= 20
    for i in range(60, 200):  # more files, of other digits
        _write(str(tmp_path / "hash" / f"d{i:03d}.png"), DIGITS[i][..., None])
    after = splits(tmp_path / "hash")
    for split in pipeline.SPLITS:
        assert before[split] <= after[split]


# ------------------------------------------------------------------ bad data
def _bad_folder(root, name, contents):
    _digit_folder(root, 10)
    with open(os.path.join(root, name), "wb") as f:
        f.write(contents)
    return root


@pytest.mark.parametrize(
    "name, contents, reason",
    [
        ("zero.png", b"", "empty \\(0 bytes\\)"),
        ("text.jpg", b"these are words, not pixels", "not an image"),
        ("cut.png", tf.io.encode_png(DIGITS[0][..., None]).numpy()[:40], "a corrupt or truncated PNG"),
        ("cut.jpg", tf.io.encode_jpeg(DIGITS[0][..., None]).numpy()[:200], "a corrupt or truncated JPEG"),
    ],
)
def test_each_bad_image_is_named_with_the_count_or_skipped_and_counted(tmp_path, name, contents, reason):
    root = _bad_folder(str(tmp_path), name, contents)
    message = _error(
        f"1 of 11 images in {root} cannot be used \\(first: {name}: {reason}\\)", sources.open_source, root
    )
    assert "--skip-bad-files" in message
    skipped = sources.open_source(root, skip_bad_files=True, validation_fraction=0, test_fraction=0)
    assert skipped.skipped == 1 and skipped.count("train") == 10


def test_a_folder_without_usable_images_and_sizes_and_globs_get_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    _error("holds no images", sources.open_source, tmp_path / "empty")
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("x")
    _error("holds no images", sources.open_source, tmp_path / "texts")
    (tmp_path / "texts" / "a.png").write_bytes(b"")
    _error("None of the 1 images .* \\(first: a.png: empty \\(0 bytes\\)\\)", sources.open_source, tmp_path / "texts")
    _digit_folder(str(tmp_path / "small"), 3)
    _error(
        "3 of 3 images .* 8x8, smaller than 12x12 to crop",
        sources.open_source,
        tmp_path / "small",
        image_size=12,
        image_fit="crop",
    )
    _write(str(tmp_path / "small" / "big.png"), np.zeros((9, 8, 1), np.uint8))
    _error("differ in size .* give --image-size", sources.open_source, tmp_path / "small")
    _error("No files match .*nothing-\\*.tfrecord", sources.open_source, str(tmp_path / "nothing-*.tfrecord"))
    _error("No file or folder", sources.open_source, tmp_path / "missing.npy")


def test_bad_arrays_and_csv_columns_are_named(tmp_path):
    x = np.random.default_rng(0).random((30, 4)).astype(np.float32)
    for value, kind in ((np.nan, "NaN"), (np.inf, "Inf")):
        bad = x.copy()
        bad[[7, 20], 2] = value
        np.save(tmp_path / "bad.npy", bad)
        _error(
            f"bad.npy holds {kind} values in 2 example\\(s\\) \\(first: row 7\\)",
            sources.open_source,
            tmp_path / "bad.npy",
        )
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    _error("objects.npy holds an object array", sources.open_source, tmp_path / "objects.npy")
    np.save(tmp_path / "text.npy", np.array(["a", "b"]))
    _error("text.npy holds <U1 values", sources.open_source, tmp_path / "text.npy")
    (tmp_path / "t.csv").write_text("age,city,income\n31,2,4.5\n40,Paris,3.0\n")
    _error("t.csv: column 'city' is not numeric \\(line 3: 'Paris'\\)", sources.open_source, tmp_path / "t.csv")
    (tmp_path / "n.csv").write_text("1,2\n3,nan\n")
    _error("column 'column 2' holds nan at line 2", sources.open_source, tmp_path / "n.csv")


def test_a_failed_start_writes_nothing(tmp_path, capsys):
    root = _bad_folder(str(tmp_path / "data"), "zero.png", b"")
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--dataset", root, "--out", str(out), "--epochs", "1", "--verbose", "0"])
    assert exit_info.value.code == 2
    assert "1 of 11 images" in capsys.readouterr().err
    assert not out.exists()


# ------------------------------------------------------------------ arrays, CSV, TFRecords
def test_arrays_are_memory_mapped_and_scaled_by_their_dtype(tmp_path):
    x = np.random.default_rng(1).integers(0, 65536, (50, 6, 5), dtype=np.uint16)
    np.save(tmp_path / "x.npy", x)
    source = sources.open_source(tmp_path / "x.npy", validation_fraction=0, test_fraction=0)
    assert isinstance(source._rows["train"][0], np.memmap)
    np.testing.assert_allclose(_all(source, "train")[..., 0], x / 65535, rtol=1e-6)
    np.savez(tmp_path / "s.npz", x_train=x[:40], x_valid=x[40:45], x_test=x[45:])
    named = sources.open_source(tmp_path / "s.npz", scale="raw")
    assert [named.count(s) for s in pipeline.SPLITS] == [40, 5, 5]
    np.testing.assert_array_equal(_all(named, "test")[..., 0], x[45:])


def test_standard_scaling_uses_the_training_split_statistics_per_column(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.normal([10.0, -3.0, 500.0], [2.0, 0.5, 100.0], (200, 3))
    np.savetxt(tmp_path / "h.csv", x, delimiter=",", header="a,b,c", comments="")
    np.savetxt(tmp_path / "n.csv", x, delimiter=",")  # no header
    for name in ("h.csv", "n.csv"):
        source = sources.open_source(tmp_path / name, scale="standard", validation_fraction=0, test_fraction=0)
        np.testing.assert_allclose(source.scaling.mean, x.mean(axis=0), rtol=1e-6)
        np.testing.assert_allclose(source.scaling.std, x.std(axis=0), rtol=1e-5)
        got = _all(source, "train")
        np.testing.assert_allclose(np.sort(got, axis=0), np.sort((x - x.mean(0)) / x.std(0), axis=0), atol=1e-4)


def test_tfrecords_written_from_a_folder_hold_its_splits_and_pixels(tmp_path):
    root = _digit_folder(str(tmp_path / "folder"), 50, colour_every=4)
    files = sources.write_tfrecords(root, str(tmp_path / "rec" / "digits"), shards=3)
    assert len(files) == 3
    folder = sources.open_source(root, image_size=8, channels=3)
    records = sources.open_source(str(tmp_path / "rec" / "*.tfrecord"), image_size=8, channels=3)
    for split in pipeline.SPLITS:
        assert records.count(split) == folder.count(split)
        a, b = (np.sort(_all(s, split).reshape(folder.count(split), -1), axis=0) for s in (folder, records))
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ order, resume, workers
def test_an_epoch_s_order_is_a_function_of_seed_and_epoch_for_every_source(tmp_path):
    """What an exact resume needs: epoch e's batches rebuilt from scratch are the same; epochs differ."""
    root = _digit_folder(str(tmp_path / "f"), 60)
    sources.write_tfrecords(root, str(tmp_path / "r" / "d"), shards=2)
    np.savetxt(tmp_path / "t.csv", np.arange(120.0).reshape(60, 2), delimiter=",")
    for path in (root, str(tmp_path / "r" / "*.tfrecord"), tmp_path / "t.csv"):

        def epoch_batches(e, path=path):
            source = sources.open_source(path, scale="raw", validation_fraction=0, test_fraction=0)
            dataset = pipeline.stream(source, "train", 8, shuffle=True, seed=3, epoch=tf.Variable(e, dtype=tf.int64))
            return np.concatenate(list(dataset.as_numpy_iterator()))

        first, again, second = epoch_batches(1), epoch_batches(1), epoch_batches(2)
        np.testing.assert_array_equal(first, again)
        assert not np.array_equal(first, second)
        np.testing.assert_array_equal(np.sort(first, axis=0), np.sort(second, axis=0))  # each example once


def test_a_run_on_a_folder_killed_mid_epoch_resumes_to_the_uninterrupted_weights(tmp_path):
    root = _digit_folder(str(tmp_path / "data"), 120)
    options = dict(dataset=root, model="vae", latent_dim=2, model_options={"hidden_units": [8]}, binarize="dynamic")
    options.update(epochs=3, batch_size=16, seed=1, image_every=0, export=False, verbose=0)
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in options.items() if k not in ("model_options", "export")]
    killed = subprocess.run(
        [sys.executable, "-m", "training.train", *flags, "--model-option=hidden_units=[8]", "--no-export", "--out=run"],
        cwd=tmp_path,
        env={**subprocess_env(), "KERAS_AE_FAULT": "step:9"},  # in epoch 2: seven steps an epoch
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode < 0 and not (tmp_path / "run" / "model.keras").exists(), killed.stderr[-2000:]
    try:
        resumed = train.run(out=str(tmp_path / "run"), **options)
        whole = train.run(out=str(tmp_path / "whole"), **options)
    finally:
        tf_config.disable_op_determinism()  # a seeded run turns it on for the process
    steps = -(-sources.open_source(root).count("train") // 16)
    assert int(resumed.model.optimizer.iterations) == int(whole.model.optimizer.iterations) == 3 * steps
    for a, b in zip(resumed.model.weights, whole.model.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


_WORKER = """
import json, sys
import tensorflow as tf
from keras_ae import pipeline, sources
strategy = tf.distribute.MultiWorkerMirroredStrategy()
source = sources.open_source(sys.argv[1], scale="raw", validation_fraction=0, test_fraction=0)
epoch = tf.Variable(1, dtype=tf.int64)
dataset = pipeline.distributed(
    strategy, lambda shard: pipeline.stream(source, "train", 10, shuffle=True, seed=4, epoch=epoch, shard=shard)
)
steps = [[int(v) for v in strategy.experimental_local_results(b)[0].numpy()[:, 0, 0, 0]] for b in dataset]
json.dump(steps, open(sys.argv[2], "w"))
"""


def test_two_workers_each_read_their_own_rows_and_together_see_every_example_once(tmp_path):
    """Each image carries its id in its first pixel. Per step the two workers' rows are the global batch
    of one device, and over the epoch every id comes exactly once."""
    root = tmp_path / "ids"
    for i in range(47):
        _write(str(root / f"{i:02d}.png"), np.full((4, 4, 1), i, np.uint8))
    run_two_workers(
        lambda index: [sys.executable, "-c", _WORKER, str(root), str(tmp_path / f"w{index}.json")], tmp_path
    )
    steps = [json.load(open(tmp_path / f"w{i}.json")) for i in range(2)]
    source = sources.open_source(root, scale="raw", validation_fraction=0, test_fraction=0)
    one_device = pipeline.stream(source, "train", 10, shuffle=True, seed=4, epoch=tf.Variable(1, dtype=tf.int64))
    expected = [[int(v) for v in b[:, 0, 0, 0]] for b in one_device.as_numpy_iterator()]
    assert len(steps[0]) == len(steps[1]) == len(expected) == 5
    for a, b, whole in zip(*steps, expected, strict=True):
        assert a + b == whole and len(a) == -(-len(whole) // 2)  # worker 0 the first half (rounded up), 1 the rest
    assert sorted(sum(steps[0] + steps[1], [])) == list(range(47))


# ------------------------------------------------------------------ training
@pytest.mark.parametrize("kind", ["folder", "npy", "npz", "tfrecord", "csv"])
def test_training_runs_on_each_kind_of_file_and_records_its_scaling(tmp_path, kind):
    x = DIGITS[:120]
    if kind in ("folder", "tfrecord"):
        path = _digit_folder(str(tmp_path / "folder"), 120, colour_every=3)
        if kind == "tfrecord":
            sources.write_tfrecords(path, str(tmp_path / "rec" / "d"), shards=2)
            path = str(tmp_path / "rec" / "*.tfrecord")
        options = dict(image_size=8, channels=3)
    elif kind == "npy":
        path = str(tmp_path / "x.npy")
        np.save(path, x)
        options = {}
    elif kind == "npz":
        path = str(tmp_path / "x.npz")
        np.savez(path, x=x)
        options = {}
    else:
        path = str(tmp_path / "x.csv")
        np.savetxt(path, x.reshape(120, -1), delimiter=",", fmt="%d")
        options = dict(scale="standard")
    result = train.run(
        dataset=path,
        model="autoencoder",
        latent_dim=4,
        epochs=2,
        batch_size=16,
        out=str(tmp_path / "run"),
        export=False,
        image_every=0,
        verbose=0,
        seed=0,
        **options,
    )
    losses = result.history.history["loss"]
    assert losses[1] < losses[0]
    config = json.load(open(tmp_path / "run" / "config.json"))
    if kind == "csv":  # the statistics of the training rows, kept for the export and a resume
        train_rows = pipeline.head(sources.open_source(path, scale="raw"), "train", 1000)
        np.testing.assert_allclose(config["scale_statistics"]["mean"], train_rows.mean(0), rtol=1e-5)
    expected = (8, 8, 3) if kind in ("folder", "tfrecord") else (64,) if kind == "csv" else (8, 8, 1)
    assert tuple(result.model.feature_shape) == expected
