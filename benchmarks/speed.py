"""Training throughput of keras-ae against a hand-written TF loop, PyTorch eager and the matmul roofline.

    .venv/bin/pip install -r benchmarks/requirements.txt   # PyTorch, for this benchmark only
    PYTHONPATH=. .venv/bin/python benchmarks/speed.py [--quick]

For each workload (benchmarks/workloads.py), side by side in the same run:
    a    keras-ae `model.compile(); model.fit(x, batch_size=100)` with the
         defaults a user gets; steady-state epochs, timed by a callback;
    a0   the same with Keras' stock flags (jit_compile=False,
         steps_per_execution=1): what keras-ae's defaults buy;
    b    a hand-written `tf.function` + `GradientTape` step over tf.data;
    c    the same network and loss in PyTorch eager, same thread count;
    d    the roofline: the matmul/conv ops of the step's graph, alone, back to
         back, in TF (oneDNN) and for pure-matmul steps also in PyTorch; the
         faster, as samples/s. a/d is the share of the linear algebra's floor
         that `fit` reaches.
TF and PyTorch run in separate worker processes (their thread pools never
share one), and every round runs all runners of a group once, in a fresh
random order; each ratio is the median over rounds of that round's ratio, so
the drift of a shared machine cancels. Results go to
benchmarks/results/speed-<date>.json with the machine's description.
"""

import argparse
import datetime
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from benchmarks._common import round_samples  # noqa: E402
from benchmarks.workloads import BATCH, BY_NAME, GROUPS, WORKLOADS  # noqa: E402

TF_METHODS = ("fit", "fit_stock", "loop", "roofline")
TORCH_METHODS = ("torch", "torch_compile", "torch_roofline")


