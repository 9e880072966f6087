"""Presets: trained zoo models saved as a folder, loaded by name, path or URL.

    model = keras_ae.from_preset("vae_mnist")                       # shipped in keras_ae/preset_files
    model = keras_ae.from_preset("runs/presets/vae_mnist_folder")     # a folder
    model = keras_ae.from_preset("https://example.org/presets/vae_mnist")  # downloaded once, then cached

A preset is a folder of three files:

- `config.json`: the model's Keras config (`keras.saving.serialize_keras_object`, without its compile config);
- `model.weights.h5`: its weights (`model.save_weights`), without optimizer state; float32, or float16 where
  `metadata.json` says so (`weights_dtype`), loaded back into the float32 model;
- `metadata.json`: what the preset is and how it was made: its name and description, the data set and split,
  the command that trained it, the measured numbers (`metrics`: {name: {"value", "tolerance", "command"}}),
  the keras-ae and Keras versions, the weights' dtype, the date, and `files`: the sha256 of every other file.

Every file listed in `metadata.json` is checked against its sha256 before the model is built: a shipped,
local, cached or downloaded file that differs fails with a one-line `ValueError` naming the file and both
hashes. A URL's files are downloaded (standard library only) into a temporary folder beside the cache,
verified, and moved into `KERAS_AE_HOME/presets/` (default `~/.keras/keras_ae`) in one `os.replace`: a failed,
interrupted or tampered download leaves nothing in the cache. Nothing is unpickled: JSON, HDF5 and Keras'
`safe_mode` deserialization, and only keras-ae's own models are built.
"""

import datetime
import hashlib
import http.client
import importlib.resources
import json
import os
import pathlib
import re
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request

import keras
import numpy as np

CONFIG = "config.json"
WEIGHTS = "model.weights.h5"
METADATA = "metadata.json"
# save_preset's own keys in metadata.json, beside the caller's.
ADDED_KEYS = ("keras_ae_version", "keras_version", "weights_dtype", "created", "files")
EXPECTED_KEYS = ("name", "description", "dataset", "command", "metrics")
METRIC_KEYS = ("value", "tolerance", "command")
WEIGHTS_DTYPES = ("float32", "float16")
DOWNLOAD_TIMEOUT = 60  # seconds without data before a download fails
_SAFE_FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


# ------------------------------------------------------------------ locations
def shipped_folder():
    """The folder of the presets shipped in the package: `keras_ae/preset_files`."""
    return pathlib.Path(os.fspath(importlib.resources.files("keras_ae") / "preset_files"))


def cache_folder():
    """Where downloaded presets are kept: `$KERAS_AE_HOME/presets`, default `~/.keras/keras_ae/presets`."""
    home = os.environ.get("KERAS_AE_HOME") or os.path.join("~", ".keras", "keras_ae")
    return pathlib.Path(os.path.expanduser(home)) / "presets"


def cache_path(url):
    """The cache folder of a preset URL: `<sha256 of the URL>[:16]-<its last path part>`."""
    url = url.rstrip("/")
    last = urllib.parse.urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    last = re.sub(r"[^A-Za-z0-9._-]", "_", urllib.parse.unquote(last)).lstrip(".") or "preset"
    return cache_folder() / f"{hashlib.sha256(url.encode()).hexdigest()[:16]}-{last}"


# ------------------------------------------------------------------ listing
def list_presets():
    """The metadata dicts of the shipped presets, sorted by name; [] when none are shipped."""
    return [_read_metadata(folder) for _, folder in sorted(_shipped().items())]


def _shipped():
    """{name: folder} of the shipped presets: the folders of `preset_files` that hold a metadata.json."""
    root = shipped_folder()
    if not root.is_dir():
        return {}
    return {p.name: p for p in root.iterdir() if p.is_dir() and (p / METADATA).is_file()}


