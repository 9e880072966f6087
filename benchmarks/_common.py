"""What both workers share: the data, the worker protocol, and the FLOP count of an op."""

import contextlib
import json
import os
import sys
import time

import numpy as np


def make_data(n, input_shape, seed=0, path=None):
    """n binary examples of `input_shape` (float32): 28x28 images from an
    MNIST-style .npz (key x_train, thresholded at 128) or Bernoulli(0.3) noise
    (always for other shapes)."""
    if path and int(np.prod(input_shape)) == 28 * 28:
        with np.load(path) as f:
            images = f["x_train"]
        reps = -(-n // len(images))
        images = np.concatenate([images] * reps)[:n]
        x = (images.reshape(n, -1) >= 128).astype(np.float32)
    else:
        rng = np.random.default_rng(seed)
        x = (rng.random((n, int(np.prod(input_shape)))) < 0.3).astype(np.float32)
    return x.reshape((n,) + tuple(input_shape))


def round_samples(samples, batch, low=2, high=600):
    """A number of examples: a whole number of batches, `low` to `high` of them."""
    return int(min(max(round(samples / batch), low), high)) * batch


class RepeatedOps:
    """The timing of a roofline runner: `once()` runs the step's matmuls or
    convolutions once, `flops` counts them; `run` repeats them for about as
    many examples as `prepare` asked, in batches of `batch`."""

    batch = 100
    reps = 10

    def once(self):
        raise NotImplementedError

    def wait(self, outputs):
        """Blocks until `outputs` are computed (a no-op where ops are synchronous)."""

    def warm(self, n):
        start = time.perf_counter()
        self.wait(self.once())
        return time.perf_counter() - start

    def prepare(self, n):
        self.reps = max(1, n // self.batch)

    def run(self):
        start = time.perf_counter()
        for _ in range(self.reps):
            outputs = self.once()
        self.wait(outputs)
        seconds = (time.perf_counter() - start) / self.reps
        return {"sps": self.batch / seconds, "gflops": self.flops / seconds / 1e9, "samples": self.batch * self.reps}


def runner_commands(runners, run_context=lambda method: contextlib.nullcontext()):
    """The worker's `prepare` and `run` commands over {(workload, method): runner}.

    `run` times one epoch of a runner and adds the process's CPU seconds in it
    (user + system); `run_context(method)` wraps it (PyTorch's no_grad for a roofline).
    """

    def prepare(workload, method, samples):
        runners[(workload, method)].prepare(samples)

    def run(workload, method):
        cpu = time.process_time()
        with run_context(method):
            result = runners[(workload, method)].run()
        result["cpu_s"] = time.process_time() - cpu
        return result

    return {"prepare": prepare, "run": run}


def serve(handlers):
    """The worker loop: one JSON command a line on stdin, one JSON reply a line on stdout.

    Libraries print to stdout at times; replies go to the real stdout, which is
    moved away from fd 1 first.
    """
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    for line in sys.stdin:
        request = json.loads(line)
        if request["cmd"] == "quit":
            break
        try:
            reply = handlers[request["cmd"]](**request.get("args", {}))
            reply = {"ok": True, **(reply or {})}
        except Exception as error:  # reported to the coordinator, which stops
            import traceback

            reply = {"ok": False, "error": f"{type(error).__name__}: {error}", "trace": traceback.format_exc()}
        out.write(json.dumps(reply) + "\n")
    out.close()
