"""The lecture's last slide, measured: sample quality of the VAE and of deterministic autoencoders (MNIST).

Samples from the prior N(0, I) and from the ex-post 10-component Gaussian mixture on the training codes
(Ghosh et al. 2020, `keras_ae.ex_post`), scored by the Fréchet distance and KID on the features of the
project's MNIST classifier (`keras_ae.sample_quality`: not Inception, so compare orderings with the RAE
paper's Table 1, not values), beside the training set against the test set, the floor.
"""

import dataclasses
import time

import numpy as np
from matplotlib.figure import Figure

from benchmarks.reproduce.common import mnist, run_record, save_figure, set_seed, timed_fit, write_json
from keras_ae import get_model, sample_quality
from keras_ae.ex_post import ExPostDensity
from keras_ae.images import tile

NAME = "sample_quality"
# MLP encoders and decoders 784-500-500-16 (tanh), the latent size of the RAE paper's MNIST models.
MODELS = {
    "vae": {"hidden_units": [500, 500], "activation": "tanh"},
    "autoencoder": {"hidden_units": [500, 500], "activation": "tanh", "reconstruction_loss": "bce"},
    "denoising": {
        "hidden_units": [500, 500],
        "activation": "tanh",
        "reconstruction_loss": "bce",
        "corruption": "masking",
        "noise_level": 0.25,
    },
}
# Published pattern, RAE paper (Ghosh et al. 2020) Table 1, MNIST, Inception FID: (N(0, I), 10-component GMM).
PUBLISHED = {"vae": (19.21, 17.66), "autoencoder": (58.73, 10.66)}


@dataclasses.dataclass(frozen=True)
class Config:
    latent_dim: int = 16
    epochs: int = 30
    batch_size: int = 100
    samples: int = 10000  # samples per sampler, against as many test images
    mixture_components: int = 10
    seed: int = 0


def add_arguments(parser):
    parser.add_argument("--samples", type=int, default=Config.samples, help="samples per sampler")


def configure(args):
    config = Config(seed=args.seed, samples=args.samples)
    if args.epochs is not None:
        config = dataclasses.replace(config, epochs=args.epochs)
    if args.quick:
        config = dataclasses.replace(config, epochs=1, samples=500, mixture_components=3)
    return config


def run(args):
    config = configure(args)
    set_seed(config.seed)
    t0 = time.time()
    x = {split: mnist(args.data_dir, split) for split in ("train", "test")}
    if args.quick:
        x = {split: v[:2000] for split, v in x.items()}
    n = min(config.samples, len(x["test"]))
    classifier = sample_quality.classifier_for("mnist")
    reference = classifier.features(x["test"][:n])
    payload = {
        "protocol": {
            "data": "MNIST intensities in [0, 1]; 50k training images (no validation split used: nothing is selected)",
            "models": {name: {"latent_dim": config.latent_dim, **options} for name, options in MODELS.items()},
            "training": f"Adam 1e-3, batch {config.batch_size}, {config.epochs} epochs, fixed in advance",
            "samplers": "prior: z ~ N(0, I) decoded; ex_post_gmm: a GaussianMixture with "
            f"{config.mixture_components} full-covariance components fitted on the codes of the training images "
            "(a VAE's posterior means), decoded (decoder means, no pixel noise)",
            "metrics": f"{n} samples against {n} test images, on the features of the classifier_mnist preset: "
            "Fréchet distance (fd_mnist) and KID (kid_mnist, unbiased MMD² with the cubic polynomial kernel, "
            "averaged over subsets; its standard deviation over the subsets)",
            "published": "RAE paper Table 1, MNIST, Inception FID (N(0, I), GMM): "
            + ", ".join(f"{k} {v[0]} / {v[1]}" for k, v in PUBLISHED.items()),
        },
        **run_record(),
    }
    results = {
        "training_set": sample_quality.sample_quality_of_features(
            classifier.features(x["train"][:n]), reference, "mnist"
        )
    }
    shown = {"training set": x["train"][:16]}
    print(f"{NAME}: training set {results['training_set']}", flush=True)
    for name, options in MODELS.items():
        model = get_model(name, input_shape=(784,), latent_dim=config.latent_dim, seed=config.seed, **options)
        model.compile(optimizer="adam")
        _, seconds = timed_fit(model, x["train"], config)
        density = ExPostDensity(config.mixture_components, seed=config.seed).fit(model, x["train"])
        samplers = {
            "prior": np.random.default_rng(config.seed).standard_normal((n, config.latent_dim)).astype(np.float32),
            "ex_post_gmm": density.sample_codes(n, seed=config.seed),
        }
        for sampler, codes in samplers.items():
            samples = np.clip(np.concatenate([model.decode(codes[i : i + 500]) for i in range(0, n, 500)]), 0, 1)
            key = f"{name}_{sampler}"
            results[key] = {
                **sample_quality.sample_quality_of_features(classifier.features(samples), reference, "mnist"),
                "train_seconds": round(seconds, 1),
            }
            shown[f"{name}, {sampler.replace('_', ' ')}"] = samples[:16]
            print(f"{NAME}: {key} {results[key]}", flush=True)
        write_json(args.out, NAME, {**payload, "results": results, "wall_seconds": round(time.time() - t0, 1)})
    payload.update(results=results, wall_seconds=round(time.time() - t0, 1))
    payload["figures"] = [samples_figure(shown, args.out)]
    write_json(args.out, NAME, payload)
    return payload


def samples_figure(shown, out, name=NAME):
    """Sixteen samples of each sampler, one row each: OUT/<name>_samples.png."""
    fig = Figure(figsize=(8, 0.55 * len(shown) + 0.3))
    axes = fig.subplots(len(shown), 1)
    for ax, (label, images) in zip(axes, shown.items(), strict=True):
        ax.imshow(tile(images.reshape(-1, 28, 28), columns=16), cmap="gray", vmin=0, vmax=1)
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    return save_figure(fig, out, f"{name}_samples")
