"""Where one submission's grading time and CPU go, stage by stage, against a plain run of the same notebook.

    python benchmarks/grading_stages.py [--days 03_layernorm] [--repeats 3]

In a temp folder (as benchmarks/grading.py: release, one student handing in the honest solution):
  1. stages: the worker's `grade_one` in this process (a served worker, warmed by one grading first),
     wall and CPU seconds (cgroup: this process and every descendant, sandboxes included) around each
     stage: submission hash, pre-check and staging, nbgrader autograde (its sandboxed notebook run, the
     trusted verdict's cases, sandbox and judging, the static scan, the rest: sanitising, gradebook
     writes), feedback export, feedback audit, the status and gradebook reads. Stages are timed with
     c.Autograder.concurrent_verdict = False (a whole-tree CPU meter cannot split two sandboxes running at
     once); "grading_concurrent" is the same grading as configured (verdict beside the run), totals only;
  2. probes: the parts of a sandboxed run measured alone: bubblewrap running /bin/true, Python starting
     in the sandbox, the runner's imports, torch's import, an empty notebook's run (kernel start and stop),
     and the same probes unsandboxed;
  3. plain: the same notebook executed plainly (benchmarks/plain_run.py, one process).
Medians of --repeats runs; every run's figures are kept in the JSON (benchmarks/results/grading_stages-*.json).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "tests"), os.path.dirname(os.path.abspath(__file__))]

from cpu_meter import CpuMeter  # noqa: E402
from grading import setup  # noqa: E402
from plain_run import plain_run  # noqa: E402

from gptref.bench import record  # noqa: E402


class Stopwatch:
    """Wall and CPU seconds per named stage, summed over the calls made while one grading runs."""

    def __init__(self, meter: CpuMeter):
        self.meter, self.spent = meter, {}

    @contextlib.contextmanager
    def stage(self, name: str):
        wall, cpu = time.monotonic(), self.meter.seconds()
        try:
            yield
        finally:
            wall_s, cpu_s = self.spent.get(name, (0.0, 0.0))
            self.spent[name] = (wall_s + time.monotonic() - wall, cpu_s + self.meter.seconds() - cpu)

    def wrap(self, owner, attribute: str, name: str):
        """Replace owner.attribute by a timed call of it; returns a function that puts it back."""
        real = getattr(owner, attribute)

        def timed(*args, **kwargs):
            with self.stage(name):
                return real(*args, **kwargs)
        setattr(owner, attribute, timed)
        return lambda: setattr(owner, attribute, real)


def instrument(watch: Stopwatch) -> list:
    """Timers around the stages of grade_one (module attributes as the worker and execute look them up)."""
    from autograder import execute, verdict, worker
    from autograder.sandbox import Sandbox

    undo = [watch.wrap(worker, "submission_hash", "hash"), watch.wrap(worker, "_stage", "precheck_stage"),
            watch.wrap(worker, "_check_feedback", "feedback_audit"), watch.wrap(worker, "_gather", "status_gather"),
            watch.wrap(execute.SandboxedExecute, "_run", "notebook_sandbox_run"),
            watch.wrap(execute, "scan", "static_scan"), watch.wrap(execute, "load_registry", "registry"),
            watch.wrap(execute, "trusted_verdict", "verdict_total"), watch.wrap(verdict, "judge", "verdict_judge"),
            watch.wrap(verdict, "_calls", "verdict_cases")]
    real_run = Sandbox.run

    def run(self, script, *args, **kwargs):
        with watch.stage("verdict_sandbox_run" if script == "run_verdict.py" else "notebook_sandbox_only"):
            return real_run(self, script, *args, **kwargs)
    Sandbox.run = run
    undo.append(lambda: setattr(Sandbox, "run", real_run))
    from nbgrader.apps.api import NbGraderAPI
    undo += [watch.wrap(NbGraderAPI, "autograde", "nbgrader_autograde_total"),
             watch.wrap(NbGraderAPI, "generate_feedback", "feedback_export")]
    return undo


def sequential_config(cfg: str) -> str:
    """The benchmark's config with the verdict run after the notebook (for the per-stage CPU split)."""
    path = os.path.join(os.path.dirname(cfg), "nbgrader_config_sequential.py")
    with open(path, "w") as out:
        out.write(f"c = get_config()  # noqa: F821\nload_subconfig({cfg!r})  # noqa: F821\n"
                  "c.Autograder.concurrent_verdict = False\n")
    return path


def grade_total(cfg: str, day: str, meter: CpuMeter) -> dict:
    """One grading of student00's `day` as configured: wall and CPU seconds in all."""
    from autograder import worker
    from autograder.course import Course

    wall, cpu = time.monotonic(), meter.seconds()
    status = worker.grade_one(Course(cfg), day, "student00")
    return {"total": {"wall": round(time.monotonic() - wall, 2), "cpu": round(meter.seconds() - cpu, 2)},
            "state": status.get("state")}


def grade_stages(cfg: str, day: str, meter: CpuMeter) -> dict:
    """One grading of student00's `day`, in this process, with each stage's wall and CPU seconds."""
    from autograder import worker
    from autograder.course import Course

    watch = Stopwatch(meter)
    undo = instrument(watch)
    try:
        with watch.stage("total"):
            status = worker.grade_one(Course(cfg), day, "student00")
    finally:
        for put_back in undo:
            put_back()
    stages = {name: {"wall": round(wall, 2), "cpu": round(cpu, 2)} for name, (wall, cpu) in watch.spent.items()}
    inner = ("notebook_sandbox_run", "verdict_total", "static_scan", "registry")
    for key in ("wall", "cpu"):  # what autograde spends outside our preprocessor's runs: nbgrader itself
        stages.setdefault("nbgrader_own", {})[key] = round(
            stages["nbgrader_autograde_total"][key] - sum(stages.get(s, {}).get(key, 0) for s in inner), 2)
        stages.setdefault("verdict_rest", {})[key] = round(
            stages["verdict_total"][key] - sum(stages.get(s, {}).get(key, 0)
                                               for s in ("verdict_sandbox_run", "verdict_judge", "verdict_cases")), 2)
    stages["state"] = status.get("state")
    return stages


