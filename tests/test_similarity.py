"""Code similarity: copies of the reference and of other students are flagged, honest work is not.

Honest work: the fixtures in tests/similarity/plain and tests/similarity/terse, written by hand in
two styles (each checked against gptref below); cheats: tests/similarity/cheat (the reference
copied with new names, comments, reordered statements) and copies made here by renaming.
"""

from __future__ import annotations

import ast
import builtins
import csv
import importlib.util
import json
import os
import random
import subprocess
import sys
import time

import nbformat
import pytest
from autograder_run import cli as autograder_cli

from autograder.scan import scan
from autograder.settings import load_config
from autograder.similarity import (
    MATCH_REFERENCE,
    MATCH_STUDENT,
    MIN_TOKENS,
    function_nodes,
    functions,
    kgrams,
    reference_functions,
    reference_matches,
)
from autograder.similarity_report import compare_class, solution_cells, student_functions
from gptref.grading import check, exercises

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FIX = os.path.join(HERE, "similarity")
DAYS = ["01_bpe", "02_attention", "03_layernorm", "05_label_smoothing", "07_rope"]
STYLES = ["plain", "terse"]


def fixture(style: str, day: str) -> str:
    with open(os.path.join(FIX, style, f"d{day}.py")) as f:
        return f.read()


def official_cells(day: str) -> list[str]:
    nb = nbformat.read(os.path.join(ROOT, "solutions", day, f"{day}.ipynb"), as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")]


def renamed(source: str, seed: int, comments: bool = True) -> str:
    """The same code with every name the author chose replaced, and comments added: a disguised copy."""
    tree = ast.parse(source)
    keep = set(dir(builtins)) | {n.asname or n.name.split(".")[0] for n in ast.walk(tree)
                                 if isinstance(n, ast.alias)} | {"torch", "math", "F", "nn", "regex"}
    defs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}  # graded names stay
    rng = random.Random(seed)
    new: dict[str, str] = {}

    def fresh(name: str) -> str:
        if name in keep or name in defs:
            return name
        return new.setdefault(name, f"{rng.choice(['tmp', 'val', 'z', 'my'])}_{len(new)}_{rng.randint(0, 999)}")

    class Rename(ast.NodeTransformer):
        def visit_Name(self, node):
            node.id = fresh(node.id)
            return node

        def visit_arg(self, node):
            node.arg = fresh(node.arg)
            return node

    text = ast.unparse(Rename().visit(tree))
    if comments:
        text = "\n".join(line + ("  # step" if line.strip() and not line.rstrip().endswith(":")
                                  and rng.random() < 0.5 else "")
                         for line in text.splitlines())
    return text


