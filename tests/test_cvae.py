"""The conditional VAE (issue 16) against its references: its ELBO from a numpy forward pass of [x, one_hot(y)]
and [z, one_hot(y)] with the model's own draws; a decoder that reads the label; prior samples of a trained model
that draw the asked class; one-line errors for bad labels, weights untouched; unconditional models unchanged;
labelled data: the pipeline's (x, labels) batches, class subfolders, label arrays, and a training run."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_ae
from keras_ae import cli, data, pipeline, sources, validation
from training import train

K, LATENT, FEATURES = 4, 3, 16
RNG = np.random.default_rng(0)
X = (RNG.uniform(size=(12, FEATURES)) < 0.4).astype("float32")
LABELS = np.arange(12) % K


def small(**options):
    config = {"input_shape": (FEATURES,), "latent_dim": LATENT, "num_classes": K, "hidden_units": [8], "seed": 0}
    return keras_ae.get_model("cvae", **{**config, **options})


def _mlp(network, inputs, last=None):
    """A dense network's output in float64 numpy: tanh hidden layers, the last one linear."""
    dense = [[w.astype(np.float64) for w in layer.get_weights()] for layer in network.layers if layer.weights]
    for i, (kernel, bias) in enumerate(dense):
        inputs = inputs @ kernel + bias
        inputs = inputs if i == len(dense) - 1 else np.tanh(inputs)
    return inputs


def test_elbo_terms_are_the_numpy_elbo_of_x_given_its_labels_at_the_model_s_draws():
    """−E_q log p(x|z, y) and KL(q(z|x, y) ‖ N(0, I)) (Kingma et al. 2014, eq. 6) from the networks on
    [x, one_hot(y)] and [z, one_hot(y)], z = μ + σ ε with the ε the model drew."""
    model = small()
    state = keras.ops.convert_to_numpy(model.seed_generator.state)
    terms = model.loss_terms(tf.constant(X), LABELS)
    model.seed_generator.state.assign(state)  # the same draw again
    eps = model.epsilon(tf.constant([1, len(X), LATENT])).numpy()[0].astype(np.float64)
    y = np.eye(K)[LABELS]
    loc, raw = np.split(_mlp(model.encoder, np.concatenate([X, y], axis=1)), 2, axis=1)
    scale = np.logaddexp(0.0, raw) + 1e-6
    logits = _mlp(model.decoder, np.concatenate([loc + scale * eps, y], axis=1))
    log_px = np.sum(X * -np.logaddexp(0.0, -logits) + (1 - X) * -np.logaddexp(0.0, logits), axis=1)
    kl = np.sum(0.5 * (loc**2 + scale**2 - 1.0) - np.log(scale), axis=1)
    np.testing.assert_allclose(terms["reconstruction"].numpy(), -log_px.mean(), rtol=1e-5)
    np.testing.assert_allclose(terms["kl"].numpy(), kl.mean(), rtol=1e-5)
    np.testing.assert_allclose(terms["elbo"].numpy(), np.mean(log_px - kl), rtol=1e-5)
    np.testing.assert_allclose(terms["loss"].numpy(), -np.mean(log_px - kl), rtol=1e-5)
    # The same x under other labels: another posterior, so another KL.
    other = model.loss_terms(tf.constant(X), (LABELS + 1) % K)
    assert abs(other["kl"].numpy() - terms["kl"].numpy()) > 1e-4


def test_log_likelihood_given_labels_equals_numerical_integration_and_bounds_the_elbo():
    """log p(x|y) = log ∫ p(x|z, y) N(z; 0, 1) dz on a grid, from a numpy pass of the decoder on [z, one_hot(y)],
    for a 1-D code; the encoder gives q = N(0, 1) (zero last layer, log σ² = 0), a proposal of finite weight
    variance, so 20,000 draws estimate it to a few hundredths. The ELBO lies below it, and both change with y."""
    rng = np.random.default_rng(3)
    model = small(latent_dim=1, scale_activation="exp")
    model.decoder.set_weights([rng.normal(scale=0.8, size=w.shape).astype("float32") for w in model.decoder.weights])
    kernel, bias = model.encoder.layers[-1].get_weights()
    model.encoder.layers[-1].set_weights([np.zeros_like(kernel), np.zeros_like(bias)])
    grid = np.linspace(-8, 8, 1601)
    exact = []
    for x, y in zip(X[:6], LABELS[:6], strict=True):
        logits = _mlp(model.decoder, np.concatenate([grid[:, None], np.tile(np.eye(K)[y], (len(grid), 1))], axis=1))
        log_joint = -(np.logaddexp(0, logits) - x * logits).sum(axis=1) - 0.5 * grid**2 - 0.5 * np.log(2 * np.pi)
        top = log_joint.max()
        exact.append(top + np.log(np.exp(log_joint - top).sum() * (grid[1] - grid[0])))
    estimate = model.log_likelihood(X[:6], num_samples=20000, labels=LABELS[:6])
    np.testing.assert_allclose(estimate, exact, atol=0.03)
    repeats = 500  # E_q log w ≤ log p(x|y), the mean of 500 one-draw ELBOs of each example
    elbo = model.elbo(np.tile(X[:6], (repeats, 1)), labels=np.tile(LABELS[:6], repeats)).reshape(repeats, 6).mean(0)
    assert np.all(elbo < np.asarray(exact) - 0.01)
    other = model.log_likelihood(X[:6], num_samples=20000, labels=(LABELS[:6] + 1) % K)
    assert np.max(np.abs(other - estimate)) > 0.1  # another label, another likelihood
    pairs = tf.data.Dataset.from_tensor_slices((X[:6], LABELS[:6])).batch(4)  # a dataset of (x, labels) batches
    np.testing.assert_allclose(model.log_likelihood(pairs, num_samples=20000), exact, atol=0.03)
    with pytest.raises(ValueError, match="labels"):
        model.elbo(X[:6])
    with pytest.raises(ValueError, match="not conditional"):
        keras_ae.get_model("vae", input_shape=(FEATURES,), latent_dim=1).elbo(X, labels=LABELS)


