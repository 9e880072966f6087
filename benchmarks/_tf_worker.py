"""The TensorFlow side of the benchmark, one process per workload group.

Runners (one per workload and method):
    fit:        keras-ae `model.compile(); model.fit(x, batch_size=100)`, the
                flags a user gets (method a);
    fit_stock:  the same model with Keras' stock flags
                `compile(jit_compile=False, steps_per_execution=1)`, for the
                effect of keras-ae's defaults;
    loop:       a hand-written `tf.function` + `GradientTape` step over a
                `tf.data` pipeline, the same network and loss (method b);
    roofline:   only the matmul/convolution ops of that step's graph, with
                the same shapes and attributes, run back to back (method d).
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.framework.config import is_op_determinism_enabled  # noqa: E402

import keras_ae  # noqa: E402
from benchmarks import _common  # noqa: E402
from benchmarks.workloads import BATCH, BY_NAME  # noqa: E402

RUNNERS = {}
STATE = {"data_path": None}
LINEAR_ALGEBRA_OPS = (
    "MatMul",
    "BatchMatMul",
    "BatchMatMulV2",
    "BatchMatMulV3",
    "Conv2D",
    "Conv2DBackpropInput",
    "Conv2DBackpropFilter",
)


# --------------------------------------------------------------- the networks
def _mlp(input_shape, units, activations, name):
    stack = [keras.Input(shape=input_shape), keras.layers.Flatten()]
    stack += [keras.layers.Dense(u, activation=a) for u, a in zip(units, activations, strict=True)]
    return keras.Sequential(stack, name=name)


def build_networks(w):
    """The workload's encoder and decoder, written out with Keras layers."""
    latent = w["latent"]
    code_units = 2 * latent if w["kind"] == "vae" else latent
    code_activation = None if w["kind"] == "vae" else w["activation"]
    act = w["activation"]
    if w["net"] == "mlp":
        hidden = list(w["hidden"])
        encoder = _mlp(w["input_shape"], hidden + [code_units], [act] * len(hidden) + [code_activation], "encoder")
        decoder = _mlp(
            (latent,), hidden[::-1] + [int(np.prod(w["input_shape"]))], [act] * len(hidden) + [None], "decoder"
        )
        return encoder, decoder
    filters = w["filters"]
    h, wd, c = w["input_shape"]
    encoder = keras.Sequential(
        [keras.Input(shape=w["input_shape"])]
        + [keras.layers.Conv2D(f, 3, strides=2, padding="same", activation=act) for f in filters]
        + [keras.layers.Flatten(), keras.layers.Dense(code_units, activation=code_activation)],
        name="encoder",
    )
    small = h // 2 ** len(filters)
    decoder = keras.Sequential(
        [
            keras.Input(shape=(latent,)),
            keras.layers.Dense(small * small * filters[-1], activation=act),
            keras.layers.Reshape((small, small, filters[-1])),
        ]
        + [keras.layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation=act) for f in reversed(filters)]
        + [keras.layers.Conv2D(c, 3, padding="same")],
        name="decoder",
    )
    return encoder, decoder


