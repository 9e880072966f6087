"""Conv models for colour images of any size (issue 13): stages chosen from the
image size, batch normalization and residual blocks (their math, training,
saving, export to SavedModel and TFLite) and TensorBoard's colour images."""

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

import keras_ae
from export.export import export_model
from keras_ae import layers
from training import callbacks


def colour_images(n, size, seed=0):
    """n (size, size, 3) images in [0, 1] whose channels differ: red rises
    across, green down, blue is noise."""
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)
    red, green = np.meshgrid(ramp, ramp)
    blue = np.random.default_rng(seed).uniform(size=(n, size, size)).astype(np.float32)
    shift = np.linspace(0.0, 0.5, n, dtype=np.float32)[:, None, None]  # examples differ too
    return np.stack([np.broadcast_to(red, blue.shape) * (1 - shift), green * (1 - shift) + shift, blue], axis=-1)


def network_layers(model):
    """The layers of the model's encoder and decoder, residual blocks' own included, in order."""
    found = []
    for network in (model.encoder, model.decoder):
        for layer in network.layers:
            found += [layer, *layer.convs, *layer.norms] if isinstance(layer, layers.ResidualBlock) else [layer]
    return found


def batch_norms(model):
    return [layer for layer in network_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]


# ------------------------------------------------------- stages from the size
@pytest.mark.parametrize(
    "shape,filters,smallest",
    [
        ((64, 64, 3), [32, 64, 128, 256], (4, 4)),  # pythae's CelebA-64: 64 -> 4 in four stages
        ((128, 128, 3), [32, 64, 128, 256, 512], (4, 4)),
        ((28, 28, 1), [32, 64, 128], (4, 4)),  # 28 -> 14 -> 7 -> 4
        ((48, 96, 3), [32, 64, 128, 256], (3, 6)),  # the smaller side sets the depth
    ],
)
def test_auto_filters_halve_the_image_to_about_four(shape, filters, smallest):
    assert layers.auto_filters(shape) == filters
    encoder, decoder = layers.conv_networks(shape, layers.auto_filters(shape), 3, "relu", 2, 2)
    strided = [layer for layer in encoder.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [layer.strides for layer in strided] == [(2, 2)] * len(filters)
    assert strided[-1].output.shape[1:3] == smallest
    assert sum(isinstance(layer, keras.layers.Conv2DTranspose) for layer in decoder.layers) == len(filters)
    assert decoder.output_shape[1:] == shape


def test_auto_filters_are_recorded_in_the_config():
    model = keras_ae.get_model("conv_vae", input_shape=(32, 32, 3), latent_dim=2, filters="auto")
    assert model.get_config()["filters"] == [32, 64, 128]  # a saved model keeps its network if the rule changes
    assert [w.shape for w in type(model).from_config(model.get_config()).weights] == [w.shape for w in model.weights]


BAD_OPTIONS = [
    ({"filters": "wide"}, 'filters must be "auto" or a list of positive ints'),
    ({"input_shape": (64,), "filters": "auto"}, r"needs image inputs of shape \(height, width, channels\)"),
    ({"batch_norm": "yes"}, "batch_norm must be True or False"),
    ({"residual_blocks": -1}, "residual_blocks must be an int >= 0"),
    ({"residual_blocks": 1.5}, "residual_blocks must be an int >= 0"),
]


@pytest.mark.parametrize("name", ["conv", "conv_vae"])
@pytest.mark.parametrize("options,message", BAD_OPTIONS)
def test_bad_options_are_one_line_value_errors(name, options, message):
    with pytest.raises(ValueError, match=message) as error:
        keras_ae.get_model(name, **{"input_shape": (8, 8, 3), "latent_dim": 2, **options})
    assert "\n" not in str(error.value)


# -------------------------------------------------------- residual blocks
def conv_same(x, kernel, bias=None):
    """A 'same' stride-1 convolution in numpy: (n, h, w, c) * (k, k, c, f)."""
    k = kernel.shape[0]
    padded = np.pad(x, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)))
    h, w = x.shape[1:3]
    out = sum(
        np.einsum("nhwc,cf->nhwf", padded[:, i : i + h, j : j + w], kernel[i, j]) for i in range(k) for j in range(k)
    )
    return out if bias is None else out + bias


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("training", [False, True])
def test_residual_block_is_x_plus_f_of_x(batch_norm, training):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5, 6, 4)).astype(np.float32)
    block = layers.ResidualBlock(4, activation="relu", batch_norm=batch_norm)
    block.build(x.shape)
    for variable in block.weights:  # every parameter and statistic away from its initial value
        value = (
            rng.uniform(0.5, 1.5, variable.shape) if "variance" in variable.path else rng.normal(size=variable.shape)
        )
        variable.assign(value.astype(np.float32))

    def normalize(h, norm):
        if training:  # the batch's statistics over (n, h, w)
            mean, variance = h.mean(axis=(0, 1, 2)), h.var(axis=(0, 1, 2))
        else:
            mean, variance = np.asarray(norm.moving_mean), np.asarray(norm.moving_variance)
        return np.asarray(norm.gamma) * (h - mean) / np.sqrt(variance + norm.epsilon) + np.asarray(norm.beta)

    h = x
    for i, conv in enumerate(block.convs):
        h = conv_same(h, np.asarray(conv.kernel), None if batch_norm else np.asarray(conv.bias))
        h = normalize(h, block.norms[i]) if batch_norm else h
        h = np.maximum(h, 0) if i == 0 else h
    expected = np.maximum(x + h, 0)  # σ(x + F(x)), He et al. 2016
    np.testing.assert_allclose(block(x, training=training).numpy(), expected, rtol=1e-4, atol=1e-4)
    assert block.from_config(block.get_config()).get_config() == block.get_config()


