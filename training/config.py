"""The run configuration, described once in `OPTIONS`: the flags, their help,
the checks and the keys of `config.json` all come from that description.

Values come from the defaults, then a config file (JSON or YAML), then flags.
The resolved configuration is a flat dict of plain values; `train.py` writes
it to `DIR/config.json`, which `--config` reads back to reproduce the run.
"""

import argparse
import dataclasses
import json
import os
from collections.abc import Callable, Sequence

import yaml

from keras_ae import data, sources
from keras_ae.registry import available_models

STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker")

_NOUNS = {
    int: "an int",
    float: "a number",
    str: "a string",
    bool: "true or false",
    dict: "a mapping of keyword arguments",
}


@dataclasses.dataclass(frozen=True)
class Option:
    """One option of a run: its key, type, default, valid values and help.

    Args:
        name: the key in the configuration. The flag is `--name-with-dashes`;
            a dict option takes `KEY=VALUE` pairs from a repeatable flag named
            in the singular (`model_options`: `--model-option`).
        type: int, float (ints pass too), str, bool (a `--flag/--no-flag`
            pair) or dict.
        default: the value when neither a config file nor a flag gives one.
            A default outside `type` (None, "auto") is a valid value itself.
        help: what the option does; the help text adds the default.
        choices: the valid values, or a function that lists them when they
            come from a registry.
        admits: a test that admits values outside `choices` too (a path
            where a data set's name is expected), with `admits_help` saying what.
        minimum: the smallest valid number, refused itself when `exclusive`.
        below: a bound every valid number is below (a rate: 1).
        noun: what errors call an unknown choice ("Unknown model 'x'. Known
            models: ..."); without it they say "NAME must be one of ...".
        default_means: what the default stands for, shown in the help.
    """

    name: str
    type: type
    default: object
    help: str
    choices: Sequence | Callable[[], Sequence] | None = None
    minimum: float | None = None
    exclusive: bool = False
    below: float | None = None
    noun: str | None = None
    default_means: str | None = None
    admits: Callable[[object], bool] | None = None
    admits_help: str = ""

    @property
    def flag(self):
        flag = "--" + self.name.replace("_", "-")
        return flag.removesuffix("s") if self.type is dict else flag

    def allowed(self):
        """The valid values, or None where every value of the type (from `minimum` on) is."""
        return tuple(self.choices()) if callable(self.choices) else self.choices

    def help_text(self):
        shown = _show(self.default) + (f": {self.default_means}" if self.default_means else "")
        return f"{self.help} (default {shown})"

    def check(self, value):
        """Raises a one-line ValueError naming the option unless `value` is valid."""
        if not _is(self.default, self.type) and type(value) is type(self.default) and value == self.default:
            return
        choices = self.allowed()
        if choices is not None:
            if _is(value, self.type) and (value in choices or (self.admits is not None and self.admits(value))):
                return
            known = ", ".join(map(_show, choices))
            if self.noun:
                raise ValueError(f"Unknown {self.noun} {value!r}. Known {self.noun}s: {known}{self.admits_help}.")
            raise ValueError(f"{self.name} must be one of {known}; got {value!r}.")
        if (
            _is(value, self.type)
            and (self.minimum is None or (value > self.minimum if self.exclusive else value >= self.minimum))
            and (self.below is None or value < self.below)
        ):
            return
        expected = _NOUNS[self.type]
        if self.minimum is not None:
            expected += f" {'>' if self.exclusive else '>='} {self.minimum}"
        if self.below is not None:
            expected += f"{' and' if self.minimum is not None else ''} < {self.below}"
        if not _is(self.default, self.type):
            expected += f" or {'null' if self.default is None else self.default}"  # as config files spell None
        raise ValueError(f"{self.name} must be {expected}; got {value!r}.")


def _is(value, kind):
    """isinstance, except that a bool is no number and an int is a float."""
    if isinstance(value, bool):
        return kind is bool
    return isinstance(value, (int, float) if kind is float else kind)


def _show(value):
    """A value as the help and errors spell it."""
    if value is None or value == {}:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


