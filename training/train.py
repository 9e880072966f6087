"""The training entry point: one keras-ae model on one data set.

    python -m training.train                       # an autoencoder on digits, offline, < 1 min
    python -m training.train --model denoising --dataset mnist --data-dir ../shared/data \\
        --model-option hidden_units=[256] --model-option corruption=gaussian --epochs 20
    python -m training.train --config run.yaml --epochs 5    # flags override the file
    python -m training.train --config runs/x/config.json      # reproduces runs/x (bit for bit with a seed)

It writes DIR/config.json (the resolved configuration), DIR/model.keras (the
last weights; with --anomaly-false-positive-rate, the anomaly threshold fitted
on the validation split), DIR/best.keras (the lowest validation loss), TensorBoard logs
under DIR/logs, the export under DIR/export, and last DIR/complete.json. A run
killed at any moment and started again with the same command resumes from
DIR/backup, and a seeded one ends bit-identical to an uninterrupted run. A
second run into a folder in use, or into one holding another configuration,
refuses (--overwrite replaces a run). Invalid options stop it with a one-line
error before it writes anything.
"""

import argparse
import dataclasses
import importlib
import os
import shutil
import sys

# TensorFlow's C++ INFO and WARNING lines would bury the progress bar; set the variable to see them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_ae import data, get_model, pipeline, sources, validation  # noqa: E402

from . import backup, callbacks, run_folder, strategies  # noqa: E402
from . import config as run_config  # noqa: E402


