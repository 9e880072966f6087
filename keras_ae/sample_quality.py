"""Sample quality without downloads: Fréchet and kernel distances in the features of a small classifier.

The Fréchet Inception Distance needs Inception-v3 weights (a download) trained on colour photographs, which
say little about 28x28 grayscale digits. TF-GAN's `mnist_frechet_distance` uses a small classifier trained on
the data set itself instead; so does this module, with the classifiers shipped as presets:

    classifier = sample_quality.classifier_for("mnist")            # keras_ae.from_preset("classifier_mnist")
    scores = sample_quality.sample_quality(samples, test_images, classifier, "mnist")
    # {"fd_mnist": ..., "kid_mnist": ..., "kid_mnist_std": ...}

The numbers are named after the data set: they are not comparable with Inception FIDs, nor across data sets.
"""

import math
import warnings

import keras
import numpy as np
import scipy.linalg

from keras_ae import validation

CLASSIFIER_PRESETS = {
    "mnist": "classifier_mnist",
    "binarized_mnist": "classifier_mnist",  # the same digits, thresholded
    "fashion_mnist": "classifier_fashion_mnist",
}


@keras.saving.register_keras_serializable(package="keras_ae")
class FeatureClassifier(keras.Model):
    """A small CNN classifier whose penultimate activations are the features of the sample-quality metrics.

    conv 3x3 → max-pool 2 → conv 3x3 → max-pool 2 → dropout → dense `units` (ReLU: the features) → dropout
    → dense `num_classes` (logits). TF-GAN's MNIST classifier scores its logits; here, as Inception FID
    scores Inception's last pooling layer, the penultimate layer.

    Args:
        input_shape: one image, (height, width, channels), e.g. (28, 28, 1). Inputs may also come flat,
            (batch, height * width * channels), and are reshaped: the samples of a flat-vector model
            score as they are.
        num_classes: the number of classes (logits).
        filters: the filter counts of the conv-and-pool stages, one stage each.
        units: the width of the feature layer.
        dropout: the dropout rate before and after the feature layer (training only).
        padding: the convolutions' padding, "valid" or "same".
    """

    def __init__(
        self,
        input_shape=(28, 28, 1),
        num_classes=10,
        filters=(32, 64),
        units=128,
        dropout=0.25,
        padding="same",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image_shape = validation.check_input_shape(input_shape)
        if len(self.image_shape) != 3:
            raise ValueError(f"input_shape must be (height, width, channels); got {input_shape!r}.")
        self.num_classes = validation.check_positive_int(num_classes=num_classes)
        self.filters = tuple(validation.check_positive_int(filters=f) for f in filters)
        self.units = validation.check_positive_int(units=units)
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1); got {dropout!r}.")
        self.dropout = float(dropout)
        validation.check_choice(padding=(padding, ("valid", "same")))
        self.padding = padding
        layers = [keras.Input(self.image_shape)]
        for count in self.filters:
            layers += [
                keras.layers.Conv2D(count, 3, padding=self.padding, activation="relu"),
                keras.layers.MaxPooling2D(2),
            ]
        layers += [keras.layers.Flatten(), keras.layers.Dropout(self.dropout)]
        layers += [keras.layers.Dense(self.units, activation="relu")]
        self.trunk = keras.Sequential(layers, name="trunk")
        self.head = keras.Sequential(
            [keras.Input((self.units,)), keras.layers.Dropout(self.dropout), keras.layers.Dense(self.num_classes)],
            name="head",
        )
        self.built = True  # both parts are built above: the model loads weights without a first call

    def call(self, x, training=False):
        """The logits, (batch, num_classes), of images or flat vectors."""
        return self.head(self.trunk(self._images(x), training=training), training=training)

    def _images(self, x):
        if len(x.shape) == 2:
            x = keras.ops.reshape(x, (-1, *self.image_shape))
        return x

    def features(self, x, batch_size=500):
        """The penultimate activations of `x`, (N, units) float64 numpy, in batches of `batch_size`.

        `x`: (N, *input_shape) or (N, prod(input_shape)) values in [0, 1], the classifier's training range.
        """
        flat = len(getattr(x, "shape", ())) == 2
        x = validation.check_array(x, (math.prod(self.image_shape),) if flat else self.image_shape)
        if x.min() < 0 or x.max() > 1:
            raise ValueError(
                f"The classifier takes values in [0, 1], its training data's range; got values in "
                f"[{x.min():.4g}, {x.max():.4g}]. Scale the images (pixels / 255), or clip: np.clip(x, 0, 1)."
            )
        batches = [
            keras.ops.convert_to_numpy(self.trunk(self._images(x[i : i + batch_size]), training=False))
            for i in range(0, len(x), batch_size)
        ]
        return np.concatenate(batches).astype(np.float64)

    def compile(self, optimizer="adam", loss=None, metrics=None, **kwargs):
        """`keras.Model.compile` with defaults: Adam, sparse categorical cross-entropy of the logits, accuracy."""
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True) if loss is None else loss
        metrics = ["accuracy"] if metrics is None else metrics
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def get_config(self):
        return {
            "name": self.name,
            "input_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            "filters": list(self.filters),
            "units": self.units,
            "dropout": self.dropout,
            "padding": self.padding,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _features_2d(features, what):
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2 or not np.all(np.isfinite(features)):
        raise ValueError(f"{what} must be a finite (N, d) array with N >= 2; got shape {features.shape}.")
    return features


def frechet_distance(features_a, features_b):
    """The Fréchet distance of the Gaussians fitted to two feature sets (N_a, d) and (N_b, d); a float.

    The Fréchet (2-Wasserstein) distance of N(mu_a, S_a) and N(mu_b, S_b), the FID of Heusel et al. 2017 when
    the features are Inception's. Covariances are unbiased (N - 1), as in TF-GAN and pytorch-fid.
    """
    a, b = _features_2d(features_a, "features_a"), _features_2d(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"The feature sets differ in width: {a.shape[1]} and {b.shape[1]}.")
    # A feature constant over both sets (a dead ReLU unit) adds nothing to the distance but makes both
    # covariances singular, which sqrtm warns about: leave it out.
    varying = np.ptp(np.concatenate([a, b]), axis=0) > 0
    a, b = a[:, varying], b[:, varying]
    if not np.any(varying):
        return 0.0
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    s_a, s_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    product = s_a @ s_b
    with warnings.catch_warnings():  # a singular product (fewer examples than features, units silent on one
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)  # set) has a root too: checked below
        root = scipy.linalg.sqrtm(product)
    residual = np.linalg.norm(root @ root - product) / max(np.linalg.norm(product), np.finfo(float).tiny)
    if not np.all(np.isfinite(root)) or residual > 1e-6:  # no accurate root: offset both, as pytorch-fid does
        offset = 1e-6 * np.eye(len(s_a))
        root = scipy.linalg.sqrtm((s_a + offset) @ (s_b + offset))
    # (S_a S_b)^{1/2} is real in exact arithmetic (similar to S_a^{1/2} S_b S_a^{1/2}); rounding leaves tiny
    # imaginary parts, dropped as TF-GAN and pytorch-fid do.
    root = np.real(root)
    # d² = ||mu_a − mu_b||² + Tr(S_a + S_b − 2 (S_a S_b)^{1/2})   (Dowson & Landau 1982; Heusel et al. 2017)
    distance = np.sum((mu_a - mu_b) ** 2) + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(root)
    return float(distance)


