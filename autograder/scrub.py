"""Feedback without hidden tests and without live student HTML: a GenerateFeedback preprocessor that
removes hidden tests from test cells' source AND from every traceback, stream and error message (an
output that shows one encoded, e.g. base64 or hex, is cut whole and marked), then makes the notebook
inert (autograder.inert) for the HTML export."""

from __future__ import annotations

import re

from nbgrader.preprocessors import NbGraderPreprocessor

from .inert import make_inert
from .inside.cells import is_test_cell
from .leak import Detector

HIDDEN = re.compile(r"^[ \t]*#+[ \t]*BEGIN HIDDEN TESTS.*?^[ \t]*#+[ \t]*END HIDDEN TESTS[^\n]*\n?", re.MULTILINE | re.DOTALL | re.IGNORECASE)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
LEAK_MARK = "[hidden: this output showed hidden test code]"


def hidden_lines(source: str) -> list[str]:
    """The non-trivial lines of a cell's hidden-test blocks."""
    lines = []
    for block in HIDDEN.findall(source):
        for line in block.splitlines()[1:-1]:
            s = line.strip()
            if len(s) >= 6 and not s.startswith("#"):
                lines.append(s)
    return lines


def _text(source) -> str:
    return "".join(source) if isinstance(source, list) else str(source)  # nbformat allows a list of lines


def has_hidden_tests(source) -> bool:
    return bool(HIDDEN.search(_text(source)))


def strip_hidden_tests(source) -> str:
    """The cell without its hidden-test blocks: what the sandboxed notebook run executes."""
    return HIDDEN.sub("", _text(source))


def scrub_text(text: str, secret_lines: list[str]) -> str:
    plain = ANSI.sub("", text)
    return "\n".join("[hidden]" if any(s in ANSI.sub("", line) for s in secret_lines) else line
                     for line in plain.split("\n"))


def _output_text(out) -> str:
    parts = [str(out.get(k, "")) for k in ("text", "ename", "evalue")]
    parts += [str(t) for t in out.get("traceback", []) or []]
    parts += [v if isinstance(v, str) else str(v) for v in (out.get("data") or {}).values()]
    return ANSI.sub("", "\n".join(parts))


class ScrubHiddenTests(NbGraderPreprocessor):
    """Runs before the HTML export of feedback."""

    def preprocess(self, nb, resources):
        secret = []
        for cell in nb.cells:
            if is_test_cell(cell):
                secret += hidden_lines(cell.source)
                cell.source = HIDDEN.sub("# (hidden tests)\n", cell.source)
        # lines also shown elsewhere (visible tests, the student's own code) are not secrets to look for encoded
        detector = Detector(secret, "\n".join(str(c.source) for c in nb.cells))
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            test = is_test_cell(cell)
            for k, out in enumerate(cell.get("outputs", [])):
                if detector.find(_output_text(out)):
                    cell.outputs[k] = type(out)({"output_type": "stream", "name": "stdout", "text": LEAK_MARK + "\n"})
                    continue
                if out.output_type == "error":
                    out["evalue"] = scrub_text(str(out.get("evalue", "")), secret)
                    if test:  # a test cell's traceback is all test code: keep only the message
                        out["traceback"] = [f"{out.get('ename')}: {out['evalue']}"]
                    else:
                        out["traceback"] = [scrub_text(t, secret) for t in out.get("traceback", [])]
                elif out.output_type == "stream":
                    out["text"] = scrub_text(out.get("text", ""), secret)
                elif "data" in out:
                    for k2, v in list(out["data"].items()):
                        if isinstance(v, str) and k2.startswith("text/"):
                            out["data"][k2] = scrub_text(v, secret)
        make_inert(nb)
        return nb, resources