def build_parser(prog="python -m training.train"):
    """The command line: `--config` and one flag per option of `training.config.OPTIONS`."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Trains a keras-ae model. Options default to a config file's values, then to built-in defaults.",
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("--config", help="a JSON or YAML file of options, e.g. a run's config.json")
    run_config.add_flags(parser)
    return parser


@dataclasses.dataclass
class Setup:
    """A checked run, ready to train; nothing is written yet."""

    config: dict
    strategy: tf.distribute.Strategy
    model: keras.Model
    source: pipeline.Source  # its "train" and "validation" splits


@dataclasses.dataclass
class Result:
    config: dict
    model: keras.Model
    history: keras.callbacks.History
    out: str  # this process's folder
    stopped_on_nan: bool


def prepare(config, shared_strategy=None):
    """Checks the configuration, loads the data and builds and compiles the
    model in the strategy's scope. Raises ValueError (or
    `data.DataUnavailableError`) with a one-line message; writes nothing.

    `shared_strategy`, when given, replaces the configured strategy: a process
    that trains several times should reuse one MirroredStrategy, since a second
    one restarts the collective-op keys and its all-reduces collide with the first's.
    """
    run_config.check(config)
    strategy = shared_strategy
    if strategy is None:
        if config["virtual_cpus"]:
            strategies.configure_virtual_cpus(config["virtual_cpus"])
        # MultiWorkerMirroredStrategy must exist before other TF work starts.
        strategy = strategies.make_strategy(config["strategy"])
    if strategies.is_multi_worker(strategy) and config["shuffle"] and config["seed"] is None:
        raise ValueError("A shuffled multi-worker run needs a seed (--seed), so that every worker shuffles alike.")
    if config["seed"] is not None:
        keras.utils.set_random_seed(config["seed"])
        if config["jit_compile"] is True:
            print("Note: XLA runs are seeded but not bit-identical: op determinism would turn XLA off.")
        else:
            tf.config.experimental.enable_op_determinism()
    source = _open_data(config)
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16" if config["mixed_precision"] else "float32")
    try:
        with strategy.scope():
            model = get_model(
                config["model"],
                input_shape=tuple(source.element_shape),
                latent_dim=config["latent_dim"],
                **{"seed": config["seed"], **config["model_options"]},
            )
            model.compile(
                optimizer=_optimizer(config["optimizer"], config["learning_rate"]),
                jit_compile=config["jit_compile"],
                steps_per_execution=config["steps_per_execution"],
            )
    finally:  # the model keeps its policy; the process gets its own back
        keras.mixed_precision.set_global_policy(previous_policy)
    if model.conditional:
        source = _labelled(config, source, model)
    # Data the model's loss is not defined on (e.g. --scale standard for a Bernoulli VAE): whole arrays, and the
    # first examples of files (later batches are checked as they stream).
    for split in ("train", "validation"):
        x = source.array(split) if isinstance(source, pipeline.InMemory) else pipeline.head(source, split, _HEAD)
        validation.check_array(x, model.feature_shape, model.input_range())
    return Setup(config, strategy, model, source)


_HEAD = 256  # examples of a streamed source read for checks, TensorBoard images and the export's calibration


def _open_data(config):
    """The run's `pipeline.Source`: a built-in data set's arrays, or the user's files, scanned (see `keras_ae.sources`).
    Records the standard-scaling statistics in the config, so that a resumed run and the export use them."""
    if not sources.is_path(config["dataset"]):
        load_options = dict(
            data_dir=config["data_dir"], scale=config["scale"], binarize=config["binarize"], **config["dataset_options"]
        )
        splits = {split: data.load(config["dataset"], split, **load_options) for split in ("train", "validation")}
        return pipeline.InMemory(splits, description=config["dataset"])
    source = sources.open_source(
        config["dataset"],
        scale=config["scale"],
        binarize=config["binarize"],
        image_size=config["image_size"],
        channels=config["channels"],
        image_fit=config["image_fit"],
        validation_fraction=config["validation_fraction"],
        test_fraction=config["test_fraction"],
        skip_bad_files=config["skip_bad_files"],
        statistics=config["scale_statistics"],
        labels=config["labels"],
    )
    for split in ("train", "validation"):
        if not source.count(split):
            raise ValueError(
                f"{source.description} has no {split} examples: add some, or change --validation-fraction."
            )
    if source.skipped:
        print(f"Skipped {source.skipped} bad file(s) of {source.description} (first: {source.skipped_example}).")
    if config["scale"] == "standard":
        config["scale_statistics"] = {"mean": list(source.scaling.mean), "std": list(source.scaling.std)}
    return sources.cache(source) if config["cache"] else source


def _labelled(config, source, model):
    """The source with its class labels, for a conditional model: a built-in labelled data set's
    (`data.labels`), or a file source's own (class subfolders, a label array); else a one-line error."""
    if not sources.is_path(config["dataset"]) and config["dataset"] in data.LABELLED:
        labels = {split: data.labels(config["dataset"], split, config["data_dir"]) for split in ("train", "validation")}
        source = pipeline.InMemory({split: source.array(split) for split in labels}, source.description, labels)
    if source.classes is None:
        raise ValueError(
            f"{config['model']} is conditional and needs class labels; {source.description} has none. Use a labelled "
            f"data set ({', '.join(data.LABELLED)}), a folder of class subfolders, or an array file with labels."
        )
    if len(source.classes) > model.num_classes:
        raise ValueError(
            f"{source.description} has {len(source.classes)} classes and the model num_classes={model.num_classes}: "
            f"pass --model-option num_classes={len(source.classes)}."
        )
    return source


def _optimizer(name, learning_rate):
    try:
        return keras.optimizers.get({"class_name": name, "config": {"learning_rate": learning_rate}})
    except (ValueError, TypeError):
        raise ValueError(
            f"Unknown optimizer {name!r}: give a Keras optimizer name such as adam, sgd or rmsprop."
        ) from None


def train(setup):
    """Trains a prepared run and writes its outputs; resumes a killed one exactly.

    The folder is claimed first (`run_folder`): one run at a time, never two
    configurations mixed. Outputs are written whole or not at all: the models
    and the export go to temporary names and are renamed into place, then
    `complete.json` marks the run done and the backup is removed.
    """
    config = setup.config
    out = strategies.output_dir(config["out"], setup.strategy)
    with run_folder.claim(out, config, overwrite=config["overwrite"]) as complete:
        if complete:
            print(f"{out} holds this run, complete; pass --overwrite to train it again.")
            trained = keras.saving.load_model(os.path.join(out, "model.keras"))  # the run's model, not a fresh one
            return Result(config, trained, keras.callbacks.History(), out, stopped_on_nan=False)
        return _train_in(out, setup)


