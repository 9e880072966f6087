"""The `keras-ae` command: train, export, evaluate, sample, reconstruct, and the shipped presets.

    keras-ae train                                        # the default autoencoder on the embedded digits, offline
    keras-ae train --model vae --dataset mnist --data-dir ../shared/data --epochs 20
    keras-ae export runs/autoencoder-digits --out exported --tflite float32,int8
    keras-ae evaluate runs/autoencoder-digits             # the report: runs/autoencoder-digits/evaluation/
    keras-ae presets                                      # the pretrained models shipped in the package
    keras-ae sample vae_mnist --n 64 --out samples.png
    keras-ae reconstruct dae_mnist photos/ --out reconstructions/

`train` and `export` take every flag of `python -m training.train` and `python -m export.export` (see
`keras-ae train --help`). Errors are one line and exit with status 2; `train` exits 1 when a run stops on a
NaN loss and `export` 1 when an export differs from the Keras model beyond its bounds.
"""

import argparse
import contextlib
import importlib
import io
import json
import math
import os
import shlex
import sys

# TensorFlow's C++ INFO and WARNING lines would bury the output; set the variable to see them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_ae  # noqa: E402
from keras_ae import data, evaluation, images, pipeline, presets, sources  # noqa: E402

PROG = "keras-ae"
GRID = "grid.png"  # reconstruct's inputs beside their reconstructions
# Subcommands whose own parser takes all their arguments: {name: (module, help)}.
FORWARDED = {
    "train": ("training.train", "train a model (the flags of python -m training.train)"),
    "export": ("export.export", "export to a SavedModel, TFLite and (--onnx) ONNX (python -m export.export)"),
}


def wrapped(name):
    """A module of training/ or export/: `keras_ae.training.train` as installed from the wheel, which puts
    those folders under keras_ae; `training.train` in a checkout, where they are top-level folders."""
    try:
        return importlib.import_module(f"keras_ae.{name}")
    except ModuleNotFoundError as error:
        if error.name != f"keras_ae.{name.partition('.')[0]}":  # a missing dependency is not a checkout
            raise
        return importlib.import_module(name)


def _forward(command, argv):
    return wrapped(FORWARDED[command][0]).main(argv, prog=f"{PROG} {command}")


# ------------------------------------------------------------------ presets
def _from_preset(name):
    """The autoencoder of a preset; a preset of another kind (a feature classifier) is a one-line error."""
    model = presets.from_preset(name)
    if not isinstance(model, keras_ae.Autoencoder):
        raise ValueError(
            f"{name} is a {type(model).__name__} preset, not an autoencoder: it scores samples "
            "(keras_ae.sample_quality), it does not evaluate, sample or reconstruct."
        )
    return model


def _list_presets(args):
    found = presets.list_presets()
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    if not found:
        print("No presets are shipped with this keras-ae.")
        return 0
    rows = [("name", "metrics", "description")]
    for preset in found:
        metrics = ", ".join(f"{name} {_number(m)}" for name, m in preset.get("metrics", {}).items())
        rows.append((preset["name"], metrics, preset.get("description", "")))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for row in rows:
        print(f"{row[0].ljust(widths[0])}  {row[1].ljust(widths[1])}  {row[2]}".rstrip())
    return 0


def _number(metric):
    value = metric.get("value") if isinstance(metric, dict) else metric
    return f"{value:.4g}" if isinstance(value, int | float) else str(value)


# ------------------------------------------------------------------ evaluate
BINARIZATION_SEED = 1234  # the one fixed draw a dynamically binarized model is scored on


