"""The benchmark's workloads: plain data, read by the TensorFlow and the PyTorch workers.

Each workload names a keras-ae model and its configuration, and describes the
same network for the hand-written TensorFlow loop and for PyTorch:

    kind: "vae" (Gaussian q(z|x), Bernoulli p(x|z), analytic KL),
          "ae" (sigmoid cross-entropy reconstruction from the logits), or
          "cae" (an "ae" plus λ ||∂h/∂x||²_F computed by `jacobian`);
    net: "mlp" (dense layers `hidden`, code `latent`) or "conv" (stride-2
         convolutions `filters`, 3x3 kernels, as `keras_ae.models.conv`).

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

WORKLOADS = [
    dict(
        name="vae_mlp",
        group="vae",
        title="MLP VAE 784-500-500-20 tanh, Bernoulli",
        model="vae",
        config=_VAE,
        kind="vae",
        net="mlp",
        activation="tanh",
        hidden=[500, 500],
        latent=20,
        input_shape=(784,),
    ),
    dict(
        name="ae_mlp",
        group="deep",
        title="MLP AE 784-500-500-32 sigmoid (plain)",
        model="autoencoder",
        config=_AE_DEEP,
        kind="ae",
        net="mlp",
        activation="sigmoid",
        hidden=[500, 500],
        latent=32,
        input_shape=(784,),
    ),
    dict(
        name="cae_projection",
        group="deep",
        title="contractive, projection (3-layer encoder)",
        model="contractive",
        config=dict(_AE_DEEP, jacobian="projection"),
        kind="cae",
        jacobian="projection",
        net="mlp",
        activation="sigmoid",
        hidden=[500, 500],
        latent=32,
        input_shape=(784,),
        baseline="ae_mlp",
    ),
    dict(
        name="cae_tape",
        group="deep",
        title="contractive, tape (3-layer encoder)",
        model="contractive",
        config=dict(_AE_DEEP, jacobian="tape"),
        kind="cae",
        jacobian="tape",
        net="mlp",
        activation="sigmoid",
        hidden=[500, 500],
        latent=32,
        input_shape=(784,),
        baseline="ae_mlp",
    ),
    dict(
        name="ae_shallow",
        group="shallow",
        title="MLP AE 784-256 sigmoid (plain, one layer)",
        model="autoencoder",
        config=_AE_SHALLOW,
        kind="ae",
        net="mlp",
        activation="sigmoid",
        hidden=[],
        latent=256,
        input_shape=(784,),
    ),
    dict(
        name="cae_analytic",
        group="shallow",
        title="contractive, closed form (one layer)",
        model="contractive",
        config=dict(_AE_SHALLOW, jacobian="analytic"),
        kind="cae",
        jacobian="analytic",
        net="mlp",
        activation="sigmoid",
        hidden=[],
        latent=256,
        input_shape=(784,),
        baseline="ae_shallow",
    ),
    dict(
        name="cae_tape_shallow",
        group="shallow",
        title="contractive, tape (one layer)",
        model="contractive",
        config=dict(_AE_SHALLOW, jacobian="tape"),
        kind="cae",
        jacobian="tape",
        net="mlp",
        activation="sigmoid",
        hidden=[],
        latent=256,
        input_shape=(784,),
        baseline="ae_shallow",
    ),
    dict(
        name="conv_vae",
        group="conv",
        title="conv VAE 28x28x1, filters 32-64, latent 20, relu",
        model="conv_vae",
        config=dict(input_shape=(28, 28, 1), latent_dim=20, filters=[32, 64]),
        kind="vae",
        net="conv",
        activation="relu",
        filters=[32, 64],
        latent=20,
        input_shape=(28, 28, 1),
    ),
]

BY_NAME = {w["name"]: w for w in WORKLOADS}
GROUPS = list(dict.fromkeys(w["group"] for w in WORKLOADS))
