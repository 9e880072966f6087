"""Item 2: the IWAE paper's one-stochastic-layer VAE and IWAE on MNIST, test NLL by importance sampling (k=5000).

Two schedules. `--schedule budget` (the default): Adam at a fixed lr for a training-time budget
(`TimeBudget`). `--schedule paper`: the IWAE paper's (Burda et al. 2016, §5), 3^i epochs at lr
1e-3·10^(-i/7) for i = 0…7, 3280 epochs (`--epochs-scale F` compresses every stage by F), set by
keras.callbacks.LearningRateScheduler; the weights with the best validation bound are scored; and the
run survives being killed, with the pieces training/train.py resumes with (`train_paper`): a backup
every 10 epochs in runs/reproduce/<name>_schedule/backup (training.backup), from which the same command
started again continues, bit-identical to an uninterrupted run.
`--variant hierarchical` is the paper's two-stochastic-layer VAE (keras_ae hierarchical_vae).
`--recipe authors_code` follows, where the paper is silent, the authors' released code (github.com/yburda/iwae):
its data split, output bias and Adam (`AUTHORS_CODE`); the paper schedule then scores the last weights, as it does.
`--adam-beta-1`, `--adam-epsilon` and `--output-bias` set the recipe's optimizer and start one at a time.
"""

import csv
import dataclasses
import glob
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf
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
from training import backup

PUBLISHED_NLL = {
    ("vae", "dynamic"): 86.76,
    ("iwae", "dynamic"): 84.78,
    ("vae", "static"): 89.9,
    ("hierarchical", "dynamic"): 85.33,
}
GOAL_NLL = {
    ("vae", "dynamic"): 86.5,
    ("iwae", "dynamic"): 84.5,
    ("vae", "static"): 89.5,
    ("hierarchical", "dynamic"): 85.3,
}
# Where the authors' released code (github.com/yburda/iwae) differs from the paper's text and from Keras defaults.
AUTHORS_CODE = {
    "validation_images": 400,  # datasets.binarized_mnist(n_validation=400): trains on the first 59,600 images
    "adam_beta_1": 0.99,  # optimizers.Adam(beta_1=0.99)
    "output_bias_clip": 0.001,  # get_train_bias_np: the output bias at logit(clip(mean training image, .001, .999))
}
PAPER_STAGES = 8  # i = 0…7: 3^i epochs at lr 1e-3·10^(-i/7)
NLL_SUBSET_SEED = 0  # numpy seed of the test images scored when not all are


@dataclasses.dataclass(frozen=True)
class Config:
    variant: str = "vae"  # or "iwae", "hierarchical"
    binarization: str = "dynamic"  # or "static"
    schedule: str = "budget"  # or "paper"
    epochs_scale: float = 1.0  # paper schedule: each stage's 3^i epochs times this (at least 1)
    checkpoint_every: int = 10  # paper schedule: epochs between checkpoints
    minutes: float = 30.0  # the training time budget
    epochs: int = 100000  # in effect unbounded: the time budget ends training
    batch_size: int = 100
    learning_rate: float = 1e-3
    adam_epsilon: float = 1e-4  # added to √v of the batch-mean gradient
    adam_beta_1: float = 0.9
    output_bias: str = "zeros"  # or "data_logit": the decoder starts at the mean training image
    hidden_units: tuple = (200, 200)
    latent_dim: int = 50
    upper_hidden_units: tuple = (100, 100)  # hierarchical: q(z2|z1), mirrored in p(z1|z2)
    lower_latent_dim: int = 100  # hierarchical: z1
    iwae_samples: int = 50
    validation_freq: int = 5  # epochs between validation ELBOs
    select_on_validation: bool = False
    nll_samples: int = 5000
    nll_examples: int = 1000
    recipe: str = "paper"  # or "authors_code": AUTHORS_CODE where the paper is silent
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
QUICK_PAPER = {"epochs_scale": 3.0**-6, "checkpoint_every": 2, "validation_freq": 2}  # 1,1,1,1,1,1,1,3 epochs


