"""The package (issue 14): the wheel's contents, the `keras-ae` command installed from it into a fresh
virtualenv outside the checkout, and the command's subcommands run in-process.

The wheel is built offline from a copy of the checkout (`pip wheel --no-deps --no-build-isolation`, so
nothing is written into the checkout); the fresh virtualenv reaches the heavy dependencies (TensorFlow and
the rest) through a .pth file naming this interpreter's site-packages, and gets the wheel with
`pip install --no-deps --no-index`: nothing is downloaded.
"""

import importlib.util
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig
import types
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_ae
from keras_ae import cli, data

REPO = pathlib.Path(__file__).resolve().parents[1]
SHIPPED = REPO / "keras_ae" / "preset_files"
# Package data to check the globs with, added to the copy that is built: no metadata.json, so no preset.
PROBES = ("keras_ae/preset_files/probe/config.json", "keras_ae/preset_files/probe/deeper/model.weights.h5")
NOT_COPIED = (".git", ".venv", "runs", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache")


def _environment(**extra):
    """The environment of a command run outside the checkout: no PYTHONPATH, so nothing comes from the checkout."""
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**environment, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", **extra}


def _run(command, cwd, timeout=300, **extra):
    result = subprocess.run(
        command, cwd=cwd, env=_environment(**extra), capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


def _start(command, cwd, **extra):
    return subprocess.Popen(
        command, cwd=cwd, env=_environment(**extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finish(process, timeout=300):
    """The stdout of a command started with `_start`, which must succeed."""
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"{process.args} exited {process.returncode}:\n{out}\n{err}"
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel, built from a copy of the checkout, installed into a fresh virtualenv: (wheel, venv, bin)."""
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools, the build backend, is not installed in this environment")
    root = tmp_path_factory.mktemp("package")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_COPIED))
    for probe in PROBES:
        (source / probe).parent.mkdir(parents=True, exist_ok=True)
        (source / probe).write_text("{}")
    # TensorFlow cannot be imported during the build: the version is read from keras_ae/__init__.py statically.
    blocker = root / "blocker" / "tensorflow"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('the build must not import TensorFlow')\n")
    wheels = root / "wheels"
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", wheels, "."],
        cwd=source,
        PYTHONPATH=str(blocker.parent),
    )
    [wheel] = wheels.glob("keras_ae-*.whl")

    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=root)
    bin_dir = venv / "bin"
    site_packages = _run(
        [bin_dir / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=root
    ).stdout.strip()
    # The dependencies (and pip) of this environment, found after the venv's own site-packages.
    ours = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (pathlib.Path(site_packages) / "_dependencies.pth").write_text("".join(f"{path}\n" for path in ours))
    _run(
        [bin_dir / "python", "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", "-q", wheel],
        cwd=root,
    )
    return types.SimpleNamespace(wheel=wheel, venv=venv, bin=bin_dir, site_packages=pathlib.Path(site_packages))


# ------------------------------------------------------------------ the wheel
def test_wheel_holds_the_library_and_the_cli_and_nothing_else(installed):
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        info = f"keras_ae-{keras_ae.__version__}.dist-info"
        metadata = wheel.read(f"{info}/METADATA").decode()
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
        top_level = wheel.read(f"{info}/top_level.txt").decode().split()

    # Every module of the library, training/ and export/, the latter two under keras_ae.
    expected = {str(p.relative_to(REPO)) for p in (REPO / "keras_ae").rglob("*.py")}
    expected |= {
        f"keras_ae/{p.relative_to(REPO)}" for folder in ("training", "export") for p in (REPO / folder).glob("*.py")
    }
    assert expected <= names, sorted(expected - names)
    assert "keras_ae/cli.py" in names and "keras_ae/training/train.py" in names and "keras_ae/export/export.py" in names
    # The presets' files, and the globs that take them.
    shipped = {str(p.relative_to(REPO)) for p in SHIPPED.rglob("*") if p.suffix in (".json", ".h5")}
    assert set(PROBES) | shipped <= names
    # No tests, benchmarks, docs, results, nor a top-level `training` or `export`.
    assert top_level == ["keras_ae"]
    assert all(name.startswith(("keras_ae/", info)) for name in names), sorted(names)
    assert not any(part in ("tests", "benchmarks", "docs", "runs") for name in names for part in name.split("/"))
    assert re.search(r"^keras-ae = keras_ae\.cli:main$", entry_points, re.M)

    # The pinned stack: requirements.txt less the tools.
    requirements = (REPO / "requirements.txt").read_text().split()
    tools = ("pytest==", "ruff==")
    pinned = {line.lower() for line in requirements if not line.startswith(tools)}
    depends = {m.lower() for m in re.findall(r"^Requires-Dist: ([^;\s]+)$", metadata, re.M)}
    assert depends == pinned
    extras = re.findall(r'^Requires-Dist: ([^;\s]+); extra == "(\w+)"$', metadata, re.M)
    assert sorted(r for r, extra in extras if extra == "dev") == sorted(r for r in requirements if r.startswith(tools))
    assert ("torch==2.13.0", "bench") in extras


def test_installed_command_trains_outside_the_checkout(installed, tmp_path):
    # Modules come from the venv's site-packages, training's export is keras_ae.export, and neither
    # `training` nor `export` is an importable name there.
    probe = """if True:
        import importlib.util, json
        import keras_ae, keras_ae.cli, keras_ae.training.train as train
        print(json.dumps({
            "files": [keras_ae.__file__, keras_ae.cli.__file__, train.__file__],
            "export": train._sibling("export.export").__name__,
            "cli_wraps": keras_ae.cli.wrapped("training.train").__name__,
            "plain": [importlib.util.find_spec(name) is not None for name in ("training", "export")],
        }))"""
    # Beside the training run: all three spend most of their time importing TensorFlow.
    version = _start([installed.bin / "keras-ae", "--version"], cwd=tmp_path)
    modules = _start([installed.bin / "python", "-c", probe], cwd=tmp_path)
    _run(
        [installed.bin / "keras-ae", "train", "--epochs", "1", "--no-export", "--image-every", "0", "--out", "run"],
        cwd=tmp_path,
    )
    assert (tmp_path / "run" / "model.keras").is_file() and (tmp_path / "run" / "complete.json").is_file()
    assert _finish(version).strip() == f"keras-ae {keras_ae.__version__}"
    found = json.loads(_finish(modules).splitlines()[-1])
    assert all(pathlib.Path(f).is_relative_to(installed.site_packages) for f in found["files"]), found
    assert found["export"] == "keras_ae.export.export" and found["cli_wraps"] == "keras_ae.training.train"
    assert found["plain"] == [False, False]


@pytest.mark.skipif(
    not all((SHIPPED / name / "metadata.json").is_file() for name in ("vae_mnist", "dae_mnist")),
    reason="the checkout ships no vae_mnist and dae_mnist presets yet (keras_ae/preset_files)",
)
def test_installed_presets_sample_and_reconstruct_offline(installed, tmp_path):
    images = tmp_path / "digits"
    images.mkdir()
    for i, digit in enumerate(data.load("digits", "test")[:5]):
        tf.io.write_file(str(images / f"{i}.png"), tf.io.encode_png(np.uint8(digit * 255)))
    offline = dict(HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", KERAS_AE_HOME=str(tmp_path))
    command = installed.bin / "keras-ae"
    sample = _start([command, "sample", "vae_mnist", "--n", "64", "--out", "samples.png"], cwd=tmp_path, **offline)
    _run([command, "reconstruct", "dae_mnist", images, "--out", "out"], cwd=tmp_path, **offline)
    _finish(sample)
    assert _png_shape(tmp_path / "samples.png") == (8 * 29 - 1, 8 * 29 - 1, 1)  # 64 MNIST digits, 8 across
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "0.png",
        "1.png",
        "2.png",
        "3.png",
        "4.png",
        "grid.png",
    ]
    assert _png_shape(tmp_path / "out" / "0.png") == (28, 28, 1)


# ------------------------------------------------------------------ the subcommands, in-process
def _png_shape(path):
    return tuple(tf.io.decode_png(tf.io.read_file(str(path))).shape)


def _model(name="autoencoder", input_shape=(8, 8, 1), **metadata):
    model = keras_ae.get_model(name, input_shape=input_shape, latent_dim=2, seed=0)
    model.compile()
    object.__setattr__(model, "preset_metadata", metadata)
    return model


@pytest.fixture
def fake_presets(monkeypatch):
    """`keras_ae.presets` as the CLI sees it: {name: model}, listed with one metric each."""
    shipped = {}
    module = types.ModuleType("keras_ae.presets")

    def from_preset(name):
        if name not in shipped:
            raise ValueError(f"Unknown preset {name!r}.")
        return shipped[name]

    module.from_preset = from_preset
    module.list_presets = lambda: [
        {"name": name, "description": f"a {name}", "metrics": {"loss": {"value": 1.25, "tolerance": 0.1}}}
        for name in sorted(shipped)
    ]
    monkeypatch.setattr(cli, "presets", module)
    return shipped


def _one_line_error(capsys, argv, command):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"keras-ae {command}: error: "), line
    return line


@pytest.mark.parametrize(
    "command, shows",
    [
        ("train", "--epochs"),
        ("export", "--tflite"),
        ("evaluate", "--split"),
        ("sample", "--n"),
        ("reconstruct", "--out"),
        ("presets", "--json"),
    ],
)
def test_every_subcommand_has_help(command, shows, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: keras-ae {command} ") and shows in out


def test_version_and_the_list_of_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out == f"keras-ae {keras_ae.__version__}\n"
    assert cli.main([]) == 2
    out = capsys.readouterr().out
    assert all(command in out for command in ("train", "export", "evaluate", "sample", "reconstruct", "presets"))


def test_train_then_evaluate_a_run(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["--epochs", "1", "--no-export", "--image-every", "0", "--out", str(run), "--verbose", "0", "--seed", "0"]
    assert cli.main(["train", *argv]) == 0
    assert (run / "model.keras").is_file()
    capsys.readouterr()
    assert cli.main(["evaluate", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result == json.loads((run / "evaluation" / "evaluation.json").read_text())
    assert result["dataset"] == "digits" and result["split"] == "test"
    assert result["examples"] == result["split_examples"] == len(data.load("digits", "test"))
    assert set(result["loss_terms"]) == {"loss", "reconstruction"}
    model = keras.saving.load_model(run / "model.keras")
    expected = model.evaluate(data.load("digits", "test"), batch_size=256, verbose=0, return_dict=True)
    assert result["loss_terms"]["loss"] == pytest.approx(expected["loss"], rel=1e-5)
    # A bad option is the training parser's one-line error, under the command's name.
    _one_line_error(capsys, ["train", "--epochs", "0"], "train")


def test_evaluate_a_preset_on_its_recorded_data_set(fake_presets, tmp_path, capsys):
    fake_presets["ae"] = _model(command="python -m training.train --dataset digits --epochs 3 --out runs/ae")
    fake_presets["bare"] = _model(dataset={"name": "digits", "split": "the test split"})
    fake_presets["unknown"] = _model()
    for name in ("ae", "bare"):
        out = tmp_path / name
        argv = ["evaluate", name, "--split", "validation", "--examples", "50", "--out", str(out), "--json"]
        assert cli.main(argv) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["dataset"] == "digits" and result["split_examples"] == len(data.load("digits", "validation"))
        assert result["examples"] == 50 and (out / "report.html").is_file()
    line = _one_line_error(capsys, ["evaluate", "unknown"], "evaluate")
    assert "give --dataset" in line
    assert "Unknown preset 'nope'" in _one_line_error(capsys, ["evaluate", "nope"], "evaluate")


def test_sample_writes_a_grid_and_refuses_models_that_do_not_sample(fake_presets, tmp_path, capsys):
    fake_presets["vae"] = _model("vae")
    fake_presets["ae"] = _model()
    out = tmp_path / "new" / "samples.png"
    assert cli.main(["sample", "vae", "--n", "6", "--out", str(out), "--seed", "3"]) == 0
    assert _png_shape(out) == (2 * 9 - 1, 3 * 9 - 1, 1)  # 6 samples of 8x8, 3 across
    first = out.read_bytes()
    assert cli.main(["sample", "vae", "--n", "6", "--out", str(out), "--seed", "3"]) == 0
    assert out.read_bytes() == first  # seeded
    line = _one_line_error(capsys, ["sample", "ae", "--out", str(tmp_path / "x.png")], "sample")
    assert "does not sample" in line and not (tmp_path / "x.png").exists()


def test_reconstruct_a_folder_of_images(fake_presets, tmp_path, capsys):
    fake_presets["ae"] = _model()
    fake_presets["flat"] = _model(input_shape=(64,))
    fake_presets["vector"] = _model(input_shape=(10,))
    folder = tmp_path / "images"
    (folder / "more").mkdir(parents=True)
    pixels = np.random.default_rng(0).integers(0, 256, size=(4, 12, 12, 1), dtype=np.uint8)
    tf.io.write_file(str(folder / "a.png"), tf.io.encode_png(pixels[0]))
    tf.io.write_file(str(folder / "a.jpg"), tf.io.encode_jpeg(pixels[1]))  # its name would be a.png too
    tf.io.write_file(str(folder / "grid.png"), tf.io.encode_png(pixels[2]))  # its name would be the grid's
    tf.io.write_file(str(folder / "more" / "b.png"), tf.io.encode_png(pixels[3][:8, :8]))

    for name in ("ae", "flat"):  # an image model, and one of flat 8*8 vectors
        out = tmp_path / name
        assert cli.main(["reconstruct", name, str(folder), "--out", str(out)]) == 0
        written = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
        assert written == ["a.jpg.png", "a.png.png", "grid.png", "grid.png.png", "more/b.png"]
        assert all(_png_shape(out / w) == (8, 8, 1) for w in written if w != "grid.png")
        assert _png_shape(out / "grid.png") == (8, 8 * 9 - 1, 1)  # 4 pairs side by side, in one row
        assert f"Wrote 4 reconstructions by {name}" in capsys.readouterr().out
    assert "not square images" in _one_line_error(
        capsys, ["reconstruct", "vector", str(folder), "--out", "x"], "reconstruct"
    )
    line = _one_line_error(capsys, ["reconstruct", "ae", str(tmp_path / "none"), "--out", "x"], "reconstruct")
    assert "not a folder" in line


def test_presets_table(fake_presets, capsys):
    fake_presets["vae_mnist"] = None
    assert cli.main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "metrics", "description"]
    assert lines[1].split() == ["vae_mnist", "loss", "1.25", "a", "vae_mnist"]
    assert cli.main(["presets", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["name"] == "vae_mnist"
