"""keras_ae.data: the offline data sets, local files, download errors and the tf.data pipeline."""

import os

import keras
import numpy as np
import pytest
import scipy.io
import tensorflow as tf
from sklearn.datasets import load_digits, load_sample_images

from keras_ae import data


# ------------------------------------------------------------------ digits
def test_digits_splits_partition_the_data_set():
    splits = [data.load("digits", split) for split in data.SPLITS]
    assert [len(x) for x in splits] == [1437, 180, 180]
    assert all(x.shape[1:] == (8, 8, 1) and x.dtype == np.float32 for x in splits)
    together = np.concatenate(splits).reshape(1797, 64)
    original = load_digits().data / 16.0
    # Same examples, each exactly once: compare the rows in one canonical order.
    np.testing.assert_array_equal(np.unique(together, axis=0), np.unique(original, axis=0))
    np.testing.assert_array_equal(data.load("digits", "validation"), splits[1])  # a fixed split


def test_scales():
    unit, raw = data.load("digits"), data.load("digits", scale="raw")
    assert unit.min() == 0.0 and unit.max() == 1.0
    np.testing.assert_allclose(raw, unit * 16.0, rtol=1e-6)
    # One mean and one standard deviation over all the training pixels (not per pixel: some are always 0).
    standard = data.load("digits", scale="standard")
    np.testing.assert_allclose(standard, (raw - raw.mean()) / raw.std(), rtol=1e-4, atol=1e-5)
    # The validation split is standardized with the training statistics.
    np.testing.assert_allclose(
        data.load("digits", "validation", scale="standard"),
        (data.load("digits", "validation", scale="raw") - raw.mean()) / raw.std(),
        rtol=1e-4,
        atol=1e-5,
    )


