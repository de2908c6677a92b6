"""Every performance figure in README and docs cites a results file; every cited file says how it was made.

A section (the text under one markdown heading) that quotes a speed or memory figure (ms/iter, tokens/s, s per student,
MiB, a ratio such as 1.07x) must name a `benchmarks/results/*.json`; each named file must exist and hold the date,
commit, machine and command of its measurement (gptref.bench.record writes them so).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gptref.bench.record import REQUIRED

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CITATION = re.compile(r"benchmarks/results/[A-Za-z0-9_.\-]+\.json")
FIGURE = re.compile(r"\b\d[\d,.]*k?\s?(?:ms/iter|ms per iteration|tokens/s|tok/s|it/s|s per student|MiB|GiB)\b"
                    r"|\b\d+\.\d+x\b")


def sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) for each markdown section, code blocks left out."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    parts = re.split(r"^(#{1,6} .*)$", text, flags=re.M)
    return [("(top)", parts[0])] + [(parts[i].strip(), parts[i + 1]) for i in range(1, len(parts) - 1, 2)]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_cited_results_exist_and_say_how_they_were_made(doc):
    for cited in sorted(set(CITATION.findall(doc.read_text()))):
        path = ROOT / cited
        assert path.exists(), f"{doc.name} cites {cited}, which does not exist"
        record = json.loads(path.read_text())
        missing = [key for key in REQUIRED if key not in record]
        assert not missing, f"{cited} (cited by {doc.name}) lacks {missing}: write it with gptref.bench.record.save"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_performance_figure_cites_its_results_file(doc):
    uncited = [f"{heading}: {FIGURE.search(body).group(0)!r}" for heading, body in sections(doc.read_text())
               if FIGURE.search(body) and not CITATION.search(body)]
    assert not uncited, f"{doc.name} quotes figures with no benchmarks/results/ file in their section: {uncited}"


def test_a_section_with_an_uncited_figure_is_found():
    text = "# Speed\n\ngptref takes 0.87x nanoGPT's time per iteration.\n\n# Other\n\nno figures\n"
    flagged = [h for h, body in sections(text) if FIGURE.search(body) and not CITATION.search(body)]
    assert flagged == ["# Speed"]
