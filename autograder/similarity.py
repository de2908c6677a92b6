"""Code similarity on normalised ASTs: a student's function against the exercise's reference,
and students against each other (a MOSS/JPlag-style report for one assignment).

A function becomes the token stream of its body's AST: node types in pre-order; names the student
chose become a placeholder (builtins, attribute and keyword names stay: a renamer cannot change
`torch.softmax` or `dim=`); constants become their kind; docstrings, comments, annotations and
argument checks (`assert`, `if ...: raise`) are dropped; the statements of every block are put in a
canonical order, so reordering independent statements changes nothing. Two functions compare by
difflib's ratio over the streams (2 * matched tokens / all tokens): 1.0 = the same code up to
names, comments, constants and statement order.
"""

from __future__ import annotations

import ast
import builtins
import difflib
import functools
import glob
import inspect
import os
import sysconfig
import textwrap
from dataclasses import dataclass, field
from typing import Any, Iterable

BUILTINS = frozenset(dir(builtins))
MATCH_REFERENCE = 0.85  # a function this close to a reference is flagged "matches the reference"
OFFICIAL_MARGIN = 0.05  # ... and closer to it than the official solution is, by this much
MATCH_STUDENT = 0.60  # default threshold of the cross-student report (share of uncommon fingerprints)
MIN_TOKENS = 40  # shorter bodies (one or two lines) are too short to tell copying from coincidence
KGRAM = 8  # tokens per fingerprint of the cross-student index


@dataclass
class Function:
    """One function of a student's (or the reference's) code, normalised."""

    name: str  # "f" or "Class.method"
    tokens: list[str]
    source: str = ""
    grams: frozenset[int] = field(default_factory=frozenset)


# -- normalisation ------------------------------------------------------------------------------
def _is_docstring(node: ast.AST) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _is_guard(node: ast.stmt) -> bool:
    """An argument check: assert, `if ...: raise` (a message may be built before the raise), or a loop of them."""
    if isinstance(node, ast.Assert | ast.Raise):
        return True
    if isinstance(node, ast.If):
        return isinstance(node.body[-1], ast.Raise) and all(_is_guard(statement) for statement in node.orelse)
    if isinstance(node, ast.For):
        return all(_is_guard(statement) for statement in node.body + node.orelse)
    return False


def _const(value: Any) -> str:
    """A constant's token: None, booleans and ... as themselves, any other value by its type only."""
    if value is None or isinstance(value, bool) or value is Ellipsis:
        return repr(value)
    return "#" + type(value).__name__  # 1e-5 and 0.00001 (or "x" and 'y') look the same


def _tokens(node: Any, out: list[str]) -> None:
    """Pre-order tokens of an AST node (see the module docstring for what is kept)."""
    if isinstance(node, list):
        statements = [item for item in node if isinstance(item, ast.stmt)]
        if statements and len(statements) == len(node):  # a block: drop docstrings and guards, canonical order
            kept = [statement for statement in statements if not _is_guard(statement) and not _is_docstring(statement)]
            for part in sorted(_stmt(statement) for statement in kept):
                out.extend(part)
        else:
            for item in node:
                _tokens(item, out)
        return
    if not isinstance(node, ast.AST):
        return
    if isinstance(node, ast.expr_context | ast.Pass):
        return
    if isinstance(node, ast.Name):
        out.append(node.id if node.id in BUILTINS else "N")
        return
    if isinstance(node, ast.arg):
        out.append("A")
        return
    if isinstance(node, ast.Constant):
        out.append(_const(node.value))
        return
    if isinstance(node, ast.Attribute):
        out.append("." + node.attr)
        _tokens(node.value, out)
        return
    if isinstance(node, ast.keyword):
        out.append(f"{node.arg}=")
        _tokens(node.value, out)
        return
    out.append(type(node).__name__)
    for name, value in ast.iter_fields(node):
        if name in ("returns", "annotation", "type_comment", "name", "decorator_list", "asname", "module", "level"):
            continue
        _tokens(value, out)


def _stmt(node: ast.stmt) -> tuple[str, ...]:
    """One statement's tokens, as a sortable tuple."""
    out: list[str] = []
    _tokens(node, out)
    return tuple(out)


