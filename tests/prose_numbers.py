"""Numbers in a notebook's prose are the notebook's own: printed by one of its cells, set in its code, or derived.

Every decimal, percentage and ratio ("0.224", "34%", "1.07x") in a markdown cell must be one of:
- printed by the executed notebook: some number in a cell's output rounds to it at the precision the prose uses
  (a percentage may be printed as a fraction: 34% matches 0.34);
- a literal of the notebook's own code (a setting such as `label_smoothing=0.1`);
- listed in STATED below for its day, either with a Python expression that the check evaluates and rounds
  (arithmetic the prose does by hand: `1 - 0.1 + 0.1/50257` for 0.900002) or as `Cited(...)`, a figure quoted
  from a paper or a section number, with where it comes from.
So a change of torch, of a seed or of a setting cannot leave the prose quoting numbers the notebook no longer shows.
`problems(day, executed_nb)` is called by tests/test_notebooks.py on the notebook it has just run top to bottom.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Cited:
    """A number the prose quotes from outside the notebook (a paper, a section number), with its source."""

    source: str


_H_SMOOTHED = "-(1 - 0.1 + 0.1 / 50257) * math.log(1 - 0.1 + 0.1 / 50257) - 0.1 * math.log(0.1 / 50257)"
STATED: dict[str, dict[str, str | Cited]] = {
    "03_layernorm": {
        "1.00": "1.0",  # LayerNorm re-standardizes: the RMS of a normalized row is 1 by construction
    },
    "05_label_smoothing": {
        "0.8": Cited("an example confidence in the definition of calibration"),
        "80 %": Cited("the same example: confidence 0.8 means 80 % right"),
        "0.900002": "1 - 0.1 + 0.1 / 50257",
        "1.99e-6": "0.1 / 50257",
        "0.0948": "-(1 - 0.1 + 0.1 / 50257) * math.log(1 - 0.1 + 0.1 / 50257)",
        "1.313": "-0.1 * math.log(0.1 / 50257)",
        "1.41": _H_SMOOTHED,
        "1.4": _H_SMOOTHED,
    },
    "06_bert_vs_gpt": {
        "1.00": Cited("the largest possible share, the case the sentence describes"),
        "40%": Cited("an example masking rate in the model answer"),
        "15%": Cited("BERT (Devlin et al., 2019), section 3.1: the masking rate"),
        "80%": Cited("BERT, section 3.1: 80% of the chosen tokens become [MASK]"),
        "10%": Cited("BERT, section 3.1: 10% random, 10% unchanged"),
    },
    "10_baichuan2": {
        "2309.10305": Cited("the arXiv number of the Baichuan 2 report"),
        "2.6": Cited("Baichuan 2 report: 2.6 trillion training tokens; also its section 2.6"),
        "2.3": Cited("Baichuan 2 report, section 2.3 (tokenizer)"),
        "2.4": Cited("Baichuan 2 report, section 2.4 (positional embeddings)"),
        "2.5": Cited("Baichuan 2 report, section 2.5 (activations and normalizations)"),
        "1.1": Cited("a typical repetition penalty factor (CTRL, Keskar et al., 2019, uses 1.2)"),
        "1.2": Cited("a typical repetition penalty factor (CTRL, Keskar et al., 2019, uses 1.2)"),
        "0.01%": "(1 - 0.9999) * 100",  # character_coverage=0.9999 leaves out the rarest 0.01% of characters
        "8.3": "50 / 1.2 - 50",  # how much a penalty of 1.2 lowers a logit of 50 (absolute value)
        "0.8": "5 - 5 / 1.2",  # ... and a logit of 5
    },
}

# a decimal, a percentage, a ratio ("1.07x") or a number in scientific notation, not part of a word or a longer number
_QUOTED = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?\s?%|\d+(?:\.\d+)?x\b|\d+(?:\.\d+)?e-?\d+|\d+\.\d+)(?![\w.]*\d)")
_PRINTED = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
_MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]*\$", re.S)


def quoted_numbers(markdown: str) -> list[str]:
    """The decimals, percentages and ratios of a markdown text, outside its LaTeX math."""
    return [m.group(1) for m in _QUOTED.finditer(_MATH.sub(" ", markdown))]


def _value_and_decimals(token: str) -> tuple[float, int, bool]:
    """(value, decimals shown, is a percentage) of a quoted token."""
    bare = token.rstrip("%x ").strip()
    decimals = len(bare.split("e")[0].split(".")[1]) if "." in bare.split("e")[0] else 0
    if "e" in bare:  # scientific: compare on significant digits
        mantissa, exponent = bare.split("e")
        decimals = decimals - int(exponent)
    return float(bare), decimals, token.endswith("%")


def _matches(token: str, value: float) -> bool:
    quoted, decimals, percent = _value_and_decimals(token)
    tolerance = 0.5 * 10 ** (-decimals) + 1e-12
    candidates = [value, abs(value)] + ([value * 100] if percent else [])
    return any(abs(c - quoted) <= tolerance for c in candidates)


def printed_text(executed_nb) -> str:
    """Everything the notebook's code cells printed or displayed as text."""
    parts = []
    for cell in executed_nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            elif out.get("output_type") in ("execute_result", "display_data"):
                parts.append(str(out.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def problems(day: str, executed_nb) -> list[str]:
    """Each quoted number of the markdown that is neither printed, a literal of the code, nor stated with a source."""
    code = "\n".join(c.source for c in executed_nb.cells if c.cell_type == "code")
    printed = [float(m.group()) for m in _PRINTED.finditer(printed_text(executed_nb))]
    stated = STATED.get(day, {})
    found = []
    for index, cell in enumerate(executed_nb.cells):
        if cell.cell_type != "markdown":
            continue
        for token in quoted_numbers(cell.source):
            bare = token.rstrip("%x ").strip()
            if token in stated or bare in stated:
                how = stated.get(token, stated.get(bare))
                if isinstance(how, str):
                    value = eval(how, {"math": math})  # noqa: S307 - expressions written in this file
                    if not _matches(token, value):
                        found.append(f"{day} markdown cell {index}: quotes {token} but its stated derivation "
                                     f"`{how}` gives {value:.6g}")
                continue
            if re.search(rf"(?<![\w.]){re.escape(bare)}(?![\w]|\.\d)", code):
                continue
            if any(_matches(token, value) for value in printed):
                continue
            context = " ".join(cell.source.split())
            at = context.find(bare)
            found.append(f"{day} markdown cell {index}: quotes {token} ('...{context[max(0, at - 60):at + 40]}...'), "
                         "which no cell prints and the code does not set: point at the printed output, or list it "
                         "in tests/prose_numbers.py STATED with its derivation or source")
    return found
