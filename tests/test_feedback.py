"""Feedback is inert and keeps hidden tests out; big notebooks are collected (issue 11, items 4-6).

Inert: a notebook full of student HTML/JavaScript goes through nbgrader's feedback template and the
HTML exporter with our preprocessor chain, and the file is opened in a real browser (Playwright driving
Debian's chromium) where nothing of the student's may run. The same page exported WITHOUT our chain must
run the payloads: that proves the browser check can fail.
"""

from __future__ import annotations

import base64
import codecs
import io
import json
import os
import shutil
import sys
import zipfile

import nbformat
import pytest
from nbconvert.exporters import HTMLExporter
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor, Preprocessor
from traitlets.config import Config

from autograder.feedback_safety import encoded_leaks, inert_html
from autograder.feedback_safety.hidden_tests import LEAK_MARK, ScrubHiddenTests, hidden_lines
from autograder.feedback_safety.locked_exporter import LockedHTMLExporter

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "hostile"))
import agfix_course  # noqa: E402
from autograder_run import cli as autograder_cli  # noqa: E402

# ------------------------------------------------------------------ a hostile notebook

BEACON = "http://127.0.0.1:9/beacon"


def js(tag: str) -> str:
    """What every payload tries: change the title, set a global, log, and reach the network."""
    return (f"document.title='PWNED {tag}';window.__pwned=(window.__pwned||[]).concat(['{tag}']);"
            f"console.log('PWNED {tag}');fetch('{BEACON}?{tag}')")


def _png() -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(1, 1))
    plt.plot([0, 1], [0, 1])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def hostile_notebook() -> nbformat.NotebookNode:
    v4 = nbformat.v4
    b64page = base64.b64encode(f"<script>{js('datahtml')}</script>".encode()).decode()
    md = "\n\n".join([
        "# Answers\nThe loss is $\\mathcal{L} = -\\sum_i y_i \\log p_i$ and $a<b$.",
        "| n | loss |\n|---|---|\n| 1 | 0.5 |",
        f"<script>{js('md-script')}</script>",
        f'<img src="x" onerror="{js("md-onerror")}">',
        f'<svg onload="{js("md-svg")}"><circle r="3"/></svg>',
        f"[click me](javascript:{js('md-jsurl')})",
        f'<a href="javascript:{js("md-ahref")}">link</a>',
        f'<iframe src="data:text/html;base64,{b64page}"></iframe>',
        f'<iframe srcdoc="<script>parent.{js("md-srcdoc")}</script>"></iframe>',
        f'<meta http-equiv="refresh" content="0;url=data:text/html;base64,{b64page}">',
        f'<object data="data:text/html;base64,{b64page}"></object>',
        f'<embed src="data:text/html;base64,{b64page}">',
        f'<details open ontoggle="{js("md-toggle")}"><summary>s</summary></details>',
        f'<style>body {{ background: url("{BEACON}?css") }}</style>',
        f'<img src="{BEACON}?img">',
        '<base href="http://127.0.0.1:9/">',
        f'<form action="{BEACON}"><button>go</button></form>',
        f'<body onload="{js("md-body")}">',
        f'<math><mtext><table><mglyph><style><img src=x onerror="{js("md-mxss")}">'
        '</style></mglyph></table></mtext></math>',
        "![att](attachment:evil.html)",
    ])
    cells = [v4.new_markdown_cell(md)]
    cells[0]["attachments"] = {
        "evil.html": {"text/html": base64.b64encode(f"<script>{js('attach')}</script>".encode()).decode()}}
    code = v4.new_code_cell("show()")
    out = [
        v4.new_output("display_data", {"text/html": f"<b>bold</b><script>{js('html-script')}</script>"
                                                   f"<img src=x onerror=\"{js('html-onerror')}\">"
                                                   "<table class='dataframe'><tr><th>a</th></tr>"
                                                   "<tr><td>1</td></tr></table>",
                                       "text/plain": "frame"}),
        v4.new_output("display_data", {"image/svg+xml": "<svg xmlns='http://www.w3.org/2000/svg' "
                                                        f"onload=\"{js('svg-onload')}\">"
                                                        f"<script>{js('svg-script')}</script><circle r='4'/></svg>"}),
        v4.new_output("display_data", {"text/markdown": f"**md** <script>{js('out-md')}</script>"}),
        v4.new_output("display_data", {"application/javascript": js("out-js")}),
        v4.new_output("display_data",
                      {"application/vnd.jupyter.widget-view+json": {"model_id": "x", "version_major": 2}}),
        v4.new_output("display_data", {"image/png": f'x" onerror="{js("png-attr")}'}),
        v4.new_output("display_data", {"image/png": _png()},
                      metadata={"image/png": {"width": f'1 onerror="{js("png-width")}"'}}),
        v4.new_output("display_data", {"text/html": "<p>isolated</p>"}, metadata={"text/html": {"isolated": True}}),
        v4.new_output("execute_result", {"text/plain": f"<script>{js('plain')}</script>"}, execution_count=1),
        v4.new_output("stream", name="stdout", text=f"<script>{js('stream')}</script>\n"),
        v4.new_output("error", ename="E<script>", evalue=f"<img src=x onerror=\"{js('error')}\">", traceback=[]),
    ]
    code.outputs = out
    cells.append(code)
    raw = v4.new_raw_cell(f"<script>{js('raw')}</script>")
    raw.metadata["raw_mimetype"] = "text/html"
    cells.append(raw)
    tagged = v4.new_code_cell("1")
    tagged.metadata["tags"] = [f'"><script>{js("tag")}</script>']
    cells.append(tagged)
    nb = v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2}}
    return nb


