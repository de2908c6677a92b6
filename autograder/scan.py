"""Static scan of student code for things an honest solution has no need of (flags, not verdicts)."""

from __future__ import annotations

import ast
import re

from .similarity import official_solutions, reference_matches

# (pattern, reason); matched against the source of the student's cells
PATTERNS: list[tuple[str, str]] = [
    (r"\btorch\._C\b", "uses torch._C (internals)"),
    (r"\bsys\.(setprofile|settrace|_getframe)\b", "uses sys.setprofile/settrace/_getframe (tracing or frame access)"),
    (r"^\s*(import|from)\s+gc\b|\bgc\.(get_objects|get_referrers|get_referents)\b", "uses the garbage collector's object lists"),
    (r"^\s*(import|from)\s+inspect\b|\bf_back\b|\bf_locals\b|\bf_globals\b|\bcurrentframe\b", "inspects stack frames"),
    (r"NBGRADER", "looks at NBGRADER_* (branches on being graded)"),
    (r"\bos\.environ\b|\bgetenv\b", "reads environment variables"),
    (r"^\s*(import|from)\s+ctypes\b|\bctypes\.", "uses ctypes"),
    (r"ast_transformers|input_transformers|set_custom_exc|(?<![.\w])(exec|eval)\s*\(", "rewrites or generates code at run time"),
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

    def add(msg: str) -> None:
        if msg not in found:
            found.append(msg)

    for src in sources:
        for pat, why in PATTERNS:
            m = re.search(pat, src, flags=re.MULTILINE)
            if m:
                add(f"{why}: `{m.group(0).strip()}`")
        for full, why in (forbidden_names or {}).items():
            mod, _, name = full.rpartition(".")
            if full in src or (mod and re.search(rf"from\s+{re.escape(mod)}\s+import\b[^\n]*\b{re.escape(name)}\b", src)):
                add(f"{why}: `{full}`")
        try:
            tree = ast.parse(_drop_magics(src))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                base = t
                while isinstance(base, ast.Attribute):
                    base = base.value
                if isinstance(t, ast.Attribute) and isinstance(base, ast.Name) and base.id in PATCHED_MODULES:
                    add(f"monkeypatches `{ast.unparse(t)}`")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr"):
                if node.args and isinstance(node.args[0], ast.Name) and node.args[0].id in PATCHED_MODULES:
                    add(f"monkeypatches {node.args[0].id} via {node.func.id}")
    if exercises:
        notebooks = {ex.day for ex in exercises}
        official = [src for nb in sorted(notebooks) for src in official_solutions(config, nb)] if config is not None else []
        for name, ref, score in reference_matches(sources, exercises, official):
            add(f"`{name}` matches the reference (similarity {score:.2f} to {ref})")
    return found


def _drop_magics(src: str) -> str:
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in src.splitlines())
