"""The hostile-submissions suite: honest and hostile students graded in ONE batch by the real
CLI (`python -m autograder release|collect|grade|report`) on the fixture course, then checked
case by case, plus regrade, crash-resume, sandbox refusal and the student-side `check`."""

from __future__ import annotations

import csv
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import nbformat
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "hostile"))

import agfix_cases  # noqa: E402
import agfix_course  # noqa: E402
from autograder_run import cli  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap") and not any(
    os.path.exists(os.path.join(p, "bwrap")) for p in os.environ.get("PATH", "").split(os.pathsep)),
    reason="needs bubblewrap")]
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UID_BASE, UID_COUNT = 63800, 32  # this batch's sandbox uids (the other suites use other ranges)
CASES = sorted(agfix_cases.cases(agfix_course.source_notebook(), "/x")) + ["shadower", "renamer"]


def load_status(root, student):
    return json.load(open(os.path.join(root, "work", "status", "toy", f"{student}.json")))


def reasons(st):
    from autograder.grade import all_flags

    return all_flags(st)


@pytest.fixture(scope="module")
def batch():
    # our own folder: pytest prunes old basetemp folders, and other sessions may do so mid-run
    root = tempfile.mkdtemp(prefix="agcourse-")
    try:
        yield _grade_batch(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _grade_batch(root):
    cfg = agfix_course.build(root)
    with open(cfg, "a") as config:  # uids of its own: other courses graded meanwhile lease from the default pool
        config.write(f"c.Autograder.sandbox_uid_base = {UID_BASE}\nc.Autograder.sandbox_uid_count = {UID_COUNT}\n")
    r = cli(cfg, "release")
    assert r.returncode == 0, r.stdout + r.stderr
    release_nb = nbformat.read(os.path.join(root, "course", "toy", "toy.ipynb"), as_version=4)
    cases = agfix_cases.write_all(release_nb, os.path.join(root, "incoming"), root)
    r = cli(cfg, "collect", os.path.join(root, "incoming"))
    assert r.returncode == 0, r.stdout + r.stderr
    t0 = time.monotonic()
    r = cli(cfg, "grade", "--workers", "2", timeout=900)
    seconds = time.monotonic() - t0
    assert r.returncode == 0, r.stdout + r.stderr
    print(f"\nbatch of {len(cases)} students graded in {seconds:.1f} s with 2 workers")
    rep = cli(cfg, "report")
    return {"root": root, "cfg": cfg, "cases": cases, "grade_out": r.stdout, "report": rep.stdout, "seconds": seconds}


@pytest.mark.parametrize("student", CASES)
def test_case_outcome(batch, student):
    case = batch["cases"][student]
    st = load_status(batch["root"], student)
    auto = sum((c.get("auto") or 0) for c in st.get("cells", {}).values())
    why = reasons(st)
    if case.score is not None:
        assert auto == case.score, (case.what, auto, why)
    if case.max_score is not None:
        assert auto <= case.max_score, (case.what, auto, why)
    if case.flag:
        assert any(case.flag in r for r in why), (case.what, why)
        assert case.flag in batch["report"] or student in batch["report"]
    if case.score == 3 and case.flag is None and student.startswith("honest"):
        assert not why, why  # honest work: no flags at all


def test_every_student_graded_once(batch):
    rows = list(csv.DictReader(open(os.path.join(batch["root"], "work", "grades.csv"))))
    assert sorted(r["student_id"] for r in rows) == sorted(batch["cases"])
    from nbgrader.api import Gradebook

    with Gradebook("sqlite:///" + os.path.join(batch["root"], "work", "gradebook.db")) as gb:
        subs = gb.assignment_submissions("toy")
        assert sorted(s.student.id for s in subs) == sorted(batch["cases"])
    assert glob.glob(os.path.join(batch["root"], "work", "backups", "gradebook-*.db"))


def test_no_sandbox_process_survives(batch):
    import psutil

    left = []
    for p in psutil.process_iter(["uids", "cmdline"]):
        uid = p.info["uids"].real if p.info["uids"] else -1
        cmd = " ".join(p.info["cmdline"] or [])
        if UID_BASE <= uid < UID_BASE + UID_COUNT or "sleep 4242" in cmd:
            left.append((p.pid, uid, cmd))
    assert not left


def test_feedback_never_shows_hidden_tests(batch):
    files = glob.glob(os.path.join(batch["root"], "work", "feedback", "*", "toy", "*.html"))
    assert len(files) >= 20
    for f in files:
        text = open(f, encoding="utf-8").read()
        for marker in agfix_course.HIDDEN_MARKERS:
            assert marker not in text, f
    honest = open(os.path.join(batch["root"], "work", "feedback", "honest", "toy", "toy.html")).read()
    assert "scaled_sum(1, 1, 2) should be 3" in honest  # the visible tests are shown


def test_nothing_beside_the_notebooks(batch):
    for d in glob.glob(os.path.join(batch["root"], "work", "submitted", "*", "toy")):
        assert set(os.listdir(d)) <= {"toy.ipynb"}, os.listdir(d)
    ag = nbformat.read(os.path.join(batch["root"], "work", "autograded", "writes_gradebook", "toy", "toy.ipynb"),
                       as_version=4)
    printed = "".join(o.get("text", "") for c in ag.cells if c.cell_type == "code" for o in c.outputs)
    assert "no gradebook:" in printed and "WROTE" not in printed


def test_regrade_is_identical_and_keeps_manual_grades(batch):
    from nbgrader.api import Gradebook

    db = "sqlite:///" + os.path.join(batch["root"], "work", "gradebook.db")
    who = ["honest", "unseeded", "frame_reader", "invalid_json"]
    before = {s: load_status(batch["root"], s)["cells"] for s in who}
    with Gradebook(db) as gb:
        g = gb.find_grade("why_max", "toy", "toy", "honest")
        g.manual_score = 1.0
        gb.db.commit()
    r = cli(batch["cfg"], "grade", "--regrade", *sum((["--student", s] for s in who), []), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    for s in who:
        after = load_status(batch["root"], s)["cells"]
        assert {k: v["auto"] for k, v in after.items()} == {k: v["auto"] for k, v in before[s].items()}, s
    assert load_status(batch["root"], "honest")["cells"]["toy:why_max"]["manual"] == 1.0
    assert load_status(batch["root"], "honest")["score"] == 4.0


def test_killed_run_resumes_and_loses_nothing(batch):
    who = ["wrong_sum", "honest_warns", "edited_test"]
    before = {s: load_status(batch["root"], s)["score"] for s in who}
    args = [sys.executable, "-m", "autograder", "--config", batch["cfg"], "grade", "--regrade", "--workers", "1"]
    p = subprocess.Popen(args + sum((["--student", s] for s in who), []), cwd=REPO, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(6)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    r = cli(batch["cfg"], "grade", *sum((["--student", s] for s in who), []), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    for s in who:
        st = load_status(batch["root"], s)
        assert st["state"] == "ok" and st["score"] == before[s], s
        assert os.path.exists(os.path.join(batch["root"], "work", "autograded", s, "toy", "toy.ipynb"))


def test_student_check_command(batch, tmp_path):
    release_nb = nbformat.read(os.path.join(batch["root"], "course", "toy", "toy.ipynb"), as_version=4)
    good, bad = tmp_path / "good.ipynb", tmp_path / "bad.ipynb"
    nbformat.write(agfix_cases.notebook(release_nb), str(good))
    nbformat.write(agfix_cases.notebook(release_nb, sum_src=agfix_cases.BAD_SUM), str(bad))
    ok = subprocess.run([sys.executable, "-m", "autograder", "check", str(good)], cwd=REPO, capture_output=True,
                        text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    ko = subprocess.run([sys.executable, "-m", "autograder", "check", str(bad)], cwd=REPO, capture_output=True,
                        text=True)
    assert ko.returncode == 1 and "FAIL test_scaled_sum" in ko.stdout, ko.stdout


def test_refuses_without_sandbox_unless_asked(batch):
    env = {**os.environ, "PATH": os.path.dirname(sys.executable)}  # no bwrap on this PATH
    r = cli(batch["cfg"], "grade", "--regrade", "--student", "wrong_kernel", env=env)
    assert r.returncode == 2 and "--unsafe-no-sandbox" in r.stderr
    r = cli(batch["cfg"], "grade", "--regrade", "--student", "wrong_kernel", "--unsafe-no-sandbox", env=env,
            timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    st = load_status(batch["root"], "wrong_kernel")
    assert st["sandboxed"] is False and st["score"] == 3
    rep = cli(batch["cfg"], "report")
    assert "WITHOUT the sandbox" in rep.stdout
