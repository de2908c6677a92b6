"""Grading throughput: seconds per student for the whole course, and where the time goes.

    python benchmarks/grading.py [--students 4] [--workers 1,2,all] [--days 03_layernorm,...] [--uid-base 61000]

Every student hands in the honest solutions of every day (the source notebooks). In a temp
folder (nothing in the repository is written; the release goes to the temp folder too):
  1. throughput: `python -m autograder grade --regrade --workers N` for each N, wall seconds per
     student (all days), i.e. what a course of S students costs on this machine;
  2. breakdown: one student's days graded in this process by the worker's own `grade_one`, timed
     around the sandboxed notebook run, the trusted verdict and the rest (nbgrader bookkeeping:
     pre-check, autograde's sanitising and database writes, feedback); the kernel start alone is
     the sandboxed run of a notebook with one empty cell.
Results: a table on stdout and results.json in --out. Target (issue 15): at most 120 s per
student for the whole course on 2 cores, and throughput growing with cores. Timings on a loaded
machine are noisy: say so with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "tests")]

from autograder_run import cli, config_text  # noqa: E402  (the tests' autograder command line and configs)

from gptref.bench import record  # noqa: E402


def setup(out: str, days: list[str], students: int, uid_base: int | None) -> str:
    work = os.path.join(out, "work")
    os.makedirs(work, exist_ok=True)
    cfg = os.path.join(out, "nbgrader_config.py")
    uids = {} if uid_base is None else {"Autograder__sandbox_uid_base": uid_base}
    with open(cfg, "w") as f:  # the course's own config; only folders (and uids) are the benchmark's
        f.write(config_text(work, CourseDirectory__release_directory=os.path.join(out, "release"),
                            Autograder__secret_file=os.path.join(work, "secret"), **uids))
    r = cli(cfg, "release", *days)
    if r.returncode != 0:
        sys.exit(f"release failed:\n{r.stdout}\n{r.stderr}")
    incoming = os.path.join(out, "incoming")
    for k in range(students):
        for day in days:
            dest = os.path.join(incoming, f"student{k:02d}")
            os.makedirs(dest, exist_ok=True)
            shutil.copy(os.path.join(REPO, "solutions", day, f"{day}.ipynb"), os.path.join(dest, f"{day}.ipynb"))
    r = cli(cfg, "collect", incoming)
    if r.returncode != 0:
        sys.exit(f"collect failed:\n{r.stdout}\n{r.stderr}")
    return cfg


def throughput(cfg: str, workers: int, students: int) -> dict:
    t0 = time.monotonic()
    r = cli(cfg, "grade", "--regrade", "--workers", str(workers), timeout=None)
    wall = time.monotonic() - t0
    if r.returncode != 0:
        sys.exit(f"grade failed:\n{r.stdout}\n{r.stderr}")
    bad = [line for line in r.stdout.splitlines() if line.startswith("{") and '"state": "ok"' not in line]
    return {"workers": workers, "wall_s": round(wall, 1), "s_per_student": round(wall / students, 1), "not_ok": bad}


def breakdown(cfg: str, days: list[str]) -> dict:
    """One student's days in this process, with timers around the phases of grade_one."""
    from autograder import execute, worker
    from autograder.course import Course

    spent = {"notebook_run": 0.0, "verdict": 0.0}
    real_run, real_verdict = execute.SandboxedExecute._run, execute.trusted_verdict

    def timed_run(self, *a, **k):
        t = time.monotonic()
        try:
            return real_run(self, *a, **k)
        finally:
            spent["notebook_run"] += time.monotonic() - t

    def timed_verdict(*a, **k):
        t = time.monotonic()
        try:
            return real_verdict(*a, **k)
        finally:
            spent["verdict"] += time.monotonic() - t

    execute.SandboxedExecute._run, execute.trusted_verdict = timed_run, timed_verdict
    course = Course(cfg)
    per_day = {}
    try:
        for day in days:
            spent.update(notebook_run=0.0, verdict=0.0)
            t = time.monotonic()
            st = worker.grade_one(course, day, "student00")
            total = time.monotonic() - t
            per_day[day] = {"total": round(total, 2), "notebook_run": round(spent["notebook_run"], 2),
                            "verdict": round(spent["verdict"], 2),
                            "bookkeeping": round(total - spent["notebook_run"] - spent["verdict"], 2),
                            "state": st.get("state")}
        per_day["_kernel_start"] = {"total": round(kernel_start(course), 2)}
    finally:
        execute.SandboxedExecute._run, execute.trusted_verdict = real_run, real_verdict
    return per_day


