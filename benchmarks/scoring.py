"""The speed of scoring a VAE: the importance-weighted log-likelihood against two references, in one run.

    .venv/bin/pip install -r benchmarks/requirements.txt   # PyTorch, for this benchmark only
    PYTHONPATH=. .venv/bin/python benchmarks/scoring.py [--quick] [--threads N] [--check]

The IWAE paper's test log-likelihood, k = 5000 importance samples of each of 10,000 test images, is 50 million
decoder passes (Burda et al. 2016, §5). On the paper's one-stochastic-layer VAE (784-200-200-50 tanh, Bernoulli),
in passes of the decoder per second:

    ll     keras-ae `model.log_likelihood(x, num_samples=k, batch_size=50, chunk_size=500)`;
    chain  the decoder's three matmuls with their biases and tanh on the same shapes ((50 · 500, 50) -> 784),
           one XLA program called back to back: the floor of a decoder pass, with none of the estimator's
           draws, log-densities or logsumexp;
    torch  the same estimator (encoder, reparameterized draws, decoder, log p(x|z) + log p(z) − log q(z|x), a
           running logsumexp over chunks of 500) in PyTorch under `no_grad`, the same batch and chunk.

TF and PyTorch run in separate worker processes with the same intra-op thread count (`speed.Worker`); each round
runs the three in a fresh random order, and each ratio is the median of the rounds' ratios, so the drift of a
shared machine cancels. `--check` exits 1 when ll/chain or ll/torch falls below its floor (`FLOORS`): the ratios
this benchmark keeps from regressing. Results go to benchmarks/results/scoring-<date>[-quick].json.
"""

import argparse
import datetime
import json
import math
import os
import random
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from benchmarks import _common  # noqa: E402

NETWORK = dict(  # the IWAE paper's one-stochastic-layer VAE (§5)
    input_shape=(784,),
    latent_dim=50,
    hidden_units=[200, 200],
    activation="tanh",
    likelihood="bernoulli",
    scale_activation="exp",
)
BATCH, CHUNK = 50, 500  # what benchmarks/reproduce/vae.py scores with
# 2·(50·200 + 200·200 + 200·784): the multiply-adds of one decoder pass, counted as 2 FLOPs each
DECODER_FLOPS = 2 * (50 * 200 + 200 * 200 + 200 * 784)
# Below these, `--check` fails. Measured 2026-12-02 on one thread (benchmarks/README.md): ll/chain 0.55, ll/torch 2.5.
FLOORS = {"ll/chain": 0.45, "ll/torch": 1.8}


# ------------------------------------------------------------------ the workers
def tf_worker():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import tensorflow as tf

    import keras_ae

    state = {}

    def setup(examples, samples, threads):
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        model = keras_ae.get_model("vae", **NETWORK, seed=0)
        model.compile()  # as a trained model is: with XLA, compile's default for a dense model
        x = _common.make_data(examples, NETWORK["input_shape"])
        rng = np.random.default_rng(0)
        sizes = (NETWORK["latent_dim"], *NETWORK["hidden_units"], NETWORK["input_shape"][0])
        pairs = zip(sizes[:-1], sizes[1:], strict=True)
        weights = [(tf.constant(rng.normal(0, 0.1, (a, b)), tf.float32), tf.zeros([b])) for a, b in pairs]
        z = tf.constant(rng.normal(size=(BATCH * CHUNK, NETWORK["latent_dim"])), tf.float32)

        @tf.function(jit_compile=True)
        def chain(z):
            (w1, b1), (w2, b2), (w3, b3) = weights
            return tf.matmul(tf.tanh(tf.matmul(tf.tanh(tf.matmul(z, w1) + b1), w2) + b2), w3) + b3

        calls = max(1, round(examples * samples / (BATCH * CHUNK)))

        def run_chain():
            for _ in range(calls):
                out = chain(z)
            out.numpy()
            return calls * BATCH * CHUNK

        def run_ll():
            model.log_likelihood(x, num_samples=samples, batch_size=BATCH, chunk_size=CHUNK)
            return examples * samples

        state.update(ll=run_ll, chain=run_chain)
        for method in ("ll", "chain"):  # traced and compiled before timing
            state[method]()
        return {"tensorflow": tf.__version__, "keras_ae": keras_ae.__version__}

    _common.serve({"setup": setup, "run": lambda method: _timed(state[method])})