def kernel_inception_distance(features_a, features_b, num_subsets=100, subset_size=1000, seed=0):
    """The kernel distance of two feature sets: (mean, standard deviation) of unbiased MMD² estimates.

    Bińkowski et al. 2018 ("Demystifying MMD GANs"): the unbiased MMD² estimate with the cubic polynomial kernel,
    on `num_subsets` pairs of random subsets of `subset_size` (capped by both sample sizes) drawn without
    replacement, seeded by `seed`. Unlike the Fréchet distance it is unbiased: its expectation is 0 for two
    samples of one distribution, at any sample size.
    """
    a, b = _features_2d(features_a, "features_a"), _features_2d(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"The feature sets differ in width: {a.shape[1]} and {b.shape[1]}.")
    num_subsets = validation.check_positive_int(num_subsets=num_subsets)
    m = min(validation.check_int(2, subset_size=subset_size), len(a), len(b))
    d = a.shape[1]
    rng = np.random.default_rng(seed)
    estimates = np.empty(num_subsets)
    for i in range(num_subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        # k(x, y) = (xᵀy / d + 1)³   (Bińkowski et al. 2018, the kernel of KID)
        k_xx, k_yy, k_xy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
        # MMD²_u = Σ_{i≠j} k(x_i, x_j) / (m(m−1)) + Σ_{i≠j} k(y_i, y_j) / (m(m−1)) − 2 Σ_{i,j} k(x_i, y_j) / m²
        #   (the unbiased estimator of Gretton et al. 2012, "A kernel two-sample test"; Bińkowski et al. 2018)
        estimates[i] = (
            (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
            + (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
            - 2 * k_xy.mean()
        )
    return float(estimates.mean()), float(estimates.std())


def sample_quality_of_features(features, reference_features, name, num_subsets=100, subset_size=1000, seed=0):
    """{"fd_<name>", "kid_<name>", "kid_<name>_std"} of two feature sets (`FeatureClassifier.features`): compute a
    reference's features once and score many samplers against them. `name` is the classifier's data set."""
    kid, kid_std = kernel_inception_distance(
        features, reference_features, num_subsets=num_subsets, subset_size=subset_size, seed=seed
    )
    return {
        f"fd_{name}": frechet_distance(features, reference_features),
        f"kid_{name}": kid,
        f"kid_{name}_std": kid_std,
    }


def sample_quality(samples, reference, classifier, name=None, num_subsets=100, subset_size=1000, seed=0):
    """The Fréchet and kernel distances of `samples` to `reference` images in `classifier`'s features.

    Args:
        samples, reference: (N, *image_shape) or flat (N, D) arrays in [0, 1], e.g. a model's samples and the
            data set's test split.
        classifier: a `FeatureClassifier` trained on that data set (`classifier_for(name)`).
        name: the data set's name, put in the metric names: {"fd_<name>", "kid_<name>", "kid_<name>_std"};
            None: the data set a preset classifier records.
        num_subsets, subset_size, seed: of `kernel_inception_distance`.
    """
    if name is None:
        dataset = getattr(classifier, "preset_metadata", {}).get("dataset", {})
        name = dataset.get("name") if isinstance(dataset, dict) else None
        if not name:
            raise ValueError("The classifier records no data set (it is no preset): give the data set's name.")
    return sample_quality_of_features(
        classifier.features(samples), classifier.features(reference), name, num_subsets, subset_size, seed
    )


def classifier_name(dataset_name):
    """The name of the shipped feature-classifier preset of a data set, or None where none is shipped."""
    return CLASSIFIER_PRESETS.get(dataset_name)


def load_classifier(preset):
    """A feature-classifier preset by name, folder or URL (`keras_ae.from_preset`), checked to be one."""
    from keras_ae import presets

    model = presets.from_preset(preset)
    if not isinstance(model, FeatureClassifier):
        raise ValueError(f"The preset {preset} is a {type(model).__name__}, not a feature classifier.")
    return model


def classifier_for(dataset_name):
    """The shipped `FeatureClassifier` preset of a data set: "mnist" or "fashion_mnist"."""
    if dataset_name not in CLASSIFIER_PRESETS:
        known = ", ".join(sorted(CLASSIFIER_PRESETS))
        raise ValueError(f"No feature classifier is shipped for the data set {dataset_name!r}; there are: {known}.")
    return load_classifier(CLASSIFIER_PRESETS[dataset_name])
