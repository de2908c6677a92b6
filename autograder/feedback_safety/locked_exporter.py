"""The HTML exporter of the course's feedback: nbgrader's HTMLExporter whose page comes out locked.

Set as `GenerateFeedback.exporter_class` in the course's config, so `nbgrader generate_feedback` run by hand
writes what `python -m autograder feedback` writes: the preprocessors (hidden tests cut, student HTML made
inert) come from the same config, and this exporter removes the template's head scripts and puts the
Content-Security-Policy first in <head> (inert_html.lock). A page the audit still finds live is logged
as a warning: only the autograder's own commands withhold and flag such files.

Cheaper than HTMLExporter, same page for the reader: HTMLExporter ends by parsing the whole page with
BeautifulSoup to give images without one an alt text and focusable cells a tabindex (nbgrader's feedback
template has no such cells), about 0.9 s of a 1.2 s export; here a regular expression adds the alt text. The
compiled templates are kept for the process's life (a served worker exports a page per notebook).
"""

from __future__ import annotations

import re

from jinja2 import BytecodeCache
from nbconvert.exporters import HTMLExporter, TemplateExporter
from nbconvert.filters.highlight import Highlight2HTML
from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

from .inert_html import audit, lock

NO_ALT = "No description has been provided for this image"  # HTMLExporter's own words
IMG_WITHOUT_ALT = re.compile(r"<img\b(?![^>]*\salt=)", re.IGNORECASE)


class MemoryTemplateCache(BytecodeCache):
    """Compiled Jinja templates by name and source checksum (a changed template is compiled again)."""

    def __init__(self) -> None:
        self.code: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        if bucket.key in self.code:
            bucket.bytecode_from_string(self.code[bucket.key])

    def dump_bytecode(self, bucket) -> None:
        self.code[bucket.key] = bucket.bytecode_to_string()


TEMPLATES = MemoryTemplateCache()


def add_alt_text(page: str) -> str:
    """Every <img> without an alt attribute gets HTMLExporter's placeholder alt text."""
    return IMG_WITHOUT_ALT.sub(f'<img alt="{NO_ALT}"', page)


class LockedHTMLExporter(HTMLExporter):
    """HTMLExporter (without its BeautifulSoup pass) + inert.lock on the output."""

    def _create_environment(self):
        environment = super()._create_environment()
        environment.bytecode_cache = TEMPLATES
        return environment

    def from_notebook_node(self, nb, resources=None, **kw):
        language = nb.metadata.get("language_info", {})
        lexer = language.get("pygments_lexer", language.get("name", None))
        self.register_filter("highlight_code",
                             self.filters.get("highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self)))
        resources = self._init_resources(resources)
        data_types = WidgetsDataTypeFilter(notebook_metadata=self._nb_metadata, parent=self, resources=resources)
        self.register_filter("filter_data_type", data_types)
        page, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
        page = lock(add_alt_text(page))
        problems = audit(page)
        if problems:
            self.log.warning("this feedback page could still run code in a browser (%s): regenerate it with "
                             "`python -m autograder feedback`, which withholds such pages", "; ".join(problems)[:300])
        return page, resources