def add_arguments(parser):
    parser.add_argument("--variant", choices=("vae", "iwae", "hierarchical"), default=Config.variant)
    parser.add_argument("--binarization", choices=("dynamic", "static"), default=Config.binarization)
    parser.add_argument(
        "--lower-latent-dim",
        type=int,
        default=Config.lower_latent_dim,
        help="hierarchical: the size of z1 (the paper's 100; 20 trains far faster at a compressed schedule, "
        "docs/results.md §2)",
    )
    parser.add_argument(
        "--schedule",
        choices=("budget", "paper"),
        default=Config.schedule,
        help="budget: a fixed lr for --minutes; paper: 3^i epochs at lr 1e-3·10^(-i/7), i=0..7, resumable",
    )
    parser.add_argument(
        "--epochs-scale",
        type=float,
        default=None,
        help="paper schedule: multiply each stage's epochs by this (at least 1 each); "
        f"default 1 (3280 epochs), {QUICK_PAPER['epochs_scale']:.5f} with --quick",
    )
    parser.add_argument(
        "--work-dir",
        default=WORK_DIR,
        help="the weights, and the paper schedule's run folder (<name>_schedule/: backup, weights, curve)",
    )
    parser.add_argument("--minutes", type=float, default=Config.minutes, help="training time budget")
    parser.add_argument("--batch-size", type=int, default=Config.batch_size)
    parser.add_argument("--lr", type=float, default=Config.learning_rate, help="Adam's learning rate")
    parser.add_argument(
        "--adam-epsilon",
        type=float,
        default=Config.adam_epsilon,
        help="Adam's eps, added to √v of the batch-mean gradient (the paper's 1e-4; the authors' code adds it to "
        "the batch-summed one's, which is 1e-4 / batch on the mean)",
    )
    parser.add_argument("--adam-beta-1", type=float, default=Config.adam_beta_1, help="Adam's beta_1")
    parser.add_argument(
        "--output-bias",
        choices=("zeros", "data_logit"),
        default=Config.output_bias,
        help="the decoder's output bias at the start: zeros (Keras's), or the logit of the mean training image",
    )
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
    parser.add_argument(
        "--recipe",
        choices=("paper", "authors_code"),
        default=Config.recipe,
        help="paper: the paper's text, Keras defaults elsewhere; authors_code: the authors' released code where the "
        "paper is silent (dynamic MNIST split 59,600/400, output bias at the logit of the mean training image, Adam "
        "beta_1 0.99 and eps on the batch-summed gradient, the last weights scored); --schedule paper only",
    )


def configure(args):
    config = Config(
        variant=args.variant,
        binarization=args.binarization,
        schedule=args.schedule,
        minutes=args.minutes,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        adam_epsilon=args.adam_epsilon,
        adam_beta_1=args.adam_beta_1,
        output_bias=args.output_bias,
        select_on_validation=args.select_on_validation,
        nll_samples=args.nll_samples,
        nll_examples=args.nll_examples,
        seed=args.seed,
        lower_latent_dim=args.lower_latent_dim,
        recipe=args.recipe,
    )
    if args.quick:
        config = dataclasses.replace(config, **QUICK)
    if config.schedule == "paper":
        if args.epochs or args.resume or args.select_on_validation:
            raise SystemExit(
                "--schedule paper: no --epochs (use --epochs-scale), --resume (a run continues by itself) "
                "or --select-on-validation (it always selects on validation)"
            )
        if args.quick:
            config = dataclasses.replace(config, **QUICK_PAPER)
        if args.epochs_scale is not None:
            config = dataclasses.replace(config, epochs_scale=args.epochs_scale)
        if config.recipe == "authors_code":
            if ablated(config):
                raise SystemExit(f"--recipe authors_code sets {', '.join(ABLATIONS.values())} itself")
            config = dataclasses.replace(
                config,
                adam_beta_1=AUTHORS_CODE["adam_beta_1"],
                # Their gradient is the batch's sum, ours its mean: eps on the sum is eps / batch on the mean.
                adam_epsilon=config.adam_epsilon / config.batch_size,
                output_bias="data_logit",
            )
        return dataclasses.replace(config, epochs=sum(e for e, _ in paper_schedule(config)))
    if args.epochs_scale is not None or ablated(config) or config.recipe != Config.recipe:
        raise SystemExit(f"--epochs-scale, --recipe and {', '.join(ABLATIONS.values())} are for --schedule paper")
    return dataclasses.replace(config, epochs=args.epochs) if args.epochs else config


