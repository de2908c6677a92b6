"""Process start-up: leave out one optional import that costs two seconds in every grading process.

jsonschema imports `rfc3987_syntax` when it is installed (jupyter-events' format extras pull it in)
to check the "iri" string formats, and that import compiles a Lark grammar: about 2.1 s on 2 cores,
paid by every process that imports nbformat (the grade command, each worker, each sandboxed notebook
run). No notebook schema uses those formats, so the autograder's processes go without them.
"""

from __future__ import annotations

import sys


def skip_slow_optional_imports() -> None:
    """Make `import rfc3987_syntax` fail fast (jsonschema then skips its iri checks); a no-op once imported."""
    sys.modules.setdefault("rfc3987_syntax", None)