class FakeGrades(Preprocessor):
    """Stands in for nbgrader's GetGrades (which needs a gradebook): what the feedback template reads."""

    def preprocess(self, nb, resources):
        resources["nbgrader"] = {"notebook": "toy", "score": 1.0, "max_score": 3.0, "late_penalty": 0}
        for cell in nb.cells:
            if "nbgrader" in cell.metadata:
                cell.metadata.nbgrader.setdefault("points", 0)
                cell.metadata.nbgrader["score"] = 0
        return nb, resources


def export_feedback(nb, chain, exporter_class=HTMLExporter) -> str:
    """nbgrader's feedback template through an HTML exporter (nbconvert's, or the course's
    LockedHTMLExporter), as GenerateFeedback sets it up."""
    import nbgrader

    base = os.path.join(os.path.dirname(nbgrader.__file__), "server_extensions", "formgrader")
    c = Config()
    c.HTMLExporter.template_name = "feedback"
    c.HTMLExporter.extra_template_basedirs = [os.path.join(base, "templates")]
    c.HTMLExporter.extra_template_paths = [os.path.join(base, "static", "node_modules", "bootstrap", "dist", "css")]
    ex = exporter_class(config=c)
    for p in chain:
        ex.register_preprocessor(p, enabled=True)
    body, _ = ex.from_notebook_node(nbformat.from_dict(nb))
    return body


OURS = [FakeGrades, ScrubHiddenTests, CSSHTMLHeaderPreprocessor]
PLAIN = [FakeGrades, CSSHTMLHeaderPreprocessor]


def write_locked(tmp_path, nb, chain=OURS, name="toy.html"):
    """The page as the course writes it: our chain through the course's exporter, then finalize (the worker's
    check); the plain chain through nbconvert's exporter."""
    p = tmp_path / name
    p.write_text(export_feedback(nb, chain, LockedHTMLExporter if chain is OURS else HTMLExporter), encoding="utf-8")
    problems = inert_html.finalize(str(p)) if chain is OURS else []
    return p, problems


# ------------------------------------------------------------------ fast checks, no browser

def test_audit_finds_the_live_payloads_of_a_plain_export():
    found = " ".join(inert_html.audit(export_feedback(hostile_notebook(), PLAIN)))
    for what in ("<script>", "onerror=", "<svg>", "<iframe>", "javascript:", "http-equiv", "data:text/html"):
        assert what in found, f"the audit missed {what} in an unsanitised export: {found}"