OPTIONS = (
    Option("model", str, "autoencoder", "a registry key", choices=available_models, noun="model"),
    Option("latent_dim", int, 16, "size of the code", minimum=1),
    Option(
        "model_options",
        dict,
        {},
        "a model constructor argument, value read as YAML (e.g. hidden_units=[64,32]); repeatable",
    ),
    Option(
        "dataset",
        str,
        "digits",
        "a built-in data set, or your own: a folder of images, an .npy, .npz or .csv file, or a glob of TFRecords",
        choices=data.available_datasets,
        noun="data set",
        admits=sources.is_path,
        admits_help="; or a folder of images, an .npy, .npz or .csv file, or a glob of .tfrecord files",
    ),
    Option("data_dir", str, None, "a folder of <dataset>.npz files", default_means="the data set is downloaded"),
    Option("dataset_options", dict, {}, "a keras_ae.data.load argument, e.g. patch_size=12 for patches; repeatable"),
    Option(
        "image_size",
        int,
        None,
        "your images resized (or cropped) to this square size",
        minimum=1,
        default_means="the files' own size",
    ),
    Option(
        "channels",
        int,
        None,
        "your images as 1 (grayscale) or 3 (RGB) channels",
        choices=(None, 1, 3),
        default_means="1 if every image is grayscale, else 3",
    ),
    Option(
        "image_fit",
        str,
        "resize",
        "resize (centre-cropped to the aspect ratio first) or crop (the central window)",
        choices=sources.FITS,
    ),
    Option(
        "validation_fraction",
        float,
        0.1,
        "the share of your files for validation, by a hash of each "
        "file's path (or row), when they have no validation split",
        minimum=0,
    ),
    Option("test_fraction", float, 0.1, "the share for testing, likewise", minimum=0),
    Option("skip_bad_files", bool, False, "leave out unreadable images (counted) instead of stopping"),
    Option("cache", bool, False, "hold your decoded data in memory after reading it once"),
    Option(
        "labels",
        str,
        None,
        "an .npy file of int class labels, one per row of your .npy data file, for a conditional model (cvae)",
        default_means="the data's own: a built-in data set's, class subfolders, an .npz file's y arrays",
    ),
    Option(
        "scale",
        str,
        "unit",
        "unit: divide by the dtype's maximum (255 for images); standard: zero mean and "
        "unit variance per channel or column, with the training split's statistics; raw",
        choices=data.SCALES,
    ),
    Option(
        "scale_statistics",
        dict,
        {},
        "the training split's mean and std per channel for --scale standard on your files",
        default_means="computed in one pass over the training split, kept in config.json",
    ),
    Option("binarize", str, None, "binarize the pixels once, or anew at every step", choices=data.BINARIZATIONS),
    Option("epochs", int, 40, "epochs to train", minimum=1),
    Option("batch_size", int, 64, "the global batch size, split across replicas and workers", minimum=1),
    Option("optimizer", str, "adam", "a Keras optimizer name, e.g. adam, sgd, rmsprop"),
    Option("learning_rate", float, 3e-3, "the optimizer's learning rate", minimum=0, exclusive=True),
    Option("shuffle", bool, True, "reshuffle every epoch"),
    Option(
        "seed",
        int,
        None,
        "seeds everything and, without --jit-compile, turns on op determinism: CPU runs are bit-identical",
        minimum=0,
    ),
    Option("out", str, None, "the run's folder", default_means="runs/<model>-<dataset>"),
    Option("strategy", str, "auto", "the tf.distribute strategy", choices=STRATEGIES),
    Option("virtual_cpus", int, None, "split the CPU into N logical devices", minimum=1),
    Option(
        "jit_compile",
        bool,
        "auto",
        "XLA on or off",
        default_means="on where the model is faster with it, off with --seed",
    ),
    Option("mixed_precision", bool, False, "mixed_float16"),
    Option(
        "steps_per_execution",
        int,
        None,
        "training steps per call of the compiled function",
        minimum=1,
        default_means="32 on one device, 1 distributed",
    ),
    Option("backup_every", int, 1, "epochs between backups for an exact resume after a kill", minimum=1),
    Option(
        "prior_epochs",
        int,
        10,
        "epochs of a model's learned prior, trained after the model on the training split's codes "
        "(vqvae: its PixelCNN, for sampling); 0 for none",
        minimum=0,
    ),
    Option("image_every", int, 5, "epochs between TensorBoard images and histograms, 0 for none", minimum=0),
    Option(
        "anomaly_false_positive_rate",
        float,
        None,
        "after training, fit the anomaly threshold of model.keras so that at most this share of the validation "
        "split scores above it (model.fit_anomaly_threshold): the export then serves is_anomaly",
        minimum=0,
        below=1,
        default_means="no threshold",
    ),
    Option("export", bool, True, "export the model at the end"),
    Option("overwrite", bool, False, "replace a run of another configuration, or a finished one, in --out"),
    Option("verbose", int, 1, "0 silent, 1 progress bar, 2 one line per epoch", choices=(0, 1, 2)),
)