def body_tokens(fn: ast.FunctionDef | ast.AsyncFunctionDef, given: set[tuple[str, ...]] = frozenset()) -> list[str]:
    """The normalised body of a function (its signature is given by the stub, so it is left out);
    statements in `given` (the stub's own, normalised) are left out too."""
    out: list[str] = []
    statements = [statement for statement in fn.body if not _is_guard(statement) and not _is_docstring(statement)]
    for part in sorted(_stmt(statement) for statement in statements):
        if part not in given:
            out.extend(part)
    return out


def drop_magics(source: str) -> str:
    """The source with IPython magics and shell lines blanked, so that it parses as Python."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def function_nodes(source: str) -> dict[str, ast.FunctionDef]:
    """Top-level functions and methods of classes ("Class.method") of some code; {} if it does not parse."""
    try:
        tree = ast.parse(drop_magics(textwrap.dedent(source)))
    except SyntaxError:
        return {}
    found: dict[str, ast.FunctionDef] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found[node.name] = node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    found[f"{node.name}.{item.name}"] = item
    return found


def functions(source: str, given: dict[str, set[tuple[str, ...]]] | None = None) -> list[Function]:
    """The normalised functions of some code; `given`: {function name: statements the stub gives}."""
    given = given or {}
    return [Function(name, body_tokens(node, given.get(name, set())), ast.get_source_segment(source, node) or "")
            for name, node in function_nodes(source).items()]


def given_statements(stub_source: str) -> dict[str, set[tuple[str, ...]]]:
    """{function name: normalised statements} of a released stub (what every student starts from)."""
    return {name: {_stmt(statement) for statement in node.body} for name, node in function_nodes(stub_source).items()}


def similarity(first: list[str], second: list[str], at_least: float = 0.0) -> float:
    """difflib's ratio of two token streams: 2 * matched / (len(first) + len(second)); 0 for empty ones,
    and 0 where difflib's cheap upper bounds show the ratio is below `at_least`."""
    if not first or not second or 2 * min(len(first), len(second)) / (len(first) + len(second)) < at_least:
        return 0.0
    matcher = difflib.SequenceMatcher(None, first, second, autojunk=False)
    return 0.0 if matcher.quick_ratio() < at_least else matcher.ratio()


def kgrams(tokens: list[str], k: int = KGRAM) -> frozenset[int]:
    """Hashes of every run of k consecutive tokens (the fingerprints of the cross-student index)."""
    if len(tokens) < k:
        return frozenset()
    ids = [hash(token) for token in tokens]
    return frozenset(hash(tuple(ids[start:start + k])) for start in range(len(ids) - k + 1))


# -- the exercise's reference ------------------------------------------------------------------
def _resolve(expr: ast.expr, namespace: dict) -> Any:
    """The object a dotted name (`losses.label_smoothing_cross_entropy`) refers to, or None."""
    parts = []
    while isinstance(expr, ast.Attribute):
        parts.append(expr.attr)
        expr = expr.value
    if not isinstance(expr, ast.Name) or expr.id not in namespace:
        return None
    obj = namespace[expr.id]
    for part in reversed(parts):
        obj = getattr(obj, part, None)
    return obj


_INSTALLED = tuple(os.path.realpath(path) + os.sep for kind, path in sysconfig.get_paths().items()
                   if kind in ("stdlib", "platstdlib", "purelib", "platlib"))


def _course_function(obj: Any) -> bool:
    """A Python function of the course's own code (gptref or the course's reference modules), not
    of the standard library or an installed package (torch's internals are nobody's to copy)."""
    obj = inspect.unwrap(obj) if callable(obj) else obj
    if not inspect.isfunction(obj):
        return False
    if (obj.__module__ or "").split(".")[0] == "gptref":
        return True
    path = os.path.realpath(inspect.getsourcefile(obj) or "")
    return bool(path) and not path.startswith(_INSTALLED) and "site-packages" not in path


