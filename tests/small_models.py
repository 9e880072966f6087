"""A small configuration of every registered model, shared by the tests that
run each model: keyword arguments beside `input_shape` and `latent_dim`; and the
Keras reference outputs the export tests compare each format with."""

import keras
import numpy as np

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
    "vae": {"hidden_units": [16], "dynamic_binarization": True},
    "conv_vae": {"filters": [4]},
    "hierarchical_vae": {
        "hidden_units": [16],
        "lower_latent_dim": 6,
        "upper_hidden_units": [8],
        "dynamic_binarization": True,
    },
}


def keras_outputs(model, x):
    """{endpoint: (input name, input, {output: float32 array})} from the Keras model's own methods on inputs
    `x`: the reference every exported format (SavedModel, TFLite, ONNX) is compared with."""

    def as_numpy(tensor):
        return keras.ops.convert_to_numpy(tensor).astype(np.float32)

    reconstruction = {"reconstruction": as_numpy(model(x))}
    outputs = {"serving_default": ("x", x, reconstruction), "reconstruct": ("x", x, reconstruction)}
    if isinstance(model, VariationalAutoencoder):
        loc, scale = model.posterior_parameters(x)
        z = as_numpy(loc)
        eps = np.random.default_rng(1).standard_normal(z.shape).astype(np.float32)
        outputs["encode"] = ("x", x, {"mean": z, "log_variance": 2 * np.log(as_numpy(scale))})
        outputs["decode"] = ("z", z, {"reconstruction": as_numpy(model.decode(z))})
        outputs["sample"] = ("eps", eps, {"sample": as_numpy(model.decode(eps))})
    else:
        code = as_numpy(model.encode(x))
        outputs["encode"] = ("x", x, {"code": code})
        outputs["decode"] = ("code", code, {"reconstruction": as_numpy(model.decode(code))})
    return outputs
