"""Grading throughput: seconds per student for the whole course, and where the time goes.

    python benchmarks/grading.py [--students 4] [--workers 1,2,all] [--days 03_layernorm,...] [--uid-base 61000]
                                 [--repeats 3]

Every student hands in the honest solutions of every day (the source notebooks). In a temp
folder (nothing in the repository is written; the release goes to the temp folder too):
  1. throughput: `python -m autograder grade --regrade --workers N` for each N, wall seconds per
     student (all days), i.e. what a course of S students costs on this machine; with the CPU seconds
     (user + sys) of the whole process tree, which hold up better than wall time on a loaded machine;
  1b. the yardstick: the same notebooks (students x days) run plainly with nbclient by as many
     processes (`plain_run.py`: no sandbox, no verdict, no nbgrader), and grading's core-seconds
     per student over the plain run's: the cost of grading's safety (target, issue 22: <= 1.25x);
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
from cpu_meter import CpuMeter  # noqa: E402
from plain_run import plain_run  # noqa: E402

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


def throughput(cfg: str, workers: int, students: int, meter: CpuMeter) -> dict:
    """`grade --regrade --workers N`: wall and CPU seconds of its whole process tree, per student."""
    cpu_before, t0 = meter.seconds(), time.monotonic()
    r = cli(cfg, "grade", "--regrade", "--workers", str(workers), timeout=None)
    wall = time.monotonic() - t0
    cpu = meter.seconds() - cpu_before
    if r.returncode != 0:
        sys.exit(f"grade failed:\n{r.stdout}\n{r.stderr}")
    bad = [line for line in r.stdout.splitlines() if line.startswith("{") and '"state": "ok"' not in line]
    return {"workers": workers, "wall_s": round(wall, 1), "s_per_student": round(wall / students, 1),
            "cpu_s": round(cpu, 1), "cpu_s_per_student": round(cpu / students, 1), "not_ok": bad}


def yardstick(out: str, days: list[str], workers: int, students: int, meter: CpuMeter) -> dict:
    """The plain run of what `grade` graded: each student's notebook of each day, by `workers` processes."""
    jobs = [(os.path.join(REPO, "solutions", day, f"{day}.ipynb"), os.path.join(out, "release", day))
            for _ in range(students) for day in days]
    plain = plain_run(jobs, workers, meter.seconds)
    plain.update(s_per_student=round(plain["wall_s"] / students, 1),
                 cpu_s_per_student=round(plain["cpu_s"] / students, 1))
    return plain


