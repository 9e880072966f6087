"""The typed run configuration: `training.config.OPTIONS` alone drives the
flags and their help, the config-file keys, the checks and config.json."""

import argparse
import json
import re

import pytest

import keras_ae
from keras_ae import data
from training import config as run_config
from training import train
from training.config import OPTIONS, Option

NAMES = [option.name for option in OPTIONS]


def option_actions(parser):
    """{dest: action} of every flag but --help and --config."""
    return {a.dest: a for a in parser._actions if a.dest not in ("help", "config")}


def other_value(option):
    """(flag arguments, parsed value) that set `option` to a valid value other than its default."""
    if option.type is bool:
        return ([f"--no-{option.flag[2:]}"], False) if option.default is not False else ([option.flag], True)
    if option.type is dict:
        return [option.flag, "a=[1, 2]", option.flag, "b=x"], {"a": [1, 2], "b": "x"}
    if option.choices is not None:
        value = next(c for c in option.allowed() if c is not None and c != option.default)
        return [option.flag, str(value)], value
    if option.type is str:
        return [option.flag, "somewhere"], "somewhere"
    low = option.minimum or 0
    if option.default is not None:
        value = option.default * 2
    else:
        value = low + 2 if option.below is None else (low + option.below) / 2
    return [option.flag, str(option.type(value))], option.type(value)


def invalid_values(option):
    """Values of the wrong type, outside the choices or below the minimum."""
    wrong_type = {int: "3", float: "0.1", str: 3, bool: "yes", dict: [1]}[option.type]
    values = [wrong_type, [1]] if option.type is not dict else [wrong_type, "a=1"]
    if option.type in (int, float):
        values.append(True)  # a bool is no number
    if option.choices is not None:
        values.append("no such choice")
    elif option.minimum is not None:
        values.append(option.minimum if option.exclusive else option.minimum - 1)
    if option.below is not None:
        values.append(option.below)
    if option.default is not None:
        values.append(None)  # only options that default to None take None
    return values


# ------------------------------------------------------------ flags and help
def test_every_option_has_exactly_one_flag_and_the_parsed_defaults_are_the_described_ones():
    actions = option_actions(train.build_parser())
    assert list(actions) == NAMES
    for option in OPTIONS:
        action = actions[option.name]
        expected = [option.flag, "--no-" + option.flag[2:]] if option.type is bool else [option.flag]
        assert action.option_strings == expected
        assert isinstance(action, argparse.BooleanOptionalAction) == (option.type is bool)
    assert {o.flag for o in OPTIONS} >= {
        "--data-dir",
        "--latent-dim",
        "--model-option",
        "--dataset-option",
        "--batch-size",
        "--learning-rate",
        "--shuffle",
        "--jit-compile",
        "--mixed-precision",
        "--steps-per-execution",
        "--backup-every",
        "--image-every",
        "--export",
        "--verbose",
        "--strategy",
        "--virtual-cpus",
        "--seed",
        "--out",
        "--binarize",
    }
    config = train.parse_config([])
    assert list(config) == NAMES  # the keys, in order, of config.json
    assert config == {**run_config.defaults(), "out": "runs/autoencoder-digits"}
    assert config["jit_compile"] == "auto" and config["learning_rate"] == 3e-3 and config["binarize"] is None


@pytest.mark.parametrize("option", OPTIONS, ids=NAMES)
def test_each_flag_sets_its_option_and_only_it(option):
    argv, value = other_value(option)
    assert value != option.default
    own_files = option.name in run_config.FILE_OPTIONS  # these need a dataset of files
    config = train.parse_config(argv + (["--dataset", "photos/"] if own_files else []))
    assert config[option.name] == value and type(config[option.name]) is type(value)
    run_config.check(config)
    changed = {name for name in NAMES if config[name] != train.parse_config([])[name]}
    also = {"out"} if option.name in ("model", "dataset") else {"dataset", "out"} if own_files else set()
    assert changed == {option.name} | also