def test_our_chain_exports_an_inert_locked_page(tmp_path):
    p, problems = write_locked(tmp_path, hostile_notebook())
    assert problems == [], f"the sanitiser left something live: {problems}"
    page = p.read_text()
    assert page.lower().count("<script") == 0, "a <script> element is left in the feedback"
    head = page[page.index("<head>"):page.index("</head>")]
    assert head.split("\n")[1] == inert_html.CSP_META, "the CSP must be the first element of <head>"


@pytest.mark.parametrize("fragment", [
    '<img src=x onerror=alert(1)>', '<svg><script>alert(1)</script></svg>', '<a href="jAvA\tscript:alert(1)">x</a>',
    '<iframe src=javascript:alert(1)>', '<img src="data:text/html;base64,PHNjcmlwdD4=">',
    '<a href="data:text/html,x">x</a>',
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>', '<div style="background:url(http://x/)">x</div>',
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">', '<meta http-equiv=refresh content="0;url=http://x/">',
])
def test_clean_html_leaves_nothing_live(fragment):
    out = inert_html.clean_html(fragment)
    page = f"<html><head></head><body>{out}</body></html>"
    assert inert_html.audit(page) == [], f"{fragment!r} -> {out!r}"
    assert "style=" not in out and "<math" not in out


def test_clean_html_keeps_tables_images_and_math():
    png = _png()
    out = inert_html.clean_html(f'<table><tr><th>a</th></tr><tr><td colspan="2">1</td></tr></table>'
                           f'<img src="data:image/png;base64,{png}" alt="plot"><p>$x^2 &lt; 1$</p>')
    assert "<table>" in out and 'colspan="2"' in out and f"base64,{png}" in out and "$x^2 &lt; 1$" in out


def test_markdown_passes_through_the_exporter_unchanged():
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    for src in ["$a<b$\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n> q", "```\nx\n\n\n<y>\n```", "$$\na<b\n$$", ""]:
        safe = inert_html.passthrough_markdown(inert_html.markdown_to_safe_html(src))
        assert markdown2html_mistune(safe).strip() == safe


# ------------------------------------------------------------------ the browser

# (the `browser` fixture is tests/conftest.py's)

def open_page(browser, path):
    """Load a file and report what ran: console lines, dialogs, requests, title, globals, scripts."""
    page = browser.new_page()
    seen = {"console": [], "dialogs": [], "requests": [], "blocked": []}
    page.on("console", lambda m: seen["console"].append(m.text))
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.on("requestfailed", lambda r: "BLOCKED_BY_CSP" in str(r.failure) and seen["blocked"].append(r.url))
    page.goto(path.as_uri())
    page.wait_for_timeout(500)
    seen["title"] = page.title()
    seen["pwned"] = page.evaluate("window.__pwned || null")
    seen["scripts"] = page.evaluate("document.scripts.length")
    seen["frames"] = len(page.frames)
    seen["images"] = page.evaluate("[...document.images].filter(i => i.complete && i.naturalWidth > 0).length")
    seen["tables"] = page.evaluate("document.querySelectorAll('table').length")
    seen["text"] = page.evaluate("document.body.innerText")
    # handlers that need a user: toggle, click (http and #fragment links only move: not clicked);
    # what they run shows in the console, the title, the requests
    clicks = """sel => { let n = 0;
        for (const el of document.querySelectorAll(sel)) { try { el.click(); n++; } catch (e) {} }
        return n; }"""
    clicked = 0
    for sel in ('a[href]:not([href^="http"]):not([href^="#"])', "details, summary, [onclick], button"):
        try:  # links first: a later form submit would cancel their navigation
            clicked += page.evaluate(clicks, sel)
            page.wait_for_timeout(200)
        except Exception:  # noqa: BLE001 - a click navigated away mid-way
            clicked = -1
            break
    page.wait_for_timeout(300)
    seen["clicked"] = clicked
    if page.url.split("#")[0] != path.as_uri():
        seen["requests"].append(page.url)  # navigated away: the network check reports it
    else:
        seen["title_after_clicks"] = page.title()
        seen["pwned_after_clicks"] = page.evaluate("window.__pwned || null")
    page.close()
    return seen


