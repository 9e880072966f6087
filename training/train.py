"""The training entry point: one keras-ae model on one data set.

    python -m training.train                       # an autoencoder on digits, offline, < 1 min
    python -m training.train --model denoising --dataset mnist --data-dir ../shared/data \\
        --model-option hidden_units=[256] --model-option corruption=gaussian --epochs 20
    python -m training.train --config run.yaml --epochs 5    # flags override the file
    python -m training.train --config runs/x/config.json      # reproduces runs/x (bit for bit with a seed)

It writes DIR/config.json (the resolved configuration), DIR/model.keras (the
last weights), DIR/best.keras (the lowest validation loss), TensorBoard logs
under DIR/logs and the export under DIR/export. A run killed and started again
with the same command resumes from DIR/backup. Invalid options stop it with a
one-line error before it writes anything.
"""

import argparse
import dataclasses
import json
import os
import sys

# TensorFlow's C++ INFO and WARNING lines would bury the progress bar; set the variable to see them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_ae import data, get_model  # noqa: E402
from training import callbacks, strategies  # noqa: E402
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
    return Setup(config, strategy, model, x_train, x_valid)


def _optimizer(name, learning_rate):
    try:
        return keras.optimizers.get({"class_name": name, "config": {"learning_rate": learning_rate}})
    except (ValueError, TypeError):
        raise ValueError(f"Unknown optimizer {name!r}: give a Keras optimizer name such as adam, sgd or rmsprop.") from None


def train(setup):
    """Trains a prepared run and writes its outputs."""
    config, model = setup.config, setup.model
    out = strategies.output_dir(config["out"], setup.strategy)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    logs, backup = os.path.join(out, "logs"), os.path.join(out, "backup")
    _report_resume(backup, config["epochs"])
    print(
        f"Training {config['model']} on {config['dataset']} {setup.x_train.shape} with "
        f"{type(setup.strategy).__name__} ({setup.strategy.num_replicas_in_sync} replica(s)) into {out}"
    )

    dynamic = config["binarize"] == "dynamic"
    train_data = data.make_dataset(
        setup.x_train, config["batch_size"], shuffle=config["shuffle"], seed=config["seed"], dynamic_binarization=dynamic
    )
    valid_data = data.make_dataset(setup.x_valid, config["batch_size"], seed=config["seed"], dynamic_binarization=dynamic)
    nan_stop = callbacks.TerminateOnNaN(callbacks.nan_hint(model, setup.x_train, config["learning_rate"]))
    best_path = os.path.join(out, "best.keras")
    callbacks.write_hparams(logs, config, ("loss",) + tuple(model.loss_term_names))
    history = model.fit(
        train_data,
        validation_data=valid_data,
        epochs=config["epochs"],
        shuffle=False,  # the pipeline shuffles
        verbose=config["verbose"],
        callbacks=[
            nan_stop,
            # Two checkpoints: a kill while one is being written leaves the other.
            keras.callbacks.BackupAndRestore(backup, save_freq=config["backup_every"], double_checkpoint=True),
            keras.callbacks.ModelCheckpoint(best_path, monitor="val_loss", save_best_only=True),
            keras.callbacks.TensorBoard(logs, write_graph=False),
            callbacks.ImageSummaries(os.path.join(logs, "images"), setup.x_valid[:1000], config["image_every"]),
        ],
    )
    if nan_stop.stopped:
        print(f"Stopped on a NaN loss; {out} holds no model.")
        return Result(config, model, history, out, stopped_on_nan=True)
    model.save(os.path.join(out, "model.keras"))
    if not os.path.exists(best_path):  # a closed-form fit (pca) runs no epochs to checkpoint
        model.save(best_path)
    if config["export"] and strategies.is_chief(setup.strategy):
        _export(model, out, setup.x_train)
    print(_summary(history, out))
    return Result(config, model, history, out, stopped_on_nan=False)


def run(config_file=None, shared_strategy=None, **options):
    """Resolves, checks, prepares and trains: the entry point as a function,
    e.g. `run(model="sparse", epochs=3, out="runs/s")`; see `prepare` for `shared_strategy`."""
    return train(prepare(run_config.resolve(options, config_file), shared_strategy))


def _report_resume(backup, epochs):
    try:
        with open(os.path.join(backup, "training_metadata.json")) as f:
            epoch = json.load(f)["epoch"]
    except (OSError, ValueError, KeyError):  # no backup, or one cut short (BackupAndRestore falls back)
        return
    print(f"Resuming from the backup in {backup}: epoch {epoch + 1} of {epochs}.")


def _export(model, out, x_train):
    from export.export import export_model  # imported when needed: tests stand a fake module in for it

    export_model(model, out_dir=os.path.join(out, "export"), tflite="float32", representative_data=x_train[:100])


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
    except (ValueError, data.DataUnavailableError) as error:
        message = " ".join(str(error).split())
        parser.exit(2, f"{parser.prog}: error: {message}\n")
    return 1 if train(setup).stopped_on_nan else 0


if __name__ == "__main__":
    sys.exit(main())
