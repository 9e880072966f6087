"""Data sets for the zoo, as float32 arrays, and the `tf.data` pipeline that feeds them.

    from keras_ae import data
    x_train = data.load("digits")                       # (1437, 8, 8, 1) in [0, 1]
    x_valid = data.load("digits", split="validation")
    dataset = data.make_dataset(x_train, batch_size=64, shuffle=True, seed=0)

Images come back as (N, H, W, 1), natural-image patches as flat (N, p*p)
vectors. Every data set has the splits "train", "validation" and "test".

`digits` and `patches` ship with scikit-learn and always load offline. The
others are read from `data_dir/<name>.npz` when `data_dir` is given (never
downloaded then), and downloaded otherwise; either way a missing file raises
`DataUnavailableError` with one line naming the file and where to put it.
"""

import dataclasses
import os
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from keras_ae import pipeline

SPLITS = ("train", "validation", "test")
SCALES = ("unit", "standard", "raw")
BINARIZATIONS = (None, "static", "dynamic")

# The split of data sets without an official one: a fixed permutation (seed
# 0, independent of the training seed) cut into these fractions.
_SPLIT_SEED = 0
_VALIDATION_FRACTION = _TEST_FRACTION = 0.1


class DataUnavailableError(FileNotFoundError):
    """A data set that is neither in `data_dir` nor downloadable now."""


@dataclasses.dataclass(frozen=True)
class _Spec:
    """How to read one data set.

    read: (data_dir, **options) -> {split: array}, raw values.
    max_value: the raw maximum, which "unit" scaling maps to 1; None when the
        data set has its own unit mapping (`patches`).
    arrays: the arrays `data_dir/<name>.npz` must hold; note: what they hold.
    options: the data-set specific keyword arguments of `read`.
    """

    read: Callable
    max_value: float = None
    arrays: tuple = ()
    note: str = ""
    options: tuple = ()

    def describe_file(self, name):
        return f"{name}.npz with arrays {', '.join(self.arrays)}{self.note}"


# ---------------------------------------------------------------- splitting
def _fixed_split(x):
    """{train, validation, test} of an array without an official split."""
    order = np.random.default_rng(_SPLIT_SEED).permutation(len(x))
    n_valid = int(round(len(x) * _VALIDATION_FRACTION))
    n_test = int(round(len(x) * _TEST_FRACTION))
    n_train = len(x) - n_valid - n_test
    return {
        "train": x[order[:n_train]],
        "validation": x[order[n_train : n_train + n_valid]],
        "test": x[order[n_train + n_valid :]],
    }


def _mnist_split(x_train, x_test):
    """MNIST's 60k training images cut into 50k train and 10k validation, as
    in the binarized MNIST of Larochelle & Murray (2011)."""
    n_train = len(x_train) - len(x_train) // 6
    return {"train": x_train[:n_train], "validation": x_train[n_train:], "test": x_test}


# ------------------------------------------------------------------ reading
def _read_npz(data_dir, name):
    """The arrays of `data_dir/<name>.npz`, read without unpickling."""
    spec = _SPECS[name]
    path = os.path.join(data_dir, f"{name}.npz")
    if not os.path.exists(path):
        raise DataUnavailableError(f"{name} is not in {data_dir}: put {spec.describe_file(name)} there.")
    with np.load(path, allow_pickle=False) as archive:
        missing = [key for key in spec.arrays if key not in archive.files]
        if missing:
            raise ValueError(f"{path} must hold arrays {', '.join(spec.arrays)}; it lacks {', '.join(missing)}.")
        return {key: archive[key] for key in spec.arrays}


def _download(name, fetch):
    """Runs `fetch()`; a failure becomes one line naming the local file to use instead."""
    try:
        return fetch()
    except Exception as error:  # urllib, HTTP and checksum errors all end here.
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataUnavailableError(
            f"Could not download {name} ({reason}). Put {_SPECS[name].describe_file(name)} "
            "in a folder and pass it as data_dir (--data-dir)."
        ) from None


def _keras_dataset(name):
    def read(data_dir):
        if data_dir is not None:
            arrays = _read_npz(data_dir, name)
            x_train, x_test = arrays["x_train"], arrays["x_test"]
        else:
            import keras

            (x_train, _), (x_test, _) = _download(name, getattr(keras.datasets, name).load_data)
        return _mnist_split(x_train, x_test)

    return read


