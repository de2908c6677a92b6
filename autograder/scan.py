"""Static scan of student code for things an honest solution has no need of (flags, not verdicts)."""

from __future__ import annotations

import ast
import re

from .similarity import drop_magics, official_solutions, reference_matches

# (pattern, reason); matched against the source of the student's cells
PATTERNS: list[tuple[str, str]] = [
    (r"\btorch\._C\b", "uses torch._C (internals)"),
    (r"\bsys\.(setprofile|settrace|_getframe)\b", "uses sys.setprofile/settrace/_getframe (tracing or frame access)"),
    (r"^\s*(import|from)\s+gc\b|\bgc\.(get_objects|get_referrers|get_referents)\b",
     "uses the garbage collector's object lists"),
    (r"^\s*(import|from)\s+inspect\b|\bf_back\b|\bf_locals\b|\bf_globals\b|\bcurrentframe\b", "inspects stack frames"),
    (r"NBGRADER", "looks at NBGRADER_* (branches on being graded)"),
    (r"\bos\.environ\b|\bgetenv\b", "reads environment variables"),
    (r"^\s*(import|from)\s+ctypes\b|\bctypes\.", "uses ctypes"),
    (r"ast_transformers|input_transformers|set_custom_exc|(?<![.\w])(exec|eval)\s*\(",
     "rewrites or generates code at run time"),
    (r"\b__builtins__\b|^\s*import\s+builtins\b|\bbuiltins\.", "touches builtins"),
    (r"\bgptref\.grading\b|from\s+gptref\.grading\b", "imports the grading package"),
    (r"\bos\._exit\b|\bsys\.exit\b|\bsignal\.signal\b|\bos\.(fork|setsid|kill)\b|\bsubprocess\b|\bmultiprocessing\b",
     "exits, forks or handles signals"),
    (r"\bsocket\b|\burllib\b|\brequests\b", "network access"),
    (r"solutions/|gradebook|autograded|\.\./\.\./", "reads paths of the grader"),
    (r"def\s+__eq__|def\s+__bool__|def\s+__ne__", "defines __eq__/__bool__ (an always-equal object?)"),
]
PATCHED_MODULES = {"torch", "np", "numpy", "math", "builtins", "F", "nn", "gptref", "random", "unittest", "sys", "os"}


def scan(sources: list[str], forbidden_names: dict[str, str] | None = None, exercises=None, config=None) -> list[str]:
    """Reasons to review, one per finding (deduplicated, in order of first appearance).

    forbidden_names: {"module.name": reason}: references to the reference implementations an
    exercise replaces (e.g. "gptref.attention.scaled_dot_product_attention").
    exercises: the notebook's `Exercise`s: a student function whose normalised code is nearly the
    reference's is flagged "matches the reference" (autograder.similarity); config: the nbgrader
    config, to find the official solutions (how close they are to the reference is no evidence)."""
    found: list[str] = []

    def add(message: str) -> None:
        if message not in found:
            found.append(message)

    for source in sources:
        for pattern, why in PATTERNS:
            match = re.search(pattern, source, flags=re.MULTILINE)
            if match:
                add(f"{why}: `{match.group(0).strip()}`")
        for full_name, why in (forbidden_names or {}).items():
            module, _, name = full_name.rpartition(".")
            imported_by_name = module and re.search(
                rf"from\s+{re.escape(module)}\s+import\b[^\n]*\b{re.escape(name)}\b", source)
            if full_name in source or imported_by_name:
                add(f"{why}: `{full_name}`")
        try:
            tree = ast.parse(drop_magics(source))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                base = target
                while isinstance(base, ast.Attribute):
                    base = base.value
                if isinstance(target, ast.Attribute) and isinstance(base, ast.Name) and base.id in PATCHED_MODULES:
                    add(f"monkeypatches `{ast.unparse(target)}`")
            calls_setattr = isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in (
                "setattr", "delattr")
            if calls_setattr:
                if node.args and isinstance(node.args[0], ast.Name) and node.args[0].id in PATCHED_MODULES:
                    add(f"monkeypatches {node.args[0].id} via {node.func.id}")
    if exercises:
        notebooks = {ex.day for ex in exercises}
        official = ([source for notebook in sorted(notebooks) for source in official_solutions(config, notebook)]
                    if config is not None else [])
        for name, reference, score in reference_matches(sources, exercises, official):
            add(f"`{name}` matches the reference (similarity {score:.2f} to {reference})")
    return found