def make_loss(w, encoder, decoder, seed=0):
    """The workload's loss written by hand in TensorFlow: per-example sums, batch mean."""
    latent = w["latent"]
    axes = list(range(1, 1 + len(w["input_shape"])))
    weight = 0.1  # the contractive models' default λ
    generator = tf.random.Generator.from_seed(seed)

    def reconstruction(x, logits):
        logits = tf.reshape(logits, tf.shape(x))
        return tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits), axis=axes)

    def vae_loss(x):
        raw = encoder(x, training=True)
        loc, raw_scale = raw[:, :latent], raw[:, latent:]
        scale = tf.nn.softplus(raw_scale) + 1e-6
        z = loc + scale * generator.normal(tf.shape(loc))
        kl = 0.5 * tf.reduce_sum(tf.square(loc) + tf.square(scale) - 1.0 - 2.0 * tf.math.log(scale), axis=1)
        return tf.reduce_mean(reconstruction(x, decoder(z, training=True)) + kl)

    def ae_loss(x):
        h = encoder(x, training=True)
        return tf.reduce_mean(reconstruction(x, decoder(h, training=True)))

    def cae_loss(x):
        jacobian = w["jacobian"]
        if jacobian == "analytic":
            h = encoder(x, training=True)
            kernel = encoder.layers[-1].kernel
            penalty = tf.reduce_sum(tf.square(h * (1.0 - h)) * tf.reduce_sum(tf.square(kernel), axis=0), axis=1)
        else:
            with tf.GradientTape() as inner:
                inner.watch(x)
                h = encoder(x, training=True)
            if jacobian == "tape":
                jac = inner.batch_jacobian(h, x)
                penalty = tf.reduce_sum(tf.reshape(tf.square(jac), [tf.shape(x)[0], -1]), axis=1)
            else:
                v = tf.where(generator.uniform(tf.shape(h)) < 0.5, -1.0, 1.0)
                jtv = inner.gradient(h, x, output_gradients=v)
                penalty = tf.reduce_sum(tf.reshape(tf.square(jtv), [tf.shape(x)[0], -1]), axis=1)
        return tf.reduce_mean(reconstruction(x, decoder(h, training=True)) + weight * penalty)

    return {"vae": vae_loss, "ae": ae_loss, "cae": cae_loss}[w["kind"]]


# ------------------------------------------------------------------ runners
class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch, from `on_epoch_begin` to `on_epoch_end`."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.perf_counter() - self.start


class FitRunner:
    def __init__(self, w, stock=False, compile_kwargs=None):
        self.w = w
        self.model = keras_ae.get_model(w["model"], seed=0, **w["config"])
        if stock:
            self.model.compile(jit_compile=False, steps_per_execution=1)
        else:
            self.model.compile(**(compile_kwargs or {}))
        self.timer = EpochTimer()

    def warm(self, n):
        x = _common.make_data(n, self.w["input_shape"], path=STATE["data_path"])
        start = time.perf_counter()
        self.model.fit(x, batch_size=BATCH, epochs=1, verbose=0)
        return time.perf_counter() - start

    def prepare(self, n):
        self.x = _common.make_data(n, self.w["input_shape"], path=STATE["data_path"])

    def run(self):
        start = time.perf_counter()
        self.model.fit(self.x, batch_size=BATCH, epochs=1, verbose=0, callbacks=[self.timer])
        call = time.perf_counter() - start
        return {"sps": len(self.x) / self.timer.seconds, "sps_fit_call": len(self.x) / call, "samples": len(self.x)}

    def describe(self):
        return {
            "jit_compile": bool(self.model.jit_compile),
            "steps_per_execution": int(self.model.steps_per_execution),
        }


class LoopRunner:
    def __init__(self, w):
        self.w = w
        self.encoder, self.decoder = build_networks(w)
        self.loss_fn = make_loss(w, self.encoder, self.decoder)
        self.optimizer = keras.optimizers.Adam()
        variables = self.encoder.trainable_variables + self.decoder.trainable_variables
        self.optimizer.build(variables)

        @tf.function
        def step(x):
            with tf.GradientTape() as tape:
                loss = self.loss_fn(x)
            self.optimizer.apply(tape.gradient(loss, variables), variables)
            return loss

        self.step = step

    def _dataset(self, n):
        x = _common.make_data(n, self.w["input_shape"], path=STATE["data_path"])
        return tf.data.Dataset.from_tensor_slices(x).shuffle(n).batch(BATCH).prefetch(tf.data.AUTOTUNE), n

    def warm(self, n):
        dataset, _ = self._dataset(n)
        start = time.perf_counter()
        for xb in dataset:
            self.step(xb)
        return time.perf_counter() - start

    def prepare(self, n):
        self.dataset, self.n = self._dataset(n)

    def run(self):
        start = time.perf_counter()
        for xb in self.dataset:
            loss = self.step(xb)
        loss.numpy()
        return {"sps": self.n / (time.perf_counter() - start), "samples": self.n}

    def describe(self):
        return {"jit_compile": False}