_LAROCHELLE = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"
_LAROCHELLE_SHA256 = {
    "train": "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d",
    "valid": "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2",
    "test": "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c",
}


def _read_binarized_mnist(data_dir):
    if data_dir is not None:
        arrays = _read_npz(data_dir, "binarized_mnist")
    else:
        import keras

        def fetch():
            return {
                f"x_{part}": np.loadtxt(
                    keras.utils.get_file(
                        f"binarized_mnist_{part}.amat",
                        origin=f"{_LAROCHELLE}binarized_mnist_{part}.amat",
                        file_hash=sha256,
                    ),
                    dtype=np.uint8,
                ).reshape(-1, 28, 28)
                for part, sha256 in _LAROCHELLE_SHA256.items()
            }

        arrays = _download("binarized_mnist", fetch)
    return {"train": arrays["x_train"], "validation": arrays["x_valid"], "test": arrays["x_test"]}


def _read_frey_face(data_dir):
    if data_dir is not None:
        x = _read_npz(data_dir, "frey_face")["x"]
    else:
        import keras
        import scipy.io

        def fetch():
            path = keras.utils.get_file(
                "frey_rawface.mat",
                origin="https://cs.nyu.edu/~roweis/data/frey_rawface.mat",
                file_hash="5aeb024d42b8a6091f30e5eb18c8a48d",
            )
            # ff is (560, 1965): one 28x20 frame per column.
            return scipy.io.loadmat(path)["ff"].T.reshape(-1, 28, 20)

        x = _download("frey_face", fetch)
    return _fixed_split(x)


def _read_olivetti_faces(data_dir):
    if data_dir is not None:
        x = _read_npz(data_dir, "olivetti_faces")["x"]
    else:

        def fetch():
            from sklearn.datasets import fetch_olivetti_faces

            # scikit-learn divides the uint8 faces by their maximum, 242 (shared/data/README.md).
            return np.round(fetch_olivetti_faces(download_if_missing=True).images * 242).astype(np.uint8)

        x = _download("olivetti_faces", fetch)
    return _fixed_split(x)


def _read_digits(data_dir):
    from sklearn.datasets import load_digits

    return _fixed_split(load_digits().images.astype(np.uint8))


# ------------------------------------------------------------------ patches
def whiten(image):
    """Olshausen & Field's (1996) whitening of a grayscale image: the spectrum
    times the ramp |f| (flattening the natural 1/f amplitude spectrum) and a
    low-pass exp(-(|f|/f0)^4), f0 = 0.4 cycles/pixel; then variance 0.1, as in
    the IMAGES.mat of Ng's sparse autoencoder exercise."""
    fy = np.fft.fftfreq(image.shape[0])[:, None]
    fx = np.fft.fftfreq(image.shape[1])[None, :]
    rho = np.sqrt(fx**2 + fy**2)
    whitened = np.real(np.fft.ifft2(np.fft.fft2(image) * rho * np.exp(-((rho / 0.4) ** 4))))
    return np.sqrt(0.1) * whitened / whitened.std()