def test_help_shows_each_default_once_and_the_choices_from_their_registries():
    actions = option_actions(train.build_parser())
    for option in OPTIONS:
        assert "default" not in option.help  # not written by hand
        assert actions[option.name].help.count("(default ") == 1
    assert actions["epochs"].help.endswith("(default 40)")
    assert actions["shuffle"].help.endswith("(default on)") and actions["export"].help.endswith("(default on)")
    assert actions["mixed_precision"].help.endswith("(default off)")
    assert actions["jit_compile"].help.endswith("(default auto: on where the model is faster with it, off with --seed)")
    assert actions["out"].help.endswith("runs/<model>-<dataset>)")
    assert actions["model"].metavar == "{" + ",".join(keras_ae.available_models()) + "}"
    assert actions["dataset"].metavar == "{" + ",".join(data.available_datasets()) + "}"
    assert actions["scale"].metavar == "{" + ",".join(data.SCALES) + "}"
    assert actions["binarize"].metavar == "{none,static,dynamic}" and len(data.BINARIZATIONS) == 3
    assert actions["verbose"].metavar == "{0,1,2}"
    assert actions["model_options"].metavar == "KEY=VALUE"


# ---------------------------------------------------------- sources of values
def test_defaults_then_config_file_then_flags(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(
        json.dumps(
            {"epochs": 7, "latent_dim": 4, "binarize": "none", "model_options": {"a": 1, "b": 2}, "jit_compile": False}
        )
    )
    config = train.parse_config(["--config", str(path), "--epochs", "3", "--model-option", "b=3", "--jit-compile"])
    assert config["epochs"] == 3 and config["latent_dim"] == 4 and config["batch_size"] == 64
    assert config["model_options"] == {"a": 1, "b": 3} and config["jit_compile"] is True
    assert config["binarize"] is None  # "none" as on the command line
    assert train.parse_config(["--config", str(path), "--binarize", "dynamic"])["binarize"] == "dynamic"


def test_config_json_reads_back_to_the_same_configuration(tmp_path):
    argv = ["--model", "denoising", "--model-option", "noise_level=0.5", "--seed", "3", "--no-shuffle", "--out", "o"]
    config = train.parse_config(argv)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    assert train.parse_config(["--config", str(path)]) == config


@pytest.mark.parametrize(
    "text, message",
    [
        ("epochs: 3\nepoch: 4\nfoo: 1\n", "Unknown option(s) epoch, foo in {path}. Known options: model, latent_dim, "),
        ("- epochs\n", "The config file {path} must hold a mapping of options; got list."),
        ("epochs: [3\n", "The config file {path} is not valid YAML: "),
    ],
)
def test_bad_config_files_are_refused_with_one_line(text, message, tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as error:
        train.parse_config(["--config", str(path)])
    assert "\n" not in str(error.value) and str(error.value).startswith(message.format(path=path))


@pytest.mark.parametrize(
    "pair, message",
    [
        ("x", "--model-option takes key=value; got 'x'."),
        ("x=[1", "--model-option 'x=[1': the value is not valid YAML."),
    ],
)
def test_bad_pairs_are_refused_with_one_line(pair, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        train.parse_config(["--model-option", pair])


# ------------------------------------------------------------------- check
@pytest.mark.parametrize("option", OPTIONS, ids=NAMES)
def test_invalid_values_of_each_option_are_refused_with_one_line_naming_it(option):
    config = train.parse_config([])
    for value in invalid_values(option):
        with pytest.raises(ValueError) as error:
            run_config.check({**config, option.name: value})
        message = str(error.value)
        assert "\n" not in message and (option.noun or option.name) in message and repr(value) in message


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("model", "nope", "Unknown model 'nope'. Known models: autoencoder, "),
        ("dataset", "cifar", "Unknown data set 'cifar'. Known data sets: "),
        ("epochs", -2, "epochs must be an int >= 1; got -2."),
        ("image_every", -1, "image_every must be an int >= 0; got -1."),
        ("seed", -1, "seed must be an int >= 0 or null; got -1."),
        ("steps_per_execution", True, "steps_per_execution must be an int >= 1 or null; got True."),
        ("learning_rate", 0, "learning_rate must be a number > 0; got 0."),
        ("strategy", "x", "strategy must be one of auto, default, one_device, mirrored, multi_worker; got 'x'."),
        ("binarize", "z", "binarize must be one of none, static, dynamic; got 'z'."),
        ("verbose", 5, "verbose must be one of 0, 1, 2; got 5."),
        ("shuffle", "yes", "shuffle must be true or false; got 'yes'."),
        ("jit_compile", "maybe", "jit_compile must be true or false or auto; got 'maybe'."),
        ("model_options", [1], "model_options must be a mapping of keyword arguments; got [1]."),
        ("data_dir", 3, "data_dir must be a string or null; got 3."),
        ("model_options", {"latent_dim": 3}, "Give latent_dim as its own option; input_shape comes from the data set."),
        ("epoch", 3, "Unknown option(s) epoch. Known options: model, "),
        ("image_size", 32, "--image-size is for your own files; digits is built in."),
        ("cache", True, "--cache is for your own files; digits is built in."),
    ],
)
def test_check_messages(name, value, message):
    with pytest.raises(ValueError) as error:
        run_config.check({**train.parse_config([]), name: value})
    assert str(error.value).startswith(message)


def test_a_default_outside_the_type_is_valid_only_for_its_own_option():
    config = train.parse_config([])
    for valid in (
        {"seed": None},
        {"jit_compile": "auto"},
        {"binarize": None},
        {"learning_rate": 1},
        {"jit_compile": False},
        {"steps_per_execution": 4},
    ):
        run_config.check({**config, **valid})
    for invalid in ({"shuffle": "auto"}, {"epochs": None}, {"jit_compile": None}, {"mixed_precision": 0}):
        with pytest.raises(ValueError):
            run_config.check({**config, **invalid})


# ---------------------------------------------------------- one line to add
def test_an_option_added_to_the_description_gets_a_flag_a_check_a_file_key_and_a_config_json_entry(
    tmp_path, monkeypatch
):
    warmup = Option("warmup_epochs", int, 3, "epochs of learning-rate warm-up", minimum=0)
    monkeypatch.setattr(run_config, "OPTIONS", OPTIONS + (warmup,))
    parser = train.build_parser()
    assert option_actions(parser)["warmup_epochs"].option_strings == ["--warmup-epochs"]
    assert "epochs of learning-rate warm-up (default 3)" in " ".join(parser.format_help().split())
    assert train.parse_config([])["warmup_epochs"] == 3
    assert train.parse_config(["--warmup-epochs", "5"])["warmup_epochs"] == 5
    path = tmp_path / "run.yaml"
    path.write_text("warmup_epochs: 4\n")
    assert train.parse_config(["--config", str(path)])["warmup_epochs"] == 4
    with pytest.raises(ValueError, match=r"^warmup_epochs must be an int >= 0; got -1\.$"):
        run_config.check({**train.parse_config([]), "warmup_epochs": -1})

    result = train.run(out=str(tmp_path / "run"), epochs=1, image_every=0, verbose=0, export=False, warmup_epochs=2)
    written = json.loads((tmp_path / "run" / "config.json").read_text())
    assert list(written) == NAMES + ["warmup_epochs"] and written["warmup_epochs"] == 2
    assert written == result.config


def test_an_unknown_keyword_of_run_is_refused_before_training(tmp_path):
    with pytest.raises(ValueError, match=r"^Unknown option\(s\) epoch\. Known options: "):
        train.run(out=str(tmp_path / "run"), epoch=1)
    assert not (tmp_path / "run").exists()