def _evaluate(args):
    model, config, what = _model_and_config(args.model)
    if args.dataset is not None and args.dataset != config.get("dataset"):
        config = {"dataset": args.dataset, "scale": config.get("scale", "unit"), "binarize": config.get("binarize")}
    if args.data_dir is not None:
        config["data_dir"] = args.data_dir
    if not config.get("dataset"):
        raise ValueError(f"{args.model}: no data set is recorded for {what}; give --dataset.")
    source = _split_source(config, args.split)
    count = source.count(args.split)
    if not count:
        raise ValueError(f"{source.description} has no {args.split} examples.")
    n = min(count, args.examples or count)
    if model.conditional and source.classes is None:
        raise ValueError(f"{args.model} is conditional: evaluate it on labelled data; {source.description} has none.")
    x, classes = (
        pipeline.head(source, args.split, n, labels=True)
        if model.conditional
        else (pipeline.head(source, args.split, n), None)
    )
    labels = _anomaly_labels(args, config, count, n)
    x_train = None
    if args.split != "train":
        train = _split_source(config, "train")
        if train.count("train"):
            x_train = pipeline.head(train, "train", min(train.count("train"), evaluation.EX_POST_EXAMPLES))
    if not args.json:
        print(f"Evaluating {args.model} on {n} of {count} {args.split} examples of {config['dataset']}")
    report = evaluation.evaluate(
        model,
        x,
        x_train=x_train,
        dataset=config["dataset"],
        num_samples=args.num_samples,
        batch_size=args.batch_size,
        anomaly_labels=labels,
        binarize_seed=BINARIZATION_SEED if config.get("binarize") == "dynamic" else None,
        sample_quality=not args.no_sample_quality,
        verbose=not args.json,
        labels=classes,
    )
    numbers = report["numbers"]
    numbers.update(model_source=args.model, dataset=config["dataset"], split=args.split, split_examples=count)
    out = args.out or _default_report_folder(args.model)
    title = f"{os.path.basename(os.path.normpath(args.model))} on {config['dataset']} ({args.split})"
    json_path, html_path = evaluation.write_report(report, out, title=title)
    if args.json:  # stdout is the JSON alone, for a pipe
        print(json.dumps(numbers, indent=2))
    else:
        print(evaluation.summary(numbers))
        print(f"Wrote {json_path} and {html_path}")
    return 0


def _default_report_folder(where):
    """A run folder's own `evaluation/`; else `evaluation_<name>` here."""
    if os.path.isdir(where) and os.path.isfile(os.path.join(where, "model.keras")):
        return os.path.join(where, "evaluation")
    name = os.path.splitext(os.path.basename(os.path.normpath(where)))[0]
    return f"evaluation_{name}"


def _anomaly_labels(args, config, count, n):
    """(n,) 1 for anomalous examples, from --normal-class (a labelled built-in data set) or --anomaly-labels."""
    if args.normal_class is not None:
        if sources.is_path(config["dataset"]):
            raise ValueError("--normal-class needs a labelled built-in data set; give --anomaly-labels for your files.")
        classes = data.labels(config["dataset"], args.split, data_dir=config.get("data_dir"))
        if args.normal_class not in set(classes.tolist()):
            raise ValueError(
                f"--normal-class {args.normal_class}: {config['dataset']} has classes {sorted(set(classes))}."
            )
        return (classes[:n] != args.normal_class).astype(np.int64)
    if args.anomaly_labels is not None:
        labels = np.load(args.anomaly_labels, allow_pickle=False)
        if labels.shape != (count,) or not np.isin(labels, (0, 1)).all():
            raise ValueError(
                f"{args.anomaly_labels}: anomaly labels must be 0 or 1, one per {args.split} example "
                f"(shape ({count},), in the order of the split); got shape {labels.shape}."
            )
        return labels[:n]
    return None


def _model_and_config(where):
    """The model of a run folder, a .keras file or a preset, and the data options it was trained with."""
    if os.path.isdir(where) and os.path.isfile(os.path.join(where, "model.keras")):
        model_file, what = os.path.join(where, "model.keras"), "the run"
    elif where.endswith(".keras"):
        model_file, what = where, "the model file"
    else:
        model = _from_preset(where)
        return model, _preset_config(model), "the preset"
    if not os.path.isfile(model_file):
        raise FileNotFoundError(f"{model_file}: no such model file.")
    config_file = os.path.join(os.path.dirname(model_file), "config.json")
    config = wrapped("training.config").resolve({}, config_file) if os.path.isfile(config_file) else {}
    return keras.saving.load_model(model_file), config, what


def _preset_config(model):
    """The data options of a preset: those of the training command its metadata records, else its data set."""
    metadata = getattr(model, "preset_metadata", {})
    words = shlex.split(metadata.get("command", ""))
    if "training.train" in words:
        flags = words[words.index("training.train") + 1 :]
        with contextlib.suppress(SystemExit, ValueError), contextlib.redirect_stderr(io.StringIO()):
            return wrapped("training.train").parse_config(flags)
    dataset = metadata.get("dataset")
    return {"dataset": dataset.get("name") if isinstance(dataset, dict) else dataset}