def _flops(op):
    """Multiply-adds x 2 of one matmul/convolution op of a traced graph."""
    if op.type.startswith("MatMul") or op.type.startswith("BatchMatMul"):
        a = op.inputs[0].shape.as_list()
        out = op.outputs[0].shape.as_list()
        adj = op.get_attr("transpose_a") if op.type == "MatMul" else op.get_attr("adj_x")
        k = a[-2] if adj else a[-1]
        return 2 * int(np.prod(out)) * k
    if op.type == "Conv2D":
        filt = op.inputs[1].shape.as_list()
        return 2 * int(np.prod(op.outputs[0].shape.as_list())) * filt[0] * filt[1] * filt[2]
    if op.type in ("Conv2DBackpropInput", "Conv2DBackpropFilter"):
        # The gradients of a convolution whose output is `out_backprop` (input 2).
        filt = (op.inputs[1] if op.type == "Conv2DBackpropInput" else op.outputs[0]).shape.as_list()
        return 2 * int(np.prod(op.inputs[2].shape.as_list())) * filt[0] * filt[1] * filt[2]
    raise ValueError(op.type)


def linear_algebra_ops(graph):
    """The matmul/convolution ops of a graph and of the functions it calls."""
    ops = [op for op in graph.get_operations() if op.type in LINEAR_ALGEBRA_OPS]
    others = [op.type for op in graph.get_operations() if op.type in ("While", "StatelessWhile")]
    if others:
        raise ValueError(f"the step has loops ({others}); their ops would be missed")
    return ops


class RooflineRunner(_common.RepeatedOps):
    """The step's matmul and convolution ops alone, same shapes and attributes,
    on random inputs, in one graph: the linear algebra's floor of a step."""

    def __init__(self, w):
        self.w = w
        encoder, decoder = build_networks(w)
        loss_fn = make_loss(w, encoder, decoder)
        variables = encoder.trainable_variables + decoder.trainable_variables

        @tf.function
        def grads(x):
            with tf.GradientTape() as tape:
                loss = loss_fn(x)
            return tape.gradient(loss, variables)

        graph = grads.get_concrete_function(tf.TensorSpec((BATCH,) + tuple(w["input_shape"]), tf.float32)).graph
        self.ops = linear_algebra_ops(graph)
        self.flops = sum(_flops(op) for op in self.ops)
        specs, self.inputs = [], []
        rng = np.random.default_rng(0)
        for op in self.ops:
            kwargs, positions = {}, {}
            for arg, tensor in zip(op.op_def.input_arg, op.inputs, strict=True):
                if tensor.dtype.is_floating:
                    positions[arg.name] = len(self.inputs)
                    self.inputs.append(
                        tf.constant(rng.standard_normal(tensor.shape.as_list()).astype(np.float32) * 0.1)
                    )
                else:  # input_sizes / filter_sizes: the op's output shape
                    value = tf.get_static_value(tensor)
                    if value is None:
                        value = op.outputs[0].shape.as_list()
                    kwargs[arg.name] = tf.constant(value, tensor.dtype)
            for attr in op.op_def.attr:
                if attr.name not in ("T", "Ta", "Tb"):
                    kwargs[attr.name] = op.get_attr(attr.name)
            specs.append((op.type, positions, kwargs))
        self.gemms = self._gemms()

        @tf.function
        def run_all(*inputs):
            outs = []
            for op_type, positions, kwargs in specs:
                args = {name: inputs[i] for name, i in positions.items()}
                outs.append(getattr(tf.raw_ops, op_type)(**args, **kwargs))
            return outs

        self.run_all = run_all
        self.batch = BATCH

    def _gemms(self):
        """(m, k, n, batch) of each matmul, for the PyTorch roofline; None if convolutions."""
        gemms = []
        for op in self.ops:
            if not (op.type == "MatMul" or op.type.startswith("BatchMatMul")):
                return None
            a = op.inputs[0].shape.as_list()
            out = op.outputs[0].shape.as_list()
            adj = op.get_attr("transpose_a") if op.type == "MatMul" else op.get_attr("adj_x")
            k = a[-2] if adj else a[-1]
            gemms.append((out[-2], k, out[-1], int(np.prod(out[:-2]))))
        return gemms

    def once(self):
        return self.run_all(*self.inputs)

    def wait(self, outputs):
        outputs[-1].numpy()

    def describe(self):
        return {"ops": [op.type for op in self.ops], "mflop_per_step": self.flops / 1e6, "gemms": self.gemms}