@pytest.mark.slow
def test_browser_runs_the_payloads_of_a_plain_export(browser, tmp_path):
    """The check can fail: without our chain the student's scripts do run."""
    p, _ = write_locked(tmp_path, hostile_notebook(), chain=PLAIN)
    seen = open_page(browser, p)
    assert seen["pwned"], f"the payloads should run in an unsanitised page: {seen}"
    assert any("PWNED" in c for c in seen["console"])
    assert any("PWNED md-ahref" in c for c in seen["console"]), f"the click-through must run javascript: links: {seen}"


@pytest.mark.slow
def test_browser_runs_nothing_of_the_student(browser, tmp_path):
    p, problems = write_locked(tmp_path, hostile_notebook())
    assert problems == []
    seen = open_page(browser, p)
    assert seen["pwned"] is None, f"student script ran: {seen['pwned']}"
    assert seen.get("pwned_after_clicks") is None and seen.get("title_after_clicks") == "toy", (
        "a click ran student script")
    assert seen["clicked"] >= 2, "the click-through should reach the details and summary"
    assert seen["title"] == "toy", f"the title was changed to {seen['title']!r}"
    assert not [c for c in seen["console"] if "PWNED" in c], seen["console"]
    assert seen["dialogs"] == []
    assert seen["scripts"] == 0, "no <script> element may be in the feedback"
    assert seen["frames"] == 1, "no frame may be in the feedback"
    outside = [u for u in seen["requests"] if not u.startswith(("file:", "data:")) and u not in seen["blocked"]]
    assert outside == [], f"the page reached the network: {outside}"
    # still readable: the plot and the SVG as images, the tables, the math as TeX
    assert seen["images"] >= 2, "the PNG plot and the SVG should still show"
    assert seen["tables"] >= 2
    assert "\\mathcal{L}" in seen["text"] and "a<b" in seen["text"]


# ------------------------------------------------------------------ hidden tests, encoded

HIDDEN = ["_rng = np.random.default_rng(7)  # HIDDEN_MARKER_SUM_31337",
          "assert np.allclose(scaled_sum(x, y, 0.5), expected), \"scaled_sum is wrong on random inputs\""]
BLOCK = "x = 1\n    " + "\n    ".join(HIDDEN) + "\nprint('done')\n"


def encodings(text: str) -> dict[str, str]:
    """How a student might print the hidden text (as it sits in IPython's In history)."""
    raw = text.encode()
    return {
        "plain": text,
        "base64": base64.b64encode(raw).decode(),
        "base64-wrapped": base64.encodebytes(b"zz" + raw).decode(),
        "base64-repr": repr(base64.encodebytes(b"q" + raw)),
        "urlsafe": base64.urlsafe_b64encode(b"?" + raw).decode(),
        "base32": base64.b32encode(b"abc" + raw).decode(),
        "base85": base64.b85encode(b"a" + raw).decode(),
        "hex": raw.hex(),
        "HEX-spaced": " ".join(f"{b:02X}" for b in raw),
        "escaped": "".join(f"\\x{b:02x}" for b in raw),
        "rot13": codecs.encode(text, "rot13"),
        "reversed": text[::-1],
        "codes": str(list(raw)),
        "spaced": " ".join(text),
        "upper": text.upper(),
        "zero-width": "\u200b".join(text),
    }


@pytest.mark.parametrize("how", sorted(encodings("x")))
def test_detector_finds_every_encoding(how):
    d = encoded_leaks.Detector(HIDDEN)
    assert d.find(f"some output\n{encodings(BLOCK)[how]}\nmore") is not None, f"{how} leak not found"


def test_detector_ignores_honest_text():
    own = "def scaled_sum(x, y, alpha):\n    return x + alpha * y\nfor _ in range(3):\n    pass"
    d = encoded_leaks.Detector(HIDDEN + ["for _ in range(3):", "check(\"toy\", \"scaled_sum\", scaled_sum)"],
                      public_text=own + "\ncheck(\"toy\", \"scaled_sum\", scaled_sum)")
    honest = [own, "loss 0.5123 step 100\n" * 50, _png() * 3, "array([[0.1, 0.2]])", "for _ in range(3):",
              'check("toy", "scaled_sum", scaled_sum)', " ".join(str(i) for i in range(5000)),
              bytes(range(256)).hex() * 4]
    for text in honest:
        assert d.find(text) is None, f"honest text flagged: {text[:80]!r}"


