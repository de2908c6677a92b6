"""Feedback without hidden tests: a GenerateFeedback preprocessor that removes them from test
cells' source AND from every traceback, stream and error message."""

from __future__ import annotations

import re

from nbgrader.preprocessors import NbGraderPreprocessor

HIDDEN = re.compile(r"^[ \t]*#+[ \t]*BEGIN HIDDEN TESTS.*?^[ \t]*#+[ \t]*END HIDDEN TESTS[^\n]*\n?", re.MULTILINE | re.DOTALL | re.IGNORECASE)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def hidden_lines(source: str) -> list[str]:
    """The non-trivial lines of a cell's hidden-test blocks."""
    lines = []
    for block in HIDDEN.findall(source):
        for line in block.splitlines()[1:-1]:
            s = line.strip()
            if len(s) >= 6 and not s.startswith("#"):
                lines.append(s)
    return lines


def scrub_text(text: str, secret_lines: list[str]) -> str:
    plain = ANSI.sub("", text)
    return "\n".join("[hidden]" if any(s in ANSI.sub("", line) for s in secret_lines) else line
                     for line in plain.split("\n"))


class ScrubHiddenTests(NbGraderPreprocessor):
    """Runs before the HTML export of feedback."""

    def preprocess(self, nb, resources):
        secret = []
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
                secret += hidden_lines(cell.source)
                cell.source = HIDDEN.sub("# (hidden tests)\n", cell.source)
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            meta = cell.metadata.get("nbgrader", {})
            test = meta.get("grade") and not meta.get("solution")
            for out in cell.get("outputs", []):
                if out.output_type == "error":
                    out["evalue"] = scrub_text(str(out.get("evalue", "")), secret)
                    if test:  # a test cell's traceback is all test code: keep only the message
                        out["traceback"] = [f"{out.get('ename')}: {out['evalue']}"]
                    else:
                        out["traceback"] = [scrub_text(t, secret) for t in out.get("traceback", [])]
                elif out.output_type == "stream":
                    out["text"] = scrub_text(out.get("text", ""), secret)
                elif "data" in out:
                    for k, v in list(out["data"].items()):
                        if isinstance(v, str) and k.startswith("text/"):
                            out["data"][k] = scrub_text(v, secret)
        return nb, resources