def breakdown(cfg: str, days: list[str], meter: CpuMeter) -> dict:
    """One student's days in this process, with wall clocks and CPU meters around the phases of grade_one
    (CPU: this process and every descendant, so a phase's sandboxes count in it)."""
    from autograder import execute, worker
    from autograder.course import Course

    phases = ("notebook_run", "verdict")
    spent = {}
    real_run, real_verdict = execute.SandboxedExecute._run, execute.trusted_verdict

    def timed(phase, real):
        def call(*args, **kwargs):
            wall, cpu = time.monotonic(), meter.seconds()
            try:
                return real(*args, **kwargs)
            finally:
                spent[phase] += time.monotonic() - wall
                spent[phase + "_cpu"] += meter.seconds() - cpu
        return call

    execute.SandboxedExecute._run = timed("notebook_run", real_run)
    execute.trusted_verdict = timed("verdict", real_verdict)
    course = Course(cfg)
    per_day = {}
    try:
        for day in days:
            spent.update({key: 0.0 for phase in phases for key in (phase, phase + "_cpu")})
            wall, cpu = time.monotonic(), meter.seconds()
            status = worker.grade_one(course, day, "student00")
            total, total_cpu = time.monotonic() - wall, meter.seconds() - cpu
            per_day[day] = {"total": round(total, 2), "total_cpu": round(total_cpu, 2), "state": status.get("state"),
                            "bookkeeping": round(total - sum(spent[phase] for phase in phases), 2),
                            "bookkeeping_cpu": round(total_cpu - sum(spent[p + "_cpu"] for p in phases), 2),
                            **{key: round(value, 2) for key, value in spent.items()}}
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
    p.add_argument("--repeats", type=int, default=1, help="grade (and run plainly) this many times per worker count")
    p.add_argument("--no-breakdown", action="store_true")
    p.add_argument("--no-plain", action="store_true", help="skip the plain run (the ratio's yardstick)")
    p.add_argument("--breakdown-only", action="store_true", help="no throughput or plain run: the breakdown alone")
    p.add_argument("--compare-preimported", action="store_true",
                   help="grade each time twice, with c.Autograder.preimported off, then on (the zygote), each against "
                        "the same plain run")
    a = p.parse_args(argv)
    solutions = os.path.join(REPO, "solutions")
    days = a.days.split(",") if a.days else sorted(d for d in os.listdir(solutions)
                                                 if os.path.isdir(os.path.join(solutions, d)) and d[0].isdigit())
    out = a.out or tempfile.mkdtemp(prefix="grading-bench-")
    os.makedirs(out, exist_ok=True)
    cfg = setup(out, days, a.students, a.uid_base)
    meter = CpuMeter()
    counts = [] if a.breakdown_only else sorted({os.cpu_count() or 1 if w == "all" else int(w)
                                                 for w in a.workers.split(",")})
    results = {"days": days, "students": a.students, "cpus": os.cpu_count(), "load_before": os.getloadavg(),
               "throughput": [], "breakdown": None, "cpu_meter": meter.kind}
    variants = [(cfg, None)]
    if a.compare_preimported:  # the same course and submissions, graded without the zygote first
        fresh_cfg = os.path.join(out, "nbgrader_config_fresh.py")
        with open(fresh_cfg, "w") as f:
            f.write(f"c = get_config()  # noqa: F821\nload_subconfig({cfg!r})  # noqa: F821\n"
                    "c.Autograder.preimported = False\n")
        variants = [(fresh_cfg, False), (cfg, True)]
    for w in counts:
        for repeat in range(a.repeats):
            graded = []
            for variant_cfg, zygote in variants:
                load = os.getloadavg()[0]
                r = throughput(variant_cfg, w, a.students, meter)
                r.update(repeat=repeat, load_before=round(load, 2), preimported=zygote)
                results["throughput"].append(r)
                graded.append(r)
                print(f"{w} worker(s){'' if zygote is None else ', preimported ' + ('on' if zygote else 'off')}: "
                      f"{r['wall_s']} s for {a.students} students x {len(days)} days = "
                      f"{r['s_per_student']} s per student, {r['cpu_s_per_student']} CPU s per student"
                      + (f"  NOT OK: {r['not_ok']}" if r["not_ok"] else ""), flush=True)
            if not a.no_plain:
                plain = yardstick(out, days, w, a.students, meter)
                for r in graded:
                    which = {None: "", False: " (preimported off)", True: " (preimported on)"}[r["preimported"]]
                    r["plain"] = plain
                    r["ratio_cpu"] = round(r["cpu_s"] / plain["cpu_s"], 2)
                    r["ratio_wall"] = round(r["wall_s"] / plain["wall_s"], 2)
                    r["load_after"] = round(os.getloadavg()[0], 2)
                    print(f"  plain run, {w} worker(s): {plain['wall_s']} s wall, {plain['cpu_s_per_student']} CPU s "
                          f"per student; grading{which} / plain: "
                          f"{r['ratio_cpu']}x CPU, {r['ratio_wall']}x wall (load {r['load_before']} -> "
                          f"{r['load_after']})", flush=True)
    if not a.no_breakdown:
        results["breakdown"] = breakdown(cfg, days, meter)
        print(f"{'day':24s} {'total':>8s} {'run':>8s} {'verdict':>8s} {'nbgrader':>8s}   (wall s / CPU s)")
        for day, b in results["breakdown"].items():
            print(f"{day:24s} " + " ".join(f"{b.get(key, 0):8.2f}/{b.get(key + '_cpu', 0):<6.2f}"
                                          for key in ("total", "notebook_run", "verdict", "bookkeeping")))
    meter.close()
    results["load_after"] = os.getloadavg()
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    kept = record.save("grading", results)
    print(f"results in {os.path.join(out, 'results.json')} and {kept} (load average before "
          f"{results['load_before'][0]:.1f}, after {results['load_after'][0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
