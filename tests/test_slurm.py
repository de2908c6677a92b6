"""The Slurm job array of docs/autograder.md, run as written there on a real one-node cluster.

The script is read from the doc (so doc and test cannot drift) and submitted with sbatch as an array of two
tasks on a cluster the test starts (tests/hostile/slurmcluster.py) against the PostgreSQL server of the tests
(tests/hostile/pgserver.py). The grades must equal one machine's on SQLite; task 2 is cancelled with scancel
once it grades, submitted again alone (`sbatch --array=2`, as the doc says), and nothing changes; a third
submission of task 1 grades nothing. Skipped with the reason where not root or the packages are missing.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "hostile"))

import agfix_class  # noqa: E402
import pgserver  # noqa: E402
import slurmcluster  # noqa: E402

from autograder import shard  # noqa: E402
from autograder.sandbox import bwrap_problem  # noqa: E402

DOC = os.path.join(agfix_class.REPO, "docs", "autograder.md")
PROBLEM = slurmcluster.problem() or pgserver.problem() or bwrap_problem()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(PROBLEM is not None, reason=f"needs a Slurm cluster: {PROBLEM}")]

TASK_CONFIG = '''
import os
c = get_config()
load_subconfig({base!r})  # the fixture course; this task's work folder comes from the job script
W = os.environ["GPTREF_GRADING_DIR"]
c.CourseDirectory.submitted_directory = W + "/submitted"
c.CourseDirectory.autograded_directory = W + "/autograded"
c.CourseDirectory.feedback_directory = W + "/feedback"
c.CourseDirectory.db_url = "sqlite:///" + W + "/gradebook.db"
c.Exchange.root = W + "/exchange"
c.Autograder.sandbox_uid_base = {uid_base} + 40 * int(os.environ.get("SLURM_ARRAY_TASK_ID", "0"))
'''


def job_script() -> str:
    """The ```bash block after "Slurm job array" in docs/autograder.md."""
    text = open(DOC, encoding="utf-8").read()
    m = re.search(r"Slurm job array.*?```bash\n(.*?)```", text, re.S)
    assert m, "docs/autograder.md has no Slurm job array script"
    assert m.group(1).startswith("#!/bin/bash\n#SBATCH")
    return m.group(1)


def test_the_doc_has_the_job_script():
    script = job_script()
    assert "--shard \"$SLURM_ARRAY_TASK_ID/$SHARDS\"" in script and "#SBATCH --array=1-8" in script




def _wait(ready, timeout, what, cluster):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}\n{cluster.jobs()}\n{cluster.logs()}")


def test_job_array_of_the_doc_grades_like_one_machine():
    root = tempfile.mkdtemp(prefix="agslurm-class-")
    os.chmod(root, 0o755)
    pg = cluster = None
    try:
        os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
        pg = pgserver.Server()
        cluster = slurmcluster.Cluster()
        _run(root, pg, cluster)
    finally:
        if cluster:
            cluster.stop()
        if pg:
            pg.stop()
        shutil.rmtree(root, ignore_errors=True)


def _run(root, pg, cluster):
    K, ok = agfix_class, agfix_class.ok
    K.build(root)
    incoming = os.path.join(root, "incoming")
    one, one_work = K.run_config(root, "one", 0)  # the reference: one machine, SQLite
    ok(K.cli(one, "release"))
    K.write_submissions(root, incoming, students={s: K.STUDENTS[s] for s in ("ada", "bo")})
    ok(K.cli(one, "collect", incoming))
    ok(K.cli(one, "grade", "--workers", "2"))
    graded = csv.DictReader(open(os.path.join(one_work, "grades.csv")))
    pairs = sorted({(r["assignment"], r["student_id"]) for r in graded})
    share = {k: shard.select(pairs, f"{k}/2") for k in (1, 2)}
    assert share[1] and share[2], share
    db = pg.create_db("slurm")
    config = os.path.join(root, "nbgrader_config_slurm.py")
    with open(config, "w") as f:
        f.write(TASK_CONFIG.format(base=os.path.join(root, "nbgrader_config.py"), uid_base=K.UID_BASE + 100))
    scratch = os.path.join(root, "scratch")
    ok(K.cli(config, "release", db=db, env={**os.environ, "GPTREF_GRADING_DIR": os.path.join(scratch, "release")}))
    script = os.path.join(root, "grade.sbatch")
    with open(script, "w") as f:
        f.write(job_script())
    env = {**cluster.env, "SHARDS": "2", "COURSE": agfix_class.REPO, "GRADEBOOK": db, "INCOMING": incoming,
           "SECRET": os.path.join(root, "secret"), "SCRATCH": scratch, "AUTOGRADER_CONFIG": config,
           "PYTHONUNBUFFERED": "1"}
    out = os.path.join(root, "task-%a-%j.out")

    def submit(array: str) -> str:
        r = cluster.run("sbatch", "--parsable", f"--array={array}", f"--output={out}", script, env=env)
        return r.stdout.strip().split(";")[0]

    def outputs(task: int) -> str:
        return "\n".join(open(os.path.join(root, f)).read() for f in sorted(os.listdir(root))
                         if f.startswith(f"task-{task}-"))

    job = submit("1-2")
    lock = os.path.join(scratch, "grading-2", ".grade.lock")
    _wait(lambda: os.path.exists(lock), 600, "task 2 to start grading", cluster)
    time.sleep(2)  # its workers are running
    cluster.run("scancel", f"{job}_2")
    cluster.wait_idle(1200)
    first_two = outputs(2)
    assert not re.search(r"^graded \d+ in", first_two, re.M), f"task 2 was not cancelled midway:\n{first_two}"
    assert re.search(r"^graded \d+ in", outputs(1), re.M), outputs(1) + cluster.logs()
    submit("2")  # the doc's rerun of one task
    cluster.wait_idle(1200)
    assert re.search(rf"^{len(share[2])} submissions, \d+ to grade", outputs(2), re.M), outputs(2)
    w1, w2 = (os.path.join(scratch, f"grading-{k}") for k in (1, 2))
    agfix_class.assert_same_grades_as_one_machine([w1, w2], one_work, db)
    before = agfix_class.cell_scores(db)
    submit("1")  # once more: nothing to grade, nothing changes
    cluster.wait_idle(1200)
    assert f"{len(share[1])} submissions, 0 to grade" in outputs(1), outputs(1)
    assert agfix_class.cell_scores(db) == before
