"""The generative autoencoders after the lecture, on MNIST: reconstruction at a matched code budget and sample
quality, for the VAE, VQ-VAE with its PixelCNN prior, WAE, RAE with the ex-post mixture, and the conditional VAE.

The code budget is 16 numbers an image, the latent size of the RAE paper's MNIST models: a 16-dimensional code
for the MLPs (784-500-500-16, tanh), a 4x4 grid of indices into 128 codes (16 x 7 bits) for the convolutional
VQ-VAE (28 -> 14 -> 7 -> 4 with three stride-2 stages), and the CVAE's 16 dimensions beside its label. Samples
are scored as in `sample_quality` (Fréchet distance and KID on the features of the project's MNIST classifier,
not Inception: compare orderings with the RAE paper's Table 1, not values); the CVAE's samples also by how often
the classifier names the class they were drawn for (Sohn et al. 2015's claim that the label controls the class).
"""

import dataclasses
import os
import time

import keras
import numpy as np

from benchmarks.reproduce import sample_quality as sample_quality_study
from benchmarks.reproduce.common import mnist, mnist_labels, read_json, run_record, set_seed, timed_fit, write_json
from keras_ae import get_model, sample_quality
from keras_ae.ex_post import ExPostDensity

NAME = "generative"
MLP = {"hidden_units": [500, 500], "activation": "tanh"}
MODELS = {
    "vae": MLP,  # Bernoulli likelihood on the intensities, analytic KL
    "wae": {**MLP, "mmd_weight": 10.0},  # squared error + λ MMD², λ = 10 (Tolstikhin et al. 2018, §4)
    "rae": MLP,  # squared error + β ½||z||² + λ Σ||W_dec||² (RAE-L2, the authors' MNIST β, λ)
    "cvae": MLP,  # the VAE's, encoder and decoder reading one_hot(y)
    "vqvae": {"filters": [32, 64, 128], "num_codes": 128, "commitment_weight": 0.25},  # squared error, 4x4 grid
}
# The samplers each model is scored with: the prior, and the ex-post mixture where the model has a continuous code.
SAMPLERS = {
    "vae": ("prior", "ex_post_gmm"),
    "wae": ("prior", "ex_post_gmm"),
    "rae": ("prior", "ex_post_gmm"),
    "cvae": ("prior",),  # z ~ N(0, I), y the test set's labels
    "vqvae": ("pixelcnn",),
}
# RAE paper (Ghosh et al. 2020) Table 1, MNIST, Inception FID of the 10-component GMM sampler: its ordering.
PUBLISHED_GMM_FID = {"rae": 8.69, "wae": 9.39, "vae": 17.66}


@dataclasses.dataclass(frozen=True)
class Config:
    latent_dim: int = 16
    epochs: int = 30
    # The VQ-VAE's PixelCNN: its first masked 7x7 convolution reads one-hot grids of K channels, about 130 s an
    # epoch on one core at K = 128, most of this study's time; 10 epochs, where its training loss has flattened.
    prior_epochs: int = 10
    batch_size: int = 100
    samples: int = 10000  # samples per sampler, against as many test images
    mixture_components: int = 10
    seed: int = 0


def add_arguments(parser):
    sample_quality_study.add_arguments(parser)  # --samples
    parser.add_argument(
        "--models",
        default=",".join(MODELS),
        help="the models to train, comma-separated; their results replace theirs in OUT/generative.json, the "
        "others' are kept",
    )


def configure(args):
    unknown = set(args.models.split(",")) - set(MODELS)
    if unknown:
        raise SystemExit(f"--models: unknown {', '.join(sorted(unknown))}; the study's are {', '.join(MODELS)}")
    config = Config(seed=args.seed, samples=args.samples)
    if args.epochs is not None:
        config = dataclasses.replace(config, epochs=args.epochs, prior_epochs=args.epochs)
    if args.quick:
        config = dataclasses.replace(config, epochs=1, prior_epochs=1, samples=500, mixture_components=3)
    return config


def build(name, config):
    """The model `name` of `MODELS`, compiled with Adam 1e-3."""
    shape = (28, 28, 1) if name == "vqvae" else (784,)
    model = get_model(name, input_shape=shape, latent_dim=config.latent_dim, seed=config.seed, **MODELS[name])
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


def in_batches(function, *arrays, batch_size=500):
    """function(*batch) over the rows of `arrays`, concatenated as numpy."""
    n = len(arrays[0])
    return np.concatenate(
        [
            keras.ops.convert_to_numpy(function(*(a[i : i + batch_size] for a in arrays)))
            for i in range(0, n, batch_size)
        ]
    )


def draw(name, model, sampler, n, config, density, labels):
    """n samples (n, 784) in [0, 1] of `model` from `sampler`."""
    if sampler == "pixelcnn":
        return np.clip(model.sample(n, seed=config.seed), 0, 1).reshape(n, -1)
    if sampler == "ex_post_gmm":
        codes = density.sample_codes(n, seed=config.seed)
    else:
        codes = np.random.default_rng(config.seed).standard_normal((n, config.latent_dim)).astype(np.float32)
    if name == "cvae":
        return np.clip(in_batches(model.decode, codes, labels[:n]), 0, 1)
    return np.clip(in_batches(model.decode, codes), 0, 1)


