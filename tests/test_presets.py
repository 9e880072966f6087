"""Presets (issue 14): save_preset writes a checksummed folder, from_preset loads it by name, path or URL.

The URL tests serve a preset folder from an `http.server` on 127.0.0.1 in a thread of this process.
"""

import contextlib
import functools
import hashlib
import http.server
import json
import shutil
import threading

import h5py
import numpy as np
import pytest

import keras_ae
from keras_ae import presets

from small_models import SMALL_CONFIGS

IMAGE = (8, 8, 1)
X = np.random.default_rng(0).uniform(size=(16, *IMAGE)).astype("float32")
METADATA = {
    "name": "tiny_vae",
    "description": "A tiny VAE of random images, for the tests",
    "dataset": {"name": "random", "split": "none"},
    "command": "python -c 'pass'",
    "metrics": {"mean": {"value": 0.5, "tolerance": 0.1, "command": "python -c 'pass'", "unit": "none"}},
}


def _trained_like(model, seed=0):
    """`model` with every weight moved off its initial value (biases too), and optimizer state to leave out."""
    rng = np.random.default_rng(seed)
    model.set_weights([w + rng.normal(0, 0.3, w.shape).astype(w.dtype) for w in model.get_weights()])
    model.compile()
    model.optimizer.build(model.trainable_variables)
    return model


@pytest.fixture(scope="module")
def model():
    return _trained_like(keras_ae.get_model("vae", input_shape=IMAGE, latent_dim=2, hidden_units=[16], seed=1))


@pytest.fixture(scope="module")
def preset(model, tmp_path_factory):
    """A float32 preset folder of `model`."""
    folder = tmp_path_factory.mktemp("presets") / "tiny_vae"
    presets.save_preset(model, folder, METADATA)
    return folder


@pytest.fixture(autouse=True)
def keras_ae_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("KERAS_AE_HOME", str(home))
    return home


def _one_line_error(match, fn, *args, **kwargs):
    with pytest.raises(ValueError, match=match) as error:
        fn(*args, **kwargs)
    assert "\n" not in str(error.value), str(error.value)
    return str(error.value)


def _tamper(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _cache_entries():
    folder = presets.cache_folder()
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ------------------------------------------------------------------ save and load a folder
def test_a_saved_preset_loads_the_same_model_with_checksummed_metadata(model, preset):
    assert sorted(p.name for p in preset.iterdir()) == ["config.json", "metadata.json", "model.weights.h5"]
    assert not preset.with_name("tiny_vae.partial").exists()
    metadata = json.loads((preset / "metadata.json").read_text())
    for key in ("name", "description", "dataset", "command", "metrics", *presets.ADDED_KEYS):
        assert key in metadata, key
    assert metadata["metrics"] == METADATA["metrics"] and metadata["weights_dtype"] == "float32"
    assert metadata["keras_ae_version"] == getattr(keras_ae, "__version__", "unknown")
    assert metadata["files"] == {
        name: hashlib.sha256((preset / name).read_bytes()).hexdigest() for name in ("config.json", "model.weights.h5")
    }
    with h5py.File(preset / "model.weights.h5", "r") as f:
        assert "optimizer" not in f  # no optimizer state

    loaded = keras_ae.from_preset(preset)
    assert type(loaded) is type(model) and loaded.preset_metadata == metadata
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.encode(X), loaded.encode(X))  # the posterior mean
    np.testing.assert_array_equal(model.decode(np.ones((2, 2), "float32")), loaded.decode(np.ones((2, 2), "float32")))
    assert loaded.compiled and not keras_ae.from_preset(str(preset), compile=False).compiled