OPTIONS_BY_NAME = {option.name: option for option in OPTIONS}
# The options of the user's own files (`keras_ae.sources`), refused with a built-in data set.
FILE_OPTIONS = (
    "labels",
    "image_size",
    "channels",
    "image_fit",
    "validation_fraction",
    "test_fraction",
    "skip_bad_files",
    "cache",
    "scale_statistics",
)


def defaults():
    """{name: default} of every option, in the order of `OPTIONS` (and of config.json)."""
    return {option.name: option.default for option in OPTIONS}


def add_flags(parser):
    """Adds a flag for every option to an argparse parser; the flags not given
    stay out of the parsed namespace, so that they do not override a config file."""
    for option in OPTIONS:
        kwargs = dict(dest=option.name, default=argparse.SUPPRESS, help=option.help_text())
        if option.type is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif option.type is dict:
            kwargs.update(action="append", metavar="KEY=VALUE")
        else:
            kwargs["type"] = option.type
            if option.choices is not None:
                kwargs["metavar"] = "{" + ",".join(map(_show, option.allowed())) + "}"
        parser.add_argument(option.flag, **kwargs)


def read_file(path):
    """The options of a JSON (.json) or YAML config file, checked against the known keys."""
    try:
        with open(path) as f:
            options = json.load(f) if str(path).endswith(".json") else yaml.safe_load(f)
    except OSError as error:
        raise ValueError(f"Cannot read the config file {path}: {error.strerror}.") from None
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        reason = str(error).replace("\n", " ")
        language = "JSON" if str(path).endswith(".json") else "YAML"
        raise ValueError(f"The config file {path} is not valid {language}: {reason}") from None
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise ValueError(f"The config file {path} must hold a mapping of options; got {type(options).__name__}.")
    _refuse_unknown(options, f" in {path}")
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


def resolve(flags, config_file=None, pairs=None):
    """Defaults, overridden by the config file, overridden by the flags given.

    Args:
        flags: {option: value} of the flags given on the command line.
        config_file: a JSON or YAML file of options, e.g. a run's config.json.
        pairs: {dict option: ["key=value", ...]} of its repeatable flag, added
            to that option's mapping.
    """
    config = {**defaults(), **(read_file(config_file) if config_file else {}), **flags}
    for option in OPTIONS:
        value = config[option.name]
        if option.type is dict and (value is None or isinstance(value, dict)):
            config[option.name] = {**(value or {}), **parse_pairs((pairs or {}).get(option.name, ()), option.flag)}
        elif value == "none" and None in (option.allowed() or ()):  # as on the command line
            config[option.name] = None
    if config["out"] is None:
        config["out"] = os.path.join("runs", f"{config['model']}-{config['dataset']}")
    return config


def check(config):
    """Raises a one-line ValueError for the first unknown or invalid option."""
    _refuse_unknown(config)
    for option in OPTIONS:
        option.check(config[option.name])
    if "latent_dim" in config["model_options"] or "input_shape" in config["model_options"]:
        raise ValueError("Give latent_dim as its own option; input_shape comes from the data set.")
    own_files = sources.is_path(config["dataset"])
    for name in FILE_OPTIONS:
        given = config[name] != OPTIONS_BY_NAME[name].default
        if given and not own_files:
            raise ValueError(f"--{name.replace('_', '-')} is for your own files; {config['dataset']} is built in.")
    if own_files and (config["dataset_options"] or config["data_dir"]):
        raise ValueError("--dataset-option and --data-dir are for the built-in data sets, not your own files.")


def _refuse_unknown(options, where=""):
    names = [option.name for option in OPTIONS]
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise ValueError(f"Unknown option(s) {', '.join(unknown)}{where}. Known options: {', '.join(names)}.")
