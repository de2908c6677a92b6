"""Feedback without hidden tests and without live student HTML: a GenerateFeedback preprocessor that
removes hidden tests from test cells' source AND from every traceback, stream and error message (an
output that shows one encoded, e.g. base64 or hex, is cut whole and marked), then makes the notebook
inert (inert_html) for the HTML export. The hidden-test block helpers also serve the sandboxed run,
which executes test cells without their hidden blocks."""

from __future__ import annotations

import re

from nbgrader.preprocessors import NbGraderPreprocessor

from ..inside.cells import is_test_cell
from .encoded_leaks import Detector
from .inert_html import make_inert

HIDDEN = re.compile(r"^[ \t]*#+[ \t]*BEGIN HIDDEN TESTS.*?^[ \t]*#+[ \t]*END HIDDEN TESTS[^\n]*\n?",
                    re.MULTILINE | re.DOTALL | re.IGNORECASE)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
LEAK_MARK = "[hidden: this output showed hidden test code]"


def hidden_lines(source: str) -> list[str]:
    """The non-trivial lines of a cell's hidden-test blocks."""
    lines = []
    for block in HIDDEN.findall(source):
        for line in block.splitlines()[1:-1]:
            stripped = line.strip()
            if len(stripped) >= 6 and not stripped.startswith("#"):
                lines.append(stripped)
    return lines


def _text(source) -> str:
    """A cell's source as one string."""
    return "".join(source) if isinstance(source, list) else str(source)  # nbformat allows a list of lines


def has_hidden_tests(source) -> bool:
    """Whether a cell's source holds a hidden-test block."""
    return bool(HIDDEN.search(_text(source)))


def strip_hidden_tests(source) -> str:
    """The cell without its hidden-test blocks: what the sandboxed notebook run executes."""
    return HIDDEN.sub("", _text(source))


def scrub_text(text: str, secret_lines: list[str]) -> str:
    """`text` without colours, each line that contains a secret line replaced by "[hidden]"."""
    plain = ANSI.sub("", text)
    return "\n".join("[hidden]" if any(secret in line for secret in secret_lines) else line
                     for line in plain.split("\n"))


def _output_text(output) -> str:
    """Everything an output shows as text (stream, error, traceback, every mime type), without colours."""
    parts = [str(output.get(key, "")) for key in ("text", "ename", "evalue")]
    parts += [str(frame) for frame in output.get("traceback", []) or []]
    parts += [value if isinstance(value, str) else str(value) for value in (output.get("data") or {}).values()]
    return ANSI.sub("", "\n".join(parts))


class ScrubHiddenTests(NbGraderPreprocessor):
    """Runs before the HTML export of feedback."""

    def preprocess(self, nb, resources):
        secret_lines = []
        for cell in nb.cells:
            if is_test_cell(cell):
                secret_lines += hidden_lines(cell.source)
                cell.source = HIDDEN.sub("# (hidden tests)\n", cell.source)
        # lines also shown elsewhere (visible tests, the student's own code) are not secrets to look for encoded
        detector = Detector(secret_lines, "\n".join(str(cell.source) for cell in nb.cells))
        for cell in nb.cells:
            if cell.cell_type == "code":
                self._scrub_outputs(cell, secret_lines, detector)
        make_inert(nb)
        return nb, resources

    @staticmethod
    def _scrub_outputs(cell, secret_lines: list[str], detector: Detector) -> None:
        """In place: a code cell's outputs without hidden-test lines; one showing a line encoded is cut whole."""
        in_test_cell = is_test_cell(cell)
        for position, output in enumerate(cell.get("outputs", [])):
            if detector.find(_output_text(output)):
                cell.outputs[position] = type(output)({"output_type": "stream", "name": "stdout",
                                                       "text": LEAK_MARK + "\n"})
                continue
            if output.output_type == "error":
                output["evalue"] = scrub_text(str(output.get("evalue", "")), secret_lines)
                if in_test_cell:  # a test cell's traceback is all test code: keep only the message
                    output["traceback"] = [f"{output.get('ename')}: {output['evalue']}"]
                else:
                    output["traceback"] = [scrub_text(frame, secret_lines) for frame in output.get("traceback", [])]
            elif output.output_type == "stream":
                output["text"] = scrub_text(output.get("text", ""), secret_lines)
            elif "data" in output:
                for mime, value in list(output["data"].items()):
                    if isinstance(value, str) and mime.startswith("text/"):
                        output["data"][mime] = scrub_text(value, secret_lines)