def test_the_decoder_reads_the_label_and_the_same_eps_and_label_give_the_same_image():
    model = small()
    eps = np.random.default_rng(1).standard_normal((5, LATENT)).astype("float32")
    by_label = [keras.ops.convert_to_numpy(model.decode(eps, np.full(5, c))) for c in range(K)]
    for c in range(1, K):
        assert np.max(np.abs(by_label[c] - by_label[0])) > 1e-3
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.decode(eps, np.full(5, 2))), by_label[2])
    # sample(n, label, seed): the decoder mean at z ~ N(0, I) drawn from the seed, for an int or one label a draw.
    seeded = keras.random.normal((5, LATENT), seed=7)
    np.testing.assert_array_equal(model.sample(5, 2, seed=7), model.decode(seeded, np.full(5, 2)))
    np.testing.assert_array_equal(model.sample(5, np.arange(5) % K, seed=7), model.decode(seeded, np.arange(5) % K))
    # The model reconstructs (x, labels) pairs: model(...) and predict give the decoder mean at E_q[z|x, y].
    expected = model.decode(model.encode(X, LABELS), LABELS).numpy()
    np.testing.assert_allclose(model((X, LABELS)).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(model.predict((X, LABELS), verbose=0), expected, rtol=1e-5, atol=1e-6)
    pairs = tf.data.Dataset.from_tensor_slices((X, LABELS)).batch(5)
    np.testing.assert_allclose(model.predict(pairs, verbose=0), expected, rtol=1e-5, atol=1e-6)
    model.compile(jit_compile=False)
    # A dataset of pairs validates as it trains: its val_loss, one draw an example, is the mean −ELBO of (x, y)
    # after the epoch within 4 of its standard errors (a 400-draw Monte Carlo estimate of each example's).
    history = model.fit(pairs, validation_data=pairs, verbose=0).history
    draws = -model.elbo(np.tile(X, (400, 1)), labels=np.tile(LABELS, 400)).reshape(400, len(X))
    assert abs(history["val_loss"][0] - draws.mean()) < 4 * np.sqrt(draws.var(0).sum()) / len(X)


def test_prior_samples_of_a_trained_model_draw_the_asked_class():
    """Class c's images are one fixed binary pattern each; after a short training, decoding z ~ N(0, I)
    with label c gives the image nearest to pattern c for at least 90% of draws (an unconditional model,
    whose samples ignore the label, would manage 1/K)."""
    patterns = np.random.default_rng(2).uniform(size=(K, FEATURES)) < 0.5
    labels = np.arange(400) % K
    x = patterns[labels].astype("float32")
    keras.utils.set_random_seed(0)
    model = small(hidden_units=[32], latent_dim=2)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    model.fit(x, labels, epochs=10, batch_size=40, verbose=0)
    for c in range(K):
        samples = keras.ops.convert_to_numpy(model.sample(100, c, seed=c))
        nearest = np.argmin(((samples[:, None, :] - patterns[None]) ** 2).sum(axis=-1), axis=1)
        assert np.mean(nearest == c) >= 0.9, (c, np.bincount(nearest, minlength=K))


BAD_LABELS = {
    "out of range": (np.full(12, K), r"must lie in \[0, 4\)"),
    "negative": (np.full(12, -1), r"must lie in \[0, 4\)"),
    "wrong count": (np.zeros(11, int), r"shape \(12,\), one per example"),
    "float": (np.zeros(12), "int class indices"),
    "two-dimensional": (np.zeros((12, 1), int), r"shape \(12,\)"),
}


@pytest.mark.parametrize("case", BAD_LABELS)
def test_bad_labels_are_one_line_value_errors_and_leave_the_weights(case):
    labels, message = BAD_LABELS[case]
    model = small()
    model.compile(jit_compile=False)
    before = [w.copy() for w in model.get_weights()]
    calls = {
        "fit": lambda: model.fit(X, labels, verbose=0),
        "evaluate": lambda: model.evaluate(X, labels, verbose=0),
        "predict": lambda: model.predict((X, labels), verbose=0),
        "call": lambda: model((X, labels)),
        "encode": lambda: model.encode(X, labels),
        "decode": lambda: model.decode(np.zeros((12, LATENT), "float32"), labels),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match=message) as error:
            call()
        assert "\n" not in str(error.value), name
    with pytest.raises(ValueError, match="int class indices" if case == "float" else message):
        model.sample(12, labels)
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_dataset_s_bad_labels_stop_fit_as_they_stream_with_the_weights_as_they_were():
    model = small()
    model.compile(jit_compile=False, steps_per_execution=1)
    before = [w.copy() for w in model.get_weights()]
    labels = LABELS.copy()
    labels[9] = K  # in the second batch: the first one trains
    dataset = tf.data.Dataset.from_tensor_slices((X, labels)).batch(6)
    with pytest.raises(ValueError, match=r"one label in \[0, 4\) per example") as error:
        model.fit(dataset, verbose=0)
    assert "\n" not in str(error.value)
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="int class indices"):  # caught from the spec, before any step
        model.fit(tf.data.Dataset.from_tensor_slices((X, LABELS.astype("float32"))).batch(6), verbose=0)