def _train_in(out, setup):
    config, model = setup.config, setup.model
    logs, backup_dir = os.path.join(out, "logs"), os.path.join(out, "backup")
    initial_epoch, best_val_loss = backup.restore(model, backup_dir)
    if initial_epoch:
        print(f"Resuming from the backup in {backup_dir}: epoch {initial_epoch + 1} of {config['epochs']}.")
    source = setup.source
    print(
        f"Training {config['model']} on {source.description}: {source.count('train')} examples of shape "
        f"{tuple(source.element_shape)}, with {type(setup.strategy).__name__} "
        f"({setup.strategy.num_replicas_in_sync} replica(s)) into {out}"
    )
    dynamic = config["binarize"] == "dynamic"
    seed = config["seed"] if config["seed"] is not None else int(np.random.default_rng().integers(2**31))
    # The batches of epoch e are a function of (seed, e): the same after a resume and on any number of replicas
    # or workers; each worker reads only its own rows. Validation data are binarized once, the same every epoch.
    epoch = tf.Variable(initial_epoch, dtype=tf.int64, trainable=False)
    num_classes = model.num_classes if model.conditional else None

    def split_data(split, **options):
        def make(shard):
            dataset = pipeline.stream(
                source,
                split,
                config["batch_size"],
                seed=seed,
                dynamic_binarization=dynamic,
                shard=shard,
                labels=model.conditional,
                **options,
            )
            return validation.check_dataset(dataset, model.feature_shape, model.input_range(), num_classes)

        return pipeline.distributed(setup.strategy, make)

    train_data = split_data("train", shuffle=config["shuffle"], epoch=epoch)
    valid_data = split_data("validation")
    x_head = _head(source, "train")
    nan_stop = callbacks.TerminateOnNaN(callbacks.nan_hint(model, x_head, config["learning_rate"]))
    best_path = os.path.join(out, "best.keras")
    callbacks.write_hparams(logs, config, ("loss",) + tuple(model.loss_term_names))
    history = model.fit(
        train_data,
        validation_data=valid_data,
        epochs=config["epochs"],
        initial_epoch=initial_epoch,
        shuffle=False,  # the stream is shuffled already (keyed by epoch); Keras warns otherwise
        verbose=config["verbose"],
        callbacks=[
            keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: epoch.assign(e)),
            nan_stop,
            keras.callbacks.ModelCheckpoint(
                best_path, monitor="val_loss", save_best_only=True, initial_value_threshold=best_val_loss
            ),
            keras.callbacks.TensorBoard(logs, write_graph=False),
            callbacks.ImageSummaries(os.path.join(logs, "images"), _examples(source, model), config["image_every"]),
            backup.RunBackup(backup_dir, config["backup_every"], best_val_loss),
            *callbacks.faults_for_tests(),
        ],
    )
    if nan_stop.stopped:
        print(f"Stopped on a NaN loss; {out} holds no model.")
        shutil.rmtree(backup_dir, ignore_errors=True)
        return Result(config, model, history, out, stopped_on_nan=True)
    if model.learned_prior and config["prior_epochs"]:
        _fit_prior(model, source, config, setup.strategy, seed, dynamic)
    rate = config["anomaly_false_positive_rate"]
    if rate is not None:  # on the validation batches `fit` evaluated, before model.keras is saved
        batches = pipeline.stream(source, "validation", config["batch_size"], seed=seed, dynamic_binarization=dynamic)
        threshold = model.fit_anomaly_threshold(batches, rate)
        print(f"Anomaly threshold {threshold:.6g}: at most {rate:g} of the validation split scores above it.")
    _save_whole(model, os.path.join(out, "model.keras"))
    if not os.path.exists(best_path):  # a closed-form fit (pca) runs no epochs to checkpoint
        _save_whole(model, best_path)
    if config["export"] and strategies.is_chief(setup.strategy):
        _export(model, out, x_head[:100])
    summary = _summary(history, out)
    run_folder.mark_complete(out, summary)
    shutil.rmtree(backup_dir, ignore_errors=True)
    print(summary)
    return Result(config, model, history, out, stopped_on_nan=False)


