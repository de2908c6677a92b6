"""`python -m gptref COMMAND ...`: the command line of the reference package.

Each command lives in its own module under gptref/commands/ with `add_arguments(parser)` and
`run(args) -> int | None`; only the module of the command asked for is imported, so
`--help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("gptref.commands.data", "download, verify and clean the Shakespeare and Milton corpora"),
    "homework": ("gptref.commands.homework",
                 "the whole homework: pretrain on Shakespeare, fine-tune on Milton, sample, report"),
    "train": ("gptref.commands.train", "pretrain a baby GPT (nanoGPT-style loop)"),
    "finetune": ("gptref.commands.finetune", "fine-tune a checkpoint (continued pretraining or SFT)"),
    "sample": ("gptref.commands.sample", "sample text from a checkpoint"),
    "bench": ("gptref.commands.bench", "benchmarks: bpe, flash, decoding, attention (GPU)"),
}


def _top_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m gptref",
        description="gptref: the reference implementations and the nanoGPT homework of the course.",
        epilog="Run 'python -m gptref COMMAND --help' for a command's options.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_) in COMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        parser = _top_parser()
        if not argv or argv[0] in ("-h", "--help"):
            parser.print_help()
            return 0
        parser.error(f"unknown command {argv[0]!r}; choose from {', '.join(COMMANDS)}")
    name, rest = argv[0], argv[1:]
    module_name, help_ = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name == module_name:
            print(f"gptref: the command {name!r} is not available in this version", file=sys.stderr)
            return 2
        raise
    parser = argparse.ArgumentParser(prog=f"python -m gptref {name}", description=help_)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    result = module.run(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
