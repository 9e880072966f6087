"""`python -m benchmarks.reproduce STUDY [flags]`: one study of `STUDIES`, or `all` of them in turn."""

import argparse
import os
import sys
import time

from benchmarks.reproduce import STUDIES
from benchmarks.reproduce import __doc__ as package_doc
from benchmarks.reproduce.common import add_common_arguments


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reproduce", description=package_doc.split("\n\n")[0])
    studies = parser.add_subparsers(dest="study", required=True, metavar="STUDY")
    for name, study in STUDIES.items():
        summary = " ".join(study.__doc__.split("\n\n")[0].split())
        study_parser = studies.add_parser(
            name, help=summary, description=summary, formatter_class=argparse.ArgumentDefaultsHelpFormatter
        )
        add_common_arguments(study_parser)
        if hasattr(study, "add_arguments"):
            study.add_arguments(study_parser)
    add_common_arguments(studies.add_parser("all", help=f"{', '.join(STUDIES)} in turn, each with its own defaults"))
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.study == "all":  # each study gets the common flags given to `all` and its own defaults
        runs = [(name, parser.parse_args([name, *argv[1:]])) for name in STUDIES]
    else:
        runs = [(args.study, args)]
    os.makedirs(args.out, exist_ok=True)
    for name, study_args in runs:
        start = time.time()
        STUDIES[name].run(study_args)
        print(f"{name}: {time.time() - start:.0f}s", flush=True)


if __name__ == "__main__":
    main()
