"""The benchmark's workloads: plain data, read by the TensorFlow and the PyTorch workers.

Each workload names a keras-ae model and its configuration, and describes the
same network for the hand-written TensorFlow loop and for PyTorch:

    kind: "vae" (Gaussian q(z|x), Bernoulli p(x|z), analytic KL),
          "ae" (sigmoid cross-entropy reconstruction from the logits), or
          "cae" (an "ae" plus λ ||∂h/∂x||²_F computed by `jacobian`);
    net: "mlp" (dense layers `hidden`, code `latent`) or "conv" (stride-2
         convolutions `filters`, 3x3 kernels, as `keras_ae.models.conv`).

The inputs are binary: Bernoulli(0.3) noise, or MNIST thresholded (`--data`) for the 28x28 ones.
Workloads in the same `group` are timed in the same alternation, so ratios
between them (the contractive penalty's cost over the plain AE) are taken
round by round like the ratios between methods.
"""

BATCH = 100

_VAE = dict(input_shape=(784,), latent_dim=20, hidden_units=[500, 500], activation="tanh")
_AE_DEEP = dict(
    input_shape=(784,),
    latent_dim=32,
    hidden_units=[500, 500],
    activation="sigmoid",
    output_activation="sigmoid",
    reconstruction_loss="bce",
)
_AE_SHALLOW = dict(
    input_shape=(784,),
    latent_dim=256,
    hidden_units=[],
    activation="sigmoid",
    output_activation="sigmoid",
    reconstruction_loss="bce",
)


def _workload(name, group, title, model, config, kind, baseline=None):
    """A workload; the network the other runners build is read off the keras-ae `config`."""
    if "filters" in config:
        net = dict(net="conv", filters=config["filters"], activation=config.get("activation", "relu"))
    else:
        net = dict(net="mlp", hidden=config["hidden_units"], activation=config["activation"])
    workload = dict(name=name, group=group, title=title, model=model, config=config, kind=kind, **net)
    workload.update(latent=config["latent_dim"], input_shape=config["input_shape"])
    if kind == "cae":
        workload["jacobian"] = config["jacobian"]
    if baseline:
        workload["baseline"] = baseline
    return workload


WORKLOADS = [
    _workload("vae_mlp", "vae", "MLP VAE 784-500-500-20 tanh, Bernoulli", "vae", _VAE, "vae"),
    _workload("ae_mlp", "deep", "MLP AE 784-500-500-32 sigmoid (plain)", "autoencoder", _AE_DEEP, "ae"),
    _workload(
        "cae_projection",
        "deep",
        "contractive, projection (3-layer encoder)",
        "contractive",
        dict(_AE_DEEP, jacobian="projection"),
        "cae",
        baseline="ae_mlp",
    ),
    _workload(
        "cae_tape",
        "deep",
        "contractive, tape (3-layer encoder)",
        "contractive",
        dict(_AE_DEEP, jacobian="tape"),
        "cae",
        baseline="ae_mlp",
    ),
    _workload("ae_shallow", "shallow", "MLP AE 784-256 sigmoid (plain, one layer)", "autoencoder", _AE_SHALLOW, "ae"),
    _workload(
        "cae_analytic",
        "shallow",
        "contractive, closed form (one layer)",
        "contractive",
        dict(_AE_SHALLOW, jacobian="analytic"),
        "cae",
        baseline="ae_shallow",
    ),
    _workload(
        "cae_tape_shallow",
        "shallow",
        "contractive, tape (one layer)",
        "contractive",
        dict(_AE_SHALLOW, jacobian="tape"),
        "cae",
        baseline="ae_shallow",
    ),
    _workload(
        "conv_vae",
        "conv",
        "conv VAE 28x28x1, filters 32-64, latent 20, relu",
        "conv_vae",
        dict(input_shape=(28, 28, 1), latent_dim=20, filters=[32, 64]),
        "vae",
    ),
    _workload(
        "conv_vae_rgb64",
        "conv64",
        "conv VAE 64x64x3, filters 32-64-128-256, latent 64, relu",
        "conv_vae",
        # The network `filters="auto"` builds for 64x64 images (keras_ae.layers.auto_filters), as pythae's CelebA-64.
        dict(input_shape=(64, 64, 3), latent_dim=64, filters=[32, 64, 128, 256]),
        "vae",
    ),
]

BY_NAME = {w["name"]: w for w in WORKLOADS}
GROUPS = list(dict.fromkeys(w["group"] for w in WORKLOADS))
