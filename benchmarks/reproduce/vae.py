"""Item 2: the IWAE paper's one-stochastic-layer VAE and IWAE on MNIST, test NLL by importance sampling (k=5000)."""

import dataclasses
import math
import os
import time

import keras
import numpy as np
from matplotlib.figure import Figure

from benchmarks.reproduce.common import (
    BINARIZATION_SEED,
    WORK_DIR,
    TimeBudget,
    mnist,
    mnist_binarized_once,
    read_json,
    run_record,
    save_figure,
    set_seed,
    write_json,
)
from keras_ae import data, get_model

PUBLISHED_NLL = {("vae", "dynamic"): 86.76, ("iwae", "dynamic"): 84.78, ("vae", "static"): 89.9}
GOAL_NLL = {("vae", "dynamic"): 86.5, ("iwae", "dynamic"): 84.5}
NLL_SUBSET_SEED = 0  # numpy seed of the test images scored when not all are


@dataclasses.dataclass(frozen=True)
class Config:
    variant: str = "vae"  # or "iwae"
    binarization: str = "dynamic"  # or "static"
    minutes: float = 30.0  # the training time budget
    epochs: int = 100000  # in effect unbounded: the time budget ends training
    batch_size: int = 100
    learning_rate: float = 1e-3
    adam_epsilon: float = 1e-4
    hidden_units: tuple = (200, 200)
    latent_dim: int = 50
    iwae_samples: int = 50
    validation_freq: int = 5  # epochs between validation ELBOs
    select_on_validation: bool = False
    nll_samples: int = 5000
    nll_examples: int = 1000
    train_images: int | None = None  # None: all
    validation_images: int | None = None
    seed: int = 0


QUICK = {
    "minutes": 0.3,
    "epochs": 1,
    "train_images": 2000,
    "validation_images": 500,
    "nll_samples": 100,
    "nll_examples": 200,
}


def add_arguments(parser):
    parser.add_argument("--variant", choices=("vae", "iwae"), default=Config.variant)
    parser.add_argument("--binarization", choices=("dynamic", "static"), default=Config.binarization)
    parser.add_argument("--minutes", type=float, default=Config.minutes, help="training time budget")
    parser.add_argument("--batch-size", type=int, default=Config.batch_size)
    parser.add_argument("--lr", type=float, default=Config.learning_rate, help="Adam's learning rate")
    parser.add_argument("--nll-samples", type=int, default=Config.nll_samples, help="importance samples k")
    parser.add_argument("--nll-examples", type=int, default=Config.nll_examples, help="test images scored (10000: all)")
    parser.add_argument(
        "--select-on-validation",
        action="store_true",
        help="keep the epoch with the best validation ELBO; lower the lr at validation plateaus "
        "and stop at the last (the schedule: TimeBudget)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue a finished run from its runs/reproduce weights, written as <name>_continued",
    )
    parser.add_argument("--eval-only", action="store_true", help="load the runs/reproduce weights, score only")


def configure(args):
    config = Config(
        variant=args.variant,
        binarization=args.binarization,
        minutes=args.minutes,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        select_on_validation=args.select_on_validation,
        nll_samples=args.nll_samples,
        nll_examples=args.nll_examples,
        seed=args.seed,
    )
    if args.quick:
        config = dataclasses.replace(config, **QUICK)
    return dataclasses.replace(config, epochs=args.epochs) if args.epochs else config


def load_splits(data_dir, binarization):
    """(train, validation, test) as (N, 784): the intensities of the training images, binarized anew at every
    step, and the held-out splits binarized once; or Larochelle's fixed binarization of all three."""
    if binarization == "static":
        return tuple(
            data.load("binarized_mnist", split=s, data_dir=data_dir).reshape(-1, 784)
            for s in ("train", "validation", "test")
        )
    return (mnist(data_dir, "train"), *mnist_binarized_once(data_dir, ("validation", "test")))


def build_model(config):
    model = get_model(
        "vae",
        input_shape=(784,),
        latent_dim=config.latent_dim,
        hidden_units=list(config.hidden_units),
        activation="tanh",
        likelihood="bernoulli",
        num_samples=config.iwae_samples if config.variant == "iwae" else 1,
        dynamic_binarization=config.binarization == "dynamic",
        scale_activation="exp",
        seed=config.seed,
    )
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate, epsilon=config.adam_epsilon))
    return model


