"""Before nbgrader sees a submission: read it safely, repair what can be repaired, flag it.

A notebook that is not UTF-8, not JSON, not a notebook, or another assignment's is *broken*:
only that student's notebook scores 0, with the reason. Edited nbgrader metadata is put back
from the release (nbgrader then restores the locked cells' source); a different kernelspec is
replaced; deleted graded cells are re-inserted by nbgrader (add_missing_cells).
"""

from __future__ import annotations

import copy
import json

import nbformat

MAX_BYTES = 50 * 1024 * 1024


def grade_cells(nb) -> dict:
    """grade_id -> cell, for every cell that carries nbgrader metadata with a grade_id."""
    return {cell.metadata["nbgrader"]["grade_id"]: cell for cell in nb.cells
            if cell.metadata.get("nbgrader", {}).get("grade_id")}


def precheck(raw: bytes, release_nb) -> tuple[object | None, list[str], list[str], str | None]:
    """(repaired notebook or None, notes, flags, fatal reason or None)."""
    notes: list[str] = []
    flags: list[str] = []
    if len(raw) > MAX_BYTES:  # outputs are regenerated: without them it may fit (autograder.slim)
        from .slim import TooBig, strip_outputs

        try:
            without_outputs = strip_outputs(raw, MAX_BYTES)
        except TooBig:
            return None, notes, flags, f"notebook larger than {MAX_BYTES >> 20} MB even without outputs"
        except ValueError as error:
            return None, notes, flags, f"notebook larger than {MAX_BYTES >> 20} MB and not notebook JSON ({error})"
        notes.append(f"outputs stripped ({len(raw) >> 20} MB -> {len(without_outputs) >> 20} MB; "
                     "grading regenerates them)")
        raw = without_outputs
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, notes, flags, f"not UTF-8 text (bad byte at offset {error.start})"
    try:
        json.loads(text)
    except ValueError as error:
        return None, notes, flags, f"invalid JSON ({error})"
    try:
        nb = nbformat.reads(text, as_version=4)
        if not isinstance(nb.get("cells"), list):
            raise ValueError("no cell list")
    except Exception as error:  # noqa: BLE001
        return None, notes, flags, f"not a Jupyter notebook ({type(error).__name__}: {str(error)[:200]})"
    want = release_nb.metadata.get("kernelspec", {})
    have = nb.metadata.get("kernelspec", {})
    if want and have.get("name") != want.get("name"):
        notes.append(f"kernelspec {have.get('name')!r} replaced by {want.get('name')!r}")
        nb.metadata["kernelspec"] = copy.deepcopy(want)
    ref = grade_cells(release_nb)
    mine = grade_cells(nb)
    if ref and not set(ref) & set(mine):
        return None, notes, flags, "none of this assignment's graded cells are in it (another assignment's notebook?)"
    seen = set()
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader")
        if meta is None:
            continue
        gid = meta.get("grade_id")
        if gid not in ref or gid in seen:
            del cell.metadata["nbgrader"]  # invented or duplicated graded cell: plain cell now
            flags.append(f"cell {gid!r} carried nbgrader metadata not in the release (removed)")
            continue
        seen.add(gid)
        good = ref[gid]
        want = good.metadata["nbgrader"]
        semantic = any(meta.get(key) != want.get(key) for key in ("grade", "solution", "locked", "points", "task"))
        if dict(meta) != dict(want) and not semantic and cell.cell_type == good.cell_type:
            cell.metadata["nbgrader"] = copy.deepcopy(want)  # e.g. a missing checksum: restored quietly
            notes.append(f"nbgrader bookkeeping of cell {gid!r} restored from the release")
        elif semantic or cell.cell_type != good.cell_type:
            cell.metadata["nbgrader"] = copy.deepcopy(good.metadata["nbgrader"])
            if cell.cell_type != good.cell_type:
                cell.cell_type = good.cell_type
                if good.cell_type == "code":
                    cell.outputs, cell.execution_count = [], None
                else:
                    cell.pop("outputs", None)
                    cell.pop("execution_count", None)
            flags.append(f"nbgrader metadata of cell {gid!r} was edited (restored from the release)")
    missing = [grade_id for grade_id in ref if grade_id not in seen]
    if missing:
        flags.append(f"graded cells deleted: {', '.join(missing)} (re-inserted from the release; their points need "
                     "the missing work)")
    return nb, notes, flags, None
