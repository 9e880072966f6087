"""The evaluation report (`keras_ae.evaluation`): its numbers against independent references, and a page
that reads offline."""

import base64
import json
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

import keras_ae
from keras_ae import data, evaluation

SHARED_DATA = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "shared", "data")


@pytest.fixture(scope="module")
def digits_split():
    return {split: (data.load("digits", split), data.labels("digits", split)) for split in data.SPLITS}


def _trained(name, x, epochs, **options):
    keras.utils.set_random_seed(0)
    model = keras_ae.get_model(name, input_shape=x.shape[1:], seed=0, **options)
    model.compile(jit_compile=False)  # the report is the point: no XLA compilation on a few small batches
    model.fit(x, epochs=epochs, batch_size=64, verbose=0)
    return model


def test_autoencoder_report_numbers_and_page(digits_split, tmp_path):
    (x_train, _), (x_valid, y_valid), (x_test, y_test) = (digits_split[s] for s in data.SPLITS)
    model = _trained("autoencoder", x_train, 10, latent_dim=6, hidden_units=[32])
    model.fit_anomaly_threshold(x_valid[y_valid == 0], false_positive_rate=0.2)
    anomalous = (y_test != 0).astype(int)
    report = evaluation.evaluate(model, x_test, x_train=x_train, dataset="digits", anomaly_labels=anomalous, verbose=0)
    numbers = report["numbers"]

    reconstructions = model.predict(x_test, verbose=0)
    errors = np.mean((x_test - reconstructions).reshape(len(x_test), -1) ** 2, axis=1)
    assert numbers["reconstruction"]["mse"] == pytest.approx(errors.mean(), rel=1e-5)
    # PSNR on data in [0, 1]: 10 log10(1 / MSE) per image, averaged.
    assert numbers["reconstruction"]["psnr"] == pytest.approx(np.mean(10 * np.log10(1 / errors)), rel=1e-4)
    assert 0 < numbers["reconstruction"]["ssim"] < 1

    # AUROC is the Mann-Whitney U of anomalous against normal scores over their count of pairs.
    scores = model.anomaly_score(x_test)
    positive, negative = scores[anomalous == 1], scores[anomalous == 0]
    u = stats.mannwhitneyu(positive, negative).statistic
    assert numbers["anomaly"]["auroc"] == pytest.approx(u / (len(positive) * len(negative)), rel=1e-9)
    flagged = scores > model.anomaly_threshold
    assert numbers["anomaly"]["false_positive_rate"] == pytest.approx(flagged[anomalous == 0].mean())
    assert numbers["anomaly"]["true_positive_rate"] == pytest.approx(flagged[anomalous == 1].mean())
    assert "sample_quality" not in numbers  # digits has no feature classifier

    json_path, html_path = evaluation.write_report(report, tmp_path)
    assert json.loads(open(json_path).read())["reconstruction"] == numbers["reconstruction"]
    page = open(html_path).read()
    assert "http://" not in page and "https://" not in page  # nothing fetched: it reads offline
    sources = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert len(sources) == len(report["figures"]) == 3  # reconstructions, ex-post samples, anomaly scores
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


def test_vae_report_kl_per_unit_likelihood_and_manifold(digits_split):
    (x_train, _), _, (x_test, _) = (digits_split[s] for s in data.SPLITS)
    model = _trained("vae", x_train, 5, latent_dim=2, hidden_units=[32], dynamic_binarization=True)
    report = evaluation.evaluate(model, x_test, num_samples=64, binarize_seed=1, verbose=0)
    numbers = report["numbers"]
    # The per-unit closed form against the loss term's own KL (tfd.kl_divergence) on the same binary draw.
    assert sum(numbers["kl_per_unit"]) == pytest.approx(numbers["loss_terms"]["kl"], rel=1e-4)
    binary = (np.random.default_rng(1).random(x_test.shape) < x_test).astype(np.float32)
    loc, scale = (np.asarray(v, np.float64) for v in model.posterior_parameters(binary))
    per_unit = np.mean(np.log(1 / scale) + (scale**2 + loc**2 - 1) / 2, axis=0)
    np.testing.assert_allclose(numbers["kl_per_unit"], per_unit, atol=1e-4)
    # The importance-weighted estimate (k = 64) lies above the ELBO on average (Burda et al. 2016, Theorem 1).
    ll = numbers["log_likelihood"]
    assert ll["mean"] > numbers["elbo"]
    assert 0 < ll["standard_error"] < 5
    assert {"latent_manifold", "samples_prior", "kl_per_unit"} <= set(report["figures"])