def run(args):
    config = configure(args)
    t0 = time.time()
    x = {split: mnist(args.data_dir, split) for split in ("train", "test")}
    y = {split: mnist_labels(args.data_dir)[split] for split in ("train", "test")}
    if args.quick:
        x, y = ({split: v[:2000] for split, v in d.items()} for d in (x, y))
    n = min(config.samples, len(x["test"]))
    classifier = sample_quality.classifier_for("mnist")
    reference = classifier.features(x["test"][:n])
    payload = {
        "protocol": {
            "data": "MNIST intensities in [0, 1]; 50k training images (no validation split used: nothing is "
            "selected); 10k test images for the reconstruction error and as the samples' reference",
            "models": {name: {"latent_dim": config.latent_dim, **options} for name, options in MODELS.items()},
            "code_budget": "16 numbers an image: the MLPs' 16-dimensional code; the VQ-VAE's 4x4 grid of indices "
            "into 128 codes of dimension 16 (16 x 7 = 112 bits); the CVAE's 16 dimensions and its label",
            "training": f"Adam 1e-3, batch {config.batch_size}, {config.epochs} epochs, fixed in advance; the "
            f"VQ-VAE's PixelCNN prior (a 7x7 mask-A convolution, 2 residual blocks, 128 filters) on the training "
            f"codes, Adam 3e-4, {config.prior_epochs} epochs",
            "reconstruction": "mean over the test images of the summed squared error Σ(x − x~)², x~ the model's "
            "deterministic reconstruction (the VAE and CVAE: the decoder mean at the posterior mean; the CVAE "
            "given the true label)",
            "samplers": "prior: z ~ N(0, I) decoded (the CVAE given the test set's labels, in order); ex_post_gmm: "
            f"a GaussianMixture of {config.mixture_components} full-covariance components fitted on the training "
            "codes (a VAE's posterior means), decoded; pixelcnn: code grids drawn position by position from the "
            "VQ-VAE's PixelCNN, decoded. Decoder means, no pixel noise",
            "metrics": f"{n} samples against {n} test images on the features of the classifier_mnist preset: "
            "fd_mnist (Fréchet distance) and kid_mnist (unbiased MMD², cubic polynomial kernel, averaged over "
            "subsets, ± its standard deviation over them); for the CVAE, label_agreement: the fraction of samples "
            "the classifier assigns to the class they were drawn for",
            "published": "RAE paper Table 1, MNIST, Inception FID of the GMM sampler: "
            + ", ".join(f"{k} {v}" for k, v in PUBLISHED_GMM_FID.items()),
        },
        **run_record(),
    }
    chosen = [name for name in MODELS if name in args.models.split(",")]
    earlier = os.path.join(args.out, f"{NAME}.json")
    results = read_json(args.out, NAME)["results"] if len(chosen) < len(MODELS) and os.path.exists(earlier) else {}
    results["training_set"] = sample_quality.sample_quality_of_features(
        classifier.features(x["train"][:n]), reference, "mnist"
    )
    shown = {"training set": x["train"][:16]}
    for name in chosen:
        set_seed(config.seed)
        model = build(name, config)
        inputs = {split: v.reshape(-1, 28, 28, 1) if name == "vqvae" else v for split, v in x.items()}
        train = (inputs["train"], y["train"]) if name == "cvae" else inputs["train"]
        _, seconds = timed_fit(model, train, config)
        entry = {"train_seconds": round(seconds, 1)}
        if name == "vqvae":
            start = time.time()
            history = model.fit_prior(
                inputs["train"], epochs=config.prior_epochs, batch_size=config.batch_size, verbose=0
            )
            entry.update(
                prior_train_seconds=round(time.time() - start, 1), prior_nats_per_code=history.history["loss"][-1]
            )
        test = (inputs["test"], y["test"]) if name == "cvae" else inputs["test"]
        reconstructions = model.predict(test, batch_size=500, verbose=0).reshape(len(x["test"]), -1)
        entry["reconstruction_error"] = float(np.mean(np.sum((x["test"] - reconstructions) ** 2, axis=1)))
        density = None
        if "ex_post_gmm" in SAMPLERS[name]:
            density = ExPostDensity(config.mixture_components, seed=config.seed).fit(model, x["train"])
        for sampler in SAMPLERS[name]:
            samples = draw(name, model, sampler, n, config, density, y["test"])
            scores = sample_quality.sample_quality_of_features(classifier.features(samples), reference, "mnist")
            if name == "cvae":
                predicted = np.argmax(in_batches(classifier, samples), axis=1)
                scores["label_agreement"] = float(np.mean(predicted == y["test"][:n]))
            entry[sampler] = scores
            shown[f"{name}, {sampler.replace('_', ' ')}"] = samples[:16]
        results[name] = entry
        print(f"{NAME}: {name} {entry}", flush=True)
        write_json(args.out, NAME, {**payload, "results": results, "wall_seconds": round(time.time() - t0, 1)})
    payload.update(results=results, wall_seconds=round(time.time() - t0, 1))
    figure = NAME if len(chosen) == len(MODELS) else f"{NAME}_{'_'.join(chosen)}"
    payload["figures"] = [sample_quality_study.samples_figure(shown, args.out, figure)]
    write_json(args.out, NAME, payload)
    return payload
