"""A PostgreSQL gradebook shared by several graders, and `grade --shard K/N`.

Against a real server the tests start themselves (Debian's postgresql, run as the `postgres`
user when we are root): concurrent writers lose nothing, and two shard processes with their own
work folders on one PostgreSQL gradebook give exactly the grades.csv of one process on SQLite,
survive being killed midway, and change nothing when run again.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "hostile"))

import agfix_class  # noqa: E402
import pgserver  # noqa: E402

from autograder import gradebook, shard  # noqa: E402

PG_PROBLEM = pgserver.problem()
needs_pg = pytest.mark.skipif(PG_PROBLEM is not None, reason=f"needs a PostgreSQL server: {PG_PROBLEM}")
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (apt-get install bubblewrap)")


@pytest.fixture(scope="module")
def pg():
    # nbgrader's Gradebook runs `alembic` from the environment's bin when it creates a database
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    server = pgserver.Server()
    try:
        yield server
    finally:
        server.stop()


def test_db_urls_are_checked_and_routed_through_psycopg():
    assert gradebook.sqlalchemy_url("postgresql://u:p@h:5/gb") == "postgresql+psycopg://u:p@h:5/gb"
    assert gradebook.sqlalchemy_url("postgres://h/gb?sslmode=require") == "postgresql+psycopg://h/gb?sslmode=require"
    assert gradebook.sqlalchemy_url("sqlite:////w/gradebook.db?x=1") == "sqlite:////w/gradebook.db?timeout=60"
    assert gradebook.libpq_url("postgresql+psycopg://h/gb") == "postgresql://h/gb"
    assert gradebook.display("postgresql://u:secret@h/gb") == "postgresql://u:***@h/gb"
    for bad, why in [("mysql://h/gb", "must be sqlite"), ("postgresql://h:5/", "names no database"),
                     ("sqlite:///", "names no file"), ("", "empty")]:
        with pytest.raises(ValueError, match=why):
            gradebook.check_url(bad)


def test_db_option_reaches_every_command(tmp_path):
    """--db overrides the config's db_url (also in worker processes, through the environment), and
    a PostgreSQL course keeps its own files next to submitted/."""
    import agfix_course

    from autograder.course import Course

    cfg = agfix_course.build(str(tmp_path))
    old = os.environ.pop(gradebook.ENV, None)
    try:
        assert Course(cfg).db_url.endswith("/work/gradebook.db")
        os.environ[gradebook.ENV] = "postgresql://me@db.example:5432/course"
        course = Course(cfg)
        assert course.db_path is None and course.gradebook_url == "postgresql+psycopg://me@db.example:5432/course"
        assert course.work == str(tmp_path / "work") and course.api().coursedir.db_url == course.gradebook_url
        done = agfix_class.cli(cfg, "report", db="mysql://nope/x")
        assert done.returncode == 2 and "must be sqlite" in done.stderr
        done = agfix_class.cli(cfg, "grade", "--shard", "3/2")
        assert done.returncode == 2 and "K must be between 1 and N" in done.stderr
    finally:
        os.environ.pop(gradebook.ENV, None)
        if old is not None:
            os.environ[gradebook.ENV] = old


def test_shards_partition_the_pairs():
    pairs = [(a, f"s{i:03d}") for a in ("01_x", "02_y", "03_z") for i in range(200)]
    for n in (1, 2, 3, 7):
        parts = [shard.select(pairs, f"{k}/{n}") for k in range(1, n + 1)]
        assert sorted(p for part in parts for p in part) == sorted(pairs)  # every pair exactly once
        assert all(len(part) > len(pairs) / n / 2 for part in parts)  # no shard starves
        assert parts == [shard.select(list(reversed(pairs)), f"{k}/{n}")[::-1] for k in range(1, n + 1)]  # order-free
    for bad in ("0/2", "3/2", "2", "a/b", "1/0"):
        with pytest.raises(ValueError, match="--shard"):
            shard.parse(bad)


WRITER = r'''
import json, os, sys, time, types
from traitlets.config import Config
from autograder import gradebook
from nbgrader.api import Gradebook
url, assignment, n, barrier = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
course = types.SimpleNamespace(db_url=url, config=Config())
students = [f"st{i:03d}" for i in range(n)]
with Gradebook(gradebook.sqlalchemy_url(url)) as gb:
    open(os.path.join(barrier, assignment), "w").close()  # ready: connected, everything imported
    deadline = time.monotonic() + 120
    while len(os.listdir(barrier)) < 2:  # the barrier: both writers start together
        assert time.monotonic() < deadline, "the other writer never came"
        time.sleep(0.001)
    stamps = [time.time()]
    gradebook.ensure_students(course, students)
    stamps.append(time.time())
    for s in students:
        gb.update_or_create_submission(assignment, s)
        stamps.append(time.time())
print("STAMPS " + json.dumps(stamps))
'''


def interleavings(stamps: dict[str, list[float]]) -> int:
    """How often the merged sequence of both writers' write times switches from one writer to the other."""
    merged = sorted((t, who) for who, times in stamps.items() for t in times)
    return sum(1 for (_, a), (_, b) in zip(merged, merged[1:]) if a != b)