def test_float16_weights_are_stored_as_float16_and_load_as_their_rounded_values(model, tmp_path):
    metadata = presets.save_preset(model, tmp_path / "half", METADATA, weights_dtype="float16")
    assert metadata["weights_dtype"] == "float16"
    with h5py.File(tmp_path / "half" / "model.weights.h5", "r") as f:
        dtypes = []
        f.visititems(lambda _, item: dtypes.append(item.dtype) if isinstance(item, h5py.Dataset) else None)
    assert dtypes and all(dtype == np.float16 for dtype in dtypes)
    loaded = keras_ae.from_preset(tmp_path / "half")
    rounded = 0
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        assert b.dtype == np.float32
        np.testing.assert_array_equal(b, a.astype(np.float16).astype(np.float32))
        rounded += int(np.sum(a != b))
    assert rounded > 0  # the float16 rounding is real, not a float32 copy


@pytest.mark.parametrize("name", sorted(SMALL_CONFIGS))
def test_every_zoo_model_round_trips_through_a_preset(name, tmp_path):
    original = keras_ae.get_model(name, input_shape=IMAGE, latent_dim=2, **SMALL_CONFIGS[name])
    original = _trained_like(original)
    presets.save_preset(original, tmp_path / name, dict(METADATA, name=name))
    loaded = keras_ae.from_preset(tmp_path / name, compile=False)
    assert type(loaded) is type(original) and loaded.get_config() == original.get_config()
    for a, b in zip(original.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_save_preset_replaces_a_folder_atomically_and_checks_the_metadata(model, tmp_path):
    folder = tmp_path / "p"
    presets.save_preset(model, folder, METADATA)
    first = json.loads((folder / "metadata.json").read_text())
    again = presets.save_preset(model, folder, dict(first, description="again"))  # a loaded preset's metadata
    assert again["description"] == "again" and sorted(p.name for p in tmp_path.iterdir()) == ["p"]
    with pytest.raises(FileExistsError):
        presets.save_preset(model, folder, METADATA, overwrite=False)
    _one_line_error(
        "lacks description, dataset, command, metrics", presets.save_preset, model, tmp_path / "q", {"name": "q"}
    )
    bad_metric = dict(METADATA, metrics={"m": {"value": 1.0}})
    _one_line_error(
        "'m' of the preset metadata lacks tolerance, command", presets.save_preset, model, folder, bad_metric
    )
    _one_line_error(
        r"\['dataset'\] must be a dict", presets.save_preset, model, tmp_path / "q", dict(METADATA, dataset="x")
    )
    _one_line_error("JSON-serializable", presets.save_preset, model, tmp_path / "q", dict(METADATA, when=object()))
    _one_line_error("weights_dtype", presets.save_preset, model, tmp_path / "q", METADATA, weights_dtype="int8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]


def test_a_tampered_or_incomplete_local_preset_fails_with_both_hashes(preset, tmp_path):
    for name in ("model.weights.h5", "config.json"):
        copy = tmp_path / f"tampered_{name}"
        shutil.copytree(preset, copy)
        expected = json.loads((copy / "metadata.json").read_text())["files"][name]
        _tamper(copy / name)
        actual = hashlib.sha256((copy / name).read_bytes()).hexdigest()
        message = _one_line_error(f"Checksum mismatch for .*{name}", keras_ae.from_preset, copy)
        assert expected in message and actual in message
    shutil.copytree(preset, tmp_path / "incomplete")
    (tmp_path / "incomplete" / "model.weights.h5").unlink()
    _one_line_error("model.weights.h5 is missing", keras_ae.from_preset, tmp_path / "incomplete")
    _one_line_error("no metadata.json", keras_ae.from_preset, tmp_path)
    _one_line_error("No preset folder at", keras_ae.from_preset, str(tmp_path / "absent"))
    _one_line_error("needs a preset name", keras_ae.from_preset, "")


# ------------------------------------------------------------------ shipped presets by name
def test_names_are_the_shipped_presets(preset, tmp_path, monkeypatch):
    monkeypatch.setattr(presets, "shipped_folder", lambda: tmp_path / "preset_files")
    assert presets.list_presets() == []
    _one_line_error(r"Unknown preset 'tiny_vae'\. Known presets: none are shipped", keras_ae.from_preset, "tiny_vae")

    shutil.copytree(preset, tmp_path / "preset_files" / "tiny_vae")
    (tmp_path / "preset_files" / "not_a_preset").mkdir()
    assert [m["name"] for m in presets.list_presets()] == ["tiny_vae"]
    assert presets.list_presets()[0]["metrics"]["mean"]["value"] == 0.5
    assert keras_ae.from_preset("tiny_vae").preset_metadata["name"] == "tiny_vae"
    _one_line_error(r"Unknown preset 'nope'\. Known presets: tiny_vae;", keras_ae.from_preset, "nope")

    _tamper(tmp_path / "preset_files" / "tiny_vae" / "model.weights.h5")
    _one_line_error("Checksum mismatch for .*model.weights.h5", keras_ae.from_preset, "tiny_vae")


def test_the_real_shipped_presets_are_listed_with_their_numbers():
    for metadata in presets.list_presets():  # [] until presets are shipped
        assert set(presets.EXPECTED_KEYS) <= set(metadata)
        assert all({"value", "tolerance", "command"} <= set(m) for m in metadata["metrics"].values())


# ------------------------------------------------------------------ presets by URL
class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; counts requests; `mode` breaks one file: "404" or "truncate" (closes mid-file)."""

    requests = []
    broken = {}  # {file name: mode}

    def do_GET(self):
        type(self).requests.append(self.path)
        name = self.path.rsplit("/", 1)[-1]
        mode = self.broken.get(name)
        if mode == "404":
            self.send_error(404)
        elif mode == "truncate":
            data = (self.directory_path / self.path.lstrip("/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
        else:
            super().do_GET()

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def _serving(root):
    """An HTTP server of `root` on 127.0.0.1; yields its base URL."""
    handler = type("Handler", (_Handler,), {"requests": [], "broken": {}, "directory_path": root})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def served(preset, tmp_path):
    root = tmp_path / "served"
    shutil.copytree(preset, root / "presets" / "tiny_vae")
    with _serving(root) as (base, handler):
        yield f"{base}/presets/tiny_vae", handler, root / "presets" / "tiny_vae"


def test_a_url_is_downloaded_once_verified_and_cached(model, served, keras_ae_home):
    url, handler, _ = served
    loaded = keras_ae.from_preset(url)
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    folder = presets.cache_path(url)
    assert folder.parent == keras_ae_home / "presets" and folder.name.endswith("-tiny_vae")
    assert _cache_entries() == [folder.name]
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "metadata.json", "model.weights.h5"]
    files = ("metadata.json", "config.json", "model.weights.h5")
    assert sorted(handler.requests) == sorted(f"/presets/tiny_vae/{name}" for name in files)

    handler.requests.clear()
    again = keras_ae.from_preset(url + "/")  # the same folder URL
    assert handler.requests == [] and again.preset_metadata == loaded.preset_metadata


def test_a_tampered_download_fails_and_caches_nothing(served):
    url, handler, root = served
    _tamper(root / "model.weights.h5")
    message = _one_line_error(f"Checksum mismatch for {url}/model.weights.h5", keras_ae.from_preset, url)
    assert json.loads((root / "metadata.json").read_text())["files"]["model.weights.h5"] in message
    assert _cache_entries() == []


@pytest.mark.parametrize("mode", ["404", "truncate"])
def test_a_failed_or_interrupted_download_fails_and_caches_nothing(served, mode):
    url, handler, _ = served
    handler.broken["model.weights.h5"] = mode
    reason = "HTTP 404" if mode == "404" else "the connection closed after"
    _one_line_error(f"Could not download {url}/model.weights.h5: {reason}", keras_ae.from_preset, url)
    assert _cache_entries() == []
    handler.broken.clear()  # the server is back: the next call downloads it whole
    assert keras_ae.from_preset(url, compile=False).preset_metadata["name"] == "tiny_vae"


def test_an_unreachable_url_is_a_one_line_error():
    with _serving(presets.cache_folder()) as (base, _):
        pass  # the server is closed: its port refuses connections
    _one_line_error(f"Could not download {base}/p/metadata.json", keras_ae.from_preset, f"{base}/p")
    assert _cache_entries() == []
