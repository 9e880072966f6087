"""The PyTorch side of the benchmark (method c), one process per workload group.

Runners:
    torch:          the workload's network and loss in PyTorch eager, Adam, one
                    epoch of index-sliced batches of a tensor held in memory;
    torch_compile:  the same with the loss, forward and backward, compiled by
                    `torch.compile` (TorchInductor's default mode; its compile
                    time is the first warm-up epoch's excess over the second);
    torch_roofline: the matmuls of the TensorFlow step's graph (same m, k, n)
                    run back to back with torch.matmul (pure-matmul workloads).
"""

import contextlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from benchmarks import _common  # noqa: E402
from benchmarks.workloads import BATCH, BY_NAME  # noqa: E402

RUNNERS = {}
STATE = {"data_path": None}
ACTIVATIONS = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU}


def _mlp(sizes, act, last_act):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[act]())
        elif last_act:
            layers.append(ACTIVATIONS[last_act]())
    return nn.Sequential(*layers)


class Unflatten(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.reshape((-1,) + self.shape)


def build_networks(w):
    latent = w["latent"]
    code_units = 2 * latent if w["kind"] == "vae" else latent
    code_act = None if w["kind"] == "vae" else w["activation"]
    act = w["activation"]
    if w["net"] == "mlp":
        d = int(np.prod(w["input_shape"]))
        hidden = list(w["hidden"])
        return _mlp([d] + hidden + [code_units], act, code_act), _mlp([latent] + hidden[::-1] + [d], act, None)
    h, _, c = w["input_shape"]  # NCHW here: PyTorch's native layout
    filters = w["filters"]
    enc, channels, size = [], c, h
    for f in filters:
        enc += [nn.Conv2d(channels, f, 3, stride=2, padding=1), ACTIVATIONS[act]()]
        channels, size = f, (size + 1) // 2
    enc += [nn.Flatten(), nn.Linear(channels * size * size, code_units)]
    if code_act:
        enc.append(ACTIVATIONS[code_act]())
    dec = [nn.Linear(latent, size * size * filters[-1]), ACTIVATIONS[act](), Unflatten((filters[-1], size, size))]
    channels = filters[-1]
    for f in reversed(filters):
        dec += [nn.ConvTranspose2d(channels, f, 3, stride=2, padding=1, output_padding=1), ACTIVATIONS[act]()]
        channels = f
    dec.append(nn.Conv2d(channels, c, 3, padding=1))
    return nn.Sequential(*enc), nn.Sequential(*dec)


def make_loss(w, encoder, decoder):
    latent = w["latent"]
    weight = 0.1

    def reconstruction(x, logits):
        logits = logits.reshape(x.shape)
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)

    def vae_loss(x):
        raw = encoder(x)
        loc, raw_scale = raw[:, :latent], raw[:, latent:]
        scale = F.softplus(raw_scale) + 1e-6
        z = loc + scale * torch.randn_like(loc)
        kl = 0.5 * (loc.square() + scale.square() - 1.0 - 2.0 * scale.log()).sum(1)
        return (reconstruction(x, decoder(z)) + kl).mean()

    def ae_loss(x):
        return reconstruction(x, decoder(encoder(x))).mean()

    def cae_loss(x):
        jacobian = w["jacobian"]
        if jacobian == "analytic":
            h = encoder(x)
            kernel = encoder[-2].weight  # (latent, features)
            penalty = ((h * (1 - h)).square() * kernel.square().sum(1)).sum(1)
        elif jacobian == "tape":
            h = encoder(x)
            jac = torch.func.vmap(torch.func.jacrev(lambda xi: encoder(xi[None])[0]))(x)
            penalty = jac.square().flatten(1).sum(1)
        else:
            x = x.detach().requires_grad_(True)
            h = encoder(x)
            v = torch.where(torch.rand_like(h) < 0.5, -1.0, 1.0)
            (jtv,) = torch.autograd.grad(h, x, grad_outputs=v, create_graph=True)
            penalty = jtv.square().flatten(1).sum(1)
        return (reconstruction(x, decoder(h)) + weight * penalty).mean()

    return {"vae": vae_loss, "ae": ae_loss, "cae": cae_loss}[w["kind"]]


def _data(w, n):
    x = _common.make_data(n, w["input_shape"], path=STATE["data_path"])
    if w["net"] == "conv":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    return torch.from_numpy(x)


class TorchRunner:
    def __init__(self, w, compiled=False):
        torch.manual_seed(0)
        self.w = w
        self.encoder, self.decoder = build_networks(w)
        self.loss_fn = make_loss(w, self.encoder, self.decoder)
        if compiled:
            self.loss_fn = torch.compile(self.loss_fn)
        params = list(self.encoder.parameters()) + list(self.decoder.parameters())
        self.optimizer = torch.optim.Adam(params, lr=1e-3)

    def _epoch(self, x):
        perm = torch.randperm(len(x))
        for start in range(0, len(x), BATCH):
            xb = x[perm[start : start + BATCH]]
            loss = self.loss_fn(xb)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        return loss.item()

    def warm(self, n):
        start = time.perf_counter()
        self._epoch(_data(self.w, n))
        return time.perf_counter() - start

    def prepare(self, n):
        self.x = _data(self.w, n)

    def run(self):
        start = time.perf_counter()
        self._epoch(self.x)
        return {"sps": len(self.x) / (time.perf_counter() - start), "samples": len(self.x)}


class MatmulRooflineRunner(_common.RepeatedOps):
    def __init__(self, gemms):
        gen = torch.Generator().manual_seed(0)
        self.pairs = [
            (torch.randn(b, m, k, generator=gen).squeeze(0) * 0.1, torch.randn(b, k, n, generator=gen).squeeze(0) * 0.1)
            for m, k, n, b in gemms
        ]
        self.flops = sum(2 * m * k * n * b for m, k, n, b in gemms)
        self.batch = BATCH

    def once(self):
        return [torch.matmul(a, b) for a, b in self.pairs]


def setup(workload, method, warm_samples, data_path=None, gemms=None):
    STATE["data_path"] = data_path
    w = BY_NAME[workload]
    if method in ("torch", "torch_compile"):
        runner = TorchRunner(w, compiled=method == "torch_compile")
    else:
        runner = MatmulRooflineRunner(gemms)
    first = runner.warm(warm_samples)
    second = runner.warm(warm_samples)
    RUNNERS[(workload, method)] = runner
    return {"first_s": first, "second_s": second, "describe": {}}


def set_threads(intra, inter):
    if intra:
        torch.set_num_threads(intra)


def describe():
    return {
        "torch": torch.__version__,
        "num_threads": torch.get_num_threads(),
        "num_interop_threads": torch.get_num_interop_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", ""),
    }


if __name__ == "__main__":
    commands = _common.runner_commands(
        RUNNERS, lambda method: torch.no_grad() if method == "torch_roofline" else contextlib.nullcontext()
    )
    _common.serve({"setup": setup, **commands, "describe": describe, "threads": set_threads})