def torch_worker():
    import torch
    import torch.nn.functional as F

    from benchmarks._torch_worker import _mlp

    state = {}

    def setup(examples, samples, threads):
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        latent, hidden = NETWORK["latent_dim"], NETWORK["hidden_units"]
        encoder = _mlp([784, *hidden, 2 * latent], NETWORK["activation"], None)
        decoder = _mlp([latent, *hidden[::-1], 784], NETWORK["activation"], None)
        x = torch.from_numpy(_common.make_data(examples, NETWORK["input_shape"]))
        chunks = [CHUNK] * (samples // CHUNK) + ([samples % CHUNK] if samples % CHUNK else [])

        def normal_log_prob(z, loc, scale):
            return (-0.5 * ((z - loc) / scale) ** 2 - torch.log(scale) - 0.5 * math.log(2 * math.pi)).sum(-1)

        def run():
            with torch.no_grad():
                for xb in x.split(BATCH):
                    loc, log_variance = encoder(xb).chunk(2, dim=-1)
                    scale = torch.exp(0.5 * log_variance)
                    total = torch.full((len(xb),), -math.inf)
                    for k in chunks:
                        z = loc + scale * torch.randn(k, *loc.shape)  # (k, batch, latent)
                        logits = decoder(z)
                        log_px_z = -F.binary_cross_entropy_with_logits(
                            logits, xb.expand_as(logits), reduction="none"
                        ).sum(-1)
                        log_w = log_px_z + normal_log_prob(z, 0.0, torch.ones(())) - normal_log_prob(z, loc, scale)
                        total = torch.logaddexp(total, torch.logsumexp(log_w, dim=0))
                    (total - math.log(samples)).numpy()
            return examples * samples

        state["torch"] = run
        run()
        return {"torch": torch.__version__}

    _common.serve({"setup": setup, "run": lambda method: _timed(state[method])})


def _timed(run):
    start = time.perf_counter()
    passes = run()
    seconds = time.perf_counter() - start
    return {"passes_per_s": passes / seconds, "gflops": passes * DECODER_FLOPS / seconds / 1e9}


# -------------------------------------------------------------- the coordinator
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="k = 1000, 3 rounds: a smoke run")
    parser.add_argument("--rounds", type=int, default=None, help="default 7 (3 with --quick)")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads of each worker (default: cores)")
    parser.add_argument("--check", action="store_true", help=f"exit 1 when a ratio falls below {FLOORS}")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    parser.add_argument("--worker", choices=("tf", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return tf_worker() if args.worker == "tf" else torch_worker()

    from benchmarks.speed import Worker, machine

    samples = 1000 if args.quick else 5000
    examples = BATCH  # one batch of 50 images: 250,000 decoder passes a round at k = 5000
    rounds = args.rounds or (3 if args.quick else 7)
    threads = args.threads or os.cpu_count()
    env = {**os.environ, "PYTHONPATH": ROOT}
    workers = {side: Worker("scoring.py", env, "--worker", side) for side in ("tf", "torch")}
    owner = {"ll": "tf", "chain": "tf", "torch": "torch"}
    versions = {}
    try:
        for worker in workers.values():
            versions.update(worker("setup", examples=examples, samples=samples, threads=threads))
        results = {method: [] for method in owner}
        for r in range(rounds):
            order = random.sample(list(owner), len(owner))
            for method in order:
                results[method].append(workers[owner[method]]("run", method=method))
            line = ", ".join(f"{m} {results[m][-1]['passes_per_s']:,.0f}" for m in owner)
            print(f"round {r + 1}/{rounds}: decoder passes/s {line}", flush=True)
    finally:
        for worker in workers.values():
            worker.close()

    def ratio(a, b):
        pairs = zip(results[a], results[b], strict=True)
        return statistics.median(x["passes_per_s"] / y["passes_per_s"] for x, y in pairs)

    ratios = {"ll/chain": ratio("ll", "chain"), "ll/torch": ratio("ll", "torch")}
    medians = {
        method: {key: statistics.median(r[key] for r in rounds_of) for key in ("passes_per_s", "gflops")}
        for method, rounds_of in results.items()
    }
    record = {
        "machine": machine(),
        "versions": versions,
        "threads": threads,
        "network": "VAE 784-200-200-50 tanh, Bernoulli (IWAE paper, one stochastic layer)",
        "importance_samples": samples,
        "batch_size": BATCH,
        "chunk_size": CHUNK,
        "examples_per_round": examples,
        "rounds": rounds,
        "ratios": ratios,
        "floors": FLOORS,
        "medians": medians,
        "per_round": results,
        "full_test_set_minutes_at_ll_median": 10000 * 5000 / medians["ll"]["passes_per_s"] / 60,
    }
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"scoring-{datetime.date.today()}{'-quick' if args.quick else ''}.json")
    with open(path, "w") as f:
        json.dump(record, f, indent=1)
    for method, m in medians.items():
        print(f"{method:6s} {m['passes_per_s']:>10,.0f} decoder passes/s  {m['gflops']:6.1f} GFLOP/s")
    print(", ".join(f"{k} {v:.2f} (floor {FLOORS[k]})" for k, v in ratios.items()))
    print(f"k = 5000 on 10,000 images at the ll median: {record['full_test_set_minutes_at_ll_median']:.1f} min; {path}")
    failed = [k for k, v in ratios.items() if v < FLOORS[k]]
    if args.check and failed:
        print(f"below the floor: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
