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
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade_id")}


def precheck(raw: bytes, release_nb) -> tuple[object | None, list[str], list[str], str | None]:
    """(repaired notebook or None, notes, flags, fatal reason or None)."""
    notes: list[str] = []
    flags: list[str] = []
    if len(raw) > MAX_BYTES:  # outputs are regenerated: without them it may fit (autograder.slim)
        from .slim import TooBig, strip_outputs

        try:
            slim = strip_outputs(raw, MAX_BYTES)
        except TooBig:
            return None, notes, flags, f"notebook larger than {MAX_BYTES >> 20} MB even without outputs"
        except ValueError as e:
            return None, notes, flags, f"notebook larger than {MAX_BYTES >> 20} MB and not notebook JSON ({e})"
        notes.append(f"outputs stripped ({len(raw) >> 20} MB -> {len(slim) >> 20} MB; grading regenerates them)")
        raw = slim
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, notes, flags, f"not UTF-8 text (bad byte at offset {e.start})"
    try:
        json.loads(text)
    except ValueError as e:
        return None, notes, flags, f"invalid JSON ({e})"
    try:
        nb = nbformat.reads(text, as_version=4)
        if not isinstance(nb.get("cells"), list):
            raise ValueError("no cell list")
    except Exception as e:  # noqa: BLE001
        return None, notes, flags, f"not a Jupyter notebook ({type(e).__name__}: {str(e)[:200]})"
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
        semantic = any(meta.get(k) != want.get(k) for k in ("grade", "solution", "locked", "points", "task"))
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
    missing = [g for g in ref if g not in seen]
    if missing:
        flags.append(f"graded cells deleted: {', '.join(missing)} (re-inserted from the release; their points need the missing work)")
    return nb, notes, flags, None