def _graded_notebook(print_cell: str) -> nbformat.NotebookNode:
    """The toy assignment as autograded: hidden tests in the test cell, a student cell that printed them."""
    nb = agfix_course.source_notebook()
    cell = nbformat.v4.new_code_cell("import base64\nprint(base64.b64encode(In[3].encode()))")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=print_cell)]
    nb.cells.insert(4, cell)
    return nb


@pytest.mark.parametrize("how", ["plain", "base64", "hex", "rot13", "reversed", "base64-wrapped"])
def test_scrubber_cuts_encoded_hidden_tests(tmp_path, how):
    secret = agfix_course.TEST_SUM
    nb = _graded_notebook(encodings(secret)[how] + "\n")
    p, problems = write_locked(tmp_path, nb)
    page = p.read_text()
    assert LEAK_MARK in page, f"the {how} copy of the hidden tests was not cut"
    assert encoded_leaks.Detector(hidden_lines(secret)).find(page) is None


def test_honest_feedback_is_not_cut(tmp_path):
    nb = _graded_notebook("loss 0.25\n" + _png()[:3000] + "\n")
    p, problems = write_locked(tmp_path, nb)
    assert problems == [] and LEAK_MARK not in p.read_text()


# ------------------------------------------------------------------ big notebooks (item 6)

def _random_notebook(rng, n_cells=6) -> dict:
    """A notebook JSON with nasty strings: escaped quotes, backslashes, "outputs" as a value and as a
    key elsewhere, unicode, nested output data."""
    import random

    words = ['"outputs"', "\\\"", "\\", "outputs", "}", "]", "{\"a\": [1]}", "é✓", "\n", " ", "x" * rng.randint(1, 50)]

    def text():
        return "".join(rng.choice(words) for _ in range(rng.randint(0, 12)))

    cells = []
    for _ in range(n_cells):
        if rng.random() < 0.3:
            cells.append({"cell_type": "markdown", "metadata": {"outputs": [text()]}, "source": text()})
        else:
            outs = [{"output_type": "display_data", "metadata": {"outputs": 1},
                     "data": {"image/png": base64.b64encode(
                                  random.Random(rng.random()).randbytes(rng.randint(0, 300))).decode(),
                              "text/plain": [text(), text()]}} for _ in range(rng.randint(0, 3))]
            cells.append({"cell_type": "code", "execution_count": rng.choice([None, 3]),
                          "metadata": {"nbgrader": {"outputs": text()}}, "outputs": outs, "source": [text(), text()]})
    return {"cells": cells, "metadata": {"outputs": {"cells": [text()]}}, "nbformat": 4, "nbformat_minor": 5}


@pytest.mark.parametrize("seed", range(25))
def test_strip_outputs_equals_a_json_round_trip(seed):
    import random

    from autograder.slim import strip_outputs

    rng = random.Random(seed)
    nb = _random_notebook(rng)
    raw = json.dumps(nb, indent=rng.choice([None, 1]), ensure_ascii=rng.random() < 0.5).encode()
    want = json.loads(raw)
    for c in want["cells"]:
        if "outputs" in c:
            c["outputs"] = []
    assert json.loads(strip_outputs(raw, 10**9)) == want


def test_strip_outputs_refuses_what_is_not_json():
    from autograder.slim import TooBig, strip_outputs

    for bad in (b'{"cells": [{"outputs": [1, 2', b'{"cells": "unterminated', b"{]", b"\x89PNG"):
        with pytest.raises(ValueError):
            strip_outputs(bad, 10**6)
    with pytest.raises(TooBig):
        strip_outputs(json.dumps({"cells": [{"source": "x" * 5000}]}).encode(), 1000)