def test_interleavings_counts_switches():
    assert interleavings({"a": [1, 2, 3], "b": [4, 5]}) == 1  # one after the other
    assert interleavings({"a": [1, 3, 5], "b": [2, 4]}) == 4


@needs_pg
def test_two_graders_writing_at_once_lose_nothing(pg, tmp_path):
    """Two processes create the same students and their own submissions at the same moment (a barrier
    starts them together; their write times show both creating the students at once, then their writes
    interleaved)."""
    url = pg.create_db("writers")
    from nbgrader.api import Gradebook

    with Gradebook(gradebook.sqlalchemy_url(url)) as book:
        for assignment in ("a1", "a2"):
            book.add_assignment(assignment)
    n = 200
    env = {**os.environ, "PYTHONPATH": agfix_class.REPO}
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, url, assignment, str(n), str(barrier)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for assignment in ("a1", "a2")]
    outs = [writer.communicate(timeout=300) for writer in writers]
    assert all(writer.returncode == 0 for writer in writers), outs
    stamps = {assignment: json.loads(out.split("STAMPS ", 1)[1]) for assignment, (out, _) in zip(("a1", "a2"), outs)}
    switches = interleavings(stamps)
    print(f"\nthe two writers' {2 * (n + 2)} writes switched writer {switches} times")
    # Both began creating the same students before either had finished (the race under test) ...
    began_students = max(times[0] for times in stamps.values())
    finished_students = min(times[1] for times in stamps.values())
    assert began_students < finished_students, stamps
    # ... and their submissions' writes interleaved. With 60 students CI saw one writer lose the unique-constraint
    # race, sleep its 0.2 s back-off and find the other already done (2 switches): 200 students keep both writing
    # for longer than that back-off.
    assert switches >= 3, stamps
    with Gradebook(gradebook.sqlalchemy_url(url)) as book:
        assert len(book.students) == n
        for assignment in ("a1", "a2"):
            submitted = sorted(submission.student.id for submission in book.assignment_submissions(assignment))
            assert submitted == [f"st{i:03d}" for i in range(n)]




