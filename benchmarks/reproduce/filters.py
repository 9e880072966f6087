"""Item 5: denoising vs weight-decay filters on 12x12 patches (Vincent et al. 2010, fig. 6); the KL-sparse
64-25-64 autoencoder on 8x8 patches, trained by L-BFGS (Ng 2011)."""

import dataclasses
import time

import keras
import numpy as np
import scipy.optimize
import tensorflow as tf
from matplotlib.figure import Figure

from benchmarks.reproduce.common import first_dense_kernel, run_record, save_figure, set_seed, timed_fit, write_json
from keras_ae import data, get_model
from keras_ae.images import tile

FLAT_DC_SHARE = 0.5  # a filter is flat when more than this share of its energy is in its mean (DC)


@dataclasses.dataclass(frozen=True)
class Config:
    # Vincent et al. (2010): 12x12 patches, sigmoid hidden units, tied weights, linear decoder, squared error.
    patches: int = 20000  # Ng's 8x8 patches: half as many, at least 2000
    vincent_units: int = 200
    epochs: int = 100
    learning_rate: float = 1e-2
    batch_size: int = 100
    weight_decay: float = 0.005
    noise_level: float = 0.5
    # Ng (2011): 64-25-64, sigmoid everywhere, data in [0.1, 0.9], full-batch L-BFGS.
    ng_units: int = 25
    target_rate: float = 0.01  # ρ
    sparsity_weight: float = 6.0  # Ng's β = 3: our reconstruction term is twice his
    ng_weight_decay: float = 1e-4
    downsample: int = 2  # the photographs at half size (docs/results.md, section 5)
    lbfgs_iterations: int = 400
    flat_filter_seeds: int = 5  # the flat filters are counted over this many seeds
    seed: int = 0


QUICK = {"patches": 2000, "epochs": 2, "lbfgs_iterations": 20, "flat_filter_seeds": 2}


def configure(args):
    config = Config(seed=args.seed)
    if args.quick:
        config = dataclasses.replace(config, **QUICK)
    return dataclasses.replace(config, epochs=args.epochs) if args.epochs else config


def minimize_lbfgs(model, x, max_iterations):
    """Full-batch L-BFGS on the model's own loss (`total_loss(loss_terms(x))`), as Ng (2011) trains the
    sparse autoencoder (minFunc). Returns the loss after each iteration."""
    variables = model.trainable_variables
    sizes = [int(np.prod(v.shape)) for v in variables]
    x = tf.constant(x)

    @tf.function
    def loss_and_gradient(flat):
        for variable, part in zip(variables, tf.split(flat, sizes), strict=True):
            variable.assign(tf.reshape(part, variable.shape))
        with tf.GradientTape() as tape:
            loss = model.total_loss(model.loss_terms(x, training=True))
        return loss, tf.concat([tf.reshape(g, [-1]) for g in tape.gradient(loss, variables)], axis=0)

    def objective(flat):
        loss, gradient = loss_and_gradient(tf.constant(flat, tf.float32))
        return float(loss), gradient.numpy().astype(np.float64)

    curve = []
    start = np.concatenate([v.numpy().ravel() for v in variables]).astype(np.float64)
    result = scipy.optimize.minimize(
        objective,
        start,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iterations},
        callback=lambda intermediate_result: curve.append(intermediate_result.fun),
    )
    objective(result.x)  # leave the model at the solution
    return curve


def dc_fraction(kernel):
    """The share of each filter's energy in its mean: Σw² = d·mean(w)² + Σ(w − mean(w))²; kernel (d, units)."""
    return kernel.shape[0] * kernel.mean(axis=0) ** 2 / np.sum(kernel**2, axis=0)


