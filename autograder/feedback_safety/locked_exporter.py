"""The HTML exporter of the course's feedback: nbgrader's HTMLExporter whose page comes out locked.

Set as `GenerateFeedback.exporter_class` in the course's config, so `nbgrader generate_feedback` run by hand
writes what `python -m autograder feedback` writes: the preprocessors (hidden tests cut, student HTML made
inert) come from the same config, and this exporter removes the template's head scripts and puts the
Content-Security-Policy first in <head> (inert_html.lock). A page the audit still finds live is logged
as a warning: only the autograder's own commands withhold and flag such files.
"""

from __future__ import annotations

from nbconvert.exporters import HTMLExporter

from .inert_html import audit, lock


class LockedHTMLExporter(HTMLExporter):
    """HTMLExporter + inert.lock on the output."""

    def from_notebook_node(self, nb, resources=None, **kw):
        page, resources = super().from_notebook_node(nb, resources, **kw)
        page = lock(page)
        problems = audit(page)
        if problems:
            self.log.warning("this feedback page could still run code in a browser (%s): regenerate it with "
                             "`python -m autograder feedback`, which withholds such pages", "; ".join(problems)[:300])
        return page, resources
