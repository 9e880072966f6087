"""The evaluation report of a trained model: the numbers a researcher compares, and the pictures.

    report = evaluation.evaluate(model, x_test, x_train=x_train, dataset="mnist")
    evaluation.write_report(report, "runs/vae/evaluation")   # evaluation.json and report.html

`evaluate` measures, on held-out inputs:

- every loss term (`model.evaluate`), the reconstruction's mean squared error and, for images, PSNR and
  SSIM (`tf.image.psnr`, `tf.image.ssim`); inputs beside their reconstructions;
- for a VAE: the importance-weighted log-likelihood (Burda et al. 2016) with its standard error, the
  active units, KL(q(z_j|x) ‖ N(0, 1)) per latent unit, samples from the prior and, with a 2-D latent,
  the manifold;
- sample quality, where the data set has a feature classifier (`keras_ae.sample_quality`): the Fréchet
  distance and KID of the model's samples to the held-out inputs, from the prior (a VAE) and from the
  ex-post Gaussian mixture on the training codes (every model; `keras_ae.ex_post`), beside the
  training set's own distance, the floor;
- with anomaly labels: the AUROC and AUPRC of `model.anomaly_score`, and the stored threshold's
  false- and true-positive rates.

`write_report` writes `evaluation.json` (the numbers) and `report.html`, one page with every figure
inline as a PNG: it reads offline and can be mailed.
"""

import base64
import datetime
import functools
import html
import io
import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from keras_ae import ex_post, images

SAMPLE_QUALITY_EXAMPLES = 10000  # samples and reference inputs of the Fréchet distance and KID
EX_POST_EXAMPLES = 10000  # training inputs the ex-post mixture is fitted on
SHOWN = 32  # inputs shown beside their reconstructions
SHOWN_SIDE = 400  # pixels of the longer side of a picture in the report, at least: each pixel shown as a block


class _Steps:
    """One line per step of an evaluation, with its wall time: what runs, and how long it took."""

    def __init__(self, verbose):
        self.verbose = verbose
        self.times = {}

    def run(self, name, fn, *args, **kwargs):
        if self.verbose:
            print(f"  {name} ...", flush=True)
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        self.times[name] = round(time.perf_counter() - start, 2)
        if self.verbose:
            print(f"  {name}: {self.times[name]:.1f} s", flush=True)
        return result


def _is_vae(model):
    return callable(getattr(model, "log_likelihood", None)) and callable(getattr(model, "posterior_parameters", None))


def _image_shape(model):
    """(H, W, C) when the model's examples are pictures, else None (e.g. CSV rows)."""
    shape = images.display_shape(model.feature_shape)
    return shape if shape[0] > 1 and shape[1] > 1 else None


def _predicted(fn, x, batch_size):
    """fn on x in batches, as one float32 numpy array."""
    return np.concatenate(
        [keras.ops.convert_to_numpy(fn(x[i : i + batch_size])).astype(np.float32) for i in range(0, len(x), batch_size)]
    )


def reconstruction_metrics(model, x, batch_size=256, labels=None):
    """{mse, and for images psnr and ssim}: means over examples, with their reconstructions.

    MSE is the mean over features; PSNR and SSIM compare each image with its reconstruction on the
    data's range (max_val 1 for data in [0, 1]), with SSIM's window shrunk to fit small images.
    A conditional model reconstructs x given its `labels` (N,).
    """
    inputs = x if labels is None else (x, labels)
    reconstructions = model.predict(inputs, batch_size=batch_size, verbose=0).astype(np.float32)
    numbers = {"mse": float(np.mean((x - reconstructions) ** 2))}
    shape = _image_shape(model)
    if shape is not None:
        low, high = float(min(x.min(), 0.0)), float(max(x.max(), 1.0))
        a = tf.reshape(tf.constant(x - low), (-1, *shape))
        b = tf.reshape(tf.constant(np.clip(reconstructions, low, high) - low), (-1, *shape))
        numbers["psnr"] = float(tf.reduce_mean(tf.image.psnr(a, b, max_val=high - low)))
        window = min(11, shape[0], shape[1])
        numbers["ssim"] = float(tf.reduce_mean(tf.image.ssim(a, b, max_val=high - low, filter_size=window)))
    return numbers, reconstructions