ABLATIONS = {"adam_beta_1": "--adam-beta-1", "adam_epsilon": "--adam-epsilon", "output_bias": "--output-bias"}


def ablated(config):
    """The fields of ABLATIONS that `config` sets away from their defaults: (field, value) pairs."""
    return [(f, getattr(config, f)) for f in ABLATIONS if getattr(config, f) != getattr(Config, f)]


def paper_schedule(config):
    """The IWAE paper's [(epochs, learning rate)]: stage i = 0…7 is 3^i epochs (times `epochs_scale`, rounded,
    at least 1) at lr 10^(-i/7) times `learning_rate` (1e-3); 3280 epochs unscaled."""
    return [
        (max(1, round(3**i * config.epochs_scale)), config.learning_rate * 10 ** (-i / 7)) for i in range(PAPER_STAGES)
    ]


def paper_learning_rate(schedule):
    """The learning rate of epoch index e (0-based, as keras.callbacks.LearningRateScheduler passes it)."""
    ends = np.cumsum([epochs for epochs, _ in schedule])

    def learning_rate(epoch, current=None):
        return schedule[min(int(np.searchsorted(ends, epoch, side="right")), len(schedule) - 1)][1]

    return learning_rate


def load_splits(data_dir, binarization, recipe="paper"):
    """(train, validation, test) as (N, 784): the intensities of the training images, binarized anew at every
    step, and the held-out splits binarized once; or Larochelle's fixed binarization of all three.

    The "authors_code" recipe's dynamic split: the first 59,600 of MNIST's 60k training images train, the last 400
    validate (binarized once, the last 400 of the usual validation draw, so the test set's draw is unchanged).
    """
    if binarization == "static":
        return tuple(
            data.load("binarized_mnist", split=s, data_dir=data_dir).reshape(-1, 784)
            for s in ("train", "validation", "test")
        )
    x_train = mnist(data_dir, "train")
    x_valid, x_test = mnist_binarized_once(data_dir, ("validation", "test"))
    if recipe == "authors_code":
        held_out = AUTHORS_CODE["validation_images"]
        x_train = np.concatenate([x_train, mnist(data_dir, "validation")[:-held_out]])  # MNIST's own order
        x_valid = x_valid[-held_out:]
    return x_train, x_valid, x_test


def set_output_bias_to_data_logit(model, x_train):
    """The Bernoulli decoder's output bias at logit(clip(mean training image)), the authors' code's start: the
    untrained decoder then outputs each pixel's mean intensity. A sigmoid's inverse is not in keras.ops."""
    mean = np.clip(x_train.mean(axis=0), AUTHORS_CODE["output_bias_clip"], 1 - AUTHORS_CODE["output_bias_clip"])
    model.decoder.layers[-2].bias.assign(np.log(mean / (1 - mean)).reshape(-1))  # layers[-1] is the Reshape


def build_model(config):
    options = {}
    if config.variant == "hierarchical":
        options = {"lower_latent_dim": config.lower_latent_dim, "upper_hidden_units": list(config.upper_hidden_units)}
    model = get_model(
        "hierarchical_vae" if config.variant == "hierarchical" else "vae",
        input_shape=(784,),
        latent_dim=config.latent_dim,
        hidden_units=list(config.hidden_units),
        activation="tanh",
        likelihood="bernoulli",
        num_samples=config.iwae_samples if config.variant == "iwae" else 1,
        dynamic_binarization=config.binarization == "dynamic",
        scale_activation="exp",
        seed=config.seed,
        **options,
    )
    adam = keras.optimizers.Adam(config.learning_rate, beta_1=config.adam_beta_1, epsilon=config.adam_epsilon)
    model.compile(optimizer=adam)
    return model


