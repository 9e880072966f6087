"""`tf.distribute` strategies by name, and which worker writes what."""

import json
import os

import tensorflow as tf


def configure_virtual_cpus(count):
    """Splits the first CPU into `count` logical devices, so that a mirrored
    run works on any machine. Must run before TensorFlow starts its runtime;
    afterwards it only checks that the devices are already there."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
        present = len(tf.config.list_logical_devices("CPU"))
        if present != count:
            raise ValueError(
                f"virtual_cpus={count} must be set before TensorFlow starts; "
                f"it already runs on {present} CPU device(s)."
            ) from None


def make_strategy(name):
    """The strategy called `name`.

    auto: `MirroredStrategy` on more than one GPU, the default strategy otherwise.
    default: no distribution. one_device: the first GPU, or the CPU.
    mirrored: every GPU, or every logical CPU when there is no GPU.
    multi_worker: `MultiWorkerMirroredStrategy`, its cluster read from TF_CONFIG.
    """
    if name == "multi_worker":
        # First: the cluster must be configured before the runtime starts.
        if "TF_CONFIG" not in os.environ:
            raise ValueError("strategy multi_worker reads its cluster from TF_CONFIG, which is not set.")
        try:
            json.loads(os.environ["TF_CONFIG"])
        except json.JSONDecodeError as error:
            raise ValueError(f"TF_CONFIG is not valid JSON: {error}.") from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "auto":
        name = "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    raise ValueError(f"Unknown strategy {name!r}.")


def is_multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy):
    """Whether this process writes the run's outputs: always, except on the
    non-chief workers of a multi-worker cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not is_multi_worker(strategy) or resolver is None:
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "chief" or (task_type == "worker" and task_id == 0 and not has_chief)


def output_dir(out, strategy):
    """Where this process writes: `out` for the chief, `out/worker-<id>` for
    any other worker, so that no two processes write one file."""
    if is_chief(strategy):
        return out
    return os.path.join(out, f"worker-{strategy.cluster_resolver.task_id}")