def test_labels_are_required_and_unconditional_models_still_refuse_targets():
    model = small()
    model.compile(jit_compile=False)
    for call in (lambda: model.fit(X, verbose=0), lambda: model.fit(tf.data.Dataset.from_tensor_slices(X).batch(4))):
        with pytest.raises(ValueError, match=validation.LABELS_MESSAGE):
            call()
    with pytest.raises(ValueError, match="pair"):
        model(X)
    with pytest.raises(ValueError, match="cvae has no anomaly_score"):
        model.anomaly_score(X)
    vae = keras_ae.get_model("vae", input_shape=(FEATURES,), latent_dim=2, hidden_units=[8])
    vae.compile(jit_compile=False)
    for call in (
        lambda: vae.fit(X, LABELS, verbose=0),
        lambda: vae.evaluate(X, LABELS, verbose=0),
        lambda: vae.fit(tf.data.Dataset.from_tensor_slices((X, LABELS)).batch(4), verbose=0),
    ):
        with pytest.raises(ValueError, match=validation.TARGETS_MESSAGE):
            call()


def test_fit_on_arrays_and_on_a_dataset_of_pairs_is_the_same_step():
    """fit(x, labels) and fit(dataset of (x, labels)) in the same order train the same weights."""
    weights = []
    for as_dataset in (False, True):
        keras.utils.set_random_seed(0)
        model = small()
        model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
        data = tf.data.Dataset.from_tensor_slices((X, LABELS)).batch(4) if as_dataset else X
        model.fit(data, None if as_dataset else LABELS, batch_size=None if as_dataset else 4, shuffle=False, verbose=0)
        weights.append(model.get_weights())
    for a, b in zip(*weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_config_round_trips_and_bad_num_classes_raise():
    model = small(beta=0.5)
    assert type(model).from_config(model.get_config()).get_config() == model.get_config()
    assert model.get_config()["num_classes"] == K
    for bad in (0, 2.5, "ten"):
        with pytest.raises(ValueError, match="num_classes must be an int >= 1"):
            small(num_classes=bad)


# ------------------------------------------------------------------ data with labels
def test_a_stream_pairs_each_example_with_its_label_in_every_order_and_shard():
    """Row i is all i and its label i % 3: in a shuffled epoch every batch's labels are its rows' own,
    the batches are the unlabelled stream's, and two workers' shards of a global batch are its rows split
    as x alone splits them."""
    x = np.repeat(np.arange(23, dtype="float32")[:, None], 4, axis=1)
    source = pipeline.InMemory({"train": x}, labels={"train": np.arange(23) % 3})
    options = dict(batch_size=5, shuffle=True, seed=1, epoch=tf.Variable(2, dtype=tf.int64))
    pairs = list(pipeline.stream(source, "train", labels=True, **options).as_numpy_iterator())
    plain = list(pipeline.stream(source, "train", **options).as_numpy_iterator())
    assert len(pairs) == len(plain) == 5
    for (xb, yb), xp in zip(pairs, plain, strict=True):
        np.testing.assert_array_equal(xb, xp)
        np.testing.assert_array_equal(yb, xb[:, 0].astype(int) % 3)
    workers = [
        list(pipeline.stream(source, "train", labels=True, shard=pipeline.Shard(w, 1, 2), **options)) for w in range(2)
    ]
    for (x0, y0), (x1, y1), (xb, yb) in zip(*workers, pairs, strict=True):
        np.testing.assert_array_equal(np.concatenate([x0, x1]), xb)
        np.testing.assert_array_equal(np.concatenate([y0, y1]), yb)
    # TF's stateful shuffle (no `epoch`) keeps each label with its example too.
    for xb, yb in data.make_dataset(x, 5, shuffle=True, seed=1, labels=np.arange(23) % 3).as_numpy_iterator():
        np.testing.assert_array_equal(yb, xb[:, 0].astype(int) % 3)


def _labelled_examples(source):
    """{class name: the first pixels of its examples} over every split of a labelled source."""
    found = {}
    for split in pipeline.SPLITS:
        for xb, yb in pipeline.stream(source, split, 8, labels=True).as_numpy_iterator():
            for value, label in zip(xb.reshape(len(xb), -1)[:, 0], yb, strict=True):
                found.setdefault(source.classes[label], set()).add(int(value))
    return found


def test_class_subfolders_and_label_arrays_label_the_files(tmp_path):
    for name, value in (("cat", 10), ("dog", 200), ("emu", 90)):
        for i in range(3):
            path = tmp_path / "pets" / name / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(tf.io.encode_png(np.full((4, 4, 1), value + i, np.uint8)).numpy())
    pets = sources.open_source(tmp_path / "pets", scale="raw")
    assert pets.classes == ("cat", "dog", "emu")
    assert _labelled_examples(pets) == {"cat": {10, 11, 12}, "dog": {200, 201, 202}, "emu": {90, 91, 92}}
    assert _labelled_examples(sources.cache(pets)) == _labelled_examples(pets)  # kept in memory too
    (tmp_path / "pets" / "loose.png").write_bytes((tmp_path / "pets" / "cat" / "0.png").read_bytes())
    assert sources.open_source(tmp_path / "pets", scale="raw").classes is None  # not every image in a class

    x, y = np.arange(40, dtype="float32")[:, None], np.arange(40) % 4
    np.savez(tmp_path / "one.npz", x=x, y=y)
    np.savez(tmp_path / "splits.npz", x_train=x[:30], y_train=y[:30], x_test=x[30:], y_test=y[30:])
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    expected = {str(c): {v for v in range(40) if v % 4 == c} for c in range(4)}
    for path, labels in (("one.npz", None), ("splits.npz", None), ("x.npy", tmp_path / "y.npy")):
        source = sources.open_source(tmp_path / path, scale="raw", labels=labels)
        assert source.classes == ("0", "1", "2", "3") and _labelled_examples(source) == expected, path
    np.save(tmp_path / "short.npy", y[:39])
    with pytest.raises(ValueError, match=r"one per example, shape \(40,\)"):
        sources.open_source(tmp_path / "x.npy", labels=tmp_path / "short.npy")


def test_train_runs_a_cvae_on_digits_and_on_labelled_files_and_refuses_unlabelled_ones(tmp_path, capsys):
    common = dict(model="cvae", latent_dim=2, epochs=1, batch_size=64, export=False, verbose=0, jit_compile=False)
    small_net = {"hidden_units": [16]}
    result = train.run(out=str(tmp_path / "digits"), model_options=small_net, image_every=1, **common)
    assert result.model.conditional and np.isfinite(result.history.history["val_loss"][0])
    # `keras-ae evaluate` reads the test split's labels: the per-unit KL of q(z|x, y), in numpy, is the loss's.
    capsys.readouterr()
    assert cli.main(["evaluate", str(tmp_path / "digits"), "--json", "--num-samples", "16"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sum(report["kl_per_unit"]) == pytest.approx(report["loss_terms"]["kl"], rel=1e-4)
    assert report["examples"] == len(data.labels("digits", "test"))
    x = data.load("digits")[:200]
    np.savez(tmp_path / "three.npz", x=x, labels=data.labels("digits")[:200] % 3)
    # The file's labels are read: 3 classes suffice for them, where the digits' ten refuse 3 (below).
    three = train.run(
        dataset=str(tmp_path / "three.npz"),
        out=str(tmp_path / "three"),
        model_options={**small_net, "num_classes": 3},
        **common,
    )
    assert three.model.num_classes == 3
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(ValueError, match="cvae is conditional and needs class labels"):
        train.run(dataset=str(tmp_path / "x.npy"), out=str(tmp_path / "none"), **common)
    with pytest.raises(ValueError, match="pass --model-option num_classes=10"):
        train.run(out=str(tmp_path / "few"), model_options={**small_net, "num_classes": 3}, **common)