def protocol(config, budget):
    """The protocol lines of the JSON, from the configuration and the budget's schedule."""
    every = f"every {config.validation_freq} epochs"
    if config.select_on_validation:
        selection = (
            f"the weights of the epoch with the best validation ELBO (checked {every}); after "
            f"{budget.patience} checks without a new best the lr is multiplied by {budget.decay}, and at "
            f"plateau {budget.max_plateaus} training stops"
        )
    else:
        selection = f"none: the last weights (validation ELBO reported {every})"
    return {
        **model_protocol(config),
        "optimizer": f"Adam lr {config.learning_rate} (eps {config.adam_epsilon:g}), batch {config.batch_size}; "
        f"lr x{budget.decay} for the last {budget.tail:.0%} of the time budget ({config.minutes} min); "
        "the paper: batch 20, 3280 epochs with lr 1e-3·10^(-i/7)",
        "seed": config.seed,
        "model_selection": selection,
    }


def model_protocol(config):
    """The protocol lines of the model, its objective and the data."""
    if config.binarization == "dynamic":
        binarization = (
            "dynamic: a fresh Bernoulli draw of the training intensities at every step; validation and "
            f"test binarized once (numpy seed {BINARIZATION_SEED})"
        )
    else:
        binarization = "fixed (Larochelle & Murray 2011) binarized MNIST, 50k/10k/10k"
    if config.variant == "hierarchical":
        lower = "-".join(map(str, (784, *config.hidden_units, config.lower_latent_dim)))
        upper = "-".join(map(str, (config.lower_latent_dim, *config.upper_hidden_units, config.latent_dim)))
        architecture = (
            f"q(z1|x) {lower}, q(z2|z1) {upper}, tanh, each (μ, log σ²); p(z1|z2) and p(x|z1) mirrored, "
            "Bernoulli likelihood; two stochastic layers (IWAE paper, §5)"
        )
        objective = "ELBO (k=1), Monte Carlo KL (no closed form with two layers)"
    else:
        layers = "-".join(map(str, (784, *config.hidden_units, config.latent_dim)))
        architecture = (
            f"{layers} tanh encoder (μ, log σ²), mirrored decoder, Bernoulli likelihood; "
            "one stochastic layer (IWAE paper, §5)"
        )
        objective = f"IWAE bound, k={config.iwae_samples}" if config.variant == "iwae" else "ELBO (k=1), analytic KL"
    return {"architecture": architecture, "objective": objective, "binarization": binarization}


def paper_protocol(config, resumes=()):
    """The protocol lines of a `--schedule paper` run."""
    schedule = paper_schedule(config)
    stages = ", ".join(f"{epochs}" for epochs, _ in schedule)
    scaled = "" if config.epochs_scale == 1 else f"; every stage's 3^i epochs x{config.epochs_scale:g}, rounded"
    batch = (
        "not the paper's 20, chosen when batch 20 measured twice as slow an epoch; it no longer is (165 epochs on "
        "one core beside another run: 479 s at batch 100, 422 s at batch 20), and batch 100's 5x fewer Adam steps "
        "cost 3.5 nats at 165 epochs (docs/results.md §2): use --batch-size 20"
        if config.batch_size == 100
        else "the paper's"
        if config.batch_size == 20
        else "chosen on the command line"
    )
    bound = "the IWAE bound (k=50)" if config.variant == "iwae" else "ELBO"
    validation = f"checked every {config.validation_freq} epochs on the " + (
        "held-out " if config.binarization == "static" else ""
    )
    authors = config.recipe == "authors_code"
    summed = f": the authors' {Config.adam_epsilon:g} on the batch-summed one" if authors else ""
    adam = f"Adam (beta_1 {config.adam_beta_1:g}, eps {config.adam_epsilon:g} on the batch-mean gradient{summed})"
    if authors:
        selection = (
            f"none, as in the authors' code: the last weights are scored ({bound} {validation}validation images, "
            "binarized once, reported only)"
        )
        split = "MNIST's first 59,600 training images train, its last 400 validate; "
        recipe = {
            "recipe": "the authors' released code (github.com/yburda/iwae) where the paper is silent: "
            + (split if config.binarization == "dynamic" else "")
            + f"the output bias starts at logit(clip(mean training image, {AUTHORS_CODE['output_bias_clip']}, "
            f"{1 - AUTHORS_CODE['output_bias_clip']})); Adam's beta_1 and eps as above; the last weights scored. Not "
            "followed: their Adam's second moment starting at 1 (Keras's at 0), their unshuffled batches, their lr "
            "rounded to 2 digits (within 1 %)"
        }
    else:
        selection = (
            f"the weights of the epoch with the best validation {bound} ({validation}validation images, binarized "
            "once); the last weights are kept beside them; the test set is scored only at the end, on the selected "
            "weights"
        )
        changed = ", ".join(f"{field} {value}" for field, value in ablated(config))
        recipe = {"ablation": f"changed from the defaults: {changed}"} if changed else {}
    resumed = (
        f"resumed {len(resumes)} time(s), at epoch(s) {', '.join(map(str, resumes))}" if resumes else "never resumed"
    )
    return {
        **model_protocol(config),
        "optimizer": f"{adam}, batch {config.batch_size} ({batch}); the IWAE "
        f"paper's schedule: {PAPER_STAGES} stages of 3^i epochs at lr {config.learning_rate:g}·10^(-i/7), "
        f"i = 0…{PAPER_STAGES - 1} ({stages}: {config.epochs} epochs{scaled}), set at the start of each epoch by "
        "keras.callbacks.LearningRateScheduler",
        "seed": config.seed,
        **recipe,
        "model_selection": selection,
        "resumption": f"a backup every {config.checkpoint_every} epochs (training.backup.RunBackup: every model and "
        "optimizer variable, the state of the seed generator that draws the binarization and the posterior samples "
        "included, sha256-checked, the two newest kept); the same command started again restores the newest "
        "intact one (training.backup.restore) and trains on from its epoch. The batches of epoch e are a function "
        "of (seed, e) (keras_ae.data.make_dataset keyed on an epoch variable), so a resumed run is bit-identical "
        "to an uninterrupted one: the epochs a kill lost after the backup are trained again, exactly. The "
        "selected weights: keras.callbacks.ModelCheckpoint (save_best_only, its threshold the backup's best "
        "validation loss); the curve: keras.callbacks.CSVLogger (append), cut back to the backup's epoch on "
        f"resume; {resumed}",
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
        **(
            {"active_units_per_layer": list(model.active_units_per_layer(x_test))}
            if hasattr(model, "active_units_per_layer")
            else {}
        ),
    }