@pytest.mark.slow
@needs_pg
@needs_bwrap
def test_shards_on_postgres_give_the_grades_of_one_machine_on_sqlite(pg):
    root = tempfile.mkdtemp(prefix="agshard-")
    try:
        _shard_run(root, pg)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _shard_run(root, pg):
    K, ok = agfix_class, agfix_class.ok
    K.build(root)
    incoming = os.path.join(root, "incoming")
    # one machine, SQLite: the reference (its grades.csv and gradebook)
    one, one_work = K.run_config(root, "one", 0)
    ok(K.cli(one, "release"))
    K.write_submissions(root, incoming, students={s: K.STUDENTS[s] for s in ("ada", "bo")})
    ok(K.cli(one, "collect", incoming))
    ok(K.cli(one, "grade", "--workers", "2"))
    pairs = {(r["assignment"], r["student_id"]) for r in csv.DictReader(open(os.path.join(one_work, "grades.csv")))}
    assert len(pairs) == 4
    # two machines, one PostgreSQL gradebook; each its own work folder and sandbox uids
    db = pg.create_db("shards")
    (m1, w1), (m2, w2) = K.run_config(root, "m1", 10), K.run_config(root, "m2", 20)
    ok(K.cli(m1, "release", db=db))
    for m in (m1, m2):
        ok(K.cli(m, "collect", incoming, db=db))
    share = {k: shard.select(sorted(pairs), f"{k}/2") for k in (1, 2)}
    assert share[1] and share[2] and {s for _, s in share[1]} & {s for _, s in share[2]}, share  # a student on both
    pre = ["--config", m2, "--db", db, "grade", "--shard", "2/2"]
    killed = subprocess.Popen([sys.executable, "-m", "autograder", *pre], cwd=K.REPO, stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    first = subprocess.Popen([sys.executable, "-m", "autograder", "--config", m1, "--db", db, "grade",
                              "--shard", "1/2"], cwd=K.REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in killed.stdout:  # kill shard 2 (the job: every process of it) once its first submission is graded
        if line.startswith("{"):
            break
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    out1 = first.communicate(timeout=1200)
    assert first.returncode == 0, out1
    rerun = ok(K.cli(m2, "grade", "--shard", "2/2", db=db))  # redoes exactly what the killed run had left
    assert f"{len(share[2])} submissions, {len(share[2]) - 1} to grade" in rerun.stdout, rerun.stdout
    agfix_class.assert_same_grades_as_one_machine([w1, w2], one_work, db)
    # a shard run twice changes nothing
    before = agfix_class.cell_scores(db)
    again = ok(K.cli(m1, "grade", "--shard", "1/2", db=db))
    assert f"{len(share[1])} submissions, 0 to grade" in again.stdout, again.stdout
    assert agfix_class.cell_scores(db) == before
    # the other commands work on PostgreSQL too, and the gradebook was backed up
    assert "need manual grading" in ok(K.cli(m1, "report", db=db)).stdout
    ok(K.cli(m1, "feedback", db=db))
    assert [f for f in os.listdir(os.path.join(w1, "backups")) if f.endswith((".pgdump", ".json"))]
    record = json.load(open(os.path.join(w1, "status", share[1][0][0], share[1][0][1] + ".json")))
    assert record["state"] == "ok", record


def _grading_interval(work: str, assignment: str, student: str) -> tuple[float, float]:
    """(start, end) wall-clock time of one pair's grading: its status file's mtime, less the seconds it took."""
    path = os.path.join(work, "status", assignment, f"{student}.json")
    end = os.path.getmtime(path)
    return end - json.load(open(path))["seconds"], end


@pytest.mark.slow
@needs_pg
@needs_bwrap
def test_two_shards_on_one_uid_base_grade_at_once(pg, tmp_path):
    """Two shards on one machine with the SAME sandbox_uid_base, started together: the machine-wide uid pool gives
    their sandboxes distinct uids, so neither kills the other's processes and both give the right grades."""
    K, ok = agfix_class, agfix_class.ok
    root = str(tmp_path)
    K.build(root, assignments=("toy",))
    incoming = os.path.join(root, "incoming")
    honest, wrong_sum = K.STUDENTS["ada"], K.STUDENTS["bo"]
    # an honest student and one with a wrong scaled_sum on each shard (3 and 1 of the 3 autograded points)
    students = {"ada": honest, "dee": wrong_sum, "hal": honest, "bo": wrong_sum}
    expected_score = {"ada": 3, "dee": 1, "hal": 3, "bo": 1}
    assert {shard.shard_of("toy", student, 2) for student in ("ada", "dee")} == {1}
    assert {shard.shard_of("toy", student, 2) for student in ("hal", "bo")} == {2}
    db = pg.create_db("one_uid_base")
    (first_config, first_work), (second_config, second_work) = K.run_config(root, "m1", 0), K.run_config(root, "m2", 0)
    ok(K.cli(first_config, "release", db=db))
    K.write_submissions(root, incoming, assignments=("toy",), students=students)
    for config in (first_config, second_config):
        ok(K.cli(config, "collect", incoming, db=db))
    shards = [subprocess.Popen([sys.executable, "-m", "autograder", "--config", config, "--db", db, "grade",
                                "--workers", "2", "--shard", f"{number}/2"], cwd=K.REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
              for number, config in ((1, first_config), (2, second_config))]
    outputs = [process.communicate(timeout=1200) for process in shards]
    assert [process.returncode for process in shards] == [0, 0], outputs
    intervals = {}
    for number, work in ((1, first_work), (2, second_work)):
        for assignment, student in shard.select([("toy", student) for student in students], f"{number}/2"):
            status = json.load(open(os.path.join(work, "status", assignment, f"{student}.json")))
            score = sum((cell.get("auto") or 0) for cell in status.get("cells", {}).values())
            assert (status["state"], score) == ("ok", expected_score[student]), (number, assignment, student, status)
            intervals.setdefault(number, []).append(_grading_interval(work, assignment, student))
    overlapping = [(one, two) for one in intervals[1] for two in intervals[2]
                   if one[0] < two[1] and two[0] < one[1]]
    assert overlapping, f"the shards graded one after the other, so nothing was shown: {intervals}"
