"""The course's feedback exporter without nbconvert's BeautifulSoup pass: the same images with the same alt texts
as nbconvert's HTMLExporter gives them, an inert locked page, and the same page again from cached templates."""

from __future__ import annotations

import copy
import re
from html.parser import HTMLParser

from nbconvert.exporters import HTMLExporter
from test_feedback import OURS, export_feedback, hostile_notebook

from autograder.feedback_safety import inert_html as inert
from autograder.feedback_safety import locked_exporter as feedback_exporter
from autograder.feedback_safety.locked_exporter import LockedHTMLExporter, add_alt_text


class ImageAlts(HTMLParser):
    """The alt attribute of every <img> in a page's body, in order (None: it has none)."""

    def __init__(self) -> None:
        super().__init__()
        self.alts: list[str | None] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.alts.append(dict(attrs).get("alt"))


def image_alts(page: str) -> list[str | None]:
    parser = ImageAlts()
    parser.feed(page)
    parser.close()
    return parser.alts


def test_images_keep_the_alt_texts_nbconvert_gives_them():
    nbconvert_page = export_feedback(hostile_notebook(), OURS, HTMLExporter)
    our_page = export_feedback(hostile_notebook(), OURS, LockedHTMLExporter)
    expected = image_alts(nbconvert_page)
    assert feedback_exporter.NO_ALT in expected, "the notebook must hold an image without alt text"
    assert image_alts(our_page) == expected


def test_add_alt_text_only_where_there_is_none():
    page = '<p><img src="data:image/png;base64,AA==" width="3"><IMG\nsrc="x" alt="plot"><img alt="" src="y"></p>'
    assert image_alts(add_alt_text(page)) == [feedback_exporter.NO_ALT, "plot", ""]


def test_page_is_inert_locked_and_the_same_from_cached_templates():
    notebook = hostile_notebook()
    feedback_exporter.TEMPLATES.code.clear()
    first = export_feedback(copy.deepcopy(notebook), OURS, LockedHTMLExporter)
    assert feedback_exporter.TEMPLATES.code, "the compiled templates were not kept"
    again = export_feedback(copy.deepcopy(notebook), OURS, LockedHTMLExporter)
    assert inert.audit(first) == []
    assert first.split("<head>")[1].split("\n")[1] == inert.CSP_META
    uuids = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")  # the template's own
    assert uuids.sub("", first) == uuids.sub("", again)
