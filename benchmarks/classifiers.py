"""The feature classifiers of `keras_ae.sample_quality`, shipped as the presets classifier_mnist and
classifier_fashion_mnist: trained on the train split (the first 50,000 training images), the epoch of best
validation accuracy (the last 10,000) kept, measured on the test split with the float16 weights it ships with.

    python -m benchmarks.classifiers train mnist      # trains, measures, writes keras_ae/preset_files/classifier_mnist
    python -m benchmarks.classifiers measure classifier_mnist  # re-measures the shipped preset

Data: the checksummed copies in ../shared/data (see its README).
"""

import argparse
import os
import sys
import time

import keras
import numpy as np

from benchmarks.reproduce.common import DEFAULT_DATA_DIR

DATA_DIR = os.path.normpath(DEFAULT_DATA_DIR)
SHIPPED = os.path.join(os.path.dirname(__file__), os.pardir, "keras_ae", "preset_files")
DATASETS = {"mnist": "MNIST digits", "fashion_mnist": "Fashion-MNIST articles"}
EPOCHS, BATCH_SIZE, LEARNING_RATE, SEED = 8, 128, 1e-3, 0
NOISE_SEED = 0  # uniform-noise images, the reference of a sampler that learned nothing


def preset_name(dataset):
    return f"classifier_{dataset}"


def _data(dataset, split, data_dir):
    from keras_ae import data

    return data.load(dataset, split, data_dir=data_dir), data.labels(dataset, split, data_dir=data_dir)


class _KeepBest(keras.callbacks.Callback):
    """Keeps the weights of the epoch with the best validation accuracy and restores them at the end."""

    def __init__(self):
        super().__init__()
        self.best, self.best_epoch, self.weights = -1.0, None, None

    def on_epoch_end(self, epoch, logs=None):
        if logs["val_accuracy"] > self.best:
            self.best, self.best_epoch, self.weights = logs["val_accuracy"], epoch + 1, self.model.get_weights()

    def on_train_end(self, logs=None):
        self.model.set_weights(self.weights)


def measure(model, dataset, data_dir=DATA_DIR):
    """{metric: {"value", "tolerance", ...}}: test accuracy; FD(test, train), KID(test, train) and
    FD(uniform noise, test) in the classifier's features, the numbers a good and a useless sampler get."""
    from keras_ae import sample_quality

    x_test, y_test = _data(dataset, "test", data_dir)
    x_train, _ = _data(dataset, "train", data_dir)
    logits = model.predict(x_test, batch_size=500, verbose=0)
    accuracy = float(np.mean(np.argmax(logits, axis=1) == y_test))
    test, train = model.features(x_test), model.features(x_train)
    noise = model.features(np.random.default_rng(NOISE_SEED).uniform(size=x_test.shape).astype(np.float32))
    fd_train = sample_quality.frechet_distance(test, train)
    kid, kid_std = sample_quality.kernel_inception_distance(test, train)
    fd_noise = sample_quality.frechet_distance(noise, test)
    unit = f"squared {model.units}-D feature units (the classifier's penultimate layer); not an Inception FID"
    return {
        "test_accuracy": {"value": accuracy, "tolerance": 0.001},
        "fd_test_train": {"value": fd_train, "tolerance": 0.01 * fd_train, "unit": unit},
        "kid_test_train": {"value": kid, "tolerance": 0.01 * abs(kid) + 1e-6, "std_over_subsets": kid_std},
        "fd_noise_test": {"value": fd_noise, "tolerance": 0.01 * fd_noise, "unit": unit},
    }


def train(dataset, data_dir=DATA_DIR, epochs=EPOCHS):
    from keras_ae import presets
    from keras_ae.sample_quality import FeatureClassifier

    keras.utils.set_random_seed(SEED)
    x_train, y_train = _data(dataset, "train", data_dir)
    validation = _data(dataset, "validation", data_dir)
    model = FeatureClassifier(input_shape=x_train.shape[1:], num_classes=10)
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE))
    keep = _KeepBest()
    start = time.time()
    model.fit(
        x_train, y_train, batch_size=BATCH_SIZE, epochs=epochs, validation_data=validation, callbacks=[keep], verbose=2
    )
    seconds = time.time() - start
    # Measured as shipped: with the float16-rounded weights.
    model.set_weights([np.asarray(w).astype(np.float16).astype(w.dtype) for w in model.get_weights()])
    start = time.time()
    metrics = measure(model, dataset, data_dir)
    for value in metrics.values():
        value["command"] = f"python -m benchmarks.classifiers measure {preset_name(dataset)}"
    metadata = {
        "name": preset_name(dataset),
        "description": (
            f"Feature classifier of {DATASETS[dataset]} (conv 32-64, 128-D features) for sample quality: "
            f"fd_{dataset}, kid_{dataset} (keras_ae.sample_quality)"
        ),
        "dataset": {
            "name": dataset,
            "split": "trained on the train split; measured on the test split",
            "selection": f"best validation accuracy of {epochs} epochs (epoch {keep.best_epoch}, {keep.best:.4f})",
        },
        "command": f"python -m benchmarks.classifiers train {dataset}"
        + (f" --epochs {epochs}" if epochs != EPOCHS else ""),
        "metrics": metrics,
        "training_seconds": round(seconds, 1),
        "measure_seconds": round(time.time() - start, 1),
        "weights_note": "weights stored as float16; the metrics were measured with them",
    }
    folder = os.path.join(SHIPPED, preset_name(dataset))
    presets.save_preset(model, folder, metadata, weights_dtype="float16")
    print(preset_name(dataset), {k: v["value"] for k, v in metrics.items()}, f"{seconds:.0f} s", flush=True)
    return metadata


def remeasure(name, data_dir=DATA_DIR):
    from keras_ae import presets

    model = presets.from_preset(name)
    recorded = model.preset_metadata["metrics"]
    for metric, value in measure(model, model.preset_metadata["dataset"]["name"], data_dir).items():
        print(f"{name} {metric}: {value['value']:.6g} (recorded {recorded[metric]['value']:.6g})")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.classifiers", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="action", required=True)
    training = commands.add_parser("train", help="train, measure and write a classifier preset")
    training.add_argument("dataset", choices=sorted(DATASETS))
    training.add_argument("--epochs", type=int, default=EPOCHS)
    measuring = commands.add_parser("measure", help="re-measure a shipped classifier preset")
    measuring.add_argument("name", choices=sorted(preset_name(d) for d in DATASETS))
    for command in (training, measuring):
        command.add_argument("--data-dir", default=DATA_DIR, help="the folder of mnist.npz and fashion_mnist.npz")
    args = parser.parse_args(argv)
    if args.action == "train":
        train(args.dataset, args.data_dir, args.epochs)
    else:
        remeasure(args.name, args.data_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