# -------------------------------------------------------------------- export
def export(workload, out_dir, train_samples, repeats, calls, data_path=None):
    """Trains the workload's model briefly, exports it with export/export.py
    (SavedModel, TFLite float32 and int8), reads its report.json, and times
    the SavedModel's and the float32 TFLite file's `serving_default` on a
    batch of 64, alternating, `calls` calls per round."""
    import json
    import pathlib
    import random

    from ai_edge_litert.interpreter import Interpreter

    from export.export import LATENCY_BATCH, export_model

    w = BY_NAME[workload]
    x = _common.make_data(train_samples, w["input_shape"], path=data_path)
    model = keras_ae.get_model(w["model"], seed=0, **w["config"])
    model.compile()
    model.fit(x, batch_size=BATCH, epochs=1, verbose=0)
    start = time.perf_counter()
    export_model(model, out_dir, tflite="float32,int8", representative_data=x)
    export_s = time.perf_counter() - start
    report = json.loads((pathlib.Path(out_dir) / "report.json").read_text())
    formats = report["formats"]

    batch = x[:LATENCY_BATCH]
    saved = tf.saved_model.load(str(pathlib.Path(out_dir) / "saved_model")).signatures["serving_default"]
    interpreter = Interpreter(model_path=str(pathlib.Path(out_dir) / formats["tflite_float32"]["path"]))
    tflite = interpreter.get_signature_runner("serving_default")
    input_name = next(iter(tflite.get_input_details()))
    runners = {
        "saved_model": lambda: saved(**{input_name: tf.constant(batch)}),
        "tflite_float32": lambda: tflite(**{input_name: batch}),
    }
    for run_once in runners.values():
        run_once()
    times = {name: [] for name in runners}
    for _ in range(repeats):
        order = list(runners)
        random.shuffle(order)
        for name in order:
            start = time.perf_counter()
            for _ in range(calls):
                runners[name]()
            times[name].append(1000.0 * (time.perf_counter() - start) / calls)
    return {
        "model": workload,
        "export_s": export_s,
        "latency_batch": LATENCY_BATCH,
        "report": {
            name: {
                k: formats[name].get(k)
                for k in ("size_bytes", "latency_ms", "max_abs_diff_all", "reconstruction_error")
            }
            for name in formats
        },
        "alternated_latency_ms": times,
    }


# ------------------------------------------------------------------ protocol
def setup(workload, method, warm_samples, data_path=None, compile_kwargs=None):
    """Builds and warms a runner; `compile_kwargs` (a variant of "fit" named
    "fit:<label>") is for experiments with flags."""
    STATE["data_path"] = data_path
    w = BY_NAME[workload]
    if method.startswith("fit:"):
        RUNNERS[(workload, method)] = runner = FitRunner(w, compile_kwargs=compile_kwargs)
        first = runner.warm(warm_samples)
        second = runner.warm(warm_samples)
        return {"first_s": first, "second_s": second, "describe": runner.describe()}
    runner = {
        "fit": lambda: FitRunner(w),
        "fit_stock": lambda: FitRunner(w, stock=True),
        "loop": lambda: LoopRunner(w),
        "roofline": lambda: RooflineRunner(w),
    }[method]()
    first = runner.warm(warm_samples)  # traces (and compiles)
    second = runner.warm(warm_samples)
    RUNNERS[(workload, method)] = runner
    return {"first_s": first, "second_s": second, "describe": runner.describe()}


def describe():
    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)"),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "op_determinism": bool(is_op_determinism_enabled()),
    }


def set_threads(intra, inter):
    if intra:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
    if inter:
        tf.config.threading.set_inter_op_parallelism_threads(inter)


if __name__ == "__main__":
    _common.serve(
        {
            "setup": setup,
            **_common.runner_commands(RUNNERS),
            "describe": describe,
            "threads": set_threads,
            "export": export,
        }
    )