def _split_source(config, split):
    """One split of a built-in data set or of the user's files, as a `pipeline.Source`."""
    scale, binarize = config.get("scale", "unit"), config.get("binarize")
    if not sources.is_path(config["dataset"]):
        options = config.get("dataset_options") or {}
        x = data.load(
            config["dataset"], split, data_dir=config.get("data_dir"), scale=scale, binarize=binarize, **options
        )
        labels = None
        if config["dataset"] in data.LABELLED:  # a conditional model's evaluation reads them
            labels = {split: data.labels(config["dataset"], split, data_dir=config.get("data_dir"))}
        return pipeline.InMemory({split: x}, description=f"{config['dataset']} ({split})", labels=labels)
    files = ("image_size", "channels", "image_fit", "validation_fraction", "test_fraction", "skip_bad_files", "labels")
    return sources.open_source(
        config["dataset"],
        scale=scale,
        binarize=binarize,
        statistics=config.get("scale_statistics"),
        **{name: config[name] for name in files if config.get(name) is not None},
    )


# ------------------------------------------------------------------ sample and reconstruct
def _sample(args):
    model = _from_preset(args.preset)
    if not callable(getattr(model, "sample", None)):
        kind = getattr(model, "registry_name", None) or type(model).__name__
        raise ValueError(
            f"{args.preset} is a {kind} model, which does not sample: give a VAE preset such as vae_mnist."
        )
    x = keras.ops.convert_to_numpy(model.sample(args.n, seed=args.seed))
    shape = images.display_shape(model.feature_shape)
    columns = args.columns or math.ceil(math.sqrt(args.n))
    _write_png(args.out, images.tile(np.clip(x, 0, 1).reshape((-1, *shape)), columns=columns))
    print(f"Wrote {args.out}: {args.n} samples of {args.preset}")
    return 0


def _reconstruct(args):
    if not os.path.isdir(args.images):
        raise ValueError(f"{args.images}: not a folder; give a folder of images (.png, .jpg, .bmp, .gif).")
    model = _from_preset(args.preset)
    size, channels = _image_geometry(model.feature_shape, args.preset)
    # Every image, in one split, read at the model's size and channels.
    source = sources.open_source(
        args.images, image_size=size, channels=channels, validation_fraction=0.0, test_fraction=0.0
    )
    paths, parts = [], []
    for split in pipeline.SPLITS:  # one split, or a folder's own train/ validation/ test/ subfolders
        if source.count(split):
            paths += [key.decode() for key in source.keys(split, None).as_numpy_iterator()]
            parts.append(pipeline.head(source, split, source.count(split)))
    x = np.concatenate(parts).reshape((-1, *model.feature_shape))
    reconstructions = np.clip(model.predict(x, batch_size=256, verbose=0), 0, 1)
    shape = images.display_shape(model.feature_shape)
    targets = _targets(paths, args.images, args.out, grid=os.path.join(args.out, GRID))
    for target, reconstruction in zip(targets, reconstructions, strict=True):
        _write_png(target, reconstruction.reshape(shape))
    shown = min(len(x), args.grid)
    pairs = np.stack([x[:shown].reshape((-1, *shape)), reconstructions[:shown].reshape((-1, *shape))], axis=1)
    _write_png(os.path.join(args.out, GRID), images.tile(pairs.reshape((-1, *shape)), columns=2 * min(shown, 8)))
    error = float(np.mean((x - reconstructions) ** 2))
    print(
        f"Wrote {len(x)} reconstructions by {args.preset} to {args.out}, and {GRID} (inputs beside reconstructions, "
        f"the first {shown}); mean squared error {error:.4g}"
    )
    return 0


