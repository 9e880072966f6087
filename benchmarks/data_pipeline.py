"""Data pipeline benchmark (issue 13): memory and throughput of training from a folder of images.

    python -m benchmarks.data_pipeline                 # 100k 64x64 RGB JPEGs; about 15 min on 2 busy cores
    python -m benchmarks.data_pipeline --quick         # 1,000 images, a smoke run (its numbers mean little)
    python -m benchmarks.data_pipeline --images 200000 --throughput autoencoder:8192 --rounds 3

1. Generates a folder of N distinct 64x64 RGB JPEGs (random crops, flips and
   colour gains of scikit-learn's two sample photographs, encoded by a
   parallel tf.data map) under runs/bench-data, reused when present.
2. Memory: trains one epoch from the folder with the real entry point
   (`training.train.prepare` + `train`, an MLP `autoencoder`) in a child
   process, and reads that child's own peak RSS (`os.wait4`'s ru_maxrss and
   the child's VmHWM), with the scan (`sources.open_source`, which decodes
   every image once), the training pass and the validation pass timed apart.
3. Throughput: in one child process per model, on a subset (hard links to the
   first K images), one `fit` epoch per variant per round, in a rotating
   order, the first round (tracing) excluded, one model shared by all:
   a. the folder, streamed (`pipeline.stream` over `sources.open_source`);
   b. the folder with `sources.cache` (what `--cache` trains on);
   c. the same images as a numpy array in `pipeline.InMemory` (the built-in data sets' path);
   d. the same numpy array through Keras' own `model.fit(x, batch_size=...)`.
   Ratios are medians over rounds of each round's ratio. The bare decode rate
   is a pass of `pipeline.stream(source, "train", batch)` with no model (and
   likewise for b and c: reading the same images from memory).
4. Writes benchmarks/results/data-pipeline-<date>[-quick][-throughput].json and prints a table.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIZE = 64  # image side
GENERATOR = 1  # bump when the generated images change
WORK = os.path.join("runs", "bench-data")
MARKER = "bench-data.json"
BATCH = 64  # training.train's default batch size
FULL = dict(images=100_000, memory_sizes=(10_000,), throughput="autoencoder:10000,conv_vae:2048", rounds=2)
QUICK = dict(images=1_000, memory_sizes=(), throughput="autoencoder:256", rounds=1)
MEMORY_MODEL = dict(model="autoencoder", latent_dim=32)  # 12288-32-12288 MLP: cheap, so the pipeline is measured
THROUGHPUT_MODELS = {
    "autoencoder": dict(latent_dim=32),
    "conv_vae": dict(latent_dim=32, filters="auto"),  # 64x64 -> 4x4 through (32, 64, 128, 256)
    "conv": dict(latent_dim=32, filters="auto"),
}
VARIANTS = {
    "a": "folder, streamed",
    "b": "folder, sources.cache (--cache)",
    "c": "numpy array in pipeline.InMemory",
    "d": "numpy array, keras model.fit(x)",
}


# ------------------------------------------------------------------ machine state
def load_average():
    return [round(v, 2) for v in os.getloadavg()]


def busy_processes(limit=5):
    """The processes other than this benchmark using the most CPU (ps's lifetime %CPU), commands cut short."""
    try:
        lines = subprocess.run(
            ["ps", "-eo", "pid,ppid,pcpu,nice,args", "--sort=-pcpu"], capture_output=True, text=True, check=True
        ).stdout.splitlines()[1:]
    except (OSError, subprocess.CalledProcessError):
        return []
    mine = {os.getpid()}
    found = []
    for line in lines:
        pid, ppid, pcpu, nice, args = line.split(None, 4)
        if int(pid) in mine or int(ppid) in mine or float(pcpu) < 10:
            continue
        found.append({"pcpu": float(pcpu), "nice": nice, "command": args[:70]})
        if len(found) == limit:
            break
    return found


def machine():
    info = {"cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
        with open("/proc/meminfo") as f:
            info["memory_gb"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    return info


def versions():
    import keras
    import numpy as np
    import tensorflow as tf

    found = {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__}
    try:
        found["commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "keras_ae", "training"], capture_output=True, text=True, check=True
        ).stdout.strip()
        found["library_changes_since_commit"] = dirty.splitlines()  # git status of keras_ae/ and training/
    except (OSError, subprocess.CalledProcessError):
        pass
    return found


# ------------------------------------------------------------------ the images
def image_path(root, index):
    return os.path.join(root, f"{index // 1000:03d}", f"{index:06d}.jpg")


def _read_marker(folder):
    try:
        with open(os.path.join(folder, MARKER)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def generate(folder, count):
    """Writes `count` distinct SIZExSIZE RGB JPEGs into folder/NNN/NNNNNN.jpg,
    image i a function of i alone; reuses a complete folder. Returns seconds spent."""
    if _read_marker(folder) == {"images": count, "size": SIZE, "generator": GENERATOR}:
        return 0.0
    import numpy as np
    import tensorflow as tf
    from sklearn.datasets import load_sample_images

    start = time.perf_counter()
    for sub in range(-(-count // 1000)):
        os.makedirs(os.path.join(folder, f"{sub:03d}"), exist_ok=True)
    photos = tf.constant(np.stack(load_sample_images().images))  # (2, 427, 640, 3) uint8
    height, width = photos.shape[1:3]
    root = tf.constant(folder)

    def write(index):
        seed = tf.stack([index, tf.constant(GENERATOR, tf.int64)])
        draws = tf.random.stateless_uniform([8], seed=seed)
        side = tf.cast(48.0 + draws[0] * (min(height, width) - 48.0), tf.int32)  # a crop of 48..427 px
        top = tf.cast(draws[1] * tf.cast(height - side, tf.float32), tf.int32)
        left = tf.cast(draws[2] * tf.cast(width - side, tf.float32), tf.int32)
        image = tf.image.crop_to_bounding_box(photos[index % 2], top, left, side, side)
        image = tf.image.resize(image, (SIZE, SIZE), antialias=True)
        image = tf.cond(draws[3] < 0.5, lambda: image, lambda: image[:, ::-1])
        gains = 0.6 + 0.8 * draws[4:7]  # per channel
        image = tf.clip_by_value(image * gains + 60.0 * (draws[7] - 0.5), 0.0, 255.0)
        path = tf.strings.join(
            [
                root,
                "/",
                tf.strings.as_string(index // 1000, width=3, fill="0"),
                "/",
                tf.strings.as_string(index, width=6, fill="0"),
                ".jpg",
            ]
        )
        tf.io.write_file(path, tf.io.encode_jpeg(tf.cast(image, tf.uint8), quality=90))
        return index

    written = tf.data.Dataset.range(count).map(write, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    for _ in written.batch(1000).as_numpy_iterator():
        pass
    with open(os.path.join(folder, MARKER), "w") as f:
        json.dump({"images": count, "size": SIZE, "generator": GENERATOR}, f)
    return time.perf_counter() - start


def subset(folder, count, full_count):
    """A folder of hard links to the first `count` images of `folder` (same relative paths, so the same splits)."""
    if count >= full_count:
        return folder
    target = os.path.join(os.path.dirname(folder), f"subset-{count}-of-{full_count}")
    marker = {"images": count, "size": SIZE, "generator": GENERATOR}
    if _read_marker(target) == marker:
        return target
    import shutil

    for index in range(count):
        source, link = image_path(folder, index), image_path(target, index)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if not os.path.exists(link):
            try:
                os.link(source, link)
            except OSError:
                shutil.copyfile(source, link)
    with open(os.path.join(target, MARKER), "w") as f:
        json.dump(marker, f)
    return target


def folder_bytes(folder):
    return sum(
        os.path.getsize(os.path.join(d, n)) for d, _, files in os.walk(folder) for n in files if n.endswith(".jpg")
    )


# ------------------------------------------------------------------ children
class RssSampler(threading.Thread):
    """This process's resident set size every 0.2 s: the peak of each phase (`mark` ends one)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.phases, self._lock = 0, {}, threading.Lock()

    @staticmethod
    def status(field):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        return 0

    def run(self):
        while True:
            rss = self.status("VmRSS")
            with self._lock:
                self.peak = max(self.peak, rss)
            time.sleep(0.2)

    def mark(self, phase):
        rss = self.status("VmRSS")
        with self._lock:
            self.phases[phase] = {"peak_rss_mb": round(max(self.peak, rss) / 2**20, 1), "rss_mb": round(rss / 2**20, 1)}
            self.peak = rss


def _epoch_timer(times):
    import keras

    class EpochTimer(keras.callbacks.Callback):
        """Seconds of each epoch's training pass and of its validation pass, and the process CPU seconds."""

        def on_epoch_begin(self, epoch, logs=None):
            self._start, self._cpu = time.perf_counter(), time.process_time()
            self._test = None

        def on_test_begin(self, logs=None):
            self._test = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            end = time.perf_counter()
            train_end = self._test or end
            times.append(
                {
                    "train_s": train_end - self._start,
                    "validation_s": end - train_end if self._test else None,
                    "cpu_s": time.process_time() - self._cpu,
                }
            )

    return EpochTimer()


def child_memory(folder, out_dir, result_path):
    """One epoch of `training.train` from `folder` with an MLP autoencoder; its memory and times."""
    sampler = RssSampler()
    sampler.start()
    start = time.perf_counter()
    import keras  # noqa: F401

    from keras_ae import pipeline, sources
    from training import config as run_config
    from training import train

    sampler.mark("imports")
    scan = {}
    open_source = sources.open_source

    def timed_open(*args, **kwargs):  # the scan (every image decoded once), apart from the rest of `prepare`
        t = time.perf_counter()
        source = open_source(*args, **kwargs)
        scan["s"] = time.perf_counter() - t
        sampler.mark("open_source")
        return source

    sources.open_source = timed_open
    options = dict(
        dataset=folder,
        image_size=SIZE,
        channels=3,
        epochs=1,
        batch_size=BATCH,
        export=False,
        image_every=0,
        verbose=2,
        out=out_dir,
        overwrite=True,
        **MEMORY_MODEL,
    )
    t = time.perf_counter()
    setup = train.prepare(run_config.resolve(options))
    prepare_s = time.perf_counter() - t
    sampler.mark("prepare_rest")
    epochs = []
    model_class = type(setup.model)
    fit = model_class.fit

    def timed_fit(self, *args, **kwargs):  # adds a timer to training.train's own callbacks
        kwargs["callbacks"] = [*kwargs.get("callbacks", []), _epoch_timer(epochs)]
        return fit(self, *args, **kwargs)

    model_class.fit = timed_fit
    t = time.perf_counter()
    result = train.train(setup)
    train_s = time.perf_counter() - t
    sampler.mark("train")
    source = setup.source
    # The cost of starting a pass: a fresh iterator of the training split, to its first batch.
    dataset = pipeline.stream(source, "train", BATCH, seed=0)
    t = time.perf_counter()
    next(iter(dataset))
    first_batch_s = time.perf_counter() - t
    sampler.mark("first_batch")
    report = {
        "model": f"{MEMORY_MODEL['model']} (MLP {SIZE * SIZE * 3}-{MEMORY_MODEL['latent_dim']}-{SIZE * SIZE * 3})",
        "jit_compile": bool(setup.model.jit_compile),
        "counts": {split: source.count(split) for split in pipeline.SPLITS},
        "open_source_s": scan.get("s"),
        "prepare_s": prepare_s,
        "prepare_rest_s": prepare_s - scan.get("s", 0.0),
        "train_call_s": train_s,
        "epochs": epochs,
        "fresh_iterator_first_batch_s": first_batch_s,
        "history": {k: [float(v) for v in vs] for k, vs in result.history.history.items()},
        "phases": sampler.phases,
        "vm_hwm_mb": round(RssSampler.status("VmHWM") / 2**20, 1),
        "child_wall_s": time.perf_counter() - start,
    }
    with open(result_path, "w") as f:
        json.dump(report, f)


def _bare_pass(dataset):
    """One pass of a dataset with no model: seconds to the first batch, and the rate of the rest."""
    t, cpu = time.perf_counter(), time.process_time()
    iterator = iter(dataset)
    first = len(next(iterator))
    first_s = time.perf_counter() - t
    rest = sum(len(batch) for batch in iterator)
    seconds = time.perf_counter() - t
    return {
        "images": first + rest,
        "s": seconds,
        "first_batch_s": first_s,
        "images_per_s": (first + rest) / seconds,
        "after_first_batch_images_per_s": rest / max(seconds - first_s, 1e-9),
        "cpu_s": time.process_time() - cpu,
    }


def child_throughput(folder, model_name, rounds, result_path):
    """Examples/s of `fit` from the folder streamed, cached and as arrays, side by side; the bare decode rate."""
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_ae import get_model, pipeline, sources, validation

    start = time.perf_counter()
    t = time.perf_counter()
    source = sources.open_source(folder, image_size=SIZE, channels=3)
    open_s = time.perf_counter() - t
    n = source.count("train")
    t = time.perf_counter()
    cached = sources.cache(source)
    cache_s = time.perf_counter() - t
    x = np.array(cached.array("train"))  # the same images, a numpy array of their own
    in_memory = pipeline.InMemory({"train": x})
    stored = {"a": source, "b": cached, "c": in_memory}

    # Bare passes, no model: the decode rate (a), and reading the same images from memory (b, c).
    bare = {key: [_bare_pass(pipeline.stream(stored[key], "train", BATCH, seed=0)) for _ in range(2)] for key in stored}

    # One model for every variant, so the step is the same and is traced once; each variant its own input.
    model = get_model(model_name, input_shape=(SIZE, SIZE, 3), seed=0, **THROUGHPUT_MODELS[model_name])
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    inputs = {}
    for key in stored:  # as training.train builds them
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        data = pipeline.stream(stored[key], "train", BATCH, shuffle=True, seed=0, epoch=epoch)
        inputs[key] = (validation.check_dataset(data, model.feature_shape, model.input_range()), epoch)

    per_round = []
    order = list(VARIANTS)
    for r in range(rounds + 1):
        shift = r % len(order)
        this_round = {}
        for key in order[shift:] + order[:shift]:
            times = []
            callbacks = [_epoch_timer(times)]
            t = time.perf_counter()
            if key == "d":
                model.fit(
                    x, batch_size=BATCH, shuffle=True, epochs=r + 1, initial_epoch=r, verbose=0, callbacks=callbacks
                )
            else:
                data, epoch = inputs[key]
                callbacks.append(keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs, v=epoch: v.assign(e)))
                model.fit(data, epochs=r + 1, initial_epoch=r, verbose=0, callbacks=callbacks)
            fit_s = time.perf_counter() - t
            epoch_s = times[0]["train_s"]
            this_round[key] = {"epoch_s": epoch_s, "cpu_s": times[0]["cpu_s"], "fit_call_s": fit_s}
            this_round[key]["examples_per_s"] = n / epoch_s
        this_round["load"] = load_average()
        per_round.append(this_round)
        print(f"  {model_name} round {r}{' (warm-up)' if r == 0 else ''}: "
              + ", ".join(f"{k} {this_round[k]['examples_per_s']:.0f}/s" for k in VARIANTS), flush=True)  # fmt: skip

    timed = per_round[1:]
    summary = {
        key: {
            "examples_per_s": statistics.median(r[key]["examples_per_s"] for r in timed),
            "examples_per_cpu_s": statistics.median(n / r[key]["cpu_s"] for r in timed),
            "epoch_s": statistics.median(r[key]["epoch_s"] for r in timed),
        }
        for key in VARIANTS
    }
    ratios = {
        f"{a}/{b}": statistics.median(r[a]["examples_per_s"] / r[b]["examples_per_s"] for r in timed)
        for a, b in (("a", "c"), ("b", "c"), ("a", "d"), ("b", "d"), ("c", "d"), ("a", "b"))
    }
    report = {
        "model": model_name,
        "model_options": THROUGHPUT_MODELS[model_name],
        "jit_compile": bool(model.jit_compile),
        "steps_per_execution": model.steps_per_execution,
        "batch_size": BATCH,
        "folder_images": sum(source.count(s) for s in pipeline.SPLITS),
        "train_examples": n,
        "open_source_s": open_s,
        "cache_s": cache_s,
        "bare": bare,
        "rounds": per_round,
        "summary": summary,
        "ratios": ratios,
        "child_wall_s": time.perf_counter() - start,
    }
    with open(result_path, "w") as f:
        json.dump(report, f)


def run_child(args):
    """Runs this module as a child; returns (its JSON report, its own peak RSS in MB, wall seconds)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "benchmarks.data_pipeline", *args, "--result", path])
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    try:
        if process.returncode != 0:
            return {"error": f"exit status {process.returncode}"}, usage.ru_maxrss / 1024, wall
        with open(path) as f:
            return json.load(f), usage.ru_maxrss / 1024, wall
    finally:
        os.unlink(path)


# ------------------------------------------------------------------ the report
def parse_throughput(text):
    pairs = []
    for item in filter(None, text.split(",")):
        name, _, count = item.partition(":")
        if name not in THROUGHPUT_MODELS or not count.isdigit():
            raise SystemExit(
                f"--throughput: MODEL:COUNT with MODEL one of {', '.join(THROUGHPUT_MODELS)}; got {item!r}"
            )
        pairs.append((name, int(count)))
    return pairs


def print_table(report):
    n = report["images"]
    print(f"\nData pipeline, {n} {SIZE}x{SIZE} RGB JPEGs ({report['folder_mb']:.0f} MB on disk), "
          f"load {report['load_before']} -> {report['load_after']} on {report['machine']['cores']} cores")  # fmt: skip
    print("\n| memory run | images | decoded float32 | peak RSS | scan | train pass | validation | wall |")
    print("|---|---|---|---|---|---|---|---|")
    for m in report["memory"]:
        if "error" in m:
            print(f"| {m['images']} | {m['error']} |")
            continue
        epoch = m["epochs"][0] if m.get("epochs") else {}
        print(
            f"| {m['model'].split(' ')[0]} | {m['images']} | {m['decoded_float32_mb']:.0f} MB | "
            f"{m['peak_rss_mb']:.0f} MB | {m['open_source_s']:.0f} s | {epoch.get('train_s', 0):.0f} s "
            f"({m['counts']['train'] / epoch.get('train_s', 1):.0f}/s) | "
            f"{epoch.get('validation_s') or 0:.0f} s | {m['wall_s']:.0f} s |"
        )
    for t in report["throughput"]:
        if "error" in t:
            print(f"\n{t['model']}: {t['error']}")
            continue
        print(
            f"\n{t['model']} on {t['folder_images']} images ({t['train_examples']} train), batch {t['batch_size']}, "
            f"XLA {t['jit_compile']}; scan {t['open_source_s']:.1f} s, cache built in {t['cache_s']:.1f} s"
        )
        print("| variant | bare pass images/s (after 1st batch) | 1st batch s | fit ex/s | ex/CPU-s | epoch s |")
        print("|---|---|---|---|---|---|")
        for key, name in VARIANTS.items():
            s = t["summary"][key]
            b = t["bare"][key][-1] if key in t["bare"] else None
            bare = "- | -"
            if b:
                bare = f"{b['images_per_s']:.0f} ({b['after_first_batch_images_per_s']:.0f}) | {b['first_batch_s']:.2f}"
            print(
                f"| {key}. {name} | {bare} | {s['examples_per_s']:.0f} | "
                f"{s['examples_per_cpu_s']:.0f} | {s['epoch_s']:.1f} |"
            )
        print("ratios: " + ", ".join(f"{k} {v:.3f}" for k, v in t["ratios"].items()))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.data_pipeline", description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, help=f"images in the folder (default {FULL['images']})")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1,000 images, one small throughput run")
    parser.add_argument("--out", default=os.path.join("benchmarks", "results"), help="the folder of the JSON")
    parser.add_argument("--work", default=WORK, help="the folder of the generated images and the training runs")
    parser.add_argument("--throughput", help=f"MODEL:COUNT,... (default {FULL['throughput']}); '' for none")
    parser.add_argument("--memory-sizes", help="extra, smaller folder sizes for the memory run, e.g. 10000")
    parser.add_argument("--rounds", type=int, help="timed rounds of the throughput runs (one warm-up round more)")
    parser.add_argument(
        "--skip-memory", action="store_true", help="only the throughput runs (JSON: ...-throughput.json)"
    )
    parser.add_argument("--child", choices=("memory", "throughput"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "memory":
        return child_memory(args.folder, os.path.join(args.work, "train-memory"), args.result)
    if args.child == "throughput":
        return child_throughput(args.folder, args.model, args.rounds, args.result)

    preset = QUICK if args.quick else FULL
    images = args.images or preset["images"]
    throughput = parse_throughput(preset["throughput"] if args.throughput is None else args.throughput)
    rounds = args.rounds or preset["rounds"]
    memory_sizes = preset["memory_sizes"] if args.memory_sizes is None else tuple(
        int(s) for s in args.memory_sizes.split(",") if s
    )  # fmt: skip
    memory_sizes = [] if args.skip_memory else sorted({s for s in memory_sizes if s < images} | {images})

    started = time.perf_counter()
    report = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join(["python -m benchmarks.data_pipeline", *(argv if argv is not None else sys.argv[1:])]),
        "quick": args.quick,
        "images": images,
        "image_shape": [SIZE, SIZE, 3],
        "batch_size": BATCH,
        "machine": machine(),
        "load_before": load_average(),
        "busy_before": busy_processes(),
    }
    folder = os.path.abspath(os.path.join(args.work, f"images-{images}"))
    print(f"Generating {images} images into {folder} (reused when complete)...", flush=True)
    report["generate_s"] = generate(folder, images)
    report["folder"] = os.path.relpath(folder)
    report["folder_mb"] = folder_bytes(folder) / 2**20
    report["versions"] = versions()

    report["memory"] = []
    for size in memory_sizes:
        target = subset(folder, size, images)
        print(f"Memory: one epoch of training.train from {size} images in a child process...", flush=True)
        load = load_average()
        result, peak_mb, wall = run_child(["--child", "memory", "--folder", target, "--work", args.work])
        result.update(
            images=size,
            peak_rss_mb=peak_mb,
            wall_s=wall,
            load_before=load,
            load_after=load_average(),
            decoded_float32_mb=size * SIZE * SIZE * 3 * 4 / 2**20,
            decoded_uint8_mb=size * SIZE * SIZE * 3 / 2**20,
        )
        report["memory"].append(result)
        print(f"  peak RSS {peak_mb:.0f} MB, wall {wall:.0f} s", flush=True)

    report["throughput"] = []
    for model_name, count in throughput:
        target = subset(folder, count, images)
        print(f"Throughput: {model_name} on {count} images, {rounds} timed round(s) + 1 warm-up...", flush=True)
        result, peak_mb, wall = run_child(
            ["--child", "throughput", "--folder", target, "--model", model_name, "--rounds", str(rounds)]
        )
        result.setdefault("model", model_name)
        result.update(peak_rss_mb=peak_mb, wall_s=wall)
        report["throughput"].append(result)

    report["load_after"] = load_average()
    report["busy_after"] = busy_processes()
    report["wall_s"] = time.perf_counter() - started
    os.makedirs(args.out, exist_ok=True)
    suffix = ("-quick" if args.quick else "") + ("-throughput" if args.skip_memory else "")
    name = f"data-pipeline-{datetime.date.today().isoformat()}{suffix}.json"
    path = os.path.join(args.out, name)
    with open(path + ".tmp", "w") as f:
        json.dump(report, f, indent=1)
    os.replace(path + ".tmp", path)
    print_table(report)
    print(f"\nWrote {path} ({report['wall_s']:.0f} s)")


if __name__ == "__main__":
    sys.exit(main())
