"""The ex-post density sampler (Ghosh et al. 2020) against numpy references."""

import json

import numpy as np
import pytest

import keras_ae
from keras_ae.ex_post import ExPostDensity, codes


@pytest.fixture(scope="module")
def pca_and_data():
    """A PCA model (closed-form, no training noise) on two separated clusters of 16-d points, 30 % and 70 %."""
    rng = np.random.default_rng(0)
    a = rng.normal(-2.0, 0.3, size=(600, 16))
    b = rng.normal(+2.0, 0.3, size=(1400, 16))
    x = rng.permutation(np.concatenate([a, b])).astype(np.float32)
    model = keras_ae.get_model("pca", input_shape=(16,), latent_dim=3)
    model.fit(x, verbose=0)
    return model, x


def test_one_component_is_the_codes_mean_and_covariance(pca_and_data):
    model, x = pca_and_data
    density = ExPostDensity(num_components=1).fit(model, x)
    h = np.asarray(model.encode(x), np.float64)
    np.testing.assert_allclose(density.mixture.means_[0], h.mean(axis=0), atol=1e-5)
    # scikit-learn's maximum-likelihood covariance (bias=True) plus its reg_covar 1e-6 on the diagonal.
    np.testing.assert_allclose(density.mixture.covariances_[0], np.cov(h.T, bias=True) + 1e-6 * np.eye(3), atol=1e-5)
    np.testing.assert_allclose(codes(model, x, batch_size=7), h, rtol=1e-5, atol=1e-5)


def test_samples_reproduce_the_cluster_weights_in_random_order(pca_and_data):
    model, x = pca_and_data
    density = ExPostDensity(num_components=2).fit(model, x)
    h = density.sample_codes(4000, seed=1)
    # A draw decodes near its cluster's centre: a negative mean feature is cluster a (30 %).
    in_a = np.asarray(model.decode(h)).mean(axis=1) < 0
    assert abs(in_a.mean() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / 4000)  # within four standard errors
    # Both components in each half: not grouped by component as GaussianMixture.sample returns them.
    for half in (in_a[:2000], in_a[2000:]):
        assert 0.2 < half.mean() < 0.4
    decoded = density.sample(model, 5, seed=1)
    np.testing.assert_allclose(decoded, np.asarray(model.decode(density.sample_codes(5, seed=1))), atol=1e-6)


def test_config_round_trip_gives_the_same_draws_and_density(pca_and_data):
    model, x = pca_and_data
    density = ExPostDensity(num_components=2, seed=3).fit(model, x)
    rebuilt = ExPostDensity.from_config(json.loads(json.dumps(density.get_config())))
    np.testing.assert_array_equal(rebuilt.sample_codes(50, seed=9), density.sample_codes(50, seed=9))
    h = codes(model, x[:100])
    np.testing.assert_allclose(rebuilt.log_density(h), density.log_density(h), rtol=1e-10)


def test_unfitted_and_bad_arguments_are_one_line_errors(pca_and_data):
    model, x = pca_and_data
    with pytest.raises(ValueError, match="not fitted"):
        ExPostDensity().sample_codes(3)
    with pytest.raises(ValueError, match="needs as many examples"):
        ExPostDensity(num_components=10).fit(model, x[:5])
    with pytest.raises(ValueError, match="covariance_type"):
        ExPostDensity(covariance_type="banana")
