"""Sample quality (issue 15): the Fréchet distance against the closed form of two Gaussians and an
eigendecomposition, the kernel distance against a brute-force double loop, and the shipped feature classifier.

The shipped classifiers' recorded numbers are re-measured in test_shipped_presets.py.
"""

import os
import warnings

import numpy as np
import pytest

from keras_ae import presets, sample_quality
from keras_ae.sample_quality import frechet_distance, kernel_inception_distance

DATA_DIR = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "shared", "data")


def _psd_sqrt(s):
    """The symmetric square root of a positive semi-definite matrix, by eigendecomposition."""
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def _fd_by_eigenvalues(mu_a, s_a, mu_b, s_b):
    """The Fréchet distance with Tr((S_a S_b)^{1/2}) = Σ sqrt(eig(S_a^{1/2} S_b S_a^{1/2})): no sqrtm of a product."""
    middle = np.linalg.eigvalsh(_psd_sqrt(s_a) @ s_b @ _psd_sqrt(s_a))
    return np.sum((mu_a - mu_b) ** 2) + np.trace(s_a) + np.trace(s_b) - 2 * np.sum(np.sqrt(np.clip(middle, 0, None)))


def _gaussians(diagonal, d=4, seed=0):
    """Two Gaussians' (mean, covariance); full ones do not commute, so (S_a S_b)^{1/2} is no product of roots."""
    rng = np.random.default_rng(seed)
    mu_a, mu_b = rng.normal(size=d), rng.normal(size=d)
    if diagonal:
        return mu_a, np.diag(rng.uniform(0.2, 3, d)), mu_b, np.diag(rng.uniform(0.2, 3, d))
    m_a, m_b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    return mu_a, m_a @ m_a.T + 0.1 * np.eye(d), mu_b, m_b @ m_b.T + 0.1 * np.eye(d)


@pytest.mark.parametrize("diagonal", [True, False], ids=["diagonal", "full"])
def test_the_frechet_distance_of_large_samples_is_that_of_their_gaussians(diagonal):
    mu_a, s_a, mu_b, s_b = _gaussians(diagonal)
    if diagonal:  # the closed form: ||mu_a − mu_b||² + Σ_i (σ_a,i − σ_b,i)²
        truth = np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt(np.diag(s_a)) - np.sqrt(np.diag(s_b))) ** 2)
    else:
        truth = _fd_by_eigenvalues(mu_a, s_a, mu_b, s_b)
    rng = np.random.default_rng(1)
    n, chunks = 200_000, 20
    a, b = rng.multivariate_normal(mu_a, s_a, n), rng.multivariate_normal(mu_b, s_b, n)
    estimate = frechet_distance(a, b)
    # The sampling error of the estimate: the spread of the estimates of `chunks` disjoint parts, / sqrt(chunks);
    # plus its bias, E||mean_a − mean_b||² − ||mu_a − mu_b||² = Tr(S_a + S_b) / n (the covariance term's is smaller).
    parts = [frechet_distance(x, y) for x, y in zip(np.split(a, chunks), np.split(b, chunks), strict=True)]
    tolerance = 5 * np.std(parts) / np.sqrt(chunks) + (np.trace(s_a) + np.trace(s_b)) / n
    assert abs(estimate - truth) < tolerance, (estimate, truth, tolerance)
    assert tolerance < 0.05 * truth  # tight enough to catch a wrong term


def test_the_frechet_distance_of_two_samples_is_the_eigendecomposition_formula_of_their_moments():
    rng = np.random.default_rng(2)
    a = rng.exponential(size=(300, 6)) @ rng.normal(size=(6, 6))  # not Gaussian: FD only reads two moments
    b = rng.uniform(size=(200, 6)) @ rng.normal(size=(6, 6)) + 1
    a[:, 2] = b[:, 2] = 0.5  # a dead unit in both sets: singular covariances, which sqrtm would warn about
    a[:, 4] = 0  # and one silent in a alone: a singular product
    expected = _fd_by_eigenvalues(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)
        assert frechet_distance(b, a) == pytest.approx(expected, rel=1e-9)
        assert abs(frechet_distance(a, a)) < 1e-8