def test_a_conditional_vae_is_evaluated_given_the_labels_and_a_fitted_vqvae_prior_samples(digits_split):
    """The CVAE's report is of p(x|y): its importance-weighted log p(x|y) lies above its ELBO, its per-unit KL is
    the loss terms' KL given the labels (tfd.kl_divergence), its reconstructions are model.predict((x, y))'s;
    without labels it refuses. A VQ-VAE with a fitted PixelCNN shows prior samples, one without does not."""
    (x_train, y_train), _, (x_test, y_test) = (digits_split[s] for s in data.SPLITS)
    keras.utils.set_random_seed(0)
    model = keras_ae.get_model("cvae", input_shape=(64,), latent_dim=3, hidden_units=[32], seed=0)
    model.compile(jit_compile=False)
    model.fit(x_train.reshape(-1, 64), y_train, epochs=3, batch_size=64, verbose=0)
    x = x_test.reshape(-1, 64)
    numbers = evaluation.evaluate(model, x, num_samples=64, labels=y_test, verbose=0)["numbers"]
    assert numbers["log_likelihood"]["mean"] > numbers["elbo"]
    assert sum(numbers["kl_per_unit"]) == pytest.approx(numbers["loss_terms"]["kl"], rel=1e-4)
    errors = np.mean((x - model.predict((x, y_test), verbose=0)) ** 2)
    assert numbers["reconstruction"]["mse"] == pytest.approx(errors, rel=1e-5)
    with pytest.raises(ValueError, match="cvae is conditional: evaluate it with the class labels"):
        evaluation.evaluate(model, x, verbose=0)

    vqvae = _trained("vqvae", x_train, 1, latent_dim=4, num_codes=8, filters=[4, 8], prior_filters=8)
    assert "samples_prior" not in evaluation.evaluate(vqvae, x_test, verbose=0)["figures"]
    vqvae.fit_prior(x_train, epochs=1, verbose=0)
    assert "samples_prior" in evaluation.evaluate(vqvae, x_test, verbose=0)["figures"]


@pytest.mark.skipif(not os.path.isfile(os.path.join(SHARED_DATA, "mnist.npz")), reason="needs ../shared/data/mnist.npz")
def test_label_agreement_is_the_classifier_s_accuracy_on_samples_drawn_for_labels():
    """Test digits as the "samples" drawn for their own labels: the agreement is the classifier's accuracy
    (≥ 0.98, its 99.2 % on MNIST); drawn for shifted labels, it falls to the confusions' share (≤ 0.05)."""
    from keras_ae import sample_quality

    x = data.load("mnist", "test", data_dir=SHARED_DATA)[:1000]
    y = data.labels("mnist", "test", data_dir=SHARED_DATA)[:1000]
    for labels, (low, high) in ((y, (0.98, 1.0)), ((y + 1) % 10, (0.0, 0.05))):
        results = evaluation._sample_quality(
            sample_quality, "classifier_mnist", x, None, {"prior": lambda n, seed: x[:n]}, False, labels
        )
        assert low <= results["prior"]["label_agreement"] <= high


@pytest.mark.skipif(not os.path.isfile(os.path.join(SHARED_DATA, "mnist.npz")), reason="needs ../shared/data/mnist.npz")
def test_sample_quality_ranks_the_training_set_above_an_untrained_decoder():
    x_train = data.load("mnist", "train", data_dir=SHARED_DATA)[:600].reshape(-1, 784)
    x_test = data.load("mnist", "test", data_dir=SHARED_DATA)[:600].reshape(-1, 784)
    model = keras_ae.get_model("vae", input_shape=(784,), latent_dim=4, hidden_units=[16], seed=0)
    report = evaluation.evaluate(model, x_test, x_train=x_train, dataset="mnist", num_samples=4, verbose=0)
    quality = report["numbers"]["sample_quality"]
    assert quality["classifier"] == "classifier_mnist" and quality["examples"] == 600
    floor = quality["training_set"]["fd_mnist"]
    assert 3 * floor < quality["prior"]["fd_mnist"] and 3 * floor < quality["ex_post_gmm"]["fd_mnist"]
    assert quality["training_set"]["kid_mnist"] < quality["prior"]["kid_mnist"]
    assert tf.io.decode_png(report["figures"]["samples_prior"]).shape[-1] == 1
