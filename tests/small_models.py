"""A small configuration of every registered model, shared by the tests that
run each model: keyword arguments beside `input_shape` and `latent_dim`; the
Keras reference outputs the export tests compare each format with, and how they
compare them."""

import keras
import numpy as np

from keras_ae.endpoints import label_input
from keras_ae.models.vae import VariationalAutoencoder

SMALL_CONFIGS = {
    "pca": {},
    "linear": {},
    "tied": {},
    "autoencoder": {"hidden_units": [16]},
    "conv": {"filters": [4, 8]},
    "sparse": {},
    "denoising": {"corruption": "gaussian", "noise_level": 0.2},
    "contractive": {"jacobian": "projection"},
    "wae": {"hidden_units": [16]},
    "rae": {},
    "vae": {"hidden_units": [16], "dynamic_binarization": True},
    "conv_vae": {"filters": [4]},
    "cvae": {"hidden_units": [16], "num_classes": 3, "dynamic_binarization": True},
    "hierarchical_vae": {
        "hidden_units": [16],
        "lower_latent_dim": 6,
        "upper_hidden_units": [8],
        "dynamic_binarization": True,
    },
    "vqvae": {
        "filters": [4, 8],
        "num_codes": 8,
        "codebook_update": "ema",
        "restart_unused_codes": True,
        "prior_filters": 8,
        "prior_residual_blocks": 1,
    },
}
# The models that take images (height, width, channels) only: the parametrized tests give them (8, 8, 1).
IMAGE_MODELS = ("conv", "conv_vae", "vqvae")


def labels_for(model, x):
    """Class labels of inputs x for a conditional model: every class in turn, as its export's checks use."""
    return label_input(model.num_classes).example(x)


def inputs_for(model, x):
    """What `fit`, `evaluate`, `predict` and `model(...)` take for inputs x: x, or for a conditional model
    the pair (x, labels) (`labels_for`)."""
    return (x, labels_for(model, x)) if model.conditional else x


def keras_outputs(model, x):
    """{endpoint: ({input name: input}, {output: float32 array})} from the Keras model's own methods on inputs
    `x` (with `labels_for` them, input "label", for a conditional model): the reference every exported format
    (SavedModel, TFLite, ONNX) is compared with."""

    def as_numpy(tensor):
        return keras.ops.convert_to_numpy(tensor).astype(np.float32)

    condition = {"label": labels_for(model, x)} if model.conditional else {}
    served = inputs_for(model, x)
    reconstruction = {"reconstruction": as_numpy(model(served))}
    outputs = {"serving_default": ("x", x, reconstruction), "reconstruct": ("x", x, reconstruction)}
    if isinstance(model, VariationalAutoencoder):
        loc, scale = model.posterior_parameters(served)
        z = as_numpy(loc)
        eps = np.random.default_rng(1).standard_normal(z.shape).astype(np.float32)

        def decode(h):
            return as_numpy(model.decode(h, *condition.values()))

        outputs["encode"] = ("x", x, {"mean": z, "log_variance": 2 * np.log(as_numpy(scale))})
        outputs["decode"] = ("z", z, {"reconstruction": decode(z)})
        outputs["sample"] = ("eps", eps, {"sample": decode(eps)})
    else:
        code = keras.ops.convert_to_numpy(model.encode(x))
        code = code if code.dtype == np.int32 else code.astype(np.float32)  # a VQ-VAE's indices stay int32
        outputs["encode"] = ("x", x, {"code": code})
        outputs["decode"] = ("code", code, {"reconstruction": as_numpy(model.decode(code))})
    if "anomaly_score" not in model.unexported_endpoints():
        score = model.anomaly_score(x)
        outputs["anomaly_score"] = ("x", x, {"anomaly_score": score})
        if model.anomaly_threshold is not None:
            outputs["is_anomaly"] = ("x", x, {"is_anomaly": model.is_anomaly(x), "anomaly_score": score})
    return {name: ({input_name: array, **condition}, out) for name, (input_name, array, out) in outputs.items()}


def assert_matches(model, got, want, bound):
    """An exported endpoint's outputs `got` against the Keras model's `want` ({output: array}) within
    `bound`: an anomaly score, a sum over the features, within `bound` per feature (each term rounds
    on its own); a flag, a bool, equal to the model's wherever its score is farther than that from the
    threshold."""
    score_bound = bound * model.num_features
    for key, value in want.items():
        exported = np.asarray(got[key])
        if key == "is_anomaly":
            assert exported.dtype == bool
            clear = np.abs(want["anomaly_score"] - model.anomaly_threshold) > score_bound
            np.testing.assert_array_equal(exported[clear], value[clear], err_msg=key)
        else:
            assert exported.dtype == value.dtype, key  # float32, or a VQ-VAE's int32 indices
            atol = score_bound if key == "anomaly_score" else bound
            np.testing.assert_allclose(exported, value, rtol=0, atol=atol, err_msg=key)