def protocol(config, budget):
    """The protocol lines of the JSON, from the configuration and the budget's schedule."""
    layers = "-".join(map(str, (784, *config.hidden_units, config.latent_dim)))
    every = f"every {config.validation_freq} epochs"
    if config.binarization == "dynamic":
        binarization = (
            "dynamic: a fresh Bernoulli draw of the training intensities at every step; validation and "
            f"test binarized once (numpy seed {BINARIZATION_SEED})"
        )
    else:
        binarization = "fixed (Larochelle & Murray 2011) binarized MNIST, 50k/10k/10k"
    if config.select_on_validation:
        selection = (
            f"the weights of the epoch with the best validation ELBO (checked {every}); after "
            f"{budget.patience} checks without a new best the lr is multiplied by {budget.decay}, and at "
            f"plateau {budget.max_plateaus} training stops"
        )
    else:
        selection = f"none: the last weights (validation ELBO reported {every})"
    return {
        "architecture": f"{layers} tanh encoder (μ, log σ²), mirrored decoder, Bernoulli likelihood; "
        "one stochastic layer (IWAE paper, §5)",
        "objective": f"IWAE bound, k={config.iwae_samples}" if config.variant == "iwae" else "ELBO (k=1), analytic KL",
        "binarization": binarization,
        "optimizer": f"Adam lr {config.learning_rate} (eps {config.adam_epsilon:g}), batch {config.batch_size}; "
        f"lr x{budget.decay} for the last {budget.tail:.0%} of the time budget ({config.minutes} min); "
        "the paper: batch 20, 3280 epochs with lr 1e-3·10^(-i/7)",
        "seed": config.seed,
        "model_selection": selection,
    }


def score(model, x_test, config):
    """Test NLL, −log p(x) by importance sampling with k samples, on `nll_examples` test images; the test ELBO."""
    rng = np.random.default_rng(NLL_SUBSET_SEED)
    subset = np.sort(rng.choice(len(x_test), size=min(config.nll_examples, len(x_test)), replace=False))
    start = time.time()
    ll = model.log_likelihood(x_test[subset], num_samples=config.nll_samples, batch_size=50, chunk_size=500)
    seconds = time.time() - start
    elbo = model.elbo(x_test)
    return {
        "test_nll": float(-ll.mean()),
        "test_nll_stderr": float(ll.std(ddof=1) / math.sqrt(len(ll))),
        "nll_samples": config.nll_samples,
        "nll_examples": int(len(subset)),
        "nll_subset": f"all {len(x_test)} test images"
        if len(subset) == len(x_test)
        else f"{len(subset)} test images drawn without replacement (numpy seed {NLL_SUBSET_SEED})",
        "nll_seconds": round(seconds, 1),
        "nll_full_test_set_estimated_seconds": round(seconds * len(x_test) / len(subset), 0),
        "test_elbo": float(elbo.mean()),
        "test_elbo_on_nll_subset": float(elbo[subset].mean()),
        "active_units": model.active_units(x_test),
        "latent_dim": config.latent_dim,
    }


