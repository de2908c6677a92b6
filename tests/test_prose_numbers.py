"""The check that a notebook's prose quotes only its own numbers (tests/prose_numbers.py), on made-up notebooks."""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tests import prose_numbers


def _notebook(markdown: str, code: str = "print(x)", printed: str = "") -> nbformat.NotebookNode:
    cell = new_code_cell(code, outputs=[new_output("stream", name="stdout", text=printed)])
    return new_notebook(cells=[cell, new_markdown_cell(markdown)])


def test_a_number_the_run_printed_passes_and_a_stale_one_is_named():
    assert prose_numbers.problems("day", _notebook("the cell above prints 0.224", printed="ece 0.2237 +- 0.020")) == []
    stale = prose_numbers.problems("day", _notebook("the cell above prints 0.222", printed="ece 0.2237 +- 0.020"))
    assert len(stale) == 1 and "quotes 0.222" in stale[0] and "markdown cell 1" in stale[0]


def test_percentages_match_printed_fractions_and_ratios_match_their_number():
    assert prose_numbers.problems("day", _notebook("about 34% of them", printed="share 0.3412")) == []
    assert prose_numbers.problems("day", _notebook("about 30% of them", printed="share 0.3412")) != []
    assert prose_numbers.problems("day", _notebook("it takes 1.07x the time", printed="ratio 1.071")) == []


def test_code_literals_pass_and_math_is_left_alone():
    nb = _notebook("smoothing 0.1 and $x = 0.5$", code="loss = f(label_smoothing=0.1)", printed="")
    assert prose_numbers.problems("day", nb) == []
    assert prose_numbers.problems("day", _notebook("smoothing 0.15", code="f(label_smoothing=0.1)")) != []


def test_a_stated_derivation_is_evaluated(monkeypatch):
    monkeypatch.setitem(prose_numbers.STATED, "day", {"0.900002": "1 - 0.1 + 0.1 / 50257", "1.4": "1.5"})
    assert prose_numbers.problems("day", _notebook("q_y = 0.900002")) == []
    wrong = prose_numbers.problems("day", _notebook("a floor of 1.4 nats"))
    assert len(wrong) == 1 and "derivation" in wrong[0]