def test_residual_blocks_sit_in_every_stage_at_its_resolution():
    model = keras_ae.get_model("conv", input_shape=(16, 16, 3), latent_dim=2, filters=[4, 8], residual_blocks=2)
    for network, sizes in ((model.encoder, [8, 8, 4, 4]), (model.decoder, [8, 8, 16, 16])):
        blocks = [layer for layer in network.layers if isinstance(layer, layers.ResidualBlock)]
        assert [block.output.shape[1] for block in blocks] == sizes


# ------------------------------------------------- batch norm: fit and save
def test_batch_norm_statistics_train_and_survive_a_round_trip(tmp_path):
    x = colour_images(32, 16)
    model = keras_ae.get_model(
        "conv_vae", input_shape=(16, 16, 3), latent_dim=2, filters=[4, 8], batch_norm=True, residual_blocks=1, seed=0
    )
    norms = batch_norms(model)
    # After each stride-2 conv and each block's two convs, in both networks.
    assert len(norms) == 2 * 2 * (1 + 2)
    # Their convolutions (all but the decoder's output) have no bias: BatchNormalization's β is theirs.
    convs = [
        layer
        for layer in network_layers(model)
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose))
        and layer is not model.decoder.layers[-1]
    ]
    assert len(convs) == 12 and not any(layer.use_bias for layer in convs)
    model.compile()
    model.fit(x, epochs=2, batch_size=8, verbose=0)
    for norm in norms:  # every moving statistic moved off its initial 0 and 1
        assert np.abs(np.asarray(norm.moving_mean)).max() > 0
        assert np.abs(np.asarray(norm.moving_variance) - 1).max() > 0
    # Inference uses them: the batch statistics would give another reconstruction.
    assert np.abs(model.decode(model.encode(x)) - model.decode(model.encode(x, training=True))).max() > 1e-4

    path = tmp_path / "bn.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.get_config() == model.get_config()
    for got, want in zip(batch_norms(loaded), norms, strict=True):
        np.testing.assert_array_equal(np.asarray(got.moving_mean), np.asarray(want.moving_mean))
        np.testing.assert_array_equal(np.asarray(got.moving_variance), np.asarray(want.moving_variance))
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())