class Worker:
    """A worker process answering one JSON command a line: `script` in benchmarks/, with `argv`."""

    def __init__(self, script, env, *argv):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, script), *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL if not env.get("BENCH_DEBUG") else None,
            text=True,
            cwd=ROOT,
            env=env,
        )

    def __call__(self, cmd, **args):
        self.proc.stdin.write(json.dumps({"cmd": cmd, "args": args}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.proc.args[-1]} died during {cmd} {args}")
        reply = json.loads(line)
        if not reply.pop("ok"):
            raise RuntimeError(f"{cmd} {args} failed: {reply['error']}\n{reply['trace']}")
        return reply

    def close(self):
        try:
            self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass
        self.proc.wait(timeout=60)


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    memory = None
    try:
        with open("/proc/meminfo") as f:
            memory = round(int(f.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu_model": model or platform.processor(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": memory,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_start": os.getloadavg(),
        "nice": os.nice(0),  # a run under `nice -n -10` outranks other processes on a shared machine
    }


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def run_group(group, workloads, args, env, log):
    """All runners of one group, alternating; returns {workload: results}."""
    tf_worker = Worker("_tf_worker.py", env)
    torch_worker = Worker("_torch_worker.py", env) if not args.no_torch else None
    info = {}
    try:
        tf_worker("threads", intra=args.threads, inter=args.threads)
        if torch_worker:
            torch_worker("threads", intra=args.threads, inter=None)
        info["tf"] = tf_worker("describe")
        if torch_worker:
            info["torch"] = torch_worker("describe")
        runners, setups, samples = [], {}, {}
        for w in workloads:
            name = w["name"]
            for method in TF_METHODS:
                log(f"  setting up {name}/{method}")
                setups[(name, method)] = tf_worker(
                    "setup", workload=name, method=method, warm_samples=args.warm_samples, data_path=args.data
                )
                runners.append((tf_worker, name, method))
            if torch_worker:
                setups[(name, "torch")] = torch_worker(
                    "setup", workload=name, method="torch", warm_samples=args.warm_samples, data_path=args.data
                )
                runners.append((torch_worker, name, "torch"))
                try:  # a workload torch.compile cannot compile (or not in reasonable time) gets no column
                    setups[(name, "torch_compile")] = torch_worker(
                        "setup",
                        workload=name,
                        method="torch_compile",
                        warm_samples=args.warm_samples,
                        data_path=args.data,
                    )
                    runners.append((torch_worker, name, "torch_compile"))
                except RuntimeError as error:
                    log(f"  torch.compile failed for {name}: {str(error).splitlines()[0]}")
                gemms = setups[(name, "roofline")]["describe"]["gemms"]
                if gemms:
                    setups[(name, "torch_roofline")] = torch_worker(
                        "setup", workload=name, method="torch_roofline", warm_samples=args.warm_samples, gemms=gemms
                    )
                    runners.append((torch_worker, name, "torch_roofline"))
            # One epoch of `fit` lasts about args.seconds; every method of the
            # workload trains on the same number of examples.
            estimate = args.warm_samples / setups[(name, "fit")]["second_s"]
            samples[name] = round_samples(args.seconds * estimate, BATCH)
        for worker, name, method in runners:
            worker("prepare", workload=name, method=method, samples=samples[name])
        results = {(name, method): [] for _, name, method in runners}
        for r in range(args.repeats):
            order = list(runners)
            random.shuffle(order)
            for worker, name, method in order:
                results[(name, method)].append(worker("run", workload=name, method=method))
            info.setdefault("load_average_per_round", []).append(os.getloadavg()[0])
            log(f"  round {r + 1}/{args.repeats} of group {group} done (load average {os.getloadavg()[0]:.1f})")
    finally:
        tf_worker.close()
        if torch_worker:
            torch_worker.close()
    return info, setups, samples, results


def summarize(workloads, setups, samples, results, repeats):
    out = {}
    for w in workloads:
        name = w["name"]

        def sps(method, r, name=name):
            values = results.get((name, method))
            return values[r]["sps"] if values else None

        def ratio(x, y):
            return x / y if x is not None and y else None

        rounds = []
        for r in range(repeats):
            d_values = [v for v in (sps("roofline", r), sps("torch_roofline", r)) if v is not None]
            rounds.append(
                {
                    "a": sps("fit", r),
                    "a0": sps("fit_stock", r),
                    "b": sps("loop", r),
                    "c": sps("torch", r),
                    "cc": sps("torch_compile", r),
                    "d": max(d_values),
                    "d_tf": sps("roofline", r),
                    "d_torch": sps("torch_roofline", r),
                }
            )
        med = {k: median([rd[k] for rd in rounds]) for k in rounds[0]}
        # Examples per CPU-second of the worker process (all its threads): less
        # sensitive than wall time to other processes on the machine.
        per_cpu_s = {
            method: median([v["samples"] / v["cpu_s"] for v in values if v["cpu_s"] > 0])
            for (n, method), values in results.items()
            if n == name
        }
        a_sps = med["a"]
        entry = {
            "title": w["title"],
            "model": w["model"],
            "config": w["config"],
            "samples_per_epoch": samples[name],
            "samples_per_s": med,
            "samples_per_cpu_s": per_cpu_s,
            "ratios": {
                "a/c": median([ratio(rd["a"], rd["c"]) for rd in rounds]),
                "a/cc": median([ratio(rd["a"], rd["cc"]) for rd in rounds]),
                "a/b": median([ratio(rd["a"], rd["b"]) for rd in rounds]),
                "a/d": median([ratio(rd["a"], rd["d"]) for rd in rounds]),
                "a/a0": median([ratio(rd["a"], rd["a0"]) for rd in rounds]),
                "c/d": median([ratio(rd["c"], rd["d"]) for rd in rounds]),
            },
            "fit_flags": setups[(name, "fit")]["describe"],
            "compile_s": setups[(name, "fit")]["first_s"] - setups[(name, "fit")]["second_s"],
            "compile_s_stock": setups[(name, "fit_stock")]["first_s"] - setups[(name, "fit_stock")]["second_s"],
            "compile_s_torch": _compile_seconds(setups.get((name, "torch_compile"))),
            "fit_call_samples_per_s": median([v["sps_fit_call"] for v in results[(name, "fit")]]),
            "roofline": {
                "ops": len(setups[(name, "roofline")]["describe"]["ops"]),
                "mflop_per_step": setups[(name, "roofline")]["describe"]["mflop_per_step"],
                "gflops_tf": median([v["gflops"] for v in results[(name, "roofline")]]),
                "gflops_torch": median([v["gflops"] for v in results.get((name, "torch_roofline"), [])]),
            },
            "rounds": rounds,
        }
        entry["achieved_gflops_fit"] = entry["roofline"]["mflop_per_step"] * a_sps / BATCH / 1e3
        out[name] = entry
    for w in workloads:
        base = w.get("baseline")
        if base and base in out:
            mine, theirs = out[w["name"]]["rounds"], out[base]["rounds"]
            out[w["name"]]["penalty_cost"] = {
                key: median([ratio_or_none(t[key], m[key]) for m, t in zip(mine, theirs, strict=True)])
                for key in ("a", "b", "c")
            }
    return out


def _compile_seconds(setup):
    """The first warm-up epoch's excess over the second: tracing and compilation, or None without the method."""
    return None if setup is None else setup["first_s"] - setup["second_s"]


def ratio_or_none(x, y):
    return x / y if x is not None and y else None


def fmt(value, spec=".2f"):
    return "–" if value is None else format(value, spec)


def table(summary):
    lines = [
        "| workload | a/c (vs PyTorch) | a/cc (vs torch.compile) | a/b (vs tf.function loop) | a/d (of roofline) "
        "| a/a0 (vs Keras stock flags) | a samples/s* | b* | c* | cc* | d* | fit compile s* | torch.compile s* |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, e in summary.items():
        r, s = e["ratios"], e["samples_per_s"]
        lines.append(
            f"| {name} | {fmt(r['a/c'])} | {fmt(r['a/cc'])} | {fmt(r['a/b'])} | {fmt(r['a/d'])} | {fmt(r['a/a0'])} "
            f"| {fmt(s['a'], '.0f')} | {fmt(s['b'], '.0f')} | {fmt(s['c'], '.0f')} | {fmt(s['cc'], '.0f')} "
            f"| {fmt(s['d'], '.0f')} | {fmt(e['compile_s'], '.1f')} | {fmt(e['compile_s_torch'], '.1f')} |"
        )
    penalties = [(n, e) for n, e in summary.items() if "penalty_cost" in e]
    if penalties:
        lines += [
            "",
            "| contractive penalty: step time over the plain AE's | keras-ae fit | tf.function loop | PyTorch |",
            "|---|---|---|---|",
        ]
        for name, e in penalties:
            p = e["penalty_cost"]
            lines.append(f"| {name} | {fmt(p['a'])}× | {fmt(p['b'])}× | {fmt(p['c'])}× |")
    return "\n".join(lines)


def run_export(args, env):
    """export/export.py on a briefly trained MLP VAE: its report, and the
    float32 TFLite and SavedModel latencies timed again, alternating."""
    import tempfile

    worker = Worker("_tf_worker.py", env)
    try:
        worker("threads", intra=args.threads, inter=args.threads)
        with tempfile.TemporaryDirectory() as out_dir:
            result = worker(
                "export",
                workload="vae_mlp",
                out_dir=out_dir,
                train_samples=2000,
                repeats=args.repeats,
                calls=20 if args.quick else 50,
                data_path=args.data,
            )
    finally:
        worker.close()
    times = result["alternated_latency_ms"]
    formats = result["report"]
    result["ratios"] = {
        "tflite_float32/saved_model latency": median(
            [t / s for t, s in zip(times["tflite_float32"], times["saved_model"], strict=True)]
        ),
        "tflite_float32/saved_model latency (report.json)": formats["tflite_float32"]["latency_ms"]
        / formats["saved_model"]["latency_ms"],
        "tflite_int8/tflite_float32 size": formats["tflite_int8"]["size_bytes"]
        / formats["tflite_float32"]["size_bytes"],
    }
    return result


def export_table(e):
    f, t, r = e["report"], e["alternated_latency_ms"], e["ratios"]
    saved, tflite, int8 = f["saved_model"], f["tflite_float32"], f["tflite_int8"]
    kib = {name: entry["size_bytes"] / 1024 for name, entry in (("saved", saved), ("tflite", tflite), ("int8", int8))}
    size_ratio = fmt(r["tflite_int8/tflite_float32 size"], ".3f")
    rows = [
        f"| export of the MLP VAE (batch {e['latency_batch']}) | SavedModel | TFLite float32 | TFLite int8 |",
        "|---|---|---|---|",
        f"| latency ratio to the SavedModel (alternated) | 1 | {fmt(r['tflite_float32/saved_model latency'])} | – |",
        f"| latency ms*, alternated median | {fmt(median(t['saved_model']))} "
        f"| {fmt(median(t['tflite_float32']))} | – |",
        f"| latency ms*, report.json | {fmt(saved['latency_ms'])} | {fmt(tflite['latency_ms'])} "
        f"| {fmt(int8['latency_ms'])} |",
        f"| size KiB | {kib['saved']:.0f} | {kib['tflite']:.0f} | {kib['int8']:.0f} ({size_ratio}x float32) |",
    ]
    return "\n".join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds (about 3 minutes)")
    parser.add_argument("--workloads", help="comma-separated names (default: all)")
    parser.add_argument("--repeats", type=int, help="rounds per group (default 7; --quick 3)")
    parser.add_argument("--seconds", type=float, help="length of one fit epoch (default 0.8; --quick 0.3)")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="intra-op threads for TF and PyTorch (default: TF's default, the number of cores)",
    )
    parser.add_argument(
        "--data", help="an .npz with x_train (uint8 28x28, e.g. MNIST) instead of synthetic binary data"
    )
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch (method c)")
    parser.add_argument("--no-export", action="store_true", help="skip the export section")
    parser.add_argument("--out", default=os.path.join(HERE, "results"), help="folder for the JSON")
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (3 if args.quick else 7)
    args.seconds = args.seconds or (0.3 if args.quick else 0.8)
    args.warm_samples = 1000
    args.threads = args.threads or os.cpu_count()
    if not args.no_torch:
        try:
            import importlib.util

            if importlib.util.find_spec("torch") is None:
                raise ImportError
        except ImportError:
            sys.exit("PyTorch is missing: pip install -r benchmarks/requirements.txt, or pass --no-torch.")
    names = args.workloads.split(",") if args.workloads else [w["name"] for w in WORKLOADS]
    for name in names:
        if name not in BY_NAME:
            sys.exit(f"unknown workload {name!r}; known: {', '.join(BY_NAME)}")
    # A workload's baseline (the plain AE of a contractive one) runs with it.
    for name in list(names):
        base = BY_NAME[name].get("baseline")
        if base and base not in names:
            names.append(base)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    start = time.time()

    def log(message):
        print(f"[{time.time() - start:6.1f}s] {message}", file=sys.stderr, flush=True)

    report = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {
            "quick": args.quick,
            "repeats": args.repeats,
            "seconds": args.seconds,
            "threads": args.threads,
            "batch": BATCH,
            "data": args.data or "synthetic Bernoulli(0.3)",
        },
        "workloads": {},
    }
    for group in GROUPS:
        workloads = [w for w in WORKLOADS if w["group"] == group and w["name"] in names]
        if not workloads:
            continue
        log(f"group {group}: {', '.join(w['name'] for w in workloads)}")
        info, setups, samples, results = run_group(group, workloads, args, env, log)
        report.setdefault("load_average_per_round", {})[group] = info.pop("load_average_per_round", [])
        report.setdefault("frameworks", {}).update(info)
        report["workloads"].update(summarize(workloads, setups, samples, results, args.repeats))
    if not args.no_export and os.path.exists(os.path.join(ROOT, "export", "export.py")):
        log("export: vae_mlp to SavedModel and TFLite (export/export.py)")
        report["export"] = run_export(args, env)
    report["machine"]["load_average_end"] = os.getloadavg()
    report["wall_s"] = time.time() - start
    report["table_markdown"] = table(report["workloads"])
    if "export" in report:
        report["table_markdown"] += "\n\n" + export_table(report["export"])
    os.makedirs(args.out, exist_ok=True)
    suffix = "-quick" if args.quick else ""
    path = os.path.join(args.out, f"speed-{datetime.date.today().isoformat()}{suffix}.json")
    with open(path, "w") as f:
        json.dump(report, f, indent=1)
    m, fw = report["machine"], report.get("frameworks", {})
    print(
        f"\n{m['cpu_model']}, {m['cpu_count']} cores; TF {fw.get('tf', {}).get('tensorflow')}, "
        f"Keras {fw.get('tf', {}).get('keras')}, PyTorch {fw.get('torch', {}).get('torch', '–')}; "
        f"{args.threads} threads; load average {m['load_average_start'][0]:.1f} -> {m['load_average_end'][0]:.1f}"
        + (f"; nice {m['nice']}" if m["nice"] else "")
    )
    print("Ratios are medians over rounds of per-round ratios; * absolute numbers are this machine's.")
    busiest = max(
        [m["load_average_start"][0], m["load_average_end"][0]]
        + [v for values in report.get("load_average_per_round", {}).values() for v in values]
    )
    if busiest > (m["cpu_count"] or 1) + 1:  # this benchmark alone keeps about cpu_count busy
        print(
            f"WARNING: the machine was busy (load average up to {busiest:.1f} on {m['cpu_count']} cores): wall "
            "times are unreliable, PyTorch's most (its OpenMP threads wait on descheduled peers); rerun when idle."
        )
    print()
    print(report["table_markdown"])
    print(f"\nwrote {os.path.relpath(path, ROOT)} ({report['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
