"""Item 4: a linear probe on the codes of PCA and of 1000-unit autoencoders, beside raw pixels (MNIST).

Where a model has several candidate options (noise level, contractive weight), each is trained and probed,
and the one with the best probe validation accuracy is the model's result.
"""

import dataclasses
import json
import math
import time

import keras
import numpy as np
from matplotlib.figure import Figure

from benchmarks.reproduce.common import mnist, mnist_labels, run_record, save_figure, set_seed, timed_fit, write_json
from keras_ae import get_model
from keras_ae.images import tile

MODELS = ("baselines", "autoencoder", "sparse", "denoising", "contractive")  # baselines: raw pixels and PCA
# Rifai et al. 2011 and Vincent et al. 2010: tied weights, x~ = σ(Wᵀh + c).
MODEL_OPTIONS = {
    "activation": "sigmoid",
    "output_activation": "sigmoid",
    "reconstruction_loss": "bce",
    "tied_weights": True,
}
CANDIDATES = {
    "autoencoder": [{}],
    "sparse": [{"penalty": "kl", "target_rate": 0.05, "sparsity_weight": 0.1}],
    # Gaussian noise and Adam 1e-2: a 10-epoch screen on the validation split (docs/results.md, section 4);
    # then σ = 0.25 and a cosine learning-rate decay.
    "denoising": [
        {"corruption": "gaussian", "noise_level": sigma, "learning_rate": 1e-2, **decay}
        for sigma, decay in [(0.2, {}), (0.25, {}), (0.3, {})]
        + [(sigma, {"learning_rate_decay": "cosine"}) for sigma in (0.25, 0.3)]
    ],
    "contractive": [{"contractive_weight": weight, "jacobian": "analytic"} for weight in (1.0, 3.0)],
}
TRAINING_OPTIONS = ("learning_rate", "learning_rate_decay")  # candidate keys for the optimizer, not the model
PROBE_SEED = 0


@dataclasses.dataclass(frozen=True)
class Config:
    models: tuple = MODELS
    candidates: dict = dataclasses.field(default_factory=lambda: dict(CANDIDATES))  # the options tried per model
    train_images: int = 50000
    validation_images: int | None = None  # None: all 10k
    units: int = 1000
    epochs: int = 30
    learning_rate: float = 1e-3  # unless a candidate names another
    batch_size: int = 100
    pca_dims: tuple = (50, 784)
    probe_l2_grid: tuple = (0.0, 1e-5, 1e-4)
    probe_epochs: int = 60
    probe_learning_rate: float = 3e-3
    probe_batch_size: int = 500
    probe_patience: int = 5
    seed: int = 0


QUICK = {
    "train_images": 2000,
    "validation_images": 1000,
    "epochs": 1,
    "units": 100,
    "probe_l2_grid": (0.0, 1e-4),
    "probe_epochs": 3,
}


def add_arguments(parser):
    parser.add_argument("--train-images", type=int, default=Config.train_images, help="training images used")
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(MODELS),
        choices=MODELS,
        help="the features probed (baselines: raw pixels and PCA)",
    )
    parser.add_argument(
        "--options",
        default=None,
        help='one JSON candidate for every model named, e.g. \'{"noise_level": 0.3, '
        '"learning_rate": 0.01, "learning_rate_decay": "cosine"}\'',
    )


def configure(args):
    candidates = {
        name: [json.loads(args.options)] if args.options else CANDIDATES[name]
        for name in args.models
        if name in CANDIDATES
    }
    config = Config(models=tuple(args.models), candidates=candidates, train_images=args.train_images, seed=args.seed)
    if args.quick:
        config = dataclasses.replace(config, **QUICK)
    return dataclasses.replace(config, epochs=args.epochs) if args.epochs else config