def kl_per_unit(model, x, batch_size=256, labels=None):
    """E_x KL(q(z_j|x) ‖ N(0, 1)) for each latent unit j, (latent_dim,) numpy, in nats.

    KL(N(μ, σ²) ‖ N(0, 1)) = ½ (μ² + σ² − 1) − log σ (Kingma & Welling 2014, appendix B); a collapsed unit
    has q(z_j|x) = p(z_j) and a KL of 0. For a hierarchical VAE the top layer's code; for a conditional
    model q(z_j|x, y), given `labels` (N,).
    """
    total = np.zeros(model.latent_dim)
    for i in range(0, len(x), batch_size):
        batch = x[i : i + batch_size] if labels is None else (x[i : i + batch_size], labels[i : i + batch_size])
        loc, scale = (np.asarray(v, np.float64) for v in model.posterior_parameters(batch))
        total += np.sum(0.5 * (loc**2 + scale**2 - 1.0) - np.log(scale), axis=0)
    return total / len(x)


def _binarized_once(x, seed):
    """x ~ Bernoulli(intensities), one fixed draw: how a dynamically binarized model is scored."""
    return (np.random.default_rng(seed).random(x.shape) < x).astype(np.float32)


def evaluate(
    model,
    x,
    x_train=None,
    dataset=None,
    num_samples=1000,
    batch_size=256,
    anomaly_labels=None,
    binarize_seed=None,
    sample_quality=True,
    verbose=True,
    labels=None,
):
    """The evaluation of `model` on held-out inputs x: {"numbers": JSON-able dict, "figures": {name: PNG bytes}}.

    Args:
        model: a trained keras-ae model.
        x: held-out inputs (N, *feature_shape).
        x_train: training inputs, for the ex-post mixture and the training set's own sample quality; None
            leaves out what needs them.
        dataset: the data set's name; where it has a feature classifier, the sample quality is measured.
        num_samples: k of a VAE's importance-weighted log-likelihood.
        anomaly_labels: (N,) 1 for an anomalous input, 0 for a normal one; None: no anomaly section.
        binarize_seed: a dynamically binarized model: its loss terms, reconstructions, likelihood and
            anomaly scores are on one draw of x ~ Bernoulli(x) with this seed; its sample quality on x.
        sample_quality: False skips the Fréchet distance and KID.
        verbose: a line per step, and Keras progress bars on the long ones.
        labels: (N,) the class labels of x, for a conditional model (cvae): its likelihoods are log p(x|y), it
            reconstructs x given y, and its prior samples are drawn for these labels, in order, the fraction
            the classifier assigns to their class reported as `label_agreement`.
    """
    from keras_ae import sample_quality as quality  # the classifier presets load only when measured

    # A dynamically binarized model scores one fixed binary draw of x; its samples are decoder means,
    # intensities, and are compared with the intensities themselves.
    intensities = x = np.asarray(x, np.float32)
    if model.conditional and labels is None:
        raise ValueError(f"{model.registry_name} is conditional: evaluate it with the class labels of x (labels=).")
    if not model.conditional:
        labels = None
    given = {} if labels is None else {"labels": labels}
    if binarize_seed is not None:
        x = _binarized_once(x, binarize_seed)
    steps = _Steps(verbose)
    numbers = {
        "model": model.registry_name or type(model).__name__,
        "examples": len(x),
        "binarized_once_with_seed": binarize_seed,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    figures = {}
    if not model.compiled:
        model.compile()
    numbers["loss_terms"] = steps.run(
        "loss terms", lambda: model.evaluate(x, labels, batch_size=batch_size, verbose=0, return_dict=True)
    )
    numbers["loss_terms"] = {name: float(value) for name, value in numbers["loss_terms"].items()}
    numbers["reconstruction"], reconstructions = steps.run(
        "reconstruction error, PSNR, SSIM", reconstruction_metrics, model, x, batch_size, labels
    )
    shape = images.display_shape(model.feature_shape)
    shown = min(SHOWN, len(x))
    pairs = np.stack([x[:shown].reshape((-1, *shape)), reconstructions[:shown].reshape((-1, *shape))], axis=1)
    figures["reconstructions"] = images.png_bytes(images.tile(pairs.reshape((-1, *shape)), columns=16), SHOWN_SIDE)

    samplers = {}
    if _is_vae(model):
        log_likelihood = steps.run(
            f"importance-weighted log-likelihood, k={num_samples}",
            model.log_likelihood,
            x,
            num_samples=num_samples,
            verbose=int(verbose),
            **given,
        )
        numbers["log_likelihood"] = {
            "mean": float(log_likelihood.mean()),
            "standard_error": float(log_likelihood.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else None,
            "num_samples": num_samples,
        }
        numbers["elbo"] = float(np.mean(model.elbo(x, batch_size=batch_size, **given)))
        numbers["active_units"] = int(model.active_units(x, batch_size=batch_size, **given))
        kl = kl_per_unit(model, x, batch_size, labels)
        numbers["kl_per_unit"] = [round(float(v), 5) for v in kl]
        figures["kl_per_unit"] = _kl_figure(kl)
        if labels is None:
            samplers["prior"] = lambda n, seed: keras.ops.convert_to_numpy(model.sample(n, seed=seed))
        else:  # the held-out labels in order: the first n samples share the classes of the first n inputs
            samplers["prior"] = lambda n, seed: keras.ops.convert_to_numpy(
                model.sample(n, np.resize(labels, n), seed=seed)
            )
        if model.latent_dim == 2 and labels is None:
            grid = keras.ops.convert_to_numpy(model.latent_grid(20))
            grid = images.tile(np.clip(grid, 0, 1).reshape((-1, *shape)), 20)
            figures["latent_manifold"] = images.png_bytes(grid, SHOWN_SIDE)
    if model.learned_prior and model.prior_fitted:  # the VQ-VAE's PixelCNN
        samplers["prior"] = lambda n, seed: model.sample(n, seed=seed)
    unconditional_codes = len(model.code_shape) == 1 and labels is None  # a mixture of code vectors
    if x_train is not None and len(x_train) >= 10 and unconditional_codes:
        density = steps.run(
            "ex-post Gaussian mixture on the training codes",
            ex_post.ExPostDensity().fit,
            model,
            np.asarray(x_train[:EX_POST_EXAMPLES], np.float32),
            batch_size,
            int(verbose),
        )
        samplers["ex_post_gmm"] = lambda n, seed: density.sample(model, n, seed=seed)
    for name, sample in samplers.items():
        tiled = images.tile(np.clip(sample(64, 0), 0, 1).reshape((-1, *shape)), 8)
        figures[f"samples_{name}"] = images.png_bytes(tiled, SHOWN_SIDE)

    classifier_name = quality.classifier_name(dataset) if dataset else None
    if sample_quality and classifier_name and (samplers or x_train is not None):
        numbers["sample_quality"] = steps.run(
            f"sample quality on {classifier_name} features",
            _sample_quality,
            quality,
            classifier_name,
            intensities,
            x_train,
            samplers,
            verbose,
            labels,
        )
    if anomaly_labels is not None:
        numbers["anomaly"], figures["anomaly_scores"] = steps.run(
            "anomaly scores", _anomaly, model, x, np.asarray(anomaly_labels), batch_size
        )
    numbers["seconds"] = steps.times
    return {"numbers": numbers, "figures": figures}


def _sample_quality(quality, classifier_name, x, x_train, samplers, verbose, labels=None):
    """{sampler: {fd_<data>, kid_<data>, kid_<data>_std}} of n samples against n held-out inputs, and of n
    training inputs (the floor a perfect sampler reaches); with the `labels` a conditional model's prior
    samples were drawn for, its `label_agreement`: the fraction the classifier assigns to their class."""
    classifier = quality.load_classifier(classifier_name)
    name = classifier.preset_metadata["dataset"]["name"]  # what the metrics are named after: fd_mnist
    n = min(SAMPLE_QUALITY_EXAMPLES, len(x))
    reference = classifier.features(x[:n])  # once, for every sampler

    def scored(samples):
        return quality.sample_quality_of_features(classifier.features(np.clip(samples, 0, 1)), reference, name)

    results = {}
    draws = {"training_set": lambda: x_train[:n]} if x_train is not None else {}
    draws.update({sampler: functools.partial(sample, n, 0) for sampler, sample in samplers.items()})
    progress = keras.utils.Progbar(len(draws), unit_name="sampler", verbose=int(verbose))
    for sampler, draw in draws.items():
        samples = draw()
        results[sampler] = scored(samples)
        if labels is not None and sampler == "prior":
            predicted = np.argmax(_predicted(classifier, np.clip(samples, 0, 1), 500), axis=1)
            results[sampler]["label_agreement"] = float(np.mean(predicted == np.resize(labels, n)))
        progress.add(1)
    return {"classifier": classifier_name, "examples": n, "against": "held-out inputs", **results}


def _anomaly(model, x, labels, batch_size):
    """AUROC and AUPRC of the anomaly scores (anomalies positive), and the stored threshold's rates."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    labels = labels.astype(bool)
    if labels.shape != (len(x),):
        raise ValueError(f"anomaly labels must be one per example, shape ({len(x)},); got {labels.shape}.")
    if labels.all() or not labels.any():
        raise ValueError("anomaly labels need both normal (0) and anomalous (1) examples.")
    scores = model.anomaly_score(x, batch_size=batch_size)
    numbers = {
        "anomalies": int(labels.sum()),
        "normal": int((~labels).sum()),
        "auroc": float(roc_auc_score(labels, scores)),
        "auprc": float(average_precision_score(labels, scores)),
        "threshold": model.anomaly_threshold,
    }
    if model.anomaly_threshold is not None:
        flagged = scores > model.anomaly_threshold
        numbers["false_positive_rate"] = float(flagged[~labels].mean())
        numbers["true_positive_rate"] = float(flagged[labels].mean())
    return numbers, _score_figure(scores, labels, model.anomaly_threshold)


# ------------------------------------------------------------------ figures
def _figure_png(figure):
    """A matplotlib `Figure` (made without pyplot: no GUI backend, nothing to close) as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def _kl_figure(kl):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(max(4, 0.12 * len(kl) + 2), 2.6))
    axes = figure.subplots()
    order = np.argsort(kl)[::-1]
    axes.bar(np.arange(len(kl)), kl[order], color="#4c72b0")
    axes.axhline(0.01, color="grey", lw=0.8, ls="--")
    axes.set_xlabel("latent unit (sorted by KL)")
    axes.set_ylabel("KL(q(z_j|x) ‖ N(0,1)), nats")
    return _figure_png(figure)


def _score_figure(scores, labels, threshold):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 2.8))
    axes = figure.subplots()
    bins = np.histogram_bin_edges(scores, bins=60)
    axes.hist(scores[~labels], bins=bins, alpha=0.6, label="normal", density=True)
    axes.hist(scores[labels], bins=bins, alpha=0.6, label="anomalous", density=True)
    if threshold is not None:
        axes.axvline(threshold, color="black", lw=1, ls="--", label="stored threshold")
    axes.set_xlabel("anomaly score")
    axes.legend()
    return _figure_png(figure)