def vincent(config, out):
    """Tied filters with weight decay and with Gaussian noise; (results, figure file)."""
    # The patches keep the whitened images' scale (std ≈ 0.3, as Olshausen's IMAGES, variance 0.1), so σ = 0.5 is
    # noise stronger than the signal, as in the paper.
    x = {
        s: data.load("patches", split=s, scale="raw", patch_size=12, num_patches=config.patches)
        for s in ("train", "validation")
    }
    runs = [
        (f"weight decay λ={config.weight_decay}", "autoencoder", {"weight_decay": config.weight_decay}),
        (
            f"Gaussian noise σ={config.noise_level}",
            "denoising",
            {"corruption": "gaussian", "noise_level": config.noise_level},
        ),
    ]
    results, panels = [], {}
    for label, name, options in runs:
        set_seed(config.seed)
        model = get_model(
            name,
            input_shape=(144,),
            latent_dim=config.vincent_units,
            activation="sigmoid",
            output_activation=None,
            reconstruction_loss="mse",
            tied_weights=True,
            seed=config.seed,
            **options,
        )
        model.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
        history, seconds = timed_fit(model, x["train"], config, x["validation"])
        panels[label] = model.encoder.layers[-1].kernel.numpy().T.reshape(-1, 12, 12)
        results.append(
            {
                "model": label,
                "registry": name,
                "options": options,
                "epochs": config.epochs,
                "train_seconds": round(seconds, 1),
                "validation_reconstruction": float(history.history["val_reconstruction"][-1]),
                "validation_input_energy": float(np.mean(np.sum(x["validation"] ** 2, axis=1))),
            }
        )
        print(
            f"filters: {label}: val reconstruction {results[-1]['validation_reconstruction']:.3f} ({seconds:.0f}s)",
            flush=True,
        )
    fig = Figure(figsize=(9, 4.9))
    for ax, (label, filters) in zip(fig.subplots(1, len(panels)), panels.items(), strict=True):
        ax.imshow(tile(filters[:64], 8, normalize="symmetric"), cmap="gray", vmin=0, vmax=1)
        ax.set_title(label, fontsize=9)
        ax.axis("off")
    fig.suptitle(
        f"First 64 of {config.vincent_units} tied filters on 12x12 whitened natural-image patches "
        "(Vincent et al. 2010, fig. 6)",
        fontsize=9,
    )
    return results, save_figure(fig, out, "filters_vincent", dpi=72)