def _big_notebook(release_nb, mb_images=0, mb_source=0) -> bytes:
    """The release with honest work: `mb_images` MB of PNG outputs, or `mb_source` MB of code."""
    import random

    nb = nbformat.from_dict(json.loads(json.dumps(release_nb)))
    rnd = random.Random(0)
    per = 2 * 2**20  # 2 MB images
    for k in range(-(-mb_images * 2**20 // per) if mb_images else 0):
        cell = nbformat.v4.new_code_cell(f"plot({k})")
        cell.outputs = [nbformat.v4.new_output("display_data",
                                               {"image/png": base64.b64encode(rnd.randbytes(per * 3 // 4)).decode()})]
        nb.cells.append(cell)
    if mb_source:
        line = "x = [" + ", ".join(str(i) for i in range(30)) + "]\n"
        nb.cells.append(nbformat.v4.new_code_cell(line * (mb_source * 2**20 // len(line))))
    return nbformat.writes(nb).encode()


@pytest.fixture
def toy(tmp_path):
    from autograder.course import Course

    root = tmp_path / "course"
    cfg = agfix_course.build(str(root))
    os.makedirs(root / "course" / "toy")
    release = agfix_course.source_notebook()
    nbformat.write(release, str(root / "course" / "toy" / "toy.ipynb"))
    return Course(cfg), release


@pytest.mark.slow
def test_big_honest_notebook_is_collected_and_big_source_is_refused_with_a_row(toy, tmp_path):
    import csv

    from autograder.collect import MAX_NOTEBOOK, collect
    from autograder.grade import export_csv
    from autograder.report import report

    course, release = toy
    src = tmp_path / "src"
    (src / "alice").mkdir(parents=True)
    big = _big_notebook(release, mb_images=56)
    assert len(big) > 56 * 2**20
    (src / "alice" / "toy.ipynb").write_bytes(big)
    with zipfile.ZipFile(src / "bob.zip", "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("bob/toy.ipynb", big)
    (src / "carol__toy.ipynb").write_bytes(_big_notebook(release, mb_source=60))
    lines: list[str] = []
    assert collect(course, str(src), out=lines.append) == 0
    for student in ("alice", "bob"):
        got = open(os.path.join(course.submitted, student, "toy", "toy.ipynb"), "rb").read()
        assert len(got) <= MAX_NOTEBOOK
        nb = nbformat.reads(got.decode(), as_version=4)
        want = nbformat.reads(big.decode(), as_version=4)
        assert [c.source for c in nb.cells] == [c.source for c in want.cells], "stripping changed the student's work"
        assert all(c.get("outputs", []) == [] for c in nb.cells)
    assert not os.path.exists(os.path.join(course.submitted, "carol", "toy", "toy.ipynb"))
    assert any("carol/toy" in line and "without outputs" in line for line in lines), lines
    export_csv(course)
    rows = {r["student_id"]: r for r in csv.DictReader(open(os.path.join(course.work, "grades.csv")))}
    assert rows["carol"]["state"] == "refused" and "without outputs" in rows["carol"]["flags"], rows
    rep: list[str] = []
    report(course, out=rep.append)
    assert any("carol" in line and "refused" in line for line in rep), rep
    assert any("without outputs" in line for line in rep), rep
    # collected cleanly later: the refusal is forgotten
    (src / "carol__toy.ipynb").write_bytes(nbformat.writes(release).encode())
    assert collect(course, str(src), out=lines.append) == 0
    export_csv(course)
    rows = {r["student_id"]: r for r in csv.DictReader(open(os.path.join(course.work, "grades.csv")))}
    assert "carol" not in rows or rows["carol"]["state"] != "refused"


@pytest.mark.slow
def test_stripping_never_holds_the_whole_file(tmp_path):
    import tracemalloc

    from autograder.slim import strip_file

    p = tmp_path / "huge.ipynb"
    release = agfix_course.source_notebook()
    p.write_bytes(_big_notebook(release, mb_images=200))
    tracemalloc.start()
    out = strip_file(str(p), 50 * 2**20)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 5 * 2**20 + 3 * len(out), (
        f"peak {peak >> 20} MB of Python memory for a {p.stat().st_size >> 20} MB file")


# ------------------------------------------------------------------ end to end: `python -m autograder grade`

XSS_MD = (f"<script>{js('e2e-md')}</script>\n\n<img src=x onerror=\"{js('e2e-onerror')}\">\n\n"
          f"<svg onload=\"{js('e2e-svg')}\"></svg>\n\n[x](javascript:{js('e2e-link')})")
_SVG_OUT = '<svg xmlns="http://www.w3.org/2000/svg" onload="' + js("e2e-svgout") + '"><circle r="3"/></svg>'
_MD_OUT = '<img src=x onerror="' + js("e2e-mdout") + '">'
XSS_CODE = "\n".join([
    "from IPython.display import HTML, SVG, Javascript, Markdown, display",
    f"display(HTML({'<script>' + js('e2e-html') + '</script><b>bold</b>'!r}))",
    f"display(Javascript({js('e2e-js')!r}))",
    f"display(SVG({_SVG_OUT!r}))",
    f"display(Markdown({_MD_OUT!r}))",
])


def _leak_code() -> str:
    """A student who got the hidden tests (the kernel-side hiding is tested elsewhere) and prints them
    encoded; the source carries them only zlib-compressed, which the feedback may show."""
    import zlib

    packed = base64.b64encode(zlib.compress(agfix_course.TEST_SUM.encode())).decode()
    return ("import base64, codecs, zlib\n"
            f"s = zlib.decompress(base64.b64decode({packed!r})).decode()\n"
            "print(base64.b64encode(s.encode()).decode())\n"
            "print(s.encode().hex())\n"
            "print(codecs.encode(s, 'rot13'))\n"
            "print(s[::-1])\n")


def _has_bwrap() -> bool:
    return shutil.which("bwrap") is not None


@pytest.mark.slow
@pytest.mark.skipif(not _has_bwrap(), reason="needs bubblewrap (the grading sandbox)")
def test_grade_end_to_end_feedback_is_inert_and_hides_encoded_tests(tmp_path):
    import csv
    import tempfile

    import agfix_cases

    root = tempfile.mkdtemp(prefix="agfeedback-")
    try:
        cfg = agfix_course.build(root)
        with open(cfg, "a") as f:
            f.write("c.Autograder.sandbox_uid_base = 64000\n")

        def cli(*args):
            return autograder_cli(cfg, *args, check=True).stdout

        cli("release")
        release = nbformat.read(os.path.join(root, "course", "toy", "toy.ipynb"), as_version=4)
        incoming = os.path.join(root, "incoming")
        os.makedirs(incoming)
        xss = agfix_cases.notebook(release, extra_after_sum=XSS_CODE)
        xss.cells.insert(1, nbformat.v4.new_markdown_cell(XSS_MD))
        students = {"honest": agfix_cases.notebook(release), "xss": xss,
                    "leaker": agfix_cases.notebook(release, extra_after_sum=_leak_code())}
        for name, nb in students.items():
            nbformat.write(nb, os.path.join(incoming, f"{name}__toy.ipynb"))
        # and one too big even without outputs: refused, with a row
        with open(os.path.join(incoming, "huge__toy.ipynb"), "wb") as f:
            f.write(_big_notebook(release, mb_source=55))
        cli("collect", incoming)
        cli("grade", "--workers", "2")
        rows = {r["student_id"]: r for r in csv.DictReader(open(os.path.join(root, "work", "grades.csv")))}
        for name in students:
            assert float(rows[name]["score"]) == float(rows[name]["max_score"]) - 1, rows[name]  # 1 point manual
        assert rows["honest"]["flags"] == "" and rows["xss"]["flags"] == "", rows
        assert "cut because they showed hidden test code" in rows["leaker"]["flags"], rows["leaker"]
        assert rows["huge"]["state"] == "refused" and "without outputs" in rows["huge"]["flags"]
        assert "huge" in cli("report")
        secret = agfix_course.TEST_SUM
        for name in students:
            page = open(os.path.join(root, "work", "feedback", name, "toy", "toy.html"), encoding="utf-8").read()
            assert inert_html.audit(page) == [] and "<script" not in page.lower(), name
            assert inert_html.CSP_META in page
            for how, text in encodings(secret).items():
                if how in ("plain", "base64", "hex", "rot13", "reversed"):
                    for line in text.splitlines():
                        assert len(line.strip()) < 12 or line.strip() not in page, f"{name}: {how} leak {line[:40]!r}"
            for marker in agfix_course.HIDDEN_MARKERS:
                assert marker not in page and marker[::-1] not in page
    finally:
        shutil.rmtree(root, ignore_errors=True)
