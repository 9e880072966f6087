"""A small configuration of every registered model, shared by the tests that
run each model: keyword arguments beside `input_shape` and `latent_dim`."""

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