def test_a_64x64_colour_autoencoder_learns():
    x = colour_images(8, 64)
    model = keras_ae.get_model("conv", input_shape=(64, 64, 3), latent_dim=8, filters="auto", batch_norm=True, seed=0)
    assert model.filters == [32, 64, 128, 256]
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    first = model.train_on_batch(x, return_dict=True)["loss"]
    for _ in range(9):
        last = model.train_on_batch(x, return_dict=True)["loss"]
    assert last < 0.6 * first


# ----------------------------------------------------------- TensorBoard
def written_images(log_dir):
    """{tag: (H, W, C) uint8} of the image summaries in `log_dir`."""
    found = {}
    for path in Path(log_dir).glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "images":
                    found[value.tag] = tf.io.decode_png(tf.make_ndarray(value.tensor)[2]).numpy()
    return found


def tiles(grid, n, size, columns=8, pad=1):
    """The first n size x size tiles of a grid `images.tile` made, as [0, 1] floats."""
    step = size + pad
    return np.stack([grid[(i // columns) * step :][:size, (i % columns) * step :][:, :size] for i in range(n)]) / 255.0


def test_tensorboard_shows_colour_reconstructions_and_samples(tmp_path):
    x = colour_images(16, 8)
    model = keras_ae.get_model("conv_vae", input_shape=(8, 8, 3), latent_dim=2, filters=[4], batch_norm=True, seed=0)
    writer = callbacks.ImageSummaries(str(tmp_path), x, every=1)
    writer.set_model(model)
    writer.on_train_begin()
    writer.write(0)
    writer.on_train_end()
    pictures = written_images(tmp_path)

    grid = pictures["reconstructions"]
    assert grid.shape == (4 * 9 - 1, 8 * 9 - 1, 3)
    shown = tiles(grid, 32, 8)  # inputs beside their reconstructions
    png = 1 / 255 + 1e-6  # the PNG's 8 bits
    np.testing.assert_allclose(shown[0::2], x, atol=png)
    np.testing.assert_allclose(shown[1::2], model(x).numpy(), atol=png)
    assert np.abs(shown[0::2, ..., 0] - shown[0::2, ..., 1]).max() > 0.5  # not grey where the input is not
    assert np.abs(shown[1::2, ..., 0] - shown[1::2, ..., 2]).max() > 2 * png

    samples = tiles(pictures["prior_samples"], 16, 8)
    np.testing.assert_allclose(samples, model.sample(16, seed=0).numpy(), atol=png)
    assert np.abs(samples[..., 0] - samples[..., 1]).max() > 2 * png
    assert pictures["filters"].shape[-1] == 3  # the first layer's RGB kernels


# ----------------------------------------------------------------- export
@pytest.mark.parametrize("name", ["conv", "conv_vae"])
def test_rgb_export_matches_keras(name, tmp_path):
    x = colour_images(24, 16)
    model = keras_ae.get_model(
        name, input_shape=(16, 16, 3), latent_dim=3, filters=[4, 8], batch_norm=True, residual_blocks=1, seed=0
    )
    rng = np.random.default_rng(1)
    for norm in batch_norms(model):  # trained-looking statistics, for the export to fold in
        norm.moving_mean.assign(rng.normal(0, 0.1, norm.moving_mean.shape).astype(np.float32))
        norm.moving_variance.assign(rng.uniform(0.5, 2.0, norm.moving_variance.shape).astype(np.float32))
    report = export_model(model, tmp_path, tflite="float32", representative_data=x[:16], heldout_data=x[16:])
    assert all(result["within_bound"] for result in report["formats"].values())

    heldout = x[16:]
    expected = model(heldout, training=False).numpy()
    saved = tf.saved_model.load(str(tmp_path / "saved_model")).signatures["serving_default"](x=tf.constant(heldout))
    runner = Interpreter(model_path=str(tmp_path / "model_float32.tflite")).get_signature_runner("serving_default")
    for exported in (saved["reconstruction"].numpy(), runner(x=heldout)["reconstruction"]):
        assert exported.shape == (8, 16, 16, 3)
        np.testing.assert_allclose(exported, expected, rtol=0, atol=1e-5)
    # The export is of inference: a batch's own statistics would give another output.
    assert np.abs(model(heldout, training=True).numpy() - expected).max() > 1e-3