def block_mean(image, factor):
    """Downsample a 2-D image by averaging factor x factor pixel blocks
    (trailing rows and columns that fill no block are dropped)."""
    height, width = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    return image[:height, :width].reshape(height // factor, factor, width // factor, factor).mean(axis=(1, 3))


def _read_patches(data_dir, patch_size=8, num_patches=10000, downsample=1):
    """Random patch_size x patch_size patches of the whitened, grayscale
    scikit-learn sample images, each with its mean (DC) removed.

    downsample > 1 averages downsample x downsample pixel blocks before
    whitening. The two sample photographs are smooth at the pixel scale (sky,
    out-of-focus background, JPEG), so at full size half of the 8x8 patches
    hold almost no contrast; at half size more patches hold structure, as in
    Olshausen's scenes.
    """
    from sklearn.datasets import load_sample_images

    if patch_size not in (8, 12):
        raise ValueError(f"patch_size must be 8 (Ng 2011) or 12 (Vincent et al. 2010); got {patch_size!r}.")
    if isinstance(num_patches, bool) or int(num_patches) != num_patches or num_patches < 10:
        raise ValueError(f"num_patches must be an int >= 10; got {num_patches!r}.")
    if isinstance(downsample, bool) or int(downsample) != downsample or not 1 <= downsample <= 8:
        raise ValueError(f"downsample must be an int from 1 to 8; got {downsample!r}.")
    images = [
        whiten(block_mean(image.astype(np.float64).mean(axis=2), int(downsample)))
        for image in load_sample_images().images
    ]
    rng = np.random.default_rng(_SPLIT_SEED)
    which = rng.integers(len(images), size=num_patches)
    patches = np.empty((num_patches, patch_size * patch_size))
    for n, i in enumerate(which):
        top = rng.integers(images[i].shape[0] - patch_size + 1)
        left = rng.integers(images[i].shape[1] - patch_size + 1)
        patches[n] = images[i][top : top + patch_size, left : left + patch_size].ravel()
    patches -= patches.mean(axis=1, keepdims=True)
    return _fixed_split(patches.astype(np.float32))


def _patches_to_unit(x, train):
    """Ng (2011), normalizeData: truncate to ±3 standard deviations of the
    training patches, then map [-1, 1] to [0.1, 0.9], the range a sigmoid
    decoder reaches."""
    bound = 3.0 * train.std()
    return (np.clip(x, -bound, bound) / bound + 1.0) * 0.4 + 0.1


_IMAGE_ARRAYS = ("x_train", "y_train", "x_test", "y_test")
_SPECS = {
    "digits": _Spec(_read_digits, max_value=16.0),
    "patches": _Spec(_read_patches, options=("patch_size", "num_patches", "downsample")),
    "mnist": _Spec(_keras_dataset("mnist"), max_value=255.0, arrays=_IMAGE_ARRAYS),
    "fashion_mnist": _Spec(_keras_dataset("fashion_mnist"), max_value=255.0, arrays=_IMAGE_ARRAYS),
    "binarized_mnist": _Spec(_read_binarized_mnist, max_value=1.0, arrays=("x_train", "x_valid", "x_test")),
    "frey_face": _Spec(_read_frey_face, max_value=255.0, arrays=("x",), note=" (uint8 frames, shape (1965, 28, 20))"),
    "olivetti_faces": _Spec(
        _read_olivetti_faces, max_value=255.0, arrays=("x",), note=" (uint8 faces, shape (400, 64, 64))"
    ),
}


LABELLED = ("digits", "mnist", "fashion_mnist")  # the data sets with class labels (`labels`)


def available_datasets():
    """The data set names, sorted."""
    return sorted(_SPECS)


# --------------------------------------------------------------------- API
def load(name, split="train", data_dir=None, scale="unit", binarize=None, threshold=0.5, **options):
    """One split of a data set as a float32 array.

    Args:
        name: one of `available_datasets()`.
        split: "train", "validation" or "test".
        data_dir: a folder holding `<name>.npz` (read with allow_pickle=False);
            None downloads. Unused by `digits` and `patches`.
        scale: "unit" maps the data into [0, 1] (pixels divided by their
            maximum; patches normalized as in Ng 2011, into [0.1, 0.9]);
            "standard" to zero mean and unit variance with the training
            split's statistics (for patches: the zero-mean, unit-variance
            inputs of a linear decoder, as in Vincent et al. 2010); "raw"
            keeps the stored values (pixels 0..255 or 0..16, whitened patches).
        binarize: None; "static" thresholds at `threshold` once, here;
            "dynamic" returns the intensities, which `make_dataset(...,
            dynamic_binarization=True)` samples anew at every step. Both need
            scale="unit".
        options: data-set specific; for `patches`: patch_size (8 or 12),
            num_patches (10000) and downsample (1: the images' own pixels;
            2: half size, by averaging 2x2 blocks).

    Returns:
        (N, H, W, 1) images, or (N, patch_size**2) patches, float32.
    """
    if name not in _SPECS:
        raise ValueError(f"Unknown data set {name!r}. Known data sets: {', '.join(available_datasets())}.")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}; got {split!r}.")
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}; got {scale!r}.")
    if binarize not in BINARIZATIONS:
        raise ValueError(f"binarize must be one of {BINARIZATIONS}; got {binarize!r}.")
    if binarize is not None and scale != "unit":
        raise ValueError(f'binarize={binarize!r} reads intensities in [0, 1] and needs scale="unit"; got {scale!r}.')
    spec = _SPECS[name]
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        accepted = ", ".join(spec.options) or "none"
        raise ValueError(f"Unknown option(s) {', '.join(unknown)} for data set {name!r} (it accepts: {accepted}).")

    splits = spec.read(None if data_dir is None else os.fspath(data_dir), **options)
    x, train = splits[split].astype(np.float32), splits["train"].astype(np.float32)
    if scale == "unit":
        x = _patches_to_unit(x, train) if spec.max_value is None else x / spec.max_value
    elif scale == "standard":
        x = (x - train.mean()) / train.std()
    if binarize == "static":
        x = (x > threshold).astype(np.float32)
    if x.ndim == 3:  # grayscale images get their channel axis
        x = x[..., None]
    return x.astype(np.float32)