def _fit_prior(model, source, config, strategy, seed, dynamic):
    """Trains a model's learned prior (`fit_prior`) on the codes of the whole training split, every worker on
    all of them, after the model, before model.keras is saved; a run killed here trains it again on resuming."""
    epochs = config["prior_epochs"]
    print(f"Training the prior of {config['model']} on the training split's codes: {epochs} epochs.")

    def split(name):
        return pipeline.stream(source, name, config["batch_size"], seed=seed, dynamic_binarization=dynamic)

    with strategy.scope():  # the prior's optimizer beside the model's variables
        model.fit_prior(
            split("train"),
            epochs=epochs,
            batch_size=config["batch_size"],
            validation_data=split("validation"),
            verbose=config["verbose"],
        )


def _save_whole(model, path):
    """`model.save(path)` under a temporary name, then renamed: the file is complete or absent."""
    partial = path.removesuffix(".keras") + ".partial.keras"
    model.save(partial)
    os.replace(partial, path)


def run(config_file=None, shared_strategy=None, **options):
    """Resolves, checks, prepares and trains: the entry point as a function,
    e.g. `run(model="sparse", epochs=3, out="runs/s")`; see `prepare` for `shared_strategy`."""
    return train(prepare(run_config.resolve(options, config_file), shared_strategy))


def _head(source, split):
    """The first examples of a split: all of an in-memory one's, up to `_HEAD` streamed."""
    return source.array(split)[:1000] if isinstance(source, pipeline.InMemory) else pipeline.head(source, split, _HEAD)


def _examples(source, model):
    """What the model's pictures show (`summary_images`): the validation split's first examples, with their
    labels for a conditional model."""
    if not model.conditional:
        return _head(source, "validation")
    return pipeline.head(source, "validation", _HEAD, labels=True)


def _sibling(name):
    """The module `name` of a package beside this one: `export.export` in a checkout, `keras_ae.export.export` as
    installed, where the wheel puts training/ and export/ under keras_ae (see pyproject.toml)."""
    return importlib.import_module(f"{__package__.rpartition('.')[0]}.{name}".lstrip("."))


def _export(model, out, representative_data):
    """Exports into DIR/export.partial, then renames it DIR/export: a kill leaves no partial export."""
    export_model = _sibling("export.export").export_model  # imported when needed: tests stand a fake one in

    final, partial = os.path.join(out, "export"), os.path.join(out, "export.partial")
    shutil.rmtree(partial, ignore_errors=True)
    export_model(model, out_dir=partial, tflite="float32", representative_data=representative_data)
    callbacks.fault_for_tests("export")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial, final)


def _summary(history, out):
    """One line: the last value of every metric, and the best validation loss."""
    logs = history.history
    parts = [f"{name} {values[-1]:.4g}" for name, values in logs.items()]
    if logs.get("val_loss"):
        best = int(np.argmin(logs["val_loss"]))
        parts.append(f"best val_loss {logs['val_loss'][best]:.4g} at epoch {history.epoch[best] + 1}")
    return f"Done: {', '.join(parts)}; wrote {out}"


def parse_config(argv, parser=None):
    """The resolved configuration of a command line (flags over config file over defaults)."""
    flags = vars((parser or build_parser()).parse_args(argv))
    config_file = flags.pop("config", None)
    dicts = [option.name for option in run_config.OPTIONS if option.type is dict and option.name in flags]
    pairs = {name: flags.pop(name) for name in dicts}  # the KEY=VALUE strings of --model-option and the like
    return run_config.resolve(flags, config_file, pairs)


def main(argv=None, prog="python -m training.train"):
    parser = build_parser(prog)
    try:
        setup = prepare(parse_config(argv, parser))
        return 1 if train(setup).stopped_on_nan else 0
    except (ValueError, data.DataUnavailableError) as error:  # a bad option or file, or a run folder in use
        message = " ".join(str(error).split())
        parser.exit(2, f"{parser.prog}: error: {message}\n")


if __name__ == "__main__":
    sys.exit(main())
