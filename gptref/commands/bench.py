"""`python -m gptref bench NAME [options]`: run one benchmark from gptref/bench/."""

from __future__ import annotations

import argparse
import importlib

BENCHES = {
    "bpe": "gptref.bench.bpe",
    "flash": "gptref.bench.flash",
    "decoding": "gptref.bench.decoding",
    "attention": "gptref.bench.attention",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench", metavar="NAME", required=True)
    for name, module_name in BENCHES.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:  # a benchmark not written yet
            if e.name != module_name:
                raise
            continue
        p = sub.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        module.add_arguments(p)


def run(args: argparse.Namespace) -> int | None:
    return importlib.import_module(BENCHES[args.bench]).run(args)