def run(args):
    config = configure(args)
    if config.schedule == "paper":
        return run_paper(args, config)
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


def paper_curve_figure(out, name, curve, state, schedule):
    """A `--schedule paper` run's train −ELBO (every epoch) and validation −ELBO on a log epoch axis, the
    stages' boundaries, and the test NLL beside the published one and the goal."""
    fig = Figure(figsize=(6, 3.6))
    ax = fig.subplots()
    ax.plot([r["epoch"] for r in curve], [-r["elbo"] for r in curve], lw=0.8, label="train −ELBO")
    validation = [(r["epoch"], -r["val_elbo"]) for r in curve if "val_elbo" in r]
    if validation:
        ax.plot(*zip(*validation, strict=True), "o", ms=1.5, label="valid −ELBO")
    for end in np.cumsum([epochs for epochs, _ in schedule])[:-1]:
        ax.axvline(end, color="0.85", lw=0.6)
    levels = (("test_nll", "--", "test NLL"), ("published_nll", ":", "published"), ("goal_nll", "-.", "goal"))
    for key, style, text in levels:
        if state.get(key):
            ax.axhline(state[key], color="k", ls=style, lw=0.8, label=f"{text} {state[key]:.2f}")
    ax.set_xscale("log")
    ax.set_xlabel("epoch (grey: the lr stages, 3^i epochs at 1e-3·10^(−i/7))")
    ax.set_ylabel("nats")
    ax.set_ylim(84, 110)
    ax.legend(fontsize=6)
    ax.set_title(f"{name}: the IWAE paper's schedule", fontsize=9)
    return save_figure(fig, out, f"{name}_curve", gray=False)