def _mmd2_unbiased_by_loops(x, y):
    """The unbiased MMD² of Gretton et al. 2012 (eq. 3) with k(u, v) = (uᵀv / d + 1)³, term by term."""
    m, n, d = len(x), len(y), x.shape[1]

    def k(u, v):
        return (sum(ui * vi for ui, vi in zip(u, v, strict=True)) / d + 1) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_the_kernel_distance_is_the_unbiased_mmd_of_a_brute_force_double_loop():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(7, 3)), rng.normal(0.5, 1.5, size=(7, 3))
    # One subset of all 7 (subset_size is capped by the sample sizes): a permutation, which MMD² ignores.
    mean, std = kernel_inception_distance(x, y, num_subsets=1, subset_size=1000)
    assert mean == pytest.approx(_mmd2_unbiased_by_loops(x, y), rel=1e-12) and std == 0
    # Subsets of 5: the mean of the subsets' double loops, drawn as the function draws them.
    mean, std = kernel_inception_distance(x, y, num_subsets=3, subset_size=5, seed=4)
    draw, each = np.random.default_rng(4), []
    for _ in range(3):
        rows_x, rows_y = draw.choice(7, 5, replace=False), draw.choice(7, 5, replace=False)
        each.append(_mmd2_unbiased_by_loops(x[rows_x], y[rows_y]))
    assert (mean, std) == pytest.approx((np.mean(each), np.std(each)), rel=1e-12)


def test_the_kernel_distance_is_zero_for_one_distribution_and_positive_for_a_shifted_one():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(2000, 16)), rng.normal(size=(2000, 16))
    same, same_std = kernel_inception_distance(a, b, num_subsets=50, subset_size=500)
    assert abs(same) < 3 * same_std  # unbiased: 0 in expectation at any sample size
    shifted, shifted_std = kernel_inception_distance(a, b + 0.3, num_subsets=50, subset_size=500)
    assert shifted > 10 * shifted_std and shifted > 10 * abs(same)


def test_bad_feature_sets_and_unknown_data_sets_are_one_line_errors():
    a = np.zeros((10, 3))
    for fn in (frechet_distance, kernel_inception_distance):
        with pytest.raises(ValueError, match="differ in width"):
            fn(a, np.zeros((10, 4)))
        with pytest.raises(ValueError, match=r"finite \(N, d\) array"):
            fn(np.full((10, 3), np.nan), a)
    with pytest.raises(ValueError, match="No feature classifier is shipped for the data set 'digits'") as error:
        sample_quality.classifier_for("digits")
    assert "\n" not in str(error.value)


def test_the_classifier_scores_images_and_flat_vectors_alike_and_round_trips_its_config():
    model = sample_quality.FeatureClassifier(input_shape=(28, 28, 1), units=16, filters=(4, 8))
    x = np.random.default_rng(6).uniform(size=(5, 28, 28, 1)).astype(np.float32)
    features = model.features(x, batch_size=2)
    assert features.shape == (5, 16)
    np.testing.assert_array_equal(model.features(x.reshape(5, 784), batch_size=2), features)
    np.testing.assert_allclose(model.features(x), features, rtol=1e-5, atol=1e-6)  # batches: only rounding
    copy = sample_quality.FeatureClassifier.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    np.testing.assert_array_equal(np.asarray(copy(x)), np.asarray(model(x)))
    with pytest.raises(ValueError, match=r"takes values in \[0, 1\]"):
        model.features(x * 255)
    with pytest.raises(ValueError, match="Wrong feature shape"):
        model.features(x[:, :27])
    with pytest.raises(ValueError, match="records no data set"):  # no preset: the metrics' names need one
        sample_quality.sample_quality(x, x, model)


needs_mnist = pytest.mark.skipif(
    not os.path.exists(os.path.join(DATA_DIR, "mnist.npz")), reason=f"needs the checksummed data sets in {DATA_DIR}"
)


@pytest.mark.skipif("classifier_mnist" not in {m["name"] for m in presets.list_presets()}, reason="not shipped")
@needs_mnist
def test_the_shipped_mnist_classifier_loads_by_name_and_classifies():
    from keras_ae import data

    classifier = sample_quality.classifier_for("mnist")
    assert isinstance(classifier, sample_quality.FeatureClassifier)
    assert classifier.preset_metadata["name"] == "classifier_mnist"
    x, y = data.load("mnist", "test", data_dir=DATA_DIR)[:500], data.labels("mnist", "test", data_dir=DATA_DIR)[:500]
    assert np.mean(np.argmax(classifier.predict(x, verbose=0), axis=1) == y) > 0.97
    # Flat samples against images; the metric names carry the data set the preset records.
    scores = sample_quality.sample_quality(x[:250].reshape(250, 784), x[250:], classifier, num_subsets=5)
    assert sorted(scores) == ["fd_mnist", "kid_mnist", "kid_mnist_std"]
    features, reference = classifier.features(x[:250]), classifier.features(x[250:])
    assert scores["fd_mnist"] == pytest.approx(frechet_distance(features, reference), rel=1e-6)
    assert (scores["kid_mnist"], scores["kid_mnist_std"]) == pytest.approx(
        kernel_inception_distance(features, reference, num_subsets=5), rel=1e-6
    )
