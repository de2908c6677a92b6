"""Feedback that runs nothing: student HTML and JavaScript (markdown, raw cells, outputs, metadata)
is sanitised before the HTML export, and the exported file is checked and locked with a CSP.

Whoever opens a feedback file (the student, a TA, the instructor) must not run the student's code
in their browser. Images, tables and math (as its TeX source) stay readable.
"""

from __future__ import annotations

import base64
import html
import re
from html.parser import HTMLParser

import nh3

from ..atomic import write_atomic

# No script at all, no network: inline CSS and data: images only.
CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
       "base-uri 'none'; form-action 'none'; frame-src 'none'; object-src 'none'")
CSP_META = f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'

TAGS = {"a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "col", "colgroup", "dd", "del", "details",
        "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins",
        "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small", "span", "strong", "sub", "summary", "sup",
        "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u", "ul", "var"}
ATTRIBUTES = {"*": {"class", "title", "align"}, "a": {"href", "name"}, "img": {"src", "alt", "width", "height"},
              "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan", "scope"}, "ol": {"start"},
              **{f"h{level}": {"id"} for level in range(1, 7)}}
SAFE_DATA_IMAGE = re.compile(r"data:image/(png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=\s]*\Z", re.IGNORECASE)
BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*\Z")
IMAGES = ("image/png", "image/jpeg", "image/gif")


def _url_filter(tag: str, attr: str, value: str) -> str | None:
    """Images only from data: URLs (nothing fetched; an <img> never runs script, not even an SVG one);
    no data: links."""
    if tag == "img" and attr == "src":
        return value if SAFE_DATA_IMAGE.match(value) else None
    if attr == "href" and re.sub(r"[\s\x00-\x1f]", "", value).lower().startswith("data:"):
        return None
    return value


def clean_html(fragment: str) -> str:
    """Student HTML without scripts, handlers, frames, forms, styles or dangerous URLs."""
    return nh3.clean(fragment, tags=TAGS, attributes=ATTRIBUTES, attribute_filter=_url_filter,
                     url_schemes={"http", "https", "mailto", "data"}, strip_comments=True,
                     link_rel="noopener noreferrer nofollow")


def markdown_to_safe_html(source: str, attachments: dict | None = None) -> str:
    """Render markdown as the exporter would (math kept as TeX text), then sanitise."""
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    try:
        renderer = IPythonRenderer(escape=False, attachments=attachments or {})
        rendered = MarkdownWithMath(renderer=renderer).render(source)
    except Exception:  # noqa: BLE001 - e.g. a missing attachment: show the text
        rendered = f"<pre>{html.escape(source)}</pre>"
    return clean_html(rendered)


def passthrough_markdown(fragment: str) -> str:
    """Markdown whose rendering is exactly `fragment`: one HTML block on one line (newlines as entities)."""
    one_line = fragment.replace("\r", "&#13;").replace("\n", "&#10;")
    return f'<div class="inert-markdown">{one_line}</div>'


def _as_text(value) -> str | None:
    """A string, or a list of strings joined (nbformat's multiline form); None for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return "".join(value)
    return None


def inert_data(data: dict) -> dict:
    """A display's mime bundle with only what renders without script."""
    new: dict = {}
    text = {mime: _as_text(value) for mime, value in data.items()}
    if text.get("text/html") is not None:
        new["text/html"] = clean_html(text["text/html"])
    elif text.get("text/markdown") is not None:
        new["text/html"] = clean_html(markdown_to_safe_html(text["text/markdown"]))
    elif text.get("image/svg+xml") is not None:
        b64 = base64.b64encode(text["image/svg+xml"].encode("utf-8")).decode()
        new["text/html"] = f'<img src="data:image/svg+xml;base64,{b64}" alt="SVG image">'
    for mime in IMAGES:
        if text.get(mime) is not None and BASE64.match(text[mime]):
            new[mime] = text[mime]
    for mime in ("text/plain", "text/latex"):  # the template escapes both
        if text.get(mime) is not None:
            new[mime] = text[mime]
    if not new:
        kinds = ", ".join(sorted(data)) or "empty"
        new["text/plain"] = f"[output not shown in feedback: {kinds}]"
    return new


def inert_output(output) -> None:
    """In place: one output reduced to what renders without script (an unknown kind becomes a note)."""
    kind = output.get("output_type")
    if kind in ("display_data", "execute_result"):
        output["data"] = inert_data(dict(output.get("data", {})))
        output["metadata"] = {}  # widths, 'isolated' iframes, file names: none of the student's
    elif kind == "stream":
        output["text"] = _as_text(output.get("text")) or ""
        output["name"] = "stderr" if output.get("name") == "stderr" else "stdout"
    elif kind == "error":
        output["ename"] = str(output.get("ename", ""))
        output["evalue"] = str(output.get("evalue", ""))
        output["traceback"] = [str(frame) for frame in output.get("traceback", []) or []]
    else:
        output.clear()
        output.update({"output_type": "stream", "name": "stdout",
                       "text": f"[output of type {str(kind)[:40]!r} not shown]"})


