"""What kind of nbgrader cell this is: the one definition the grader, the sandbox and the tests share.

Lives in inside/ because the sandboxed runner can import only from here; it needs nothing but
dict access, so plain JSON cells and nbformat cells both work.
"""

from __future__ import annotations


def nbgrader_meta(cell) -> dict:
    """The cell's nbgrader metadata ({} for a cell nbgrader does not know)."""
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def is_test_cell(cell) -> bool:
    """An autograded test: a code cell with points that the student does not write."""
    meta = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def is_solution_cell(cell) -> bool:
    """A code cell the student writes (nbgrader solution cell)."""
    return cell.get("cell_type") == "code" and bool(nbgrader_meta(cell).get("solution"))