def probes(cfg: str, meter: CpuMeter) -> dict:
    """The pieces of a sandboxed run alone (sandboxed and not): wall and CPU seconds of each."""
    from autograder.course import Course
    from autograder.sandbox import INPUT_FD, Sandbox
    from autograder.settings import Autograder

    settings = Autograder(config=Course(cfg).config)
    sandbox = Sandbox(settings, slot=0)
    python = os.path.join(sys.prefix, "bin", "python")
    commands = {"true": ["/bin/true"], "python_start": [python, "-c", "pass"],
                "runner_imports": [python, "-c", "import sys; sys.modules['rfc3987_syntax'] = None; "
                                   "import nbformat, nbclient, jupyter_client.manager"],
                "ipykernel_import": [python, "-c", "import ipykernel.kernelapp, IPython"],
                "torch_import": [python, "-c", "import torch"]}
    out = {}
    for name, argv in commands.items():
        for where in ("sandboxed", "plain"):
            scratch = sandbox.new_scratch()
            try:
                if where == "sandboxed":
                    argv_run = sandbox._bwrap(scratch, argv)
                    sandbox.hand_over(scratch)  # as Sandbox.run: the scratch folder arrives as a tar stream on fd 5
                    tar_file = os.path.join(scratch, "..", os.path.basename(scratch) + ".tar")
                    subprocess.run(["tar", "-c", "-f", tar_file, "-C", scratch, "."], check=True)
                    read_end = os.open(tar_file, os.O_RDONLY)
                    os.unlink(tar_file)

                    def give_input(fd=read_end):
                        os.dup2(fd, INPUT_FD)
                    run = dict(pass_fds=(INPUT_FD,), preexec_fn=give_input)
                else:
                    argv_run, run, read_end = argv, {}, None
                wall, cpu = time.monotonic(), meter.seconds()
                done = subprocess.run(argv_run, capture_output=True, **run)
                out[f"{name}_{where}"] = {"wall": round(time.monotonic() - wall, 2),
                                          "cpu": round(meter.seconds() - cpu, 2), "rc": done.returncode}
                if read_end is not None:
                    os.close(read_end)
            finally:
                import shutil

                shutil.rmtree(scratch, ignore_errors=True)
    from grading import kernel_start

    wall, cpu = time.monotonic(), meter.seconds()
    kernel_start(Course(cfg))
    out["empty_notebook_sandboxed"] = {"wall": round(time.monotonic() - wall, 2),
                                       "cpu": round(meter.seconds() - cpu, 2)}
    return out


def plain(out: str, day: str, meter: CpuMeter) -> dict:
    """The plain run of the same notebook: one process (started for it), one kernel, nbclient."""
    job = (os.path.join(REPO, "solutions", day, f"{day}.ipynb"), os.path.join(out, "release", day))
    result = plain_run([job], 1, meter.seconds)
    return {"wall": result["wall_s"], "cpu": result["cpu_s"]}


def median_of(runs: list[dict]) -> dict:
    """Per stage, the median wall and CPU seconds over the runs."""
    names = sorted({name for run in runs for name, value in run.items() if isinstance(value, dict)})
    return {name: {key: round(statistics.median(run[name][key] for run in runs if name in run), 2)
                   for key in ("wall", "cpu")} for name in names}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", default="03_layernorm")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-probes", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    days = args.days.split(",")
    out = args.out or tempfile.mkdtemp(prefix="grading-stages-")
    cfg = setup(out, days, 1, None)
    sequential = sequential_config(cfg)
    meter = CpuMeter()
    results = {"days": days, "repeats": args.repeats, "cpu_meter": meter.kind, "load_before": os.getloadavg(),
               "per_day": {}}
    for day in days:
        grade_stages(cfg, day, meter)  # warm-up: a served worker's imports and caches
        runs = {"grading": [], "grading_concurrent": [], "plain": [], "probes": []}
        for _ in range(args.repeats):
            runs["grading"].append(grade_stages(sequential, day, meter))
            runs["grading_concurrent"].append(grade_total(cfg, day, meter))
            runs["plain"].append({"plain_run": plain(out, day, meter)})
            if not args.no_probes:
                runs["probes"].append(probes(cfg, meter))
        summary = {part: median_of(values) for part, values in runs.items() if values}
        results["per_day"][day] = {"median": summary, "runs": runs}
        grading, plain_cpu = summary["grading"]["total"], summary["plain"]["plain_run"]
        together = summary["grading_concurrent"]["total"]
        print(f"{day}: grading {grading['wall']} s wall / {grading['cpu']} CPU s (verdict after the run), "
              f"{together['wall']} / {together['cpu']} (verdict beside it); plain {plain_cpu['wall']} / "
              f"{plain_cpu['cpu']}")
        for part in ("grading", "probes"):
            for name, value in summary.get(part, {}).items():
                print(f"  {part:8s} {name:28s} {value['wall']:7.2f} wall {value['cpu']:7.2f} CPU")
    meter.close()
    results["load_after"] = os.getloadavg()
    print(f"results in {record.save('grading_stages', results)} (load before {results['load_before'][0]:.1f}, "
          f"after {results['load_after'][0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