def make_inert(nb) -> None:
    """In place: every cell and output of `nb` renders as inert HTML."""
    keep = {key: nb.metadata[key] for key in ("kernelspec", "language_info") if isinstance(nb.metadata.get(key), dict)}
    nb.metadata.clear()
    for key, entries in keep.items():
        nb.metadata[key] = {name: value for name, value in entries.items() if isinstance(value, str)}
    for cell in nb.cells:
        grading = cell.metadata.get("nbgrader")
        cell.metadata.clear()
        if isinstance(grading, dict):
            cell.metadata["nbgrader"] = grading
        if cell.cell_type == "markdown":
            safe = markdown_to_safe_html(_as_text(cell.source) or "", cell.get("attachments"))
            cell.source = passthrough_markdown(safe)
            cell.pop("attachments", None)
        elif cell.cell_type == "code":
            for output in cell.get("outputs", []):
                inert_output(output)
        else:  # raw and unknown cells: shown as text
            cell.source = f"<pre>{html.escape(_as_text(cell.get('source')) or '')}</pre>"
            cell.metadata["raw_mimetype"] = "text/html"
            cell.pop("attachments", None)


# ---------------------------------------------------------------- after the export

FORBIDDEN_TAGS = {"script", "iframe", "frame", "frameset", "object", "embed", "applet", "base", "form", "meta",
                  "link", "svg", "math", "template", "portal", "noscript", "audio", "video", "source", "track"}
URL_ATTRS = {"href", "src", "action", "formaction", "data", "poster", "background", "srcset", "xlink:href", "ping",
             "codebase", "cite", "longdesc", "lowsrc", "dynsrc"}


class _Audit(HTMLParser):
    """Collects, while parsing a page, each thing in its body that could run script or load a URL."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.in_body = False
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "body":
            self.in_body = True
        if not self.in_body:
            return
        if tag in FORBIDDEN_TAGS:
            self.problems.append(f"<{tag}> element")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on"):
                self.problems.append(f"{name}= handler on <{tag}>")
            elif name == "http-equiv":
                self.problems.append(f"http-equiv on <{tag}>")
            elif name in URL_ATTRS:
                url = re.sub(r"[\s\x00-\x1f]", "", value).lower()
                if url.startswith(("javascript:", "vbscript:")):
                    self.problems.append(f"{url[:11]} URL in {name}= of <{tag}>")
                elif url.startswith("data:") and not (tag == "img" and name == "src" and SAFE_DATA_IMAGE.match(value)):
                    self.problems.append(f"{url[:30]} URL in {name}= of <{tag}>")

    handle_startendtag = handle_starttag


def audit(page: str) -> list[str]:
    """What in an exported page's body could run or load something (empty: inert)."""
    parser = _Audit()
    parser.feed(page)
    parser.close()
    if not parser.in_body:
        parser.problems.append("no <body>")
    return list(dict.fromkeys(parser.problems))


HEAD_SCRIPT = re.compile(r"<script\b.*?</script\s*>", re.IGNORECASE | re.DOTALL)


def lock(page: str) -> str:
    """The page with the template's own head scripts (MathJax) removed and the CSP first in <head> (once: locking
    a locked page changes nothing, so the exporter of hand-run feedback and the worker's check can both lock)."""
    head_open = re.search(r"<head[^>]*>", page, re.IGNORECASE)
    head_close = re.search(r"</head\s*>", page, re.IGNORECASE)
    if not head_open or not head_close:
        raise ValueError("no <head> in the exported page")
    head = HEAD_SCRIPT.sub("", page[head_open.end():head_close.start()])
    head = head.replace("\n" + CSP_META, "").replace(CSP_META, "")
    return page[:head_open.end()] + "\n" + CSP_META + head + page[head_close.start():]


def finalize(path: str) -> list[str]:
    """Audit an exported feedback file, then lock it; returns the problems (the file is locked anyway)."""
    with open(path, encoding="utf-8", errors="replace") as page_file:
        page = page_file.read()
    problems = audit(page)
    try:
        page = lock(page)
    except ValueError as error:
        return problems + [str(error)]
    if re.search(r"<script\b", page, re.IGNORECASE):
        problems.append("a <script> element is left")
    write_atomic(path, page, encoding="utf-8")
    return problems
