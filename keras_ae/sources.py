"""Data sets in the user's files: image folders, array files, TFRecords and CSV, streamed from disk.

    source = sources.open_source("photos/", image_size=64, channels=3)   # scanned, nothing decoded twice
    source.count("train"), source.element_shape                          # 900, (64, 64, 3)
    dataset = pipeline.stream(source, "train", batch_size=64)

`open_source` checks every file before training starts: a corrupt, truncated
or empty image, a non-image, an image too small to crop, an array with NaN or
an object dtype, a text column in a CSV, a glob that matches nothing each give
one line naming the file (and how many are bad), or with `skip_bad_files` are
left out and counted. Splits are a folder's `train/`, `validation/`, `test/`
subfolders when it has them, and otherwise a stable hash of each example's key
(its relative path, or its row), so adding files never moves an old one to
another split. Nothing holds the data in memory except `cache()`.
"""

import csv
import dataclasses
import functools
import glob
import math
import os

import keras
import numpy as np
import tensorflow as tf

from keras_ae.pipeline import SPLITS, InMemory, Scaling, Source, block_shuffle, eager_constant, ordered, stream

# The formats `tf.io.decode_image` reads, as in keras.utils.image_dataset_from_directory.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
ARRAY_EXTENSIONS = (".npy", ".npz")
FITS = ("resize", "crop")
_MAGIC = {b"\x89PNG": "PNG", b"\xff\xd8": "JPEG", b"BM": "BMP", b"GIF8": "GIF"}
_HASH_BUCKETS = 10000
# Feature names of an encoded image in a tf.train.Example: ours, then TFDS's and the Object Detection API's.
_IMAGE_FEATURES = ("image", "image/encoded")
_SCAN_CHUNK = 8192  # rows of an array read at a time while scanning


def is_path(dataset):
    """Whether `--dataset` names files (a path or a glob) rather than a built-in data set."""
    return os.sep in dataset or "/" in dataset or "*" in dataset or os.path.exists(dataset)


def open_source(
    path,
    scale="unit",
    binarize=None,
    image_size=None,
    channels=None,
    image_fit="resize",
    validation_fraction=0.1,
    test_fraction=0.1,
    skip_bad_files=False,
    statistics=None,
    labels=None,
):
    """The checked `Source` of a folder of images, an .npy/.npz file, a glob of TFRecords or a CSV file.

    Class labels, for a conditional model (`pipeline.Source.classes`): a folder's
    class subfolders (each image's folder below the root, or below train/,
    validation/, test/), an .npz file's label arrays (`ArrayFile`), or `labels`.

    Args:
        path: the folder, file or glob.
        scale: "unit" (divide by the dtype's maximum: 255 for images), "standard"
            (per channel or column, with the training split's mean and std,
            computed in one streaming pass unless `statistics` gives them) or "raw".
        binarize: None, "static" (pixels above 0.5 become 1, once) or
            "dynamic" (drawn anew by `pipeline.stream`); both need "unit".
        image_size: an int (square) for images; None keeps the files' size,
            which must then be the same for all.
        channels: 1 or 3 (grayscale images among colour ones are converted);
            None: 1 if every image is grayscale, else 3.
        image_fit: "resize" (centre-cropped to a square, then resized, as Keras'
            crop_to_aspect_ratio) or "crop" (the central window at the image's own pixels).
        validation_fraction, test_fraction: the hash split's shares, where the
            data have no splits of their own.
        skip_bad_files: leave bad files out (counted in `source.skipped`) rather than refuse them.
        statistics: {"mean": [...], "std": [...]} of a previous run, for "standard".
        labels: an .npy file of int class labels, one per row of an .npy data file.
    """
    path = os.fspath(path)
    if binarize is not None and scale != "unit":
        raise ValueError(f'binarize={binarize!r} reads intensities in [0, 1] and needs scale="unit"; got {scale!r}.')
    if not 0 <= validation_fraction < 1 or not 0 <= test_fraction < 1 or validation_fraction + test_fraction >= 1:
        raise ValueError(
            f"validation_fraction and test_fraction must be in [0, 1) with a sum below 1; "
            f"got {validation_fraction!r} and {test_fraction!r}."
        )
    if image_fit not in FITS:
        raise ValueError(f"image_fit must be one of {', '.join(FITS)}; got {image_fit!r}.")
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1 or 3; got {channels!r}.")
    if image_size is not None and (isinstance(image_size, bool) or int(image_size) != image_size or image_size < 1):
        raise ValueError(f"image_size must be an int >= 1; got {image_size!r}.")
    fractions = (validation_fraction, test_fraction)
    images = dict(image_size=image_size, channels=channels, image_fit=image_fit)
    if labels is not None and not path.endswith(".npy"):
        raise ValueError(f"--labels gives the labels of an .npy data file; {path} is not one.")
    if os.path.isdir(path):
        source = ImageFolder(path, fractions, skip_bad_files, **images)
    elif path.endswith(ARRAY_EXTENSIONS):
        _exists(path)
        source = ArrayFile(path, fractions, labels=labels, **images)
    elif path.endswith(".csv"):
        _exists(path)
        source = CSVFile(path, fractions)
    elif ".tfrecord" in path or glob.has_magic(path):
        source = TFRecordFiles(path, fractions, skip_bad_files, **images)
    else:
        _exists(path)
        raise ValueError(
            f"{path}: not a data source keras-ae reads; give a folder of images, an .npy, .npz or .csv file, "
            "or a glob of .tfrecord files."
        )
    source.scaling = _scaling(source, scale, statistics)
    if binarize == "static":
        source.scaling = dataclasses.replace(source.scaling, threshold=0.5)
    return source