def _image_geometry(feature_shape, name):
    """(image_size, channels) of images a model reads: its (s, s, c) input, or a flat s*s or s*s*3 vector."""
    if len(feature_shape) == 3 and feature_shape[0] == feature_shape[1] and feature_shape[2] in (1, 3):
        return int(feature_shape[0]), int(feature_shape[2])
    if len(feature_shape) == 1:
        for channels in (1, 3):
            side = math.isqrt(feature_shape[0] // channels)
            if side * side * channels == feature_shape[0]:
                return side, channels
    raise ValueError(f"{name} reads inputs of shape {tuple(feature_shape)}, not square images of 1 or 3 channels.")


def _targets(paths, root, out, grid):
    """The PNG file of each image's reconstruction: its relative path with .png for its suffix, or with .png
    added where two images (a.jpg, a.png) or the grid would share a name."""
    relative = [os.path.relpath(path, root) for path in paths]
    plain = [os.path.join(out, os.path.splitext(r)[0] + ".png") for r in relative]
    taken = plain + [grid]
    return [p if taken.count(p) == 1 else os.path.join(out, r + ".png") for p, r in zip(plain, relative, strict=True)]


def _write_png(path, image):
    """An (H, W) or (H, W, C) image of values in [0, 1] as an 8-bit PNG; its folder is created."""
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(path, "wb") as f:
        f.write(images.png_bytes(image))


# ------------------------------------------------------------------ the command line
def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an int >= 1; got {text!r}")
    return value


def build_parser():
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"{PROG} {keras_ae.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in FORWARDED.items():
        # Listed here for --help; main() hands their arguments to their own parser.
        commands.add_parser(name, help=help_text, add_help=False)

    evaluate = commands.add_parser(
        "evaluate",
        help="the evaluation report of a run, a .keras file or a preset: evaluation.json and report.html",
    )
    evaluate.add_argument("model", metavar="RUN_OR_PRESET", help="a run folder, a .keras file, or a preset's name")
    evaluate.add_argument("--dataset", help="a data set's name or your files (default: the one it was trained on)")
    evaluate.add_argument("--data-dir", help="the folder of the data set's files (as in train)")
    evaluate.add_argument("--split", default="test", choices=pipeline.SPLITS, help="default: test")
    evaluate.add_argument(
        "--examples", type=_positive_int, help="evaluate the split's first N examples (default: all of them)"
    )
    evaluate.add_argument("--batch-size", type=_positive_int, default=256, help="default: 256")
    evaluate.add_argument(
        "--num-samples",
        type=_positive_int,
        default=1000,
        help="k of a VAE's importance-weighted log-likelihood (default: 1000)",
    )
    evaluate.add_argument("--no-sample-quality", action="store_true", help="skip the Fréchet distance and KID")
    anomalies = evaluate.add_mutually_exclusive_group()
    anomalies.add_argument(
        "--normal-class", type=int, help="anomaly detection: this class is normal, the others anomalous (AUROC, AUPRC)"
    )
    anomalies.add_argument(
        "--anomaly-labels",
        help="anomaly detection: a .npy of 0 (normal) or 1 (anomalous), one per example of the split",
    )
    evaluate.add_argument(
        "--out", help="the report's folder (default: RUN/evaluation, or evaluation_<name> for a preset or file)"
    )
    evaluate.add_argument(
        "--json", action="store_true", help="print evaluation.json alone, no progress or summary (for a pipe)"
    )
    evaluate.set_defaults(run=_evaluate)

    sample = commands.add_parser("sample", help="draw samples from a generative preset, as one PNG grid")
    sample.add_argument("preset", help="a preset's name, folder or URL (see `keras-ae presets`)")
    sample.add_argument("--n", type=_positive_int, default=64, help="how many samples (default: 64)")
    sample.add_argument("--out", default="samples.png", help="the PNG file (default: samples.png)")
    sample.add_argument("--seed", type=int, help="the seed of the draws (default: a fresh one)")
    sample.add_argument("--columns", type=_positive_int, help="samples across (default: a square grid)")
    sample.set_defaults(run=_sample)

    reconstruct = commands.add_parser(
        "reconstruct", help="reconstruct a folder of images: one PNG each, and a grid beside the inputs"
    )
    reconstruct.add_argument("preset", help="a preset's name, folder or URL (see `keras-ae presets`)")
    reconstruct.add_argument("images", metavar="IMAGES_DIR", help="a folder of .png, .jpg, .bmp or .gif images")
    reconstruct.add_argument("--out", required=True, help="the output folder")
    reconstruct.add_argument(
        "--grid", type=_positive_int, default=64, help=f"images shown in {GRID}, each beside its reconstruction"
    )
    reconstruct.set_defaults(run=_reconstruct)

    presets = commands.add_parser("presets", help="list the presets shipped with keras-ae, with their numbers")
    presets.add_argument("--json", action="store_true", help="print their metadata as JSON")
    presets.set_defaults(run=_list_presets)
    return parser, commands


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in FORWARDED:
        return _forward(argv[0], argv[1:])
    parser, commands = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    command = commands.choices[args.command]
    try:
        return args.run(args)
    except (ValueError, OSError) as error:  # a bad argument, file, preset or data set
        command.exit(2, f"{command.prog}: error: {' '.join(str(error).split())}\n")


if __name__ == "__main__":
    sys.exit(main())