# -- the fixtures are honest, working solutions -------------------------------------------------
@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("day", DAYS)
def test_hand_written_fixtures_are_correct_solutions(style, day):
    spec = importlib.util.spec_from_file_location(f"sim_{style}_{day}", os.path.join(FIX, style, f"d{day}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    names = list(function_nodes(fixture(style, day)))
    assert len(names) >= 2, f"{style}/d{day}.py should hold at least two exercise functions"
    for name in names:
        check(day, name, getattr(module, name))  # AssertionError names the wrong answer


# -- "matches the reference" --------------------------------------------------------------------
@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("day", DAYS)
def test_honest_styles_do_not_match_the_reference(style, day):
    hits = reference_matches([fixture(style, day)], exercises.load(day).values())  # no official bar: strictest
    assert hits == [], f"honest {style} code flagged as the reference: {hits}"


@pytest.mark.parametrize("day", exercises.days())
def test_official_solutions_are_not_flagged(day):
    found = scan(official_cells(day), {}, list(exercises.load(day).values()), load_config())
    assert not [f for f in found if "matches the reference" in f], found


CHEATS = {  # day: (student function, reference it copies)
    "02_attention": ("scaled_dot_product_attention", "gptref.attention.scaled_dot_product_attention"),
    "03_layernorm": ("layer_norm", "gptref.norms.layer_norm"),
    "05_label_smoothing": ("smoothed_targets", "gptref.losses.smoothed_targets"),
}


@pytest.mark.parametrize("day", sorted(CHEATS))
def test_disguised_copy_of_the_reference_is_flagged(day):
    name, ref = CHEATS[day]
    found = scan([fixture("cheat", day)], {}, list(exercises.load(day).values()), load_config())
    hits = [f for f in found if "matches the reference" in f]
    assert hits and f"`{name}` matches the reference" in hits[0] and f"to {ref})" in hits[0], found


@pytest.mark.parametrize("day", DAYS)
def test_every_renamed_reference_is_flagged(day):
    """Each reference long enough to judge, pasted under the exercise's name with every name
    changed and comments added, is flagged (similarity 1.0 after normalisation)."""
    checked = 0
    for ex in exercises.load(day).values():
        for qual, ref in reference_functions(ex).items():
            if len(ref.tokens) < MIN_TOKENS or " inlined)" in qual:
                continue
            node = function_nodes(ref.source)[qual.rsplit(".", 1)[-1]]
            node.name = ex.name
            copy = renamed(ast.unparse(node), seed=len(qual))
            hits = reference_matches([copy], [ex])
            assert hits and hits[0][0] == ex.name and hits[0][2] >= MATCH_REFERENCE, (qual, copy)
            checked += 1
    assert checked >= 1


def test_honest_code_matching_its_official_solution_is_not_evidence():
    """A function as close to the reference as the official solution is gets no flag; closer does."""
    off = official_cells("03_layernorm")
    exs = list(exercises.load("03_layernorm").values())
    student = [renamed(src, seed=3) for src in off]
    assert reference_matches(student, exs, off) == []
    copied = reference_matches([renamed(fixture("cheat", "03_layernorm"), 1)], exs)
    assert copied and copied[0][1] == "gptref.norms.layer_norm"


# -- the cross-student report -------------------------------------------------------------------
def class_functions(sources_by_student: dict[str, list[str]]) -> dict[str, list]:
    work = {}
    for student, sources in sources_by_student.items():
        fns = []
        for src in sources:
            for fn in functions(src):
                fn.grams = kgrams(fn.tokens)
                fns.append(fn)
        work[student] = fns
    return work


@pytest.mark.parametrize("day", DAYS)
def test_honest_styles_are_not_flagged_as_each_other(day):
    work = class_functions({"plain": [fixture("plain", day)], "terse": [fixture("terse", day)],
                            "official": official_cells(day)})
    assert compare_class(work, MATCH_STUDENT) == []


def _submission(release_nb, day: str, source: str | None):
    """The release notebook with its solution cells filled from `source` (its functions by name)."""
    nb = nbformat.from_dict(release_nb)
    if source is None:
        return nb
    nodes = function_nodes(source)
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution"):
            names = list(function_nodes(cell.source))
            if names and names[0] in nodes:
                cell.source = ast.get_source_segment(source, nodes[names[0]]) or ast.unparse(nodes[names[0]])
    return nb


def test_report_lists_a_renamed_copy_of_another_student(tmp_path):
    """End to end through `python -m autograder similarity`: four students of day 2, one of whom
    renamed a classmate's functions; only that pair is listed, with the matching functions."""
    day = "02_attention"
    (tmp_path / "release" / day).mkdir(parents=True)
    (tmp_path / "source" / day).mkdir(parents=True)
    release = nbformat.read(os.path.join(ROOT, "course", day, f"{day}.ipynb"), as_version=4)
    nbformat.write(release, tmp_path / "release" / day / f"{day}.ipynb")
    nbformat.write(release, tmp_path / "source" / day / f"{day}.ipynb")
    plain = fixture("plain", day)
    students = {"ann": plain, "bob": fixture("terse", day), "cid": "\n\n".join(official_cells(day)),
                "dan": renamed(plain, seed=7), "eve": None}  # eve hands in the untouched release
    for student, src in students.items():
        d = tmp_path / "submitted" / student / day
        d.mkdir(parents=True)
        nbformat.write(_submission(release, day, src), d / f"{day}.ipynb")
    cfg = tmp_path / "nbgrader_config.py"
    cfg.write_text("c = get_config()\n"
                   f"c.CourseDirectory.root = {str(tmp_path)!r}\n"
                   "c.CourseDirectory.source_directory = 'source'\n"
                   "c.CourseDirectory.release_directory = 'release'\n"
                   "c.CourseDirectory.submitted_directory = 'submitted'\n"
                   f"c.CourseDirectory.db_url = 'sqlite:///{tmp_path}/work/gradebook.db'\n"
                   "c.Autograder.sandbox_uid_base = 62500\n")
    out = tmp_path / "sim.csv"
    r = subprocess.run([sys.executable, "-m", "autograder", "--config", str(cfg), "similarity", "--assignment", day,
                        "--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(out)))
    pairs = {(row["student_a"], row["student_b"]) for row in rows}
    assert pairs == {("ann", "dan")}, r.stdout
    copied = {row["function_a"] for row in rows}
    long_enough = {f"{day}:{f.name}" for f in functions(plain) if len(f.tokens) >= MIN_TOKENS}
    assert copied == long_enough and all(float(row["similarity"]) >= 0.99 for row in rows), rows
    assert "ann ~ dan" in r.stdout and "scaled_dot_product_attention" in r.stdout
    bad = subprocess.run([sys.executable, "-m", "autograder", "--config", str(cfg), "similarity",
                          "--assignment", "nope"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert bad.returncode == 2 and "unknown assignment 'nope'" in bad.stderr


# -- a class of 200 -----------------------------------------------------------------------------
def random_expression(rng: random.Random, arg: str, depth: int = 3) -> str:
    """A random small expression over `arg`: each synthetic student's own statements."""
    if depth == 0 or rng.random() < 0.2:
        return rng.choice([arg, str(rng.randint(1, 9)), f"{arg}.shape[{rng.randint(-2, 1)}]", "None"])
    a, b = random_expression(rng, arg, depth - 1), random_expression(rng, arg, depth - 1)
    return rng.choice([f"({a} + {b})", f"({a} * {b})", f"({a} - {b})", f"abs({a})", f"[{a}, {b}]", f"({a}, {b})",
                       f"({a} if {b} else {a})", f"len(str({a}))", f"{{{a}: {b}}}", f"({a} == {b})", f"max({a}, {b})",
                       f"[{a} for _ in range({rng.randint(1, 5)})]", f"(not {a})", f"({a} or {b})"])


def synthetic_student(templates: list[str], rng: random.Random) -> list[str]:
    """One student's day: each function from a random template, with a few statements of their own."""
    out = []
    for tpl in templates:
        tree = ast.parse(tpl)
        for fn in tree.body:
            if not isinstance(fn, ast.FunctionDef):
                continue
            arg = fn.args.args[0].arg
            for _ in range(rng.randint(2, 4)):
                stmt = ast.parse(f"u{rng.randint(0, 99)} = {random_expression(rng, arg)}").body[0]
                fn.body.insert(rng.randint(0, len(fn.body) - 1), stmt)
        out.append(renamed(ast.unparse(tree), rng.randint(0, 10**6), comments=False))
    return out


@pytest.mark.slow
def test_report_on_a_class_of_200_is_fast_and_finds_the_planted_copies():
    rng = random.Random(0)
    day = "02_attention"
    templates = [fixture("plain", day), fixture("terse", day), "\n\n".join(official_cells(day))]
    sources = {f"s{i:03d}": synthetic_student([rng.choice(templates)], rng) for i in range(200)}
    planted = {("s010", "s150"), ("s042", "s043"), ("s077", "s199")}
    for a, b in planted:
        sources[b] = [renamed(src, rng.randint(0, 10**6)) for src in sources[a]]
    start = time.perf_counter()
    work = class_functions(sources)
    found = compare_class(work, MATCH_STUDENT)
    seconds = time.perf_counter() - start
    pairs = {(a, b) for a, _, b, _, _ in found}
    print(f"200 students, {sum(len(v) for v in work.values())} functions: {seconds:.1f} s, {len(pairs)} pairs flagged")
    assert pairs == planted, f"missed {planted - pairs}, honest pairs flagged {pairs - planted}"
    assert seconds < 60, f"the report took {seconds:.0f} s for 200 students"


def test_code_the_release_gives_is_not_compared():
    """Statements the stub already holds (day 9's given lines) are not the student's work."""
    release = nbformat.read(os.path.join(ROOT, "course", "09_nanogpt_finetune", "09_nanogpt_finetune.ipynb"),
                            as_version=4)
    stubs = solution_cells(release)
    solution = nbformat.read(os.path.join(ROOT, "solutions", "09_nanogpt_finetune", "09_nanogpt_finetune.ipynb"),
                             as_version=4)
    full = {f.name: len(f.tokens) for c in solution.cells if c.metadata.get("nbgrader", {}).get("grade_id") in stubs
            for f in functions(c.source)}
    mine = {f.name: len(f.tokens) for f in student_functions(solution, stubs)}
    assert mine["block_forward"] == 0 < full["block_forward"], (mine, full)  # its body is all given
    assert mine["cosine_lr"] == full["cosine_lr"] > 0
    assert student_functions(release, stubs) == []  # the untouched release: nothing written


@pytest.mark.slow
def test_grading_flags_a_copied_reference_and_not_the_official_solution(tmp_path):
    """Through `python -m autograder grade` (sandbox, trusted verdicts): the status of a student
    who pasted gptref's layer_norm carries the flag; the official solution's does not."""
    from autograder.grade import all_flags

    day = "03_layernorm"
    root = tmp_path / "course"
    import shutil

    shutil.copytree(os.path.join(ROOT, "solutions", day), root / "solutions" / day)
    shutil.copytree(os.path.join(ROOT, "course", day), root / "course" / day)
    work = root / "work"
    cfg = root / "nbgrader_config.py"
    cfg.write_text("c = get_config()\n"
                   f"c.CourseDirectory.root = {str(root)!r}\n"
                   "c.CourseDirectory.course_id = 'simcourse'\n"
                   "c.CourseDirectory.source_directory = 'solutions'\n"
                   "c.CourseDirectory.release_directory = 'course'\n"
                   f"c.CourseDirectory.submitted_directory = {str(work / 'submitted')!r}\n"
                   f"c.CourseDirectory.autograded_directory = {str(work / 'autograded')!r}\n"
                   f"c.CourseDirectory.feedback_directory = {str(work / 'feedback')!r}\n"
                   f"c.CourseDirectory.db_url = 'sqlite:///{work}/gradebook.db'\n"
                   "c.CourseDirectory.ignore = ['.ipynb_checkpoints', '*.pyc', '__pycache__', '*.db', 'work']\n"
                   "c.ClearOutput.enabled = True\n"
                   "c.ClearSolutions.code_stub = {'python': '# YOUR CODE HERE\\nraise NotImplementedError()'}\n"
                   f"c.Exchange.root = {str(work / 'exchange')!r}\n"
                   "c.Autograder.sandbox_uid_base = 62500\n")
    release = nbformat.read(root / "course" / day / f"{day}.ipynb", as_version=4)
    incoming = tmp_path / "incoming"
    for student, nb in {"copier": _submission(release, day, fixture("cheat", day)),
                        "official": nbformat.read(os.path.join(ROOT, "solutions", day, f"{day}.ipynb"),
                                                  as_version=4)}.items():
        (incoming / student).mkdir(parents=True)
        nbformat.write(nb, incoming / student / f"{day}.ipynb")

    def cli(*args):
        autograder_cli(cfg, *args, check=True, timeout=1500)

    cli("release", day)
    cli("collect", str(incoming))
    cli("grade", "--assignment", day, "--workers", "1")
    flags = {s: all_flags(json.load(open(work / "status" / day / f"{s}.json"))) for s in ("copier", "official")}
    assert any("`layer_norm` matches the reference" in f and "gptref.norms.layer_norm" in f
               for f in flags["copier"]), flags
    assert not any("matches the reference" in f for f in flags["official"]), flags