def _exists(path):
    if not os.path.exists(path):
        raise ValueError(f"No file or folder {path}.")


# ------------------------------------------------------------------ splits
def hash_split(keys, fractions):
    """The split of each key (a string): validation, test or train by its
    FarmHash fingerprint (`tf.strings.to_hash_bucket_fast`, stable across
    TensorFlow versions and machines), so a key's split never changes."""
    buckets = tf.strings.to_hash_bucket_fast(keys, _HASH_BUCKETS)
    validation, test = (int(round(f * _HASH_BUCKETS)) for f in fractions)
    return tf.where(buckets < validation, 1, tf.where(buckets < validation + test, 2, 0))


def _in_split_folders(relative_paths):
    """Whether the paths are all under train/, validation/ and test/."""
    return all(p.split("/", 1)[0] in SPLITS and "/" in p for p in relative_paths)


def _split_by_folder_or_hash(relative_paths, fractions):
    """{split: indices}: by the first folder when the paths are all under
    train/, validation/ and test/, else by hash."""
    first = [p.split("/", 1)[0] for p in relative_paths]
    if _in_split_folders(relative_paths):
        which = np.array([SPLITS.index(f) for f in first])
    elif len(relative_paths):
        which = hash_split(tf.constant(relative_paths), fractions).numpy()
    else:
        which = np.zeros(0, int)
    return {split: np.flatnonzero(which == i) for i, split in enumerate(SPLITS)}


# ------------------------------------------------------------------ images
def to_channels(image, channels):
    """An image (H, W, c) of any channel count (gray, gray+alpha, RGB, RGBA) as `channels` 1 or 3, float32."""
    image = tf.cast(image, tf.float32)

    def convert(colour):
        if channels == 1:  # alpha dropped
            return tf.image.rgb_to_grayscale(image[..., :3]) if colour else image[..., :1]
        return image[..., :3] if colour else tf.image.grayscale_to_rgb(image[..., :1])

    if image.shape[-1] is not None:
        return convert(image.shape[-1] >= 3)
    return tf.cond(tf.shape(image)[-1] >= 3, lambda: convert(True), lambda: convert(False))