# ------------------------------------------------------------------ saving
def save_preset(model, folder, metadata, weights_dtype="float32", overwrite=True):
    """Writes `model` as a preset folder: config.json, model.weights.h5 and metadata.json.

    Args:
        model: a keras-ae model (`keras_ae.get_model`, a `sample_quality.FeatureClassifier`, or loaded from a
            `.keras` file).
        folder: the preset folder to write; written as `<folder>.partial`, then renamed.
        metadata: a JSON-serializable dict with at least "name", "description", "dataset" (the data set
            and split), "command" (the exact command that trained the model) and "metrics"
            ({metric: {"value", "tolerance", "command"}}, the command that measures it); other keys are
            kept. save_preset adds "keras_ae_version", "keras_version", "weights_dtype", "created" (UTC
            date) and "files" ({file name: sha256}), replacing those keys if `metadata` has them.
        weights_dtype: "float32", or "float16" to store every floating-point weight as float16 (half the
            size); loading gives the float16-rounded values in the float32 model, so measure the
            metrics with those values.
        overwrite: whether to replace an existing `folder`.

    Returns:
        The metadata as written.

    No optimizer state is saved: the weights are written from an uncompiled copy of the model, built
    from the config that is written, which so checks that the config round-trips.
    """
    import keras_ae

    if weights_dtype not in WEIGHTS_DTYPES:
        raise ValueError(f"weights_dtype must be one of {', '.join(WEIGHTS_DTYPES)}; got {weights_dtype!r}.")
    metadata = _checked_metadata(metadata)
    folder = pathlib.Path(folder)
    if folder.exists() and not overwrite:
        raise FileExistsError(f"{folder} exists; pass overwrite=True to replace it.")
    config = _config_of(model)
    copy = _build(config, f"the config of {type(model).__name__}")
    copy.set_weights(model.get_weights())

    partial = folder.with_name(folder.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    try:
        _write_json(partial / CONFIG, config)
        if weights_dtype == "float32":
            copy.save_weights(partial / WEIGHTS)
        else:
            full = partial / ("float32." + WEIGHTS)
            copy.save_weights(full)
            _to_float16(full, partial / WEIGHTS)
            full.unlink()
        metadata.update(
            keras_ae_version=getattr(keras_ae, "__version__", "unknown"),
            keras_version=keras.__version__,
            weights_dtype=weights_dtype,
            created=datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
            files={name: _sha256(partial / name) for name in (CONFIG, WEIGHTS)},
        )
        _write_json(partial / METADATA, metadata)
        _replace_folder(partial, folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return metadata


def _checked_metadata(metadata):
    if not isinstance(metadata, dict):
        raise ValueError(f"metadata must be a dict; got {type(metadata).__name__}.")
    missing = [key for key in EXPECTED_KEYS if key not in metadata]
    if missing:
        raise ValueError(f"The preset metadata lacks {', '.join(missing)} (expected: {', '.join(EXPECTED_KEYS)}).")
    name = metadata["name"]
    if not isinstance(name, str) or not _SAFE_FILE_NAME.match(name):
        raise ValueError(f"The preset name must be letters, digits, '.', '_' or '-'; got {name!r}.")
    dataset = metadata["dataset"]
    if not isinstance(dataset, dict) or not {"name", "split"} <= set(dataset):
        raise ValueError(f"metadata['dataset'] must be a dict with the data set's 'name' and 'split'; got {dataset!r}.")
    metrics = metadata["metrics"]
    if not isinstance(metrics, dict):
        raise ValueError(f"metadata['metrics'] must be a dict {{metric: {{{', '.join(METRIC_KEYS)}}}}}.")
    for metric, entry in metrics.items():
        lacking = [key for key in METRIC_KEYS if not isinstance(entry, dict) or key not in entry]
        if lacking:
            raise ValueError(f"The metric {metric!r} of the preset metadata lacks {', '.join(lacking)}.")
    metadata = {key: value for key, value in metadata.items() if key not in ADDED_KEYS}
    try:
        return json.loads(json.dumps(metadata, allow_nan=False))  # a JSON copy: the caller's dict is left as it was
    except (TypeError, ValueError) as error:
        raise ValueError(f"The preset metadata must be JSON-serializable: {error}") from None


def _config_of(model):
    config = keras.saving.serialize_keras_object(model)
    # A preset is a model and its weights; from_preset compiles it with the model's defaults.
    config.pop("compile_config", None)
    return json.loads(json.dumps(config))


def _to_float16(source, target):
    """Copies the HDF5 weights file `source` to `target` with every floating-point dataset as float16."""
    import h5py

    def copy(src, dst):
        dst.attrs.update(src.attrs)
        for key, item in src.items():
            if isinstance(item, h5py.Group):
                copy(item, dst.create_group(key))
                continue
            values = item[()]
            if np.issubdtype(values.dtype, np.floating) and values.dtype.itemsize > 2:
                finite = np.isfinite(values)
                if np.any(np.abs(values[finite]) > np.finfo(np.float16).max):
                    raise ValueError(f"The weight {item.name} has values beyond float16's range; save it as float32.")
                values = values.astype(np.float16)
            dst.create_dataset(key, data=values).attrs.update(item.attrs)

    with h5py.File(source, "r") as src, h5py.File(target, "w") as dst:
        copy(src, dst)


def _write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, ensure_ascii=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def _replace_folder(new, folder):
    """Moves the complete folder `new` to `folder`, replacing what was there."""
    if not folder.exists():
        os.replace(new, folder)
        return
    old = folder.with_name(folder.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    os.replace(folder, old)
    os.replace(new, folder)
    shutil.rmtree(old)


# ------------------------------------------------------------------ loading
def from_preset(name_or_path_or_url, compile=True):
    """The keras-ae model of a preset, its weights loaded, its metadata as `model.preset_metadata`.

    Args:
        name_or_path_or_url: a shipped preset's name (`list_presets()`), a preset folder, or the http(s)
            URL of one: its metadata.json, config.json and model.weights.h5 are downloaded once into
            `$KERAS_AE_HOME/presets` (default `~/.keras/keras_ae/presets`).
        compile: whether to compile the model (`model.compile()`: Adam and the model's own loss).

    Every file is checked against the sha256 that metadata.json records; each failure (an unknown name,
    a missing or tampered file, a failed download) is a one-line `ValueError`.
    """
    source = name_or_path_or_url
    if isinstance(source, str) and source.lower().startswith(("http://", "https://")):
        folder = _downloaded(source)
    else:
        folder = _local_folder(source)
    metadata = _read_metadata(folder)
    _verify(folder, metadata, lambda name: folder / name)
    with open(folder / CONFIG, encoding="utf-8") as f:
        config = _parse_json(f.read(), folder / CONFIG)
    model = _build(config, folder / CONFIG)
    model.load_weights(folder / WEIGHTS)
    if compile:
        model.compile()
    # A plain attribute: not tracked by Keras or tf.Module, so the model saves as before.
    object.__setattr__(model, "preset_metadata", metadata)
    return model


def _local_folder(source):
    """The folder of a shipped preset's name or of a path."""
    text = os.fspath(source)
    if not text:
        raise ValueError("from_preset needs a preset name, a preset folder or an http(s) URL; got ''.")
    shipped = _shipped()
    looks_like_path = isinstance(source, os.PathLike) or "/" in text or os.sep in text or text.startswith((".", "~"))
    if not looks_like_path and text in shipped:
        return shipped[text]
    folder = pathlib.Path(os.path.expanduser(text))
    if folder.is_dir():
        return folder
    if looks_like_path:
        raise ValueError(f"No preset folder at {text}.")
    known = ", ".join(sorted(shipped)) or "none are shipped"
    raise ValueError(f"Unknown preset {text!r}. Known presets: {known}; or pass a preset folder or an http(s) URL.")


def _read_metadata(folder):
    path = pathlib.Path(folder) / METADATA
    if not path.is_file():
        raise ValueError(f"{path.parent} is no preset folder: it has no {METADATA}.")
    with open(path, encoding="utf-8") as f:
        metadata = _parse_json(f.read(), path)
    _check_files_entry(metadata, path)
    return metadata


def _parse_json(text, where):
    try:
        return json.loads(text)
    except ValueError as error:
        raise ValueError(f"{where} is not valid JSON ({error}).") from None


def _check_files_entry(metadata, where):
    files = metadata.get("files") if isinstance(metadata, dict) else None
    if not isinstance(files, dict) or not {CONFIG, WEIGHTS} <= set(files):
        raise ValueError(f"{where} must map {CONFIG} and {WEIGHTS} to their sha256 under 'files'.")
    for name, digest in files.items():
        if not isinstance(name, str) or not _SAFE_FILE_NAME.match(name) or name == METADATA:
            raise ValueError(f"{where} lists a file {name!r} that is no plain file name of a preset.")
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise ValueError(f"{where} records no sha256 (64 lowercase hex digits) for {name}: {digest!r}.")


def _verify(folder, metadata, described):
    """Checks every file that metadata lists in `folder`; `described(name)` names a file in errors."""
    for name, expected in metadata["files"].items():
        path = folder / name
        if not path.is_file():
            raise ValueError(f"The preset file {described(name)} is missing.")
        _check_sha256(described(name), expected, _sha256(path))


def _check_sha256(described, expected, actual):
    if actual != expected:
        raise ValueError(
            f"Checksum mismatch for {described}: metadata.json records sha256 {expected}, the file has {actual}."
        )


def _build(config, where):
    """The keras-ae model of a config, deserialized in safe mode; nothing but a keras-ae model is built: an
    autoencoder of the zoo, or a sample-quality feature classifier."""
    from keras_ae.base import Autoencoder
    from keras_ae.sample_quality import FeatureClassifier  # imported, so registered for deserialization

    registered = config.get("registered_name") if isinstance(config, dict) else None
    if not isinstance(registered, str) or not registered.startswith("keras_ae>"):
        raise ValueError(f"{where} is not the config of a keras-ae model (registered_name {registered!r}).")
    model = keras.saving.deserialize_keras_object(config, safe_mode=True)
    if not isinstance(model, Autoencoder | FeatureClassifier):
        raise ValueError(f"{where} describes a {type(model).__name__}, not a keras-ae model.")
    return model


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# ------------------------------------------------------------------ downloading
def _downloaded(url):
    """The cache folder of a preset URL, downloaded and verified first if it is not cached yet."""
    url = url.rstrip("/")
    folder = cache_path(url)
    if (folder / METADATA).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Beside the cache, so that the verified folder moves in with one rename; a dot name, never a preset's.
    partial = pathlib.Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial", dir=folder.parent))
    try:
        _fetch(f"{url}/{METADATA}", partial / METADATA)
        metadata = _read_metadata(partial)
        for name, expected in metadata["files"].items():
            actual = _fetch(f"{url}/{name}", partial / name)
            _check_sha256(f"{url}/{name}", expected, actual)
        try:
            os.replace(partial, folder)
        except OSError:
            if not (folder / METADATA).is_file():  # not a concurrent download of the same URL
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def _fetch(url, path):
    """Downloads `url` to `path`; returns its sha256. Any failure is a one-line ValueError."""
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response, open(path, "wb") as f:
            expected_size = response.headers.get("Content-Length")
            size = 0
            for block in iter(lambda: response.read(1 << 20), b""):
                f.write(block)
                digest.update(block)
                size += len(block)
            if expected_size is not None and expected_size.isdigit() and size != int(expected_size):
                raise ValueError(f"the connection closed after {size} of {expected_size} bytes")
    except (OSError, ValueError, http.client.HTTPException) as error:
        if isinstance(error, urllib.error.HTTPError):
            reason = f"HTTP {error.code} {error.reason}"
        elif isinstance(error, urllib.error.URLError):
            reason = str(error.reason)
        else:
            reason = str(error) or type(error).__name__
        reason = " ".join(reason.split())
        raise ValueError(f"Could not download {url}: {reason}.") from None
    return digest.hexdigest()