def summary(numbers):
    """The headline numbers of an evaluation, a few lines of text."""
    lines = [
        "  " + ", ".join(f"{k} {v:.4g}" for k, v in {**numbers["loss_terms"], **numbers["reconstruction"]}.items())
    ]
    if "log_likelihood" in numbers:
        ll = numbers["log_likelihood"]
        lines.append(
            f"  log p(x) {ll['mean']:.2f} ± {ll['standard_error'] or 0:.2f} nats (k={ll['num_samples']}), "
            f"ELBO {numbers['elbo']:.2f}, active units {numbers['active_units']}"
        )
    for name, values in numbers.get("sample_quality", {}).items():
        if isinstance(values, dict):
            lines.append(f"  {name}: " + ", ".join(f"{k} {v:.4g}" for k, v in values.items()))
    if "anomaly" in numbers:
        lines.append(f"  anomalies: AUROC {numbers['anomaly']['auroc']:.4f}, AUPRC {numbers['anomaly']['auprc']:.4f}")
    return "\n".join(lines)


# ------------------------------------------------------------------ writing
_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; max-width: 980px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5em 0; } td, th { padding: 2px 12px 2px 0; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; } img { max-width: 100%; image-rendering: pixelated; }
.note, figcaption { color: #666; font-size: .9em; }
"""


def _table(rows):
    cells = "".join(
        f"<tr><th>{html.escape(str(name))}</th><td class=n>{html.escape(_format(value))}</td></tr>"
        for name, value in rows
    )
    return f"<table>{cells}</table>"


def _format(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)


def _image(figures, name, caption):
    if name not in figures:
        return ""
    data = base64.b64encode(figures[name]).decode()
    caption = html.escape(caption)
    return (
        f'<figure><img alt="{caption}" src="data:image/png;base64,{data}"><figcaption>{caption}</figcaption></figure>'
    )


def render_html(report, title):
    """The report as one self-contained HTML page (figures inline)."""
    numbers, figures = report["numbers"], report["figures"]
    parts = [f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title><style>{_STYLE}</style>"]
    parts.append(f"<h1>{html.escape(title)}</h1>")
    parts.append(
        f"<p class=note>{numbers['model']} · {numbers['examples']} held-out examples · {numbers['created']}"
        + (
            f" · binarized once (seed {numbers['binarized_once_with_seed']})"
            if numbers["binarized_once_with_seed"] is not None
            else ""
        )
        + "</p>"
    )
    parts.append("<h2>Loss terms and reconstruction</h2>")
    parts.append(_table([*numbers["loss_terms"].items(), *numbers["reconstruction"].items()]))
    parts.append(_image(figures, "reconstructions", "held-out inputs (left) beside their reconstructions (right)"))
    if "log_likelihood" in numbers:
        ll = numbers["log_likelihood"]
        parts.append("<h2>Likelihood and latent units</h2>")
        parts.append(
            _table(
                [
                    (f"log p(x), importance-weighted, k={ll['num_samples']} (nats)", ll["mean"]),
                    ("standard error", ll["standard_error"]),
                    ("ELBO (nats)", numbers["elbo"]),
                    ("active units (Cov_x E[z|x] > 0.01)", numbers["active_units"]),
                ]
            )
        )
        parts.append(_image(figures, "kl_per_unit", "KL(q(z_j|x) ‖ N(0,1)) per latent unit; dashed: 0.01"))
        parts.append(_image(figures, "latent_manifold", "the decoded 2-D latent manifold (standard-Normal quantiles)"))
    samples = [name for name in figures if name.startswith("samples_")]
    if samples or "sample_quality" in numbers:
        parts.append("<h2>Samples and sample quality</h2>")
        for name in samples:
            parts.append(_image(figures, name, f"samples: {name.removeprefix('samples_').replace('_', ' ')}"))
        if "sample_quality" in numbers:
            quality = numbers["sample_quality"]
            rows = [(k, v) for k, v in quality.items() if isinstance(v, dict)]
            metrics = list(rows[0][1]) if rows else []
            header = "".join(f"<th>{html.escape(m)}</th>" for m in metrics)
            body = "".join(
                f"<tr><th>{html.escape(name)}</th>"
                + "".join(f"<td class=n>{_format(values[m])}</td>" for m in metrics)
                + "</tr>"
                for name, values in rows
            )
            parts.append(f"<table><tr><th>samples</th>{header}</tr>{body}</table>")
            parts.append(
                f"<p class=note>{quality['examples']} samples against as many {quality['against']}, on the "
                f"features of the {html.escape(quality['classifier'])} preset (not Inception: not comparable "
                "with published FID values). training_set: the training inputs themselves, the floor.</p>"
            )
    if "anomaly" in numbers:
        parts.append("<h2>Anomaly detection</h2>")
        parts.append(_table(numbers["anomaly"].items()))
        parts.append(_image(figures, "anomaly_scores", "anomaly scores of normal and anomalous held-out inputs"))
    parts.append("<h2>Wall times (s)</h2>")
    parts.append(_table(numbers["seconds"].items()))
    return "\n".join(parts) + "\n"


def write_report(report, out_dir, title="keras-ae evaluation"):
    """Writes `out_dir/evaluation.json` and `out_dir/report.html`; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    json_path, html_path = os.path.join(out_dir, "evaluation.json"), os.path.join(out_dir, "report.html")
    with open(json_path, "w") as f:
        json.dump(report["numbers"], f, indent=2)
        f.write("\n")
    with open(html_path, "w") as f:
        f.write(render_html(report, title))
    return json_path, html_path