def labels(name, split="train", data_dir=None):
    """The class labels of one split of a labelled data set (digits, mnist,
    fashion_mnist), aligned with `load`'s examples: int64 (N,).

    Raises:
        ValueError: a data set without labels.
    """
    if name == "digits":
        from sklearn.datasets import load_digits

        return _fixed_split(load_digits().target.astype(np.int64))[split]
    if name not in LABELLED:
        raise ValueError(f"{name!r} has no class labels; labelled data sets: {', '.join(LABELLED)}.")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}; got {split!r}.")
    if data_dir is not None:
        arrays = _read_npz(os.fspath(data_dir), name)
        y_train, y_test = arrays["y_train"], arrays["y_test"]
    else:
        import keras

        (_, y_train), (_, y_test) = _download(name, getattr(keras.datasets, name).load_data)
    return _mnist_split(y_train.astype(np.int64), y_test.astype(np.int64))[split]


def make_dataset(x, batch_size, shuffle=False, seed=None, dynamic_binarization=False, epoch=None, labels=None):
    """The input pipeline: shuffle, batch (the global batch size under a
    `tf.distribute` strategy), optionally binarize, prefetch.

    Args:
        x: the examples, e.g. from `load`.
        batch_size: the global batch size.
        shuffle: reshuffle the examples every epoch (with `seed`).
        seed: seed of the shuffle and of the dynamic binarization.
        dynamic_binarization: draw each batch as Bernoulli samples of its
            intensities, fresh at every step and every epoch (the "dynamic"
            binarized MNIST of Salakhutdinov & Murray 2008).
        epoch: None, for TF's stateful shuffle and draws, which change with
            each pass; or an int64 `tf.Variable` holding the epoch, read as each
            pass starts: then a pass's order and draws are a function of
            (seed, epoch) alone, so that a run resumed at any epoch, or run on
            several replicas, sees the batches of one uninterrupted run on one
            device. Set it as each epoch begins, e.g. with
            `keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: epoch.assign(e))`.
        labels: the examples' class labels, int (N,), e.g. from `labels`, for a
            conditional model: batches of (x, labels), each label with its example.

    Under a multi-worker strategy each worker keeps its share of every global
    batch (`AutoShardPolicy.DATA`): all workers build the same dataset, so
    shuffled runs need a seed.
    """
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1; got {batch_size!r}.")
    if epoch is not None:
        source = pipeline.InMemory({"train": x}, labels=None if labels is None else {"train": labels})
        return pipeline.stream(
            source, "train", batch_size, shuffle, seed, epoch, dynamic_binarization, labels=labels is not None
        )
    dataset = _stateful_epoch(x, int(batch_size), shuffle, seed, dynamic_binarization, labels)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def _stateful_epoch(x, batch_size, shuffle, seed, dynamic_binarization, labels=None):
    x = np.asarray(x, np.float32)
    dataset = tf.data.Dataset.from_tensor_slices(x if labels is None else (x, np.asarray(labels, np.int32))).cache()
    if shuffle:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if dynamic_binarization:
        # One stateless seed per batch from a stream that differs every epoch:
        # reproducible with a seed, and never the same draw twice.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

        def binarize(batch, pair):
            images = batch if labels is None else batch[0]
            drawn = tf.cast(tf.random.stateless_uniform(tf.shape(images), seed=pair) < images, tf.float32)
            return drawn if labels is None else (drawn, batch[1])

        dataset = tf.data.Dataset.zip(dataset, seeds).map(binarize)
    return dataset