def run(args):
    config = configure(args)
    t0 = time.time()
    set_seed(config.seed)
    name = f"vae_{config.variant}_{config.binarization}"
    prior = None
    if args.resume:  # continue a finished run from its saved weights (a fresh Adam), as a new result
        prior, prior_weights = read_json(args.out, name), os.path.join(WORK_DIR, f"{name}.weights.h5")
        name += "_continued"
    x_train, x_valid, x_test = load_splits(args.data_dir, config.binarization)
    x_train, x_valid = x_train[: config.train_images], x_valid[: config.validation_images]
    model = build_model(config)
    weights = os.path.join(WORK_DIR, f"{name}{'_quick' if args.quick else ''}.weights.h5")

    def joined(curve):
        """The prior run's curve, then this one's, its epochs and seconds counted on from the prior's."""
        if prior is None:
            return curve
        n, t = len(prior["curve"]), prior["train_seconds"]
        return prior["curve"] + [dict(r, epoch=r["epoch"] + n, seconds=round(r["seconds"] + t, 1)) for r in curve]

    def on_epoch(curve):
        state.update(curve=joined(curve), status="training", wall_seconds=round(time.time() - t0, 1))
        if len(curve) % config.validation_freq == 0 or len(curve) == 1:
            write_json(args.out, name, state)

    budget = TimeBudget(config.minutes * 60, on_epoch=on_epoch, select_on_validation=config.select_on_validation)
    paper = (config.variant, config.binarization)
    state = {
        "protocol": protocol(config, budget),
        "published_nll": PUBLISHED_NLL.get(paper),
        "goal_nll": GOAL_NLL.get(paper),
        **run_record(),
    }
    if prior is not None:
        state["protocol"]["continued"] = (
            f"continued from the {len(prior['curve'])}-epoch weights of {name.removesuffix('_continued')}.json with "
            f"a fresh Adam at lr {config.learning_rate} (x{budget.decay} for the last {budget.tail:.0%} of "
            f"{config.minutes} more minutes); the curve joins both"
        )

    if args.eval_only:
        model.load_weights(weights)
        saved = read_json(args.out, name)
        state.update({k: v for k, v in saved.items() if k in ("curve", "train_seconds", "protocol")})
        state["protocol"]["evaluation"] = "scored in a separate process (--eval-only) from the saved weights"
    else:
        if prior is not None:
            model.load_weights(prior_weights)
        start = time.time()
        model.fit(
            x_train,
            epochs=config.epochs,
            batch_size=config.batch_size,
            shuffle=True,
            validation_data=x_valid,
            validation_freq=config.validation_freq,
            verbose=0,
            callbacks=[budget],
        )
        state["train_seconds"] = round(time.time() - start + (prior["train_seconds"] if prior else 0), 1)
        state["curve"] = joined(budget.curve)
        if budget.selected_epoch is not None:
            state["selected_epoch"] = budget.selected_epoch + (len(prior["curve"]) if prior else 0)
        os.makedirs(WORK_DIR, exist_ok=True)
        model.save_weights(weights)
    state.update(epochs=len(state["curve"]), status="evaluating")
    write_json(args.out, name, state)

    state.update(status="done", **score(model, x_test, config), wall_seconds=round(time.time() - t0, 1))
    print(
        f"{name}: test NLL {state['test_nll']:.2f} ± {state['test_nll_stderr']:.2f} (k={state['nll_samples']}, "
        f"n={state['nll_examples']}), ELBO {state['test_elbo']:.2f}, active units {state['active_units']}",
        flush=True,
    )
    write_json(args.out, name, state)
    curves_figure(args.out)
    return state


def curves_figure(out):
    """Train and validation −ELBO of every VAE run in OUT, with its test NLL and the published one."""
    runs = []
    for variant, binarization, suffix in (
        ("vae", "dynamic", ""),
        ("vae", "dynamic", "_continued"),
        ("iwae", "dynamic", ""),
        ("vae", "static", ""),
    ):
        name = f"vae_{variant}_{binarization}{suffix}"
        if os.path.exists(os.path.join(out, f"{name}.json")):
            runs.append((f"{variant.upper()} ({binarization}{', continued' if suffix else ''})", read_json(out, name)))
    if not runs:
        return
    fig = Figure(figsize=(6, 3.6))
    ax = fig.subplots()
    for label, result in runs:
        curve = result.get("curve", [])
        (line,) = ax.plot([r["epoch"] for r in curve], [-r["elbo"] for r in curve], lw=1, label=f"{label}: train −ELBO")
        validation = [(r["epoch"], -r["val_elbo"]) for r in curve if "val_elbo" in r]
        if validation:
            ax.plot(*zip(*validation, strict=True), "o", ms=3, color=line.get_color(), label=f"{label}: valid −ELBO")
        levels = []
        if "test_nll" in result:
            levels.append((result["test_nll"], "--", f"test NLL (k={result['nll_samples']}) {result['test_nll']:.2f}"))
        if result.get("published_nll"):
            levels.append((result["published_nll"], ":", f"published {result['published_nll']}"))
        for value, style, text in levels:
            ax.axhline(value, color=line.get_color(), ls=style, lw=0.8, label=f"{label}: {text}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats")
    ax.set_ylim(80, 130)
    ax.legend(fontsize=6)
    ax.set_title("784-200-200-50 VAE/IWAE on MNIST", fontsize=9)
    save_figure(fig, out, "vae_curves", gray=False)