def ng_patches(config, split, downsample):
    return data.load(
        "patches",
        split=split,
        scale="unit",
        patch_size=8,
        num_patches=max(config.patches // 2, 2000),
        downsample=downsample,
    )


def ng_sparse(x_train, seed, config):
    """The KL-sparse AE trained by L-BFGS; (model, loss curve, seconds, encoder kernel (64, units))."""
    set_seed(seed)
    model = get_model(
        "sparse",
        input_shape=(64,),
        latent_dim=config.ng_units,
        penalty="kl",
        target_rate=config.target_rate,
        sparsity_weight=config.sparsity_weight,
        activation="sigmoid",
        output_activation="sigmoid",
        reconstruction_loss="mse",
        weight_decay=config.ng_weight_decay,
        seed=seed,
    )
    model.compile()  # for `evaluate`; L-BFGS trains it
    start = time.time()
    curve = minimize_lbfgs(model, x_train, config.lbfgs_iterations)
    return model, curve, time.time() - start, first_dense_kernel(model.encoder)


def flat_filters(kernel):
    return int(np.sum(dc_fraction(kernel) > FLAT_DC_SHARE))


def ng(config, out):
    """The KL-sparse 64-25-64 AE; how many of its filters stay flat over seeds; (results, figure file)."""
    x_train, x_test = (ng_patches(config, s, config.downsample) for s in ("train", "test"))
    model, curve, seconds, kernel = ng_sparse(x_train, config.seed, config)
    h = model.encode(x_test).numpy()
    scores = model.evaluate(x_test, batch_size=len(x_test), verbose=0, return_dict=True)
    results = {
        "protocol": f"`sparse` 64-{config.ng_units}-64, sigmoid hidden and output, squared error, penalty='kl', "
        f"ρ={config.target_rate}, sparsity_weight={config.sparsity_weight:g} (our reconstruction is Σ(x−x~)², Ng's "
        f"is ½Σ(x−x~)², so {config.sparsity_weight:g} here is Ng's β={config.sparsity_weight / 2:g}), "
        f"weight_decay={config.ng_weight_decay:g} (λΣW², Ng's λ/2·ΣW² at his scale), full-batch L-BFGS (scipy "
        f"L-BFGS-B) for up to {config.lbfgs_iterations} iterations on {len(x_train)} patches of the sample images "
        f"downsampled {config.downsample}x (Ng: minFunc's L-BFGS, 400 iterations, 10k patches of Olshausen's "
        f"images); flat_filters: units whose filter has more than {FLAT_DC_SHARE:.0%} of its energy in its mean "
        "(DC), which sees only the constant patch mean",
        "target_rate": config.target_rate,
        "flat_filters": flat_filters(kernel),
        "mean_activation_test": float(h.mean()),
        "per_unit_mean_activation_test_min_max": [float(h.mean(axis=0).min()), float(h.mean(axis=0).max())],
        "test_reconstruction": float(scores["reconstruction"]),
        "test_sparsity_term": float(scores["sparsity"]),
        "test_weight_decay_term": float(scores["weight_decay"]),
        "iterations": len(curve),
        "train_seconds": round(seconds, 1),
        "loss_curve_every_10_iterations": [float(v) for v in curve[::10]] + [float(curve[-1])],
    }
    print(
        f"filters: KL-sparse mean activation {h.mean():.4f} (target {config.target_rate}), "
        f"{results['flat_filters']} flat filters ({seconds:.0f}s)",
        flush=True,
    )
    # How many units stay flat, over seeds, with the photographs at full size and downsampled.
    seeds = range(config.seed, config.seed + config.flat_filter_seeds)
    results["flat_filters_by_downsample_and_seed"] = {
        str(downsample): {str(seed): flat_filters(ng_sparse(x, seed, config)[3]) for seed in seeds}
        for downsample, x in ((1, ng_patches(config, "train", 1)), (config.downsample, x_train))
    }
    print(f"filters: flat filters by downsample and seed {results['flat_filters_by_downsample_and_seed']}", flush=True)
    fig = Figure(figsize=(3.5, 3.8))
    ax = fig.subplots()
    ax.imshow(tile(kernel.T.reshape(-1, 8, 8), 5, normalize="symmetric"), cmap="gray", vmin=0, vmax=1)
    ax.set_title(
        f"KL-sparse 64-{config.ng_units}-64 (ρ={config.target_rate}): mean activation {h.mean():.4f}\n"
        f"{results['flat_filters']} of {config.ng_units} filters flat",
        fontsize=8,
    )
    ax.axis("off")
    return results, save_figure(fig, out, "filters_sparse", dpi=100)


def run(args):
    config = configure(args)
    t0 = time.time()
    vincent_results, vincent_figure = vincent(config, args.out)
    ng_results, ng_figure = ng(config, args.out)
    results = {
        "vincent": vincent_results,
        "ng_sparse": ng_results,
        "protocol_vincent": f"{config.patches} random 12x12 patches of the whitened scikit-learn sample images "
        "(80/10/10 split), at the whitened images' scale (std ≈ 0.3); one layer of "
        f"{config.vincent_units} sigmoid units, tied weights, linear decoder, squared error; Adam "
        f"{config.learning_rate:g}, batch {config.batch_size}, {config.epochs} epochs. Weight decay: the loss term "
        f"λΣ||W||², λ={config.weight_decay}, the one value tried; denoising: additive Gaussian noise "
        f"σ={config.noise_level}, no weight decay",
        "figures": [vincent_figure, ng_figure],
        "wall_seconds": round(time.time() - t0, 1),
        "seed": config.seed,
        **run_record(),
    }
    write_json(args.out, "filters", results)
    return results
