"""Test setup: quiet TF logs and two logical CPU devices for MirroredStrategy tests.

The logical devices must be configured before TensorFlow initializes its
runtime, so this runs at import time, before any test module touches TF.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def mirrored_strategy():
    """One MirroredStrategy over the two logical CPUs for the whole session.

    A second MirroredStrategy in one process restarts the collective-op
    instance keys, and its all-reduces then collide with the first one's
    ("Shape mismatch in the collective instance"): share this one.
    """
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