def equal_budget_figure(out, epochs):
    """The `--schedule paper` runs of OUT compressed to the same `epochs` (vae_*_dynamic_paper<epochs>*.json):
    each one's validation −ELBO (the IWAE's −bound too) by epoch, and its test NLL; OUT/vae_equal_budget<epochs>.png.
    """
    runs = sorted(glob.glob(os.path.join(out, f"vae_*_dynamic_paper{epochs}*.json")))
    runs = [
        (os.path.basename(path)[len("vae_") : -len(".json")], read_json(out, os.path.basename(path)[:-5]))
        for path in runs
    ]
    if not runs:
        return None
    fig = Figure(figsize=(6, 3.6))
    ax = fig.subplots()
    for name, result in runs:
        label = name.replace(f"_dynamic_paper{epochs}", "").replace("_z1_", ", z1 = ").replace("_batch", ", batch ")
        label = label.replace("_authors_code", ", authors' code (valid: 400 images)")
        validated = [r for r in result.get("curve", []) if "val_elbo" in r]
        (line,) = ax.plot(
            [r["epoch"] for r in validated], [-r["val_elbo"] for r in validated], lw=1, label=f"{label}: valid −ELBO"
        )
        if label.startswith("iwae"):
            ax.plot(
                [r["epoch"] for r in validated],
                [r["val_loss"] for r in validated],
                ls=":",
                lw=1,
                color=line.get_color(),
                label=f"{label}: valid −bound (k=50)",
            )
        if "test_nll" in result:
            ax.axhline(
                result["test_nll"],
                color=line.get_color(),
                ls="--",
                lw=0.8,
                label=f"{label}: test NLL {result['test_nll']:.2f} ({result['active_units']} active units)",
            )
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats")
    ax.set_ylim(84, 150)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1))  # outside: the curves fill the axes
    ax.set_title(f"the IWAE paper's schedule compressed to {epochs} epochs, dynamic MNIST", fontsize=9)
    return save_figure(fig, out, f"vae_equal_budget{epochs}", gray=False)


BACKUP, SELECTED, LAST, CURVE = "backup", "selected.weights.h5", "last.weights.h5", "curve.csv"


def read_curve(path):
    """The rows of a CSVLogger curve as {"epoch": 1-based, name: float}, without the "NA" of epochs not validated."""
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [{k: int(v) + 1 if k == "epoch" else float(v) for k, v in r.items() if v != "NA"} for r in rows]


def cut_curve(path, epochs):
    """Keeps the first `epochs` rows of a CSVLogger curve (and its header), atomically: a resumed run appends from
    the backup's epoch, and the rows of the epochs a kill lost after it (or a last row cut short) go."""
    if not os.path.exists(path):
        return
    if not epochs:
        os.remove(path)
        return
    with open(path, newline="") as f:
        header, *rows = [line for line in f if line.endswith("\n")]
    kept = [line for line in rows if int(line.split(",", 1)[0]) < epochs]
    with open(path + ".tmp", "w", newline="") as f:
        f.writelines([header, *kept])
    os.replace(path + ".tmp", path)


