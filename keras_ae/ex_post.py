"""Sampling from any autoencoder through an ex-post density on its codes (Ghosh et al. 2020).

    density = ExPostDensity().fit(model, x_train)      # a 10-component Gaussian mixture on encode(x_train)
    x_new = density.sample(model, 64, seed=0)          # decode(h), h drawn from the mixture

A deterministic autoencoder has no prior to sample from; "From variational to deterministic autoencoders"
(Ghosh et al. 2020, §4) fits one after training, on the codes of the training data, and shows that a VAE
samples better through it too. scikit-learn's `GaussianMixture` fits it (EM, k-means initialization).
"""

import numpy as np
import scipy.linalg
from sklearn.mixture import GaussianMixture

from keras_ae import validation

COVARIANCE_TYPES = ("full", "diag", "tied", "spherical")


def codes(model, x, batch_size=256):
    """encode(x) in batches, (N, latent_dim) float64 numpy: a VAE's posterior means."""
    x = np.asarray(x, np.float32)
    return np.concatenate(
        [np.asarray(model.encode(x[i : i + batch_size]), np.float64) for i in range(0, len(x), batch_size)]
    )


class ExPostDensity:
    """A Gaussian mixture p(h) = Σ_k π_k N(h; μ_k, Σ_k) fitted on a trained model's codes.

    Args:
        num_components: K; 10, as in Ghosh et al. (2020), Table 1.
        covariance_type: "full" (the paper's), "diag", "tied" or "spherical" (scikit-learn's).
        seed: seed of the EM initialization, and of `sample` when it is given none.
    """

    def __init__(self, num_components=10, covariance_type="full", seed=0):
        self.num_components = validation.check_positive_int(num_components=num_components)
        validation.check_choice(covariance_type=(covariance_type, COVARIANCE_TYPES))
        self.covariance_type = covariance_type
        self.seed = seed
        self.mixture = None

    def fit(self, model, x, batch_size=256, verbose=0):
        """Fits the mixture on the codes of x (N, *feature_shape), N >= num_components; returns self.
        `verbose=1`: scikit-learn's lines at the start and end of EM (a fit on 10,000 codes can take a minute)."""
        h = codes(model, x, batch_size)
        if len(h) < self.num_components:
            raise ValueError(f"Fitting {self.num_components} components needs as many examples; got {len(h)}.")
        mixture = GaussianMixture(
            self.num_components,
            covariance_type=self.covariance_type,
            random_state=self.seed,
            verbose=int(verbose),
            verbose_interval=10,
        )
        self.mixture = mixture.fit(h)
        return self

    def _fitted(self):
        if self.mixture is None:
            raise ValueError("This ExPostDensity is not fitted: call fit(model, x_train) first.")
        return self.mixture

    def sample_codes(self, n, seed=None):
        """n codes h ~ p(h), (n, latent_dim) float32, in random order (scikit-learn returns them
        grouped by component)."""
        mixture = self._fitted()
        rng = np.random.default_rng(self.seed if seed is None else seed)
        mixture.random_state = int(rng.integers(2**31))
        h, _ = mixture.sample(validation.check_positive_int(n=n))
        return h[rng.permutation(len(h))].astype(np.float32)

    def sample(self, model, n, seed=None, batch_size=256):
        """n decoded samples decode(h), h ~ p(h): (n, *feature_shape) numpy."""
        h = self.sample_codes(n, seed)
        return np.concatenate(
            [np.asarray(model.decode(h[i : i + batch_size]), np.float32) for i in range(0, len(h), batch_size)]
        )

    def log_density(self, h):
        """log p(h) of codes (N, latent_dim): (N,) numpy."""
        return self._fitted().score_samples(np.asarray(h, np.float64))

    def get_config(self):
        """The constructor's arguments and, once fitted, the mixture's parameters (JSON-serializable)."""
        config = {"num_components": self.num_components, "covariance_type": self.covariance_type, "seed": self.seed}
        if self.mixture is not None:
            config["weights"] = self.mixture.weights_.tolist()
            config["means"] = self.mixture.means_.tolist()
            config["covariances"] = self.mixture.covariances_.tolist()
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        fitted = {name: np.asarray(config.pop(name)) for name in ("weights", "means", "covariances") if name in config}
        density = cls(**config)
        if fitted:
            # A GaussianMixture rebuilt from its parameters: what `sample` and `score_samples` read.
            mixture = GaussianMixture(density.num_components, covariance_type=density.covariance_type)
            mixture.weights_, mixture.means_, mixture.covariances_ = (
                fitted["weights"],
                fitted["means"],
                fitted["covariances"],
            )
            mixture.precisions_cholesky_ = _precisions_cholesky(fitted["covariances"], density.covariance_type)
            density.mixture = mixture
        return density


def _precisions_cholesky(covariances, covariance_type):
    """The Cholesky factors of the precisions that scikit-learn's GaussianMixture keeps beside its covariances
    (its `precisions_cholesky_`): for Σ = L Lᵀ, the upper-triangular (L⁻¹)ᵀ, so that Σ⁻¹ = (L⁻¹)ᵀ L⁻¹; for a
    diagonal or spherical Σ, 1/σ. Written here as scikit-learn has no public function for it."""
    covariances = np.asarray(covariances, np.float64)
    if covariance_type in ("diag", "spherical"):
        return 1.0 / np.sqrt(covariances)
    lower = np.linalg.cholesky(covariances)  # one matrix ("tied") or one a component ("full")
    identity = np.broadcast_to(np.eye(covariances.shape[-1]), covariances.shape)
    return np.swapaxes(scipy.linalg.solve_triangular(lower, identity, lower=True), -1, -2)