def fit_image(image, size, fit):
    """An image resized to `size` (h, w) with its centre cropped to that aspect
    ratio first (keras.ops.image.resize's crop_to_aspect_ratio), or cropped to
    its central `size` window."""
    if fit == "crop":
        height, width = tf.shape(image)[0], tf.shape(image)[1]
        return tf.image.crop_to_bounding_box(image, (height - size[0]) // 2, (width - size[1]) // 2, *size)
    same = tf.reduce_all(tf.shape(image)[:2] == tf.constant(size))
    return tf.cond(
        same,
        lambda: image,
        # Clipped: rounding takes a resampled 255 to 255.00002, outside a Bernoulli decoder's [0, 1] once scaled.
        lambda: tf.clip_by_value(
            keras.ops.image.resize(image, size, crop_to_aspect_ratio=True, antialias=True), 0, 255
        ),
    )


def decode(contents, channels, size, fit):
    """Encoded bytes -> (h, w, channels) float32 pixels 0..255 (GIF: the first frame)."""
    image = tf.io.decode_image(contents, channels=0, dtype=tf.uint8, expand_animations=False)
    image = fit_image(to_channels(image, channels), size, fit)
    return tf.ensure_shape(image, (*size, channels))


def _why_not_an_image(contents):
    """Why bytes that `tf.io.decode_image` refused are no image, in a few words."""
    if not contents:
        return "empty (0 bytes)"
    for magic, name in _MAGIC.items():
        if contents.startswith(magic):
            return f"a corrupt or truncated {name}"
    return "not an image"


class _Images(Source):
    """What the image sources share: the scan of every image and their decoding."""

    max_value = 255.0

    def _scan(self, contents, count, names, skip_bad_files, image_size, channels, image_fit, where):
        """Decodes every image once, in parallel, from `contents`, a dataset of
        (index, encoded bytes): finds the bad ones and each one's size and
        channels. Resolves the element shape; raises, or skips the bad ones."""
        if count == 0:
            raise ValueError(f"{where} holds no images ({', '.join(IMAGE_EXTENSIONS)}).")

        def probe(index, encoded):
            image = tf.io.decode_image(encoded, channels=0, dtype=tf.uint8, expand_animations=False)
            return index, tf.shape(image)

        found = contents.map(probe, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
        shapes = np.zeros((count, 3), np.int64)
        good = np.zeros(count, bool)
        for indices, found_shapes in found.ignore_errors().batch(1024).as_numpy_iterator():  # a bad one is left out
            shapes[indices], good[indices] = found_shapes, True
        if not good.any():
            reason = _why_not_an_image(self._contents_numpy(0))
            raise ValueError(f"None of the {count} images in {where} can be read (first: {names[0]}: {reason}).")
        if image_size is None:
            sizes = {tuple(s[:2]) for s in shapes[good]}
            if len(sizes) > 1:
                first = {}
                for i in np.flatnonzero(good):
                    first.setdefault(tuple(shapes[i, :2]), names[i])
                (a, pa), (b, pb) = list(first.items())[:2]
                raise ValueError(
                    f"The images in {where} differ in size ({pa} is {a[0]}x{a[1]}, {pb} is {b[0]}x{b[1]}, "
                    f"{len(sizes)} sizes in all): give --image-size."
                )
        size = (int(image_size), int(image_size)) if image_size is not None else tuple(shapes[good][0, :2])
        problems = {i: None for i in np.flatnonzero(~good)}
        if image_fit == "crop":
            small = np.flatnonzero(good & ((shapes[:, 0] < size[0]) | (shapes[:, 1] < size[1])))
            problems.update(
                {i: f"{shapes[i, 0]}x{shapes[i, 1]}, smaller than {size[0]}x{size[1]} to crop" for i in small}
            )
        if problems:
            first = min(problems)
            reason = problems[first] or _why_not_an_image(self._contents_numpy(first))
            if not skip_bad_files:
                raise ValueError(
                    f"{len(problems)} of {count} images in {where} cannot be used (first: {names[first]}: {reason}): "
                    "remove them or pass --skip-bad-files."
                )
            good[list(problems)] = False
        self.skipped = len(problems)
        self.skipped_example = f"{names[min(problems)]}" if problems else None
        usable = shapes[good]
        if not len(usable):
            raise ValueError(f"{where} holds no usable images ({count} too small to crop).")
        if channels is None:
            channels = 1 if (usable[:, 2] <= 2).all() else 3
        self.element_shape = (*size, channels)
        self._fit = image_fit
        return good

    def _decode(self, contents):
        height, width, channels = self.element_shape
        return decode(contents, channels, (height, width), self._fit)


class ImageFolder(_Images):
    """A folder of PNG, JPEG, BMP and GIF images, at any depth; other files are ignored."""

    def __init__(self, root, fractions, skip_bad_files, image_size, channels, image_fit):
        self.root = root
        self.description = f"the images in {root}"
        names = sorted(
            os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")
            for folder, _, files in os.walk(root)
            for name in files
            if name.lower().endswith(IMAGE_EXTENSIONS)
        )
        self._all = np.array(names, dtype=object)
        paths = tf.constant([os.path.join(root, n) for n in names] or [""])
        contents = tf.data.Dataset.range(len(names)).map(
            lambda i: (i, tf.io.read_file(paths[i])), num_parallel_calls=tf.data.AUTOTUNE
        )
        good = self._scan(contents, len(names), names, skip_bad_files, image_size, channels, image_fit, root)
        kept = [n for n, ok in zip(names, good, strict=True) if ok]
        splits = _split_by_folder_or_hash(kept, fractions)
        self._paths = {
            split: eager_constant([os.path.join(root, kept[i]) for i in indices], tf.string)
            for split, indices in splits.items()
        }
        # Class subfolders: each image's class is its folder below the root (below the split's folder).
        folders = [n.split("/")[1:-1] if _in_split_folders(kept) else n.split("/")[:-1] for n in kept]
        if kept and all(folders):
            self.classes = tuple(sorted({f[0] for f in folders}))
            with tf.init_scope():
                self._labels = tf.lookup.StaticHashTable(
                    tf.lookup.KeyValueTensorInitializer(
                        [os.path.join(root, n) for n in kept], [self.classes.index(f[0]) for f in folders]
                    ),
                    default_value=-1,
                )

    def _contents_numpy(self, index):
        with open(os.path.join(self.root, self._all[index]), "rb") as f:
            return f.read()

    def count(self, split):
        return int(self._paths[split].shape[0])

    def keys(self, split, shuffle_seed):
        return ordered(self.count(split), shuffle_seed, self._paths[split])

    def read(self, split, keys):
        return tf.map_fn(
            lambda path: self._decode(tf.io.read_file(path)),
            keys,
            fn_output_signature=tf.TensorSpec(self.element_shape, tf.float32),
        )

    def read_labels(self, split, keys):
        return self._labels.lookup(keys)


class TFRecordFiles(_Images):
    """A glob of TFRecord files of `tf.train.Example`s holding an encoded image
    (feature "image", or TFDS's "image/encoded") and optionally its relative
    "path", the key of the split (see `write_tfrecords`)."""

    def __init__(self, pattern, fractions, skip_bad_files, image_size, channels, image_fit):
        self.files = sorted(glob.glob(pattern))
        if not self.files:
            raise ValueError(f"No files match {pattern}.")
        self.description = f"{len(self.files)} TFRecord file(s) {pattern}"
        self._feature = self._image_feature()
        names = []
        for file in self.files:  # the keys, without decoding; a damaged file is named here
            try:
                names += [key.decode() for key, _ in self._records(tf.constant([file])).as_numpy_iterator()]
            except tf.errors.OpError as error:
                reason = error.message.splitlines()[0]
                raise ValueError(f"{file} is not a readable TFRecord file of tf.train.Examples ({reason}).") from None
        contents = self._records(tf.constant(self.files), interleave=1).enumerate().map(lambda i, pair: (i, pair[1]))
        self._scanned = contents
        good = self._scan(contents, len(names), names, skip_bad_files, image_size, channels, image_fit, pattern)
        self._bad = tf.constant([n for n, ok in zip(names, good, strict=True) if not ok] or ["\0"])
        kept = [n for n, ok in zip(names, good, strict=True) if ok]
        self._by_folder = all(n.split("/", 1)[0] in SPLITS and "/" in n for n in kept)
        self._fractions = fractions
        self._counts = {split: len(indices) for split, indices in _split_by_folder_or_hash(kept, fractions).items()}

    def _image_feature(self):
        for record in tf.data.TFRecordDataset(self.files[0]).take(1).as_numpy_iterator():
            features = tf.train.Example.FromString(record).features.feature
            for name in _IMAGE_FEATURES:
                if name in features:
                    return name
            raise ValueError(
                f"{self.files[0]}: its records hold no encoded image (a bytes feature named "
                f"{' or '.join(_IMAGE_FEATURES)}); they have {', '.join(sorted(features)) or 'no features'}."
            )
        return _IMAGE_FEATURES[0]

    def _records(self, files, interleave=4):
        """(key, encoded image) of every record of `files`, `interleave` files at
        a time; the key is the record's "path", or "<file name>:<index in the file>"."""
        spec = {self._feature: tf.io.FixedLenFeature([], tf.string), "path": tf.io.FixedLenFeature([], tf.string, "")}

        def numbered(file):
            name = tf.strings.split(file, "/")[-1]

            def parse(index, record):
                example = tf.io.parse_single_example(record, spec)
                key = tf.where(example["path"] == "", name + ":" + tf.strings.as_string(index), example["path"])
                return key, example[self._feature]

            return tf.data.TFRecordDataset(file).enumerate().map(parse)

        return tf.data.Dataset.from_tensor_slices(files).interleave(
            numbered,
            cycle_length=min(interleave, len(self.files)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )

    def _contents_numpy(self, index):
        return next(self._scanned.skip(index).take(1).as_numpy_iterator())[1]

    def count(self, split):
        return self._counts[split]

    def keys(self, split, shuffle_seed):
        files = eager_constant(self.files)
        if shuffle_seed is not None:  # the file order, then a buffer of examples, keyed by (seed, epoch)
            files = tf.random.experimental.stateless_shuffle(files, seed=shuffle_seed)
        which = SPLITS.index(split)

        def in_split(key, _):
            if self._by_folder:
                mine = tf.strings.split(key, "/")[0] == split
            else:
                mine = hash_split(key, self._fractions) == which
            return mine & tf.reduce_all(key != self._bad)

        images = self._records(files).filter(in_split).map(lambda _, image: image)
        return images if shuffle_seed is None else block_shuffle(images, shuffle_seed)

    def read(self, split, keys):
        return tf.map_fn(self._decode, keys, fn_output_signature=tf.TensorSpec(self.element_shape, tf.float32))


def write_tfrecords(folder, prefix, shards=8):
    """Writes the images of `folder` into `shards` TFRecord files
    `<prefix>-0000N-of-0000S.tfrecord` of tf.train.Examples with the encoded
    bytes as they are ("image") and their relative path ("path"), so a
    `TFRecordFiles` source splits them as the folder. Returns the file names."""
    if not os.path.isdir(folder):
        raise ValueError(f"No folder {folder}.")
    names = sorted(
        os.path.relpath(os.path.join(d, n), folder).replace(os.sep, "/")
        for d, _, files in os.walk(folder)
        for n in files
        if n.lower().endswith(IMAGE_EXTENSIONS)
    )
    if not names:
        raise ValueError(f"{folder} holds no images ({', '.join(IMAGE_EXTENSIONS)}).")
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    files = [f"{prefix}-{s:05d}-of-{shards:05d}.tfrecord" for s in range(shards)]
    writers = [tf.io.TFRecordWriter(f + ".partial") for f in files]
    try:
        for i, name in enumerate(names):
            with open(os.path.join(folder, name), "rb") as f:
                contents = f.read()
            feature = {
                "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[contents])),
                "path": tf.train.Feature(bytes_list=tf.train.BytesList(value=[name.encode()])),
            }
            writers[i % shards].write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    finally:
        for writer in writers:
            writer.close()
    for f in files:
        os.replace(f + ".partial", f)
    return files


# ------------------------------------------------------------------ arrays
def _array_shape(path, shape):
    """(N, D) features, (N, H, W) or (N, H, W, C) images; else one line."""
    if len(shape) not in (2, 3, 4) or (len(shape) == 4 and shape[-1] not in (1, 3, 4)):
        raise ValueError(
            f"{path} holds an array of shape {shape}: give (N, features), (N, H, W) or (N, H, W, C) with C 1, 3 or 4."
        )


class ArrayFile(Source):
    """An .npy file (memory-mapped: larger than memory is fine) or an .npz
    archive (x_train, x_validation or x_valid, x_test; or one array split by
    hash), of images or flat feature vectors. An .npz member is read whole:
    a zip member cannot be memory-mapped. Class labels: an .npz's y_train,
    y_validation (or y_valid), y_test beside the splits, or labels (or y)
    beside x; or the .npy file `labels`, one int a row of an .npy."""

    def __init__(self, path, fractions, image_size, channels, image_fit, labels=None):
        self.path = path
        self.description = path
        arrays, label_arrays = self._open(path)
        if labels is not None:
            _exists(labels)
            label_arrays = {"x": np.load(labels, allow_pickle=False)}
        for array in arrays.values():
            if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool) or np.iscomplexobj(array):
                raise ValueError(f"{path} holds {array.dtype} values: save a numeric array (ints, floats or bools).")
            _array_shape(path, array.shape)
        shapes = {a.shape[1:] for a in arrays.values()}
        if len(shapes) > 1:
            raise ValueError(f"The arrays of {path} differ in example shape: {sorted(shapes)}.")
        dtype = next(iter(arrays.values())).dtype
        self.max_value = float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else 1.0
        if label_arrays:
            self._set_labels(arrays, label_arrays)
        if len(arrays) == 1:
            (array,) = arrays.values()
            _check_finite(path, array)
            splits = _split_by_folder_or_hash([str(i) for i in range(len(array))], fractions)
            self._rows = {split: (array, indices) for split, indices in splits.items()}
        else:
            for array in arrays.values():
                _check_finite(path, array)
            self._rows = {split: (arrays[split], np.arange(len(arrays[split]))) for split in arrays}
            for split in SPLITS:
                self._rows.setdefault(split, (arrays["train"][:0], np.zeros(0, np.int64)))
        example = self._stored = next(iter(arrays.values())).shape[1:]
        self._image = len(example) >= 2
        if self._image:
            stored_channels = example[2] if len(example) == 3 else 1
            size = (image_size, image_size) if image_size else example[:2]
            self.element_shape = (*size, channels or (1 if stored_channels == 1 else 3))
            self._fit = image_fit
            if image_fit == "crop" and (example[0] < size[0] or example[1] < size[1]):
                raise ValueError(f"{path}: its {example[0]}x{example[1]} images are smaller than {size} to crop.")
        else:
            if image_size or channels:
                raise ValueError(f"{path} holds feature vectors {example}: --image-size and --channels are for images.")
            self.element_shape = tuple(example)

    def _set_labels(self, arrays, label_arrays):
        """Checks the label arrays ({key of `arrays`: int (N,)}, one per example) and keeps them by split."""
        if set(label_arrays) != set(arrays):
            raise ValueError(f"{self.path}: give labels for every split ({', '.join(sorted(arrays))}) or for none.")
        for key, y in label_arrays.items():
            if y.dtype.kind not in "iu" or y.shape != arrays[key].shape[:1] or (len(y) and y.min() < 0):
                raise ValueError(
                    f"{self.path}: the labels of {key} must be ints >= 0, one per example, shape "
                    f"({len(arrays[key])},); got {y.dtype} of shape {y.shape}."
                )
        self.classes = tuple(str(c) for c in range(1 + max(int(y.max(initial=0)) for y in label_arrays.values())))
        whole = label_arrays.get("x")  # one array split by hash: the keys are its rows
        by_split = {split: label_arrays.get(split, np.zeros(0)) if whole is None else whole for split in SPLITS}
        self._label_arrays = {split: eager_constant(np.asarray(y, np.int32)) for split, y in by_split.items()}

    @staticmethod
    def _open(path):
        """({split or "x": array}, {the same keys: labels} or {})."""
        try:
            if path.endswith(".npy"):
                return {"x": np.load(path, mmap_mode="r", allow_pickle=False)}, {}
            with np.load(path, allow_pickle=False) as archive:
                names = archive.files
                named = {"train": "x_train", "validation": "x_validation", "test": "x_test"}
                if "x_valid" in names and "x_validation" not in names:
                    named["validation"] = "x_valid"
                if "x_train" in names:
                    arrays = {split: archive[name] for split, name in named.items() if name in names}
                    y_names = {split: "y" + name.removeprefix("x") for split, name in named.items()}
                    labels = {split: archive[name] for split, name in y_names.items() if name in names}
                    return arrays, labels
                labelled = [name for name in ("labels", "y") if name in names]
                if "x" in names and labelled:
                    return {"x": archive["x"]}, {"x": archive[labelled[0]]}
                if len(names) == 1 or "x" in names:
                    return {"x": archive["x" if "x" in names else names[0]]}, {}
                raise ValueError(
                    f"{path} holds arrays {', '.join(names)}: name the data x (split by hash) or x_train, "
                    "x_validation and x_test."
                )
        except ValueError as error:
            if "allow_pickle" in str(error) or "Object arrays" in str(error) or "Python objects" in str(error):
                raise ValueError(
                    f"{path} holds an object array, which cannot be read without unpickling: save a numeric array."
                ) from None
            raise
        except (OSError, EOFError) as error:
            raise ValueError(f"{path} is not a readable NumPy file ({error}).") from None

    def count(self, split):
        return len(self._rows[split][1])

    @functools.cached_property
    def _row_keys(self):
        return {split: eager_constant(indices, tf.int64) for split, (_, indices) in self._rows.items()}

    def keys(self, split, shuffle_seed):
        return ordered(self.count(split), shuffle_seed, self._row_keys[split])

    def read_labels(self, split, keys):
        return tf.gather(self._label_arrays[split], keys)

    def read(self, split, keys):
        array = self._rows[split][0]

        def gather(rows):  # numpy fancy indexing reads just these rows of the memory map
            return np.asarray(array[np.asarray(rows)], np.float32)

        x = tf.ensure_shape(tf.numpy_function(gather, [keys], tf.float32, stateful=False), (None, *self._stored))
        if not self._image:
            return x
        if x.shape.rank == 3:
            x = x[..., None]
        height, width, channels = self.element_shape
        return tf.map_fn(
            lambda image: fit_image(to_channels(image, channels), (height, width), self._fit),
            x,
            fn_output_signature=tf.TensorSpec(self.element_shape, tf.float32),
        )


def _check_finite(path, array):
    if not np.issubdtype(array.dtype, np.floating):
        return
    for start in range(0, len(array), _SCAN_CHUNK):
        chunk = np.asarray(array[start : start + _SCAN_CHUNK])
        bad = ~np.isfinite(chunk.reshape(len(chunk), -1)).all(axis=1)
        if bad.any():
            total = sum(
                int((~np.isfinite(np.asarray(array[s : s + _SCAN_CHUNK]).reshape(-1, chunk[0].size)).all(axis=1)).sum())
                for s in range(start, len(array), _SCAN_CHUNK)
            )
            kind = "NaN" if np.isnan(chunk).any() else "Inf"
            raise ValueError(
                f"{path} holds {kind} values in {total} example(s) (first: row {start + int(np.argmax(bad))}): "
                "every value must be finite."
            )


# ------------------------------------------------------------------ CSV
class CSVFile(Source):
    """A CSV file of numeric columns, one example a row; a first row with text is the header."""

    max_value = 1.0

    def __init__(self, path, fractions):
        self.path = path
        self.description = path
        rows, self.header = self._scan(path)
        splits = _split_by_folder_or_hash([str(i) for i in range(rows)], fractions)
        self._counts = {split: len(indices) for split, indices in splits.items()}
        self._fractions = fractions

    def _scan(self, path):
        """Checks every cell in one pass; returns (rows, header)."""
        with open(path, newline="") as f:
            reader = csv.reader(f)
            first = next(reader, None)
            if first is None:
                raise ValueError(f"{path} is empty.")
            header = None if all(_is_number(cell) for cell in first) else first
            names = header or [f"column {i + 1}" for i in range(len(first))]
            rows = 0 if header else 1
            if header is None:
                self._check_row(path, first, names, 1)
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                self._check_row(path, row, names, line)
                rows += 1
        if rows == 0:
            raise ValueError(f"{path} has a header but no rows.")
        self.element_shape = (len(names),)
        return rows, header

    @staticmethod
    def _check_row(path, row, names, line):
        if len(row) != len(names):
            raise ValueError(f"{path}, line {line}: {len(row)} fields, where the file has {len(names)} columns.")
        for name, cell in zip(names, row, strict=True):
            if not _is_number(cell):
                raise ValueError(f"{path}: column {name!r} is not numeric (line {line}: {cell!r}).")
            if not math.isfinite(float(cell)):
                raise ValueError(f"{path}: column {name!r} holds {cell.strip()} at line {line}: values must be finite.")

    def count(self, split):
        return self._counts[split]

    def keys(self, split, shuffle_seed):
        columns = self.element_shape[0]
        rows = tf.data.experimental.CsvDataset(
            self.path, [tf.float32] * columns, header=self.header is not None
        ).enumerate()
        which = SPLITS.index(split)
        rows = rows.filter(lambda i, *_: hash_split(tf.strings.as_string(i), self._fractions) == which)
        vectors = rows.map(lambda _, values: tf.stack(values))
        return vectors if shuffle_seed is None else block_shuffle(vectors, shuffle_seed)

    def read(self, split, keys):
        return keys


def _is_number(cell):
    try:
        float(cell)
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------ scaling
def _scaling(source, scale, statistics):
    if scale == "raw":
        return Scaling()
    if scale == "unit":
        return Scaling("unit", source.max_value)
    if statistics:
        return Scaling("standard", mean=tuple(statistics["mean"]), std=tuple(statistics["std"]))
    source.scaling = Scaling()
    return Scaling("standard", **training_statistics(source))


def training_statistics(source):
    """{"mean", "std"} per channel (images) or column (features) of the
    training split, in one streaming pass (float64 sums); a constant
    channel's std is 1, so it passes through centred."""
    total = np.zeros(source.element_shape[-1])
    squares = np.zeros_like(total)
    count = 0
    for batch in stream(source, "train", 256, seed=0):
        values = batch.numpy().reshape(-1, source.element_shape[-1]).astype(np.float64)
        total += values.sum(axis=0)
        squares += (values**2).sum(axis=0)
        count += len(values)
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    std[std == 0] = 1.0
    return {"mean": tuple(mean.tolist()), "std": tuple(std.tolist())}


def cache(source):
    """The source's splits read once into memory (`InMemory`), scaled."""
    arrays, labels = {}, {}
    labelled = source.classes is not None
    for split in SPLITS:
        batches = list(stream(source, split, 256, seed=0, labels=labelled)) if source.count(split) else []
        x = [b[0] if labelled else b for b in batches]
        arrays[split] = np.concatenate(x) if x else np.zeros((0, *source.element_shape), np.float32)
        labels[split] = np.concatenate([b[1] for b in batches]) if batches and labelled else np.zeros(0, np.int32)
    description = f"{source.description}, cached in memory"
    return InMemory(arrays, description, labels if labelled else None, source.classes)


def main(argv=None):
    """`python -m keras_ae.sources FOLDER PREFIX [--shards N]`: a folder of images as TFRecord shards."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m keras_ae.sources", description=write_tfrecords.__doc__)
    parser.add_argument("folder", help="a folder of images, at any depth")
    parser.add_argument("prefix", help="the shards' path and name prefix, e.g. data/photos")
    parser.add_argument("--shards", type=int, default=8, help="files to write (default 8)")
    args = parser.parse_args(argv)
    try:
        files = write_tfrecords(args.folder, args.prefix, args.shards)
    except (ValueError, OSError) as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    print(f"Wrote {len(files)} files: {files[0]} ... {files[-1]}; train with --dataset '{args.prefix}-*.tfrecord'")


if __name__ == "__main__":
    main()
