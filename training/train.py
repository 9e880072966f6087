"""The training entry point: one keras-ae model on one data set.

    python -m training.train                       # an autoencoder on digits, offline, < 1 min
    python -m training.train --model denoising --dataset mnist --data-dir ../shared/data \\
        --model-option hidden_units=[256] --model-option corruption=gaussian --epochs 20
    python -m training.train --config run.yaml --epochs 5    # flags override the file
    python -m training.train --config runs/x/config.json      # reproduces runs/x (bit for bit with a seed)

It writes DIR/config.json (the resolved configuration), DIR/model.keras (the
last weights), DIR/best.keras (the lowest validation loss), TensorBoard logs
under DIR/logs, the export under DIR/export, and last DIR/complete.json. A run
killed at any moment and started again with the same command resumes from
DIR/backup, and a seeded one ends bit-identical to an uninterrupted run. A
second run into a folder in use, or into one holding another configuration,
refuses (--overwrite replaces a run). Invalid options stop it with a one-line
error before it writes anything.
"""

import argparse
import dataclasses
import os
import shutil
import sys

# TensorFlow's C++ INFO and WARNING lines would bury the progress bar; set the variable to see them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_ae import data, get_model, validation  # noqa: E402
from training import backup, callbacks, run_folder, strategies  # noqa: E402
from training import config as run_config  # noqa: E402


def build_parser():
    """The command line: `--config` and one flag per option of `training.config.OPTIONS`."""
    parser = argparse.ArgumentParser(
        prog="python -m training.train",
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
    x_train: np.ndarray
    x_valid: np.ndarray


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
    load_options = dict(
        data_dir=config["data_dir"], scale=config["scale"], binarize=config["binarize"], **config["dataset_options"]
    )
    x_train = data.load(config["dataset"], "train", **load_options)
    x_valid = data.load(config["dataset"], "validation", **load_options)
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16" if config["mixed_precision"] else "float32")
    try:
        with strategy.scope():
            model = get_model(
                config["model"],
                input_shape=x_train.shape[1:],
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
    for x in (x_train, x_valid):  # data the model's loss is not defined on, e.g. --scale standard for a Bernoulli VAE
        validation.check_array(x, model.feature_shape, model.input_range())
    return Setup(config, strategy, model, x_train, x_valid)


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
    print(
        f"Training {config['model']} on {config['dataset']} {setup.x_train.shape} with "
        f"{type(setup.strategy).__name__} ({setup.strategy.num_replicas_in_sync} replica(s)) into {out}"
    )
    dynamic = config["binarize"] == "dynamic"
    # The batches of epoch e are a function of (seed, e): the same after a resume and on any number of replicas.
    epoch = tf.Variable(initial_epoch, dtype=tf.int64, trainable=False)
    train_data = data.make_dataset(
        setup.x_train,
        config["batch_size"],
        shuffle=config["shuffle"],
        seed=config["seed"],
        dynamic_binarization=dynamic,
        epoch=epoch,
    )
    # Validation data binarized once: every epoch is judged on the same draws.
    x_valid = data.bernoulli_sample(setup.x_valid, config["seed"] or 0) if dynamic else setup.x_valid
    valid_data = data.make_dataset(x_valid, config["batch_size"])
    nan_stop = callbacks.TerminateOnNaN(callbacks.nan_hint(model, setup.x_train, config["learning_rate"]))
    best_path = os.path.join(out, "best.keras")
    callbacks.write_hparams(logs, config, ("loss",) + tuple(model.loss_term_names))
    history = model.fit(
        train_data,
        validation_data=valid_data,
        epochs=config["epochs"],
        initial_epoch=initial_epoch,
        verbose=config["verbose"],
        callbacks=[
            keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: epoch.assign(e)),
            nan_stop,
            keras.callbacks.ModelCheckpoint(
                best_path, monitor="val_loss", save_best_only=True, initial_value_threshold=best_val_loss
            ),
            keras.callbacks.TensorBoard(logs, write_graph=False),
            callbacks.ImageSummaries(os.path.join(logs, "images"), setup.x_valid[:1000], config["image_every"]),
            backup.RunBackup(backup_dir, config["backup_every"], best_val_loss),
            *callbacks.faults_for_tests(),
        ],
    )
    if nan_stop.stopped:
        print(f"Stopped on a NaN loss; {out} holds no model.")
        shutil.rmtree(backup_dir, ignore_errors=True)
        return Result(config, model, history, out, stopped_on_nan=True)
    _save_whole(model, os.path.join(out, "model.keras"))
    if not os.path.exists(best_path):  # a closed-form fit (pca) runs no epochs to checkpoint
        _save_whole(model, best_path)
    if config["export"] and strategies.is_chief(setup.strategy):
        _export(model, out, setup.x_train)
    summary = _summary(history, out)
    run_folder.mark_complete(out, summary)
    shutil.rmtree(backup_dir, ignore_errors=True)
    print(summary)
    return Result(config, model, history, out, stopped_on_nan=False)


def _save_whole(model, path):
    """`model.save(path)` under a temporary name, then renamed: the file is complete or absent."""
    partial = path.removesuffix(".keras") + ".partial.keras"
    model.save(partial)
    os.replace(partial, path)


def run(config_file=None, shared_strategy=None, **options):
    """Resolves, checks, prepares and trains: the entry point as a function,
    e.g. `run(model="sparse", epochs=3, out="runs/s")`; see `prepare` for `shared_strategy`."""
    return train(prepare(run_config.resolve(options, config_file), shared_strategy))


def _export(model, out, x_train):
    """Exports into DIR/export.partial, then renames it DIR/export: a kill leaves no partial export."""
    from export.export import export_model  # imported when needed: tests stand a fake module in for it

    final, partial = os.path.join(out, "export"), os.path.join(out, "export.partial")
    shutil.rmtree(partial, ignore_errors=True)
    export_model(model, out_dir=partial, tflite="float32", representative_data=x_train[:100])
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


def main(argv=None):
    parser = build_parser()
    try:
        setup = prepare(parse_config(argv, parser))
        return 1 if train(setup).stopped_on_nan else 0
    except (ValueError, data.DataUnavailableError) as error:  # a bad option, or a run folder in use
        message = " ".join(str(error).split())
        parser.exit(2, f"{parser.prog}: error: {message}\n")


if __name__ == "__main__":
    sys.exit(main())
