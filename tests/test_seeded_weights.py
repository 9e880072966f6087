"""A seeded run trains the same weights as the recorded one.

`tests/data/seeded_weights.npz` holds the weights of every registered model
after one seeded epoch on the embedded digits, recorded before the code was
restructured (issue 12): a change of structure must not change results. Both
paths are pinned: Keras' per-step loop under op determinism (XLA off), and the
default fast path (XLA, 32 fused steps per execution).

Regenerate only when a change of results is intended:
    PYTHONPATH=.:tests python tests/test_seeded_weights.py
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import config as tf_config  # no public disable_op_determinism

import keras_ae
from keras_ae import data

from small_models import IMAGE_MODELS, SMALL_CONFIGS, labels_for

REFERENCE = os.path.join(os.path.dirname(__file__), "data", "seeded_weights.npz")
SEED = 7
# Every model small: an epoch of digits (23 batches of 64) each.
CONFIGS = SMALL_CONFIGS
PATHS = ("deterministic", "fast")


def _trained_weights(name, path):
    keras.utils.set_random_seed(SEED)
    x = data.load("digits")
    if name not in IMAGE_MODELS:
        x = x.reshape(len(x), -1)
    model = keras_ae.get_model(name, input_shape=x.shape[1:], latent_dim=4, seed=SEED, **CONFIGS[name])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False if path == "deterministic" else "auto")
    labels = labels_for(model, x) if model.conditional else None
    dataset = data.make_dataset(x, batch_size=64, shuffle=True, seed=SEED, labels=labels)
    model.fit(dataset, epochs=1, verbose=0)
    return [np.asarray(w) for w in model.get_weights()]


def _key(name, path, index):
    return f"{name}/{path}/{index}"


@pytest.fixture(scope="module")
def reference():
    with np.load(REFERENCE, allow_pickle=False) as archive:
        return dict(archive)


def test_every_model_is_pinned(reference):
    assert set(CONFIGS) == set(keras_ae.available_models())
    assert {key.split("/")[0] for key in reference} == set(CONFIGS)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_seeded_weights_match_the_recorded_run(name, path, reference):
    if path == "deterministic":
        tf.config.experimental.enable_op_determinism()
    try:
        weights = _trained_weights(name, path)
    finally:
        tf_config.disable_op_determinism()
    recorded = [reference[_key(name, path, i)] for i in range(len(weights))]
    assert len(recorded) == sum(key.startswith(f"{name}/{path}/") for key in reference)
    for got, want in zip(weights, recorded, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


if __name__ == "__main__":
    arrays = {}
    for model_name in sorted(CONFIGS):
        for run_path in PATHS:
            if run_path == "deterministic":
                tf.config.experimental.enable_op_determinism()
            for i, w in enumerate(_trained_weights(model_name, run_path)):
                arrays[_key(model_name, run_path, i)] = w
            tf_config.disable_op_determinism()
    np.savez_compressed(REFERENCE, **arrays)
    print(f"wrote {REFERENCE}: {len(arrays)} arrays")
