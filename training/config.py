"""The run configuration: defaults, then a config file (JSON or YAML), then flags.

The resolved configuration is a flat dict of plain values; `train.py` writes
it to `DIR/config.json`, which `--config` reads back to reproduce the run.
"""

import json
import os

import yaml

from keras_ae import data
from keras_ae.registry import available_models

STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker")

DEFAULTS = {
    "model": "autoencoder",
    "latent_dim": 16,
    "model_options": {},  # keyword arguments of the model's constructor
    "dataset": "digits",
    "data_dir": None,
    "dataset_options": {},  # data-set specific keyword arguments of keras_ae.data.load
    "scale": "unit",
    "binarize": None,
    "epochs": 40,
    "batch_size": 64,  # global: split across replicas and workers
    "optimizer": "adam",  # a Keras optimizer name
    "learning_rate": 3e-3,
    "shuffle": True,
    "seed": None,  # an int makes CPU runs bit-identical
    "out": None,  # None: runs/<model>-<dataset>
    "strategy": "auto",
    "virtual_cpus": None,
    "jit_compile": "auto",  # the model's default: XLA where it is faster (keras_ae.Autoencoder.compile)
    "mixed_precision": False,
    "steps_per_execution": None,  # the model's default: 32 on one device, 1 under tf.distribute
    "backup_every": 100,  # steps between BackupAndRestore checkpoints
    "image_every": 5,  # epochs between TensorBoard images and histograms; 0: never
    "export": True,
    "verbose": 1,
}


def read_file(path):
    """The options of a JSON (.json) or YAML config file, checked against the known keys."""
    try:
        with open(path) as f:
            options = json.load(f) if str(path).endswith(".json") else yaml.safe_load(f)
    except OSError as error:
        raise ValueError(f"Cannot read the config file {path}: {error.strerror}.") from None
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        reason = str(error).replace("\n", " ")
        raise ValueError(f"The config file {path} is not valid {'JSON' if str(path).endswith('.json') else 'YAML'}: {reason}") from None
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise ValueError(f"The config file {path} must hold a mapping of options; got {type(options).__name__}.")
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"Unknown option(s) {', '.join(unknown)} in {path}. Known options: {', '.join(DEFAULTS)}.")
    return options


def parse_pairs(pairs, flag):
    """{key: value} from "key=value" strings; values are read as YAML, so
    "hidden_units=[64, 32]" gives a list and "noise_level=0.3" a float."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{flag} takes key=value; got {pair!r}.")
        try:
            options[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ValueError(f"{flag} {pair!r}: the value is not valid YAML.") from None
    return options


def resolve(flags, config_file=None, model_options=(), dataset_options=()):
    """Defaults, overridden by the config file, overridden by the flags given.

    Args:
        flags: {option: value} of the flags given on the command line.
        config_file: a JSON or YAML file of options, e.g. a run's config.json.
        model_options, dataset_options: "key=value" strings, added to the
            `model_options` and `dataset_options` mappings.
    """
    config = {**DEFAULTS, **(read_file(config_file) if config_file else {}), **flags}
    config["model_options"] = {**(config["model_options"] or {}), **parse_pairs(model_options, "--model-option")}
    config["dataset_options"] = {**(config["dataset_options"] or {}), **parse_pairs(dataset_options, "--dataset-option")}
    if config["binarize"] == "none":  # as on the command line
        config["binarize"] = None
    if config["out"] is None:
        config["out"] = os.path.join("runs", f"{config['model']}-{config['dataset']}")
    return config


def _is_int(value, minimum):
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def check(config):
    """Raises a one-line ValueError for the first invalid option."""
    if config["model"] not in available_models():
        raise ValueError(f"Unknown model {config['model']!r}. Known models: {', '.join(available_models())}.")
    if config["dataset"] not in data.available_datasets():
        raise ValueError(
            f"Unknown data set {config['dataset']!r}. Known data sets: {', '.join(data.available_datasets())}."
        )
    for name, minimum in (("latent_dim", 1), ("epochs", 1), ("batch_size", 1), ("backup_every", 1), ("image_every", 0)):
        if not _is_int(config[name], minimum):
            raise ValueError(f"{name} must be an int >= {minimum}; got {config[name]!r}.")
    for name, minimum in (("seed", 0), ("virtual_cpus", 1), ("steps_per_execution", 1)):
        if config[name] is not None and not _is_int(config[name], minimum):
            raise ValueError(f"{name} must be an int >= {minimum} or null; got {config[name]!r}.")
    rate = config["learning_rate"]
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
        raise ValueError(f"learning_rate must be a number > 0; got {rate!r}.")
    for name, choices in (("strategy", STRATEGIES), ("scale", data.SCALES), ("binarize", data.BINARIZATIONS),
                          ("verbose", (0, 1, 2))):
        if config[name] not in choices:
            raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}; got {config[name]!r}.")
    for name in ("shuffle", "jit_compile", "mixed_precision", "export"):
        if not isinstance(config[name], bool) and not (name == "jit_compile" and config[name] == "auto"):
            raise ValueError(f"{name} must be true or false{' or auto' if name == 'jit_compile' else ''}; got {config[name]!r}.")
    for name in ("model_options", "dataset_options"):
        if not isinstance(config[name], dict):
            raise ValueError(f"{name} must be a mapping of keyword arguments; got {config[name]!r}.")
    if "latent_dim" in config["model_options"] or "input_shape" in config["model_options"]:
        raise ValueError("Give latent_dim as its own option; input_shape comes from the data set.")