def kernel_start(course) -> float:
    """The sandboxed run of a one-empty-cell notebook: sandbox + kernel start + shutdown."""
    import nbformat
    from traitlets.config import Config

    from autograder.execute import SandboxedExecute

    c = Config(course.config)
    tmp = tempfile.mkdtemp(prefix="bench-kernel-")
    try:
        pre = SandboxedExecute(config=c, status_dir=tmp)
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("pass")])
        from autograder.sandbox import Sandbox
        from autograder.settings import Autograder

        settings = Autograder(config=c)
        sandbox = Sandbox(settings, slot=0)
        t = time.monotonic()
        pre._run(nb, "empty", sandbox, settings, 0, {"flags": [], "notes": []})
        return time.monotonic() - t
    except Exception as e:  # noqa: BLE001  (the Sandbox API is another module's: report, do not fail)
        print(f"kernel start not measured: {type(e).__name__}: {e}", file=sys.stderr)
        return float("nan")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--students", type=int, default=4)
    p.add_argument("--workers", default="1,2,all", help="comma-separated worker counts; 'all' = os.cpu_count()")
    p.add_argument("--days", help="comma-separated days (default: every day in solutions/)")
    p.add_argument("--uid-base", type=int, help="c.Autograder.sandbox_uid_base for this run")
    p.add_argument("--out", default=None, help="folder for results.json (default: a temp folder)")
    p.add_argument("--no-breakdown", action="store_true")
    a = p.parse_args(argv)
    solutions = os.path.join(REPO, "solutions")
    days = a.days.split(",") if a.days else sorted(d for d in os.listdir(solutions)
                                                 if os.path.isdir(os.path.join(solutions, d)) and d[0].isdigit())
    out = a.out or tempfile.mkdtemp(prefix="grading-bench-")
    os.makedirs(out, exist_ok=True)
    cfg = setup(out, days, a.students, a.uid_base)
    counts = sorted({os.cpu_count() or 1 if w == "all" else int(w) for w in a.workers.split(",")})
    results = {"days": days, "students": a.students, "cpus": os.cpu_count(), "load_before": os.getloadavg(),
               "throughput": [], "breakdown": None}
    for w in counts:
        r = throughput(cfg, w, a.students)
        results["throughput"].append(r)
        print(f"{w} worker(s): {r['wall_s']} s for {a.students} students x {len(days)} days = "
              f"{r['s_per_student']} s per student" + (f"  NOT OK: {r['not_ok']}" if r["not_ok"] else ""), flush=True)
    if not a.no_breakdown:
        results["breakdown"] = breakdown(cfg, days)
        print(f"{'day':24s} {'total':>8s} {'run':>8s} {'verdict':>8s} {'nbgrader':>8s}")
        for day, b in results["breakdown"].items():
            print(f"{day:24s} {b['total']:8.2f} {b.get('notebook_run', 0):8.2f} {b.get('verdict', 0):8.2f} "
                  f"{b.get('bookkeeping', 0):8.2f}")
    results["load_after"] = os.getloadavg()
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    kept = record.save("grading", results)
    print(f"results in {os.path.join(out, 'results.json')} and {kept} (load average before "
          f"{results['load_before'][0]:.1f}, after {results['load_after'][0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