def test_static_binarization_thresholds_the_unit_intensities():
    x = data.load("digits", binarize="static")
    np.testing.assert_array_equal(x, (data.load("digits", scale="raw") > 8).astype(np.float32))  # 8 of 16 levels
    # "dynamic" keeps the intensities: make_dataset samples them.
    np.testing.assert_array_equal(data.load("digits", binarize="dynamic"), data.load("digits"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(name="cifar"), "Unknown data set 'cifar'"),
        (dict(name="digits", split="valid"), "split must be one of"),
        (dict(name="digits", scale="minmax"), "scale must be one of"),
        (dict(name="digits", binarize="static", scale="raw"), 'needs scale="unit"'),
        (dict(name="digits", patch_size=8), "Unknown option(s) patch_size for data set 'digits'"),
        (dict(name="patches", patch_size=10), "patch_size must be 8"),
        (dict(name="patches", downsample=1.5), "downsample must be an int from 1 to 8"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        data.load(**kwargs)


# ----------------------------------------------------------------- patches
def test_whitening_decorrelates_neighbouring_pixels():
    image = load_sample_images().images[0].astype(np.float64).mean(axis=2)

    def neighbour_correlation(img):
        return np.corrcoef(img[:, :-1].ravel(), img[:, 1:].ravel())[0, 1]

    whitened = data.whiten(image)
    assert neighbour_correlation(image) > 0.9
    assert abs(neighbour_correlation(whitened)) < 0.6
    assert abs(whitened.var() - 0.1) < 1e-6


def test_block_mean_averages_blocks():
    image = np.arange(30.0).reshape(5, 6)
    expected = [
        [(0 + 1 + 6 + 7) / 4, (2 + 3 + 8 + 9) / 4, (4 + 5 + 10 + 11) / 4],
        [(12 + 13 + 18 + 19) / 4, (14 + 15 + 20 + 21) / 4, (16 + 17 + 22 + 23) / 4],
    ]
    np.testing.assert_allclose(data.block_mean(image, 2), expected)  # the fifth row fills no block
    np.testing.assert_array_equal(data.block_mean(image, 1), image)


def test_downsampled_patches_hold_more_contrast():
    # At full size half of the photographs' patches are nearly flat; at half size
    # the median patch has a clearly larger share of the overall contrast.
    def median_contrast(downsample):
        raw = data.load("patches", scale="raw", patch_size=8, num_patches=2000, downsample=downsample)
        return np.median(raw.std(axis=1)) / raw.std()

    assert median_contrast(2) > 1.3 * median_contrast(1)


@pytest.mark.parametrize("patch_size", [8, 12])
def test_patches_normalization(patch_size):
    options = dict(patch_size=patch_size, num_patches=500)
    unit = data.load("patches", **options)
    assert unit.shape == (400, patch_size**2) and unit.dtype == np.float32
    raw, raw_test = (data.load("patches", split, scale="raw", **options) for split in ("train", "test"))
    np.testing.assert_allclose(raw.mean(axis=1), 0.0, atol=1e-6)  # DC removed from each patch
    assert len(raw_test) == 50
    # Ng (2011), normalizeData: truncated to ±3σ of the training patches, [−3σ, 3σ] mapped onto [0.1, 0.9]; the
    # test split with the training σ.
    bound = 3 * raw.std()
    for split, x in (("train", raw), ("test", raw_test)):
        expected = (np.clip(x, -bound, bound) / bound + 1) * 0.4 + 0.1
        np.testing.assert_allclose(data.load("patches", split, **options), expected, rtol=1e-5, atol=1e-6)
    # Vincent et al. (2010): zero mean and unit variance over the training patches.
    standard = data.load("patches", scale="standard", **options)
    np.testing.assert_allclose(standard, (raw - raw.mean()) / raw.std(), rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------- local files
def _write_fake(path, **arrays):
    np.savez_compressed(path, **arrays)


def test_mnist_from_a_local_npz(tmp_path):
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    x_test = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    labels = np.zeros(12, np.uint8)
    _write_fake(tmp_path / "fashion_mnist.npz", x_train=x_train, y_train=labels, x_test=x_test, y_test=labels[:3])
    train = data.load("fashion_mnist", "train", data_dir=tmp_path)
    valid = data.load("fashion_mnist", "validation", data_dir=tmp_path)
    test = data.load("fashion_mnist", "test", data_dir=tmp_path)
    # 5/6 of the training images train, the last 1/6 validate: 50k/10k on the real file.
    assert train.shape == (10, 28, 28, 1) and valid.shape == (2, 28, 28, 1) and test.shape == (3, 28, 28, 1)
    np.testing.assert_allclose(valid[..., 0], x_train[10:] / 255.0, rtol=1e-6)
    np.testing.assert_allclose(test[..., 0], x_test / 255.0, rtol=1e-6)


def test_binarized_mnist_and_frey_face_from_local_npz(tmp_path):
    rng = np.random.default_rng(1)
    sizes = (("train", 5), ("valid", 2), ("test", 3))
    parts = {f"x_{p}": rng.integers(0, 2, (n, 28, 28), dtype=np.uint8) for p, n in sizes}
    _write_fake(tmp_path / "binarized_mnist.npz", **parts)
    valid = data.load("binarized_mnist", "validation", data_dir=tmp_path)
    np.testing.assert_array_equal(valid[..., 0], parts["x_valid"])
    _write_fake(tmp_path / "frey_face.npz", x=rng.integers(0, 256, (40, 28, 20), dtype=np.uint8))
    shapes = [data.load("frey_face", s, data_dir=tmp_path).shape for s in data.SPLITS]
    assert shapes == [(32, 28, 20, 1), (4, 28, 20, 1), (4, 28, 20, 1)]


def test_missing_local_file_names_the_file_and_folder(tmp_path):
    with pytest.raises(data.DataUnavailableError) as error:
        data.load("binarized_mnist", data_dir=tmp_path)
    message = str(error.value)
    assert "put binarized_mnist.npz with arrays x_train, x_valid, x_test there" in message
    assert str(tmp_path) in message and "\n" not in message


def test_a_missing_array_is_named(tmp_path):
    _write_fake(tmp_path / "mnist.npz", x_train=np.zeros((6, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="lacks y_train, x_test, y_test"):
        data.load("mnist", data_dir=tmp_path)


def test_pickled_arrays_are_refused(tmp_path):
    objects = np.empty(2, dtype=object)
    objects[:] = [np.zeros(3), "text"]
    np.savez(tmp_path / "frey_face.npz", x=objects)
    with pytest.raises(ValueError, match="allow_pickle=False"):
        data.load("frey_face", data_dir=tmp_path)


def test_failed_download_is_one_clear_line(monkeypatch):
    def offline():
        raise Exception(
            "URL fetch failure on https://storage.googleapis.com/x/mnist.npz: None -- "
            "[Errno -2] Name or service not known"
        )

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(data.DataUnavailableError) as error:
        data.load("mnist")
    message = str(error.value)
    assert message.startswith("Could not download mnist (URL fetch failure")
    assert "Put mnist.npz with arrays x_train, y_train, x_test, y_test in a folder" in message
    assert "--data-dir" in message and "\n" not in message
    assert error.value.__suppress_context__  # no urllib traceback behind it


def test_downloaded_frey_face_and_binarized_mnist_are_parsed(tmp_path, monkeypatch):
    """The download paths, with `get_file` answering from local files in the original formats."""
    frames = 30
    ff = np.stack([(np.arange(560) + 7 * k) % 256 for k in range(frames)], axis=1).astype(np.uint8)  # (560, frames)
    scipy.io.savemat(tmp_path / "frey_rawface.mat", {"ff": ff})
    rng = np.random.default_rng(2)
    amat = {}
    for part, n in (("train", 4), ("valid", 2), ("test", 3)):
        amat[part] = rng.integers(0, 2, (n, 784))
        np.savetxt(tmp_path / f"binarized_mnist_{part}.amat", amat[part], fmt="%d")
    monkeypatch.setattr(keras.utils, "get_file", lambda fname, origin, file_hash: str(tmp_path / fname))

    loaded = np.concatenate([data.load("frey_face", s) for s in data.SPLITS])[..., 0] * 255.0
    expected = ff.T.reshape(frames, 28, 20)  # one 28x20 frame per column, rows of 20 pixels
    assert loaded.shape == (frames, 28, 20)
    # The same frames, split in some fixed order.
    np.testing.assert_array_equal(np.unique(np.round(loaded), axis=0), np.unique(expected, axis=0))
    test = data.load("binarized_mnist", "test")
    np.testing.assert_array_equal(test.reshape(3, 784), amat["test"])


# ----------------------------------------------------------------- pipeline
def _epoch(dataset):
    return [batch.numpy() for batch in dataset]


def test_pipeline_batches_in_order_without_shuffle():
    x = np.arange(10, dtype=np.float32).reshape(10, 1)
    batches = _epoch(data.make_dataset(x, batch_size=4))
    assert [len(b) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate(batches), x)
    options = data.make_dataset(x, 4).options()
    assert options.experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.DATA


def test_pipeline_shuffle_is_seeded_and_reshuffles_every_epoch():
    x = np.arange(50, dtype=np.float32).reshape(50, 1)
    dataset = data.make_dataset(x, batch_size=8, shuffle=True, seed=3)
    first, second = np.concatenate(_epoch(dataset)), np.concatenate(_epoch(dataset))
    np.testing.assert_array_equal(np.sort(first, axis=0), x)  # a permutation
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(np.concatenate(_epoch(data.make_dataset(x, 8, shuffle=True, seed=3))), first)


def test_dynamic_binarization_samples_anew_each_epoch():
    x = np.full((2000, 4), 0.3, np.float32)
    dataset = data.make_dataset(x, batch_size=500, seed=5, dynamic_binarization=True)
    first, second = np.concatenate(_epoch(dataset)), np.concatenate(_epoch(dataset))
    assert set(np.unique(first)) == {0.0, 1.0}
    assert abs(first.mean() - 0.3) < 0.02  # Bernoulli(0.3) draws
    assert not np.array_equal(first, second)
    batches = _epoch(dataset)
    assert not np.array_equal(batches[0], batches[1])  # fresh for every batch too
    again = data.make_dataset(x, batch_size=500, seed=5, dynamic_binarization=True)
    np.testing.assert_array_equal(np.concatenate(_epoch(again)), first)


SHARED_DATA = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "shared", "data")


@pytest.mark.skipif(
    not os.path.exists(os.path.join(SHARED_DATA, "olivetti_faces.npz")),
    reason="needs ../shared/data/olivetti_faces.npz (the checksummed Olivetti faces)",
)
def test_olivetti_faces_are_the_400_faces_split_320_40_40():
    with np.load(os.path.join(SHARED_DATA, "olivetti_faces.npz"), allow_pickle=False) as f:
        stored = f["x"].astype(np.float32) / 255
    splits = [data.load("olivetti_faces", s, data_dir=SHARED_DATA) for s in data.SPLITS]
    assert [len(x) for x in splits] == [320, 40, 40]
    union = np.concatenate(splits)[..., 0]
    np.testing.assert_array_equal(
        union[np.lexsort(union.reshape(400, -1).T)], stored[np.lexsort(stored.reshape(400, -1).T)]
    )