def logistic_probe(codes, y, config):
    """Multinomial logistic regression (one Dense softmax layer, Adam) on fixed codes.

    The L2 weight and the epoch are chosen by validation accuracy (EarlyStopping, best weights restored);
    the test split is scored once, with the chosen model. Codes are used as they are (no standardization).
    """
    best, scores = None, {}
    for l2 in config.probe_l2_grid:
        keras.utils.set_random_seed(PROBE_SEED)
        classifier = keras.Sequential(
            [
                keras.Input((codes["train"].shape[1],)),
                keras.layers.Dense(10, kernel_regularizer=keras.regularizers.L2(l2) if l2 else None),
            ]
        )
        classifier.compile(
            optimizer=keras.optimizers.Adam(config.probe_learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
            jit_compile=True,
        )
        stop = keras.callbacks.EarlyStopping(
            "val_accuracy", patience=config.probe_patience, mode="max", restore_best_weights=True
        )
        history = classifier.fit(
            codes["train"],
            y["train"],
            epochs=config.probe_epochs,
            batch_size=config.probe_batch_size,
            callbacks=[stop],
            verbose=0,
            validation_data=(codes["validation"], y["validation"]),
        )
        accuracy = float(max(history.history["val_accuracy"]))
        scores[l2] = {"validation_accuracy": accuracy, "epochs_run": len(history.history["val_accuracy"])}
        if best is None or accuracy > best[0]:
            best = (accuracy, l2, classifier)
    accuracy, l2, classifier = best
    train_accuracy, test_accuracy = (
        float(classifier.evaluate(codes[s], y[s], batch_size=1000, verbose=0)[1]) for s in ("train", "test")
    )
    return {
        "l2": l2,
        "by_l2": {str(k): v for k, v in scores.items()},
        "validation_accuracy": accuracy,
        "train_accuracy": train_accuracy,
        "test_accuracy": test_accuracy,
    }


def train_autoencoder(name, options, x, config):
    """A one-hidden-layer AE `name` with a candidate's options; (model, history, seconds)."""
    set_seed(config.seed)
    model_options = {k: v for k, v in options.items() if k not in TRAINING_OPTIONS}
    model = get_model(
        name, input_shape=(784,), latent_dim=config.units, seed=config.seed, **MODEL_OPTIONS, **model_options
    )
    learning_rate = options.get("learning_rate", config.learning_rate)
    if options.get("learning_rate_decay") == "cosine":  # lr·½(1 + cos(π t/T)) over the T steps of the run
        steps = config.epochs * math.ceil(len(x["train"]) / config.batch_size)
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    history, seconds = timed_fit(model, x["train"], config, x["validation"])
    return model, history, seconds


def encode(model, x, batch_size=5000):
    return np.concatenate([model.encode(x[i : i + batch_size]).numpy() for i in range(0, len(x), batch_size)])


def protocol(config, x):
    o = MODEL_OPTIONS
    return {
        "data": f"MNIST pixels in [0, 1]; models and probes trained on the first {len(x['train'])} of the 50k "
        f"training images, the probe's L2 weight and epoch chosen on {len(x['validation'])} validation images, "
        f"scored on the {len(x['test'])} test images",
        "models": f"one hidden layer of {config.units} {o['activation']} units, tied weights (Rifai 2011), "
        f"{o['output_activation']} output, {o['reconstruction_loss']} reconstruction loss; Adam (lr "
        f"{config.learning_rate:g} unless an option names another; learning_rate_decay='cosine': cosine decay to 0 "
        f"over the run), batch {config.batch_size}, {config.epochs} epochs; options: {json.dumps(config.candidates)}; "
        "of several options, the one with the best probe validation accuracy is chosen",
        "probe": "multinomial logistic regression: one Dense(10) softmax layer on the fixed codes, Adam "
        f"{config.probe_learning_rate:g}, batch {config.probe_batch_size}, up to {config.probe_epochs} epochs with "
        f"early stopping (patience {config.probe_patience}) on validation accuracy; L2 weight in "
        f"{list(config.probe_l2_grid)} chosen by validation accuracy; codes used as they are",
        "seed": config.seed,
    }


def run(args):
    config = configure(args)
    t0 = time.time()
    x = {s: mnist(args.data_dir, s) for s in ("train", "validation", "test")}
    y = mnist_labels(args.data_dir)
    for split, n in (("train", config.train_images), ("validation", config.validation_images)):
        x[split], y[split] = x[split][:n], y[split][:n]
    payload = {
        "protocol": protocol(config, x),
        "goal": "denoising and contractive codes ≥ 98% test accuracy, above raw pixels and PCA",
        **run_record(),
    }
    results = []

    def probe(features, codes, extra):
        start = time.time()
        result = logistic_probe(codes, y, config)
        result.update(
            features=features, size=int(codes["train"].shape[1]), probe_seconds=round(time.time() - start, 1), **extra
        )
        print(
            f"probe {features} {extra.get('options', '')} ({result['size']}): test accuracy "
            f"{100 * result['test_accuracy']:.2f}%, validation {100 * result['validation_accuracy']:.2f}% "
            f"(L2={result['l2']})",
            flush=True,
        )
        results.append(result)
        write_json(args.out, "probe", {**payload, "results": results, "wall_seconds": round(time.time() - t0, 1)})
        return result

    if "baselines" in config.models:
        probe("raw pixels", x, {})
        for d in config.pca_dims:
            pca = get_model("pca", input_shape=(784,), latent_dim=d)
            pca.fit(x["train"], verbose=0)
            probe(f"PCA-{d}", {s: pca.encode(v).numpy() for s, v in x.items()}, {})
    chosen = {}  # model name: (its result, its encoder kernel)
    for name, candidates in config.candidates.items():
        for options in candidates:
            model, history, seconds = train_autoencoder(name, options, x, config)
            print(
                f"probe: trained {name} {options} in {seconds:.0f}s, val loss {history.history['val_loss'][-1]:.2f}",
                flush=True,
            )
            codes = {s: encode(model, v) for s, v in x.items()}
            result = probe(
                name,
                codes,
                {
                    "options": options,
                    "train_seconds": round(seconds, 1),
                    "validation_reconstruction": float(history.history["val_reconstruction"][-1]),
                    "mean_activation": float(codes["test"].mean()),
                },
            )
            if name not in chosen or result["validation_accuracy"] > chosen[name][0]["validation_accuracy"]:
                chosen[name] = (result, model.encoder.layers[-1].kernel.numpy())
        if len(candidates) > 1:  # the choice, by validation accuracy only
            chosen[name][0]["chosen_on_validation"] = True
    payload.update(results=results, wall_seconds=round(time.time() - t0, 1))
    shown = [name for name in ("denoising", "contractive") if name in chosen]
    if shown:
        payload["figures"] = [filters_figure({name: chosen[name] for name in shown}, config.units, args.out)]
    write_json(args.out, "probe", payload)
    return payload


def filters_figure(chosen, units, out):
    """The first 100 filters (W's columns) of each chosen model."""
    fig = Figure(figsize=(5 * len(chosen), 5.3))
    axes = fig.subplots(1, len(chosen), squeeze=False)[0]
    for ax, (name, (result, kernel)) in zip(axes, chosen.items(), strict=True):
        ax.imshow(tile(kernel.T[:100].reshape(-1, 28, 28), 10, normalize="symmetric"), cmap="gray", vmin=0, vmax=1)
        ax.set_title(
            f"{name} {json.dumps(result['options'])}\nfirst 100 of {units} filters (W's columns), "
            f"probe test {100 * result['test_accuracy']:.2f}%",
            fontsize=8,
        )
        ax.axis("off")
    return save_figure(fig, out, "probe_filters", dpi=72)
