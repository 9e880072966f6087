"""The cost of the reproduction harness over a plain `fit` of the same model, in one run.

    PYTHONPATH=. .venv/bin/python benchmarks/harness.py [--epochs 21] [--rounds 2] [--threads N]

`reproduce vae --schedule paper` trains through `benchmarks.reproduce.vae.train_paper`: the paper's learning-rate
schedule (LearningRateScheduler), a validation ELBO every 5 epochs on 10,000 images, a CSVLogger row and a
ModelCheckpoint each epoch, a backup of every variable (sha256-checked) every 10 epochs. Against it, `model.fit` of
the same model (the IWAE paper's VAE 784-200-200-50, dynamic binarization, batch 100) on the same input pipeline
(`data.make_dataset` keyed on the epoch), without validation or callbacks. Both run in this process, alternating,
on 50,000 synthetic training images (Bernoulli(0.3) noise: the speed does not depend on the pixels). Each run's
seconds an epoch leave out its first epoch (tracing, XLA compilation): from the end of epoch 1, after every
callback, to the end of training. The ratio harness/fit is the median over rounds of each round's ratio. Results go
to benchmarks/results/harness-<date>.json.
"""

import argparse
import dataclasses
import datetime
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks._common import make_data  # noqa: E402
from benchmarks.reproduce import vae as reproduce_vae  # noqa: E402
from benchmarks.speed import machine  # noqa: E402
from keras_ae import data  # noqa: E402


class SteadyEpochs(keras.callbacks.Callback):
    """Seconds an epoch after the first: from the end of epoch 1, after the callbacks before this one, to the end
    of training."""

    def on_epoch_end(self, epoch, logs=None):
        if not hasattr(self, "start"):
            self.start, self.first = time.perf_counter(), epoch

    def on_train_end(self, logs=None):
        self.seconds = (time.perf_counter() - self.start) / (self.params["epochs"] - 1 - self.first)


def harness_epoch(config, x_train, x_valid):
    timer = SteadyEpochs()
    with tempfile.TemporaryDirectory() as directory:
        reproduce_vae.train_paper(config, directory, x_train, x_valid, callbacks=[timer])
    return timer.seconds


def fit_epoch(config, x_train, x_valid):
    model = reproduce_vae.build_model(config)
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    timer = SteadyEpochs()
    model.fit(
        data.make_dataset(x_train, config.batch_size, shuffle=True, seed=config.seed, epoch=epoch),
        epochs=config.epochs,
        verbose=0,
        callbacks=[keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: epoch.assign(e)), timer],
    )
    return timer.seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=21, help="epochs a run (the first is left out)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--train-images", type=int, default=50000)
    parser.add_argument("--threads", type=int, default=None, help="TF's intra-op threads (default: cores)")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args(argv)
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    config = dataclasses.replace(reproduce_vae.Config(schedule="paper"), epochs=args.epochs)
    x_train, x_valid = make_data(args.train_images, (784,), seed=0), make_data(10000, (784,), seed=1)
    rounds = []
    for r in range(args.rounds):
        runs = [("harness", harness_epoch), ("fit", fit_epoch)]
        seconds = {name: run(config, x_train, x_valid) for name, run in (runs if r % 2 == 0 else runs[::-1])}
        rounds.append(seconds)
        print(f"round {r + 1}/{args.rounds}: s/epoch harness {seconds['harness']:.2f}, fit {seconds['fit']:.2f}")
    ratio = statistics.median(r["harness"] / r["fit"] for r in rounds)
    record = {
        "machine": machine(),
        "threads": args.threads or os.cpu_count(),
        "epochs_per_run": args.epochs,
        "train_images": args.train_images,
        "rounds": rounds,
        "harness_over_fit": ratio,
    }
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"harness-{datetime.date.today()}.json")
    with open(path, "w") as f:
        json.dump(record, f, indent=1)
    print(f"harness/fit seconds an epoch: {ratio:.3f}; {path}")


if __name__ == "__main__":
    main()