@functools.lru_cache(maxsize=256)
def reference_functions(exercise, depth: int = 2) -> dict[str, Function]:
    """{qualified name: normalised body} of the code an exercise's student must not copy: its
    `reference`, the course's functions in `forbidden` (gptref's, not torch's), and, for references
    that are thin wrappers, the course's functions they call (followed `depth` levels). Read on the trusted side;
    cached (a worker grades many notebooks of the same exercises), so callers must not modify it."""
    todo = [(function, 0) for function in (exercise.reference, *exercise.forbidden) if _course_function(function)]
    found: dict[str, Function] = {}
    nodes: dict[str, ast.FunctionDef] = {}
    callees: dict[str, list[str]] = {}
    while todo:
        fn, level = todo.pop(0)
        fn = inspect.unwrap(fn)
        qual = f"{fn.__module__}.{fn.__qualname__}"
        if qual in found:
            continue
        try:
            src = textwrap.dedent(inspect.getsource(fn))
            node = ast.parse(src).body[0]
        except (OSError, TypeError, SyntaxError, IndexError):
            continue
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        found[qual] = Function(qual, body_tokens(node), src)
        nodes[qual] = node
        callees[qual] = []
        if level < depth:
            namespace = {**fn.__globals__, **inspect.getclosurevars(fn).nonlocals}
            for call in ast.walk(node):
                if isinstance(call, ast.Call):
                    target = _resolve(call.func, namespace)
                    if target is not None and _course_function(target):
                        todo.append((target, level + 1))
                        callees[qual].append(f"{target.__module__}.{inspect.unwrap(target).__qualname__}")
    for qual, called in callees.items():  # a copy may paste the helpers it calls into one function
        helpers = [callee for callee in dict.fromkeys(called) if callee in nodes]
        inlined = [nodes[qual]] + [nodes[callee] for callee in helpers if callee != qual]
        if len(inlined) > 1:
            body = [statement for function_node in inlined for statement in function_node.body]
            merged = ast.FunctionDef(name="_", args=nodes[qual].args, body=body, decorator_list=[], returns=None,
                                     type_params=[])
            helper_names = ", ".join(callee.rsplit(".", 1)[-1] for callee in helpers)
            found[f"{qual} (with {helper_names} inlined)"] = Function(qual, body_tokens(merged), found[qual].source)
    return found


def reference_matches(sources: Iterable[str], exercises: Iterable, official: Iterable[str] = (),
                      threshold: float = MATCH_REFERENCE, margin: float = OFFICIAL_MARGIN,
                      min_tokens: int = MIN_TOKENS) -> list[tuple[str, str, float]]:
    """(student function, reference, similarity) for each student function of at least `min_tokens`
    tokens whose normalised body is at least `threshold`-similar to a reference of the exercises.

    `official`: the official solution's code. Where the official solution of a function is itself
    close to a reference (similarity o), resemblance up to o is no evidence of copying: that
    reference then needs at least o + margin (so an official solution is never flagged, and an
    exercise whose official solution IS the reference cannot be checked this way)."""
    refs: dict[str, Function] = {}
    for exercise in exercises:
        refs.update(reference_functions(exercise))
    refs = {qual: function for qual, function in refs.items() if len(function.tokens) >= min_tokens}
    if not refs:
        return []
    students = [fn for src in sources for fn in functions(src) if len(fn.tokens) >= min_tokens]
    names = {fn.name for fn in students}
    bar = {(fn.name, qual): similarity(fn.tokens, ref.tokens, threshold - margin) + margin
           for src in official for fn in functions(src) if fn.name in names for qual, ref in refs.items()}
    hits = []
    for fn in students:
        best = None
        for qual, ref in refs.items():
            score = similarity(fn.tokens, ref.tokens, threshold)
            if score >= max(threshold, bar.get((fn.name, qual), 0.0)) and (best is None or score > best[2]):
                best = (fn.name, qual, score)
        if best:
            hits.append(best)
    return hits


def official_solutions(config, notebook: str) -> list[str]:
    """The code cells of the official (source) notebook `notebook` of the course an nbgrader
    config describes; [] where there is none (read on the trusted side only)."""
    try:
        directories = config.CourseDirectory
        root = directories.get("root", "") or os.getcwd()
        source = directories.get("source_directory", "") or "source"
        source = source if os.path.isabs(source) else os.path.join(root, source)
        paths = sorted(glob.glob(os.path.join(glob.escape(source), "*", f"{glob.escape(notebook)}.ipynb")))
        if not paths:
            return []
        import nbformat

        official = nbformat.read(paths[0], as_version=4)
    except Exception:  # noqa: BLE001 (no official notebook: plain thresholds)
        return []
    return [cell.source for cell in official.cells if cell.cell_type == "code"]