def train_paper(config, directory, x_train, x_valid, on_backup=None, callbacks=()):
    """Trains a `--schedule paper` run in `directory`, on from its backup when there is one, as training/train.py
    does; returns (model with the last weights, the epoch it started from).

    directory/backup: training.backup's, every `checkpoint_every` epochs and after the last; restored at start.
    directory/selected.weights.h5: the weights of the best validation loss (keras.callbacks.ModelCheckpoint, its
    threshold the best of the epochs before the backup); last.weights.h5: the last ones; curve.csv: one row of logs
    an epoch (CSVLogger; 0-based epoch, training seconds, learning rate). The batches of epoch e are a function of
    (seed, e) (`data.make_dataset` keyed on a variable set as each epoch begins), and the model's draws (the dynamic
    binarization, the posterior samples) come from its seed generator, whose state the backup holds: a resumed run
    is bit-identical to an uninterrupted one. `on_backup(epochs_done, initial_epoch)` runs after each backup;
    `callbacks` run last (the tests' probes).
    """
    if config.checkpoint_every % config.validation_freq:
        # CSVLogger takes its columns from the first epoch it logs: after a resume, as at epoch 1, one not validated.
        raise ValueError("checkpoint_every must be a multiple of validation_freq")
    set_seed(config.seed)
    model = build_model(config)  # the model's dynamic binarization draws a fresh x ~ Bernoulli(p) at every step
    if config.output_bias == "data_logit":
        set_output_bias_to_data_logit(model, x_train)  # a resumed run's restore overwrites it
    initial_epoch, best_val_loss = backup.restore(model, os.path.join(directory, BACKUP))
    curve_path = os.path.join(directory, CURVE)
    cut_curve(curve_path, initial_epoch)
    if 0 < initial_epoch < config.epochs:
        print(f"resuming from the backup in {directory}: epoch {initial_epoch + 1} of {config.epochs}", flush=True)
    if initial_epoch < config.epochs:
        os.makedirs(directory, exist_ok=True)
        epoch = tf.Variable(initial_epoch, dtype=tf.int64, trainable=False)
        curve = read_curve(curve_path)
        clock = {"before": curve[-1]["seconds"] if curve else 0.0}

        def stamp(e, logs):  # training seconds, counted on across resumes
            logs["seconds"] = round(clock["before"] + time.time() - clock["start"], 1)

        def backed_up(e, logs):
            if on_backup and ((e + 1) % config.checkpoint_every == 0 or e + 1 == config.epochs):
                on_backup(e + 1, initial_epoch)

        model.fit(
            data.make_dataset(x_train, config.batch_size, shuffle=True, seed=config.seed, epoch=epoch),
            initial_epoch=initial_epoch,
            epochs=config.epochs,
            validation_data=data.make_dataset(x_valid, config.batch_size),
            shuffle=False,  # the dataset shuffles
            validation_freq=config.validation_freq,
            verbose=0,
            callbacks=[
                keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: epoch.assign(e)),
                keras.callbacks.LearningRateScheduler(paper_learning_rate(paper_schedule(config))),
                keras.callbacks.LambdaCallback(
                    on_train_begin=lambda logs: clock.update(start=time.time()), on_epoch_end=stamp
                ),
                keras.callbacks.CSVLogger(curve_path, append=True),
                # Before the backup: a kill while it writes leaves the backup before it, and that epoch is run again.
                keras.callbacks.ModelCheckpoint(
                    os.path.join(directory, SELECTED),
                    monitor="val_loss",  # −ELBO; the IWAE's −bound (k=50)
                    save_best_only=True,
                    save_weights_only=True,
                    initial_value_threshold=best_val_loss,
                ),
                backup.RunBackup(os.path.join(directory, BACKUP), config.checkpoint_every, best_val_loss),
                keras.callbacks.LambdaCallback(on_epoch_end=backed_up),
                *callbacks,
            ],
        )
    model.save_weights(os.path.join(directory, LAST))
    return model, initial_epoch


def rounded(row):
    """A curve row with 6 significant digits."""
    return {k: v if k == "epoch" else float(f"{v:.6g}") for k, v in row.items()}


def run_paper(args, config):
    """`--schedule paper`: the IWAE paper's 8 stages (`train_paper`, which continues a killed run); the weights
    with the best validation bound are scored on test."""
    t0 = time.time()
    name = f"vae_{config.variant}_{config.binarization}_paper"
    if config.epochs_scale != 1:
        name += str(config.epochs)
    if config.variant == "hierarchical" and config.lower_latent_dim != Config.lower_latent_dim:
        name += f"_z1_{config.lower_latent_dim}"
    if config.batch_size != Config.batch_size:
        name += f"_batch{config.batch_size}"
    if config.recipe != Config.recipe:
        name += f"_{config.recipe}"
    else:  # the recipe's own values are in its name
        name += "".join(f"_{field}_{value}" for field, value in ablated(config))
    if args.quick:
        name += "_quick"
    directory = os.path.join(args.work_dir, f"{name}_schedule")
    paper = (config.variant, config.binarization)
    saved = read_json(args.out, name) if os.path.exists(os.path.join(args.out, f"{name}.json")) else {}
    if not args.eval_only and saved.get("status") == "done" and saved.get("epochs") == config.epochs:
        print(f"{name}: already done (test NLL {saved['test_nll']:.2f}); --eval-only scores it again", flush=True)
        return saved
    # The epochs at which this run was resumed before (a run started anew from epoch 0 has none).
    resumed_before = saved.get("resumes", []) if saved.get("epochs_total") == config.epochs else []
    state = {
        "protocol": paper_protocol(config, resumed_before),
        "resumes": resumed_before,
        "published_nll": PUBLISHED_NLL.get(paper),
        "goal_nll": GOAL_NLL.get(paper),
        **run_record(),
        "run_folder": directory,
        "curve_rows": f"the epochs with a validation check and the last; {os.path.join(directory, CURVE)} has every "
        "epoch (its epoch column 0-based)",
        "epochs_total": config.epochs,
    }
    curve_path = os.path.join(directory, CURVE)
    last_report = {}

    def report(done, initial_epoch):
        """After each backup: a progress line, and the result JSON."""
        state["resumes"] = [*resumed_before, initial_epoch] if initial_epoch else []
        curve = read_curve(curve_path)[:done]
        last, now = curve[-1], time.time()
        rate = None
        if last_report:
            rate = (done - last_report["epoch"]) / (now - last_report["time"]) * 60
        last_report.update(epoch=done, time=now)
        validation = [r for r in curve if "val_loss" in r]
        line = f"{name}: epoch {done}/{config.epochs}, lr {last['learning_rate']:.3g}, train −ELBO {-last['elbo']:.2f}"
        if validation:
            line += f", valid −ELBO {-validation[-1]['val_elbo']:.2f} (epoch {validation[-1]['epoch']})"
        if rate:
            line += f", {rate:.1f} epochs/min"
        print(f"{line}, {last['seconds'] / 60:.1f} min of training", flush=True)
        state.update(
            protocol=paper_protocol(config, state["resumes"]),
            status="training" if done < config.epochs else "evaluating",
            epochs=done,
            train_seconds=last["seconds"],
            selected_epoch=min(validation, key=lambda r: r["val_loss"])["epoch"] if validation else None,
            epochs_per_minute_recent=round(rate, 2) if rate else None,
            curve=[rounded(r) for r in curve if "val_loss" in r or r is last],
            wall_seconds_this_process=round(now - t0, 1),
        )
        write_json(args.out, name, state)

    x_train, x_valid, x_test = load_splits(args.data_dir, config.binarization, config.recipe)
    x_train, x_valid = x_train[: config.train_images], x_valid[: config.validation_images]
    scored = LAST if config.recipe == "authors_code" else SELECTED
    if args.eval_only:
        if not os.path.exists(os.path.join(directory, scored)):
            raise SystemExit(f"--eval-only: no {scored} in {directory}")
        model = build_model(config)
        state["protocol"]["evaluation"] = (
            f"scored (--eval-only) from {scored} of the run's {len(read_curve(curve_path))} epochs"
        )
    else:
        print(
            f"{name}: {config.epochs} epochs ({', '.join(f'{e} at lr {lr:.3g}' for e, lr in paper_schedule(config))}) "
            f"in {directory}",
            flush=True,
        )
        model, _ = train_paper(config, directory, x_train, x_valid, on_backup=report)
    # The epochs trained, their curve and the selected epoch, whether or not this process trained any.
    curve = read_curve(curve_path)
    validation = [r for r in curve if "val_loss" in r]
    selected = min(validation, key=lambda r: r["val_loss"]) if validation else None
    state.update(
        epochs=len(curve),
        train_seconds=curve[-1]["seconds"] if curve else None,
        selected_epoch=selected["epoch"] if selected else None,
        selected_validation_elbo=selected["val_elbo"] if selected else None,
        last_validation_elbo=validation[-1]["val_elbo"] if validation else None,
        curve=[rounded(r) for r in curve if "val_loss" in r or r is curve[-1]],
    )
    if not selected:
        scored = LAST
    state["scored_epoch"] = selected["epoch"] if scored == SELECTED else len(curve)
    model.load_weights(os.path.join(directory, scored))
    state.update(status="evaluating", wall_seconds_this_process=round(time.time() - t0, 1))
    write_json(args.out, name, state)
    state.update(status="done", **score(model, x_test, config), wall_seconds_this_process=round(time.time() - t0, 1))
    print(
        f"{name}: scored epoch {state['scored_epoch']}/{config.epochs}: test NLL {state['test_nll']:.2f} ± "
        f"{state['test_nll_stderr']:.2f} (k={state['nll_samples']}, n={state['nll_examples']}), ELBO "
        f"{state['test_elbo']:.2f}, active units {state['active_units']}",
        flush=True,
    )
    state["figure"] = paper_curve_figure(args.out, name, curve, state, paper_schedule(config))
    write_json(args.out, name, state)
    if config.epochs_scale != 1 and config.binarization == "dynamic":
        equal_budget_figure(args.out, config.epochs)
    return state
