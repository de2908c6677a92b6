"""`SandboxedExecute`: the nbgrader preprocessor that replaces `Execute` in autograding.

nbgrader still sanitizes (restores locked cells from the gradebook) and saves the grades;
only the execution moves into the sandbox. Hidden tests never meet student code: the sandboxed
run (whose outputs become the feedback and the autograded notebook) gets the test cells without
their hidden blocks, and the hidden tests' points come from the trusted verdict instead (the
student's functions called on the grader's cases in another sandbox whose output is discarded
except the signed answer). After the run, on the trusted side: stderr in test cells becomes
stdout (warnings cost nothing), the static scan runs, a test cell keeps its points only if its
visible part passed AND the verdict of every exercise governing it passed (else the verdict's
message, written here, is its last output), and a status file records every flag and its reason.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import sys
from concurrent.futures import Future, ThreadPoolExecutor

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Int, Unicode

from .feedback_safety.hidden_tests import has_hidden_tests, strip_hidden_tests
from .feedback_safety.hidden_values import withhold_values
from .inside.cells import is_test_cell
from .sandbox import Sandbox, SandboxUnavailable
from .scan import scan
from .settings import Autograder
from .status import NotebookStatus
from .status import save as save_status
from .verdict import derive_seed, load_registry, load_secret, trusted_verdict


def has_error(cell) -> bool:
    return any(out.output_type == "error" or (out.output_type == "stream" and out.get("name") == "stderr")
               for out in cell.get("outputs", []))


FORGED = "forged result channel: an answer not signed by the trusted runner was rejected, no points from it"


def error_output(ename: str, evalue: str):
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def stderr_to_stdout(cell) -> bool:
    """Turn stderr streams into stdout (kept visible, no longer zeroing the cell)."""
    changed = False
    for out in cell.get("outputs", []):
        if out.output_type == "stream" and out.get("name") == "stderr":
            out["name"] = "stdout"
            out["text"] = "".join(f"[stderr] {line}" for line in out["text"].splitlines(keepends=True))
            changed = True
    return changed


class _Deferred:
    """A call made when its result is first asked for (the verdict after the notebook run, one at a time)."""

    def __init__(self, call):
        self.call = call

    def result(self):
        return self.call()


class SandboxedExecute(NbGraderPreprocessor):
    """Execute the notebook in the bubblewrap sandbox, then apply the trusted verdict."""

    slot = Int(0, help="worker slot (picks the sandbox uid)").tag(config=True)
    unsafe = Bool(False, help="run without bubblewrap (--unsafe-no-sandbox)").tag(config=True)
    status_dir = Unicode("", help="where to write <notebook>.json status files").tag(config=True)
    release_dir = Unicode("", help="the released assignment folder (support files come from here)").tag(config=True)
    secret_file = Unicode("").tag(config=True)

    def preprocess(self, nb, resources):
        settings = Autograder(config=self.config)
        info = resources["nbgrader"]
        student, assignment, notebook = info["student"], info["assignment"], info["notebook"]
        status = NotebookStatus(notebook=notebook, flags=[], notes=[], sandboxed=not self.unsafe)
        secret = load_secret(self.secret_file)
        run_seed = derive_seed(secret, assignment, student, notebook, "run")
        try:
            sandbox = Sandbox(settings, slot=self.slot, unsafe=self.unsafe)
        except SandboxUnavailable as e:
            raise RuntimeError(str(e)) from e
        if self.unsafe:
            status["flags"].append("graded WITHOUT the sandbox (--unsafe-no-sandbox)")

        hidden_in = {c.metadata.nbgrader.get("grade_id") for c in nb.cells
                     if is_test_cell(c) and has_hidden_tests(c.source)}
        for extra in settings.python_paths:
            if extra not in sys.path:
                sys.path.insert(0, extra)
        registry, registry_problem = load_registry(settings.registry, notebook)
        tests = {c.metadata.nbgrader.get("grade_id"): c for c in nb.cells if is_test_cell(c)}
        exercises = [ex for ex in registry.values() if set(ex.grade_ids) & set(tests)]
        seeds = {ex.name: derive_seed(secret, assignment, student, notebook, ex.name) for ex in exercises}
        seeds["__run__"] = run_seed
        with ThreadPoolExecutor(max_workers=1) as pool:  # the verdict's sandbox runs while the notebook's does
            pending = self._start_verdict(pool, nb, exercises, seeds, sandbox, settings)
            self._run(nb, notebook, sandbox, settings, run_seed, status)
            verdicts = pending.result() if pending else {}
        for cell in nb.cells:
            if is_test_cell(cell) and stderr_to_stdout(cell):
                status["notes"].append(f"{cell.metadata.nbgrader.get('grade_id')}: stderr output kept as text "
                                       "(no penalty)")

        forbidden = {}
        for ex in exercises:
            for banned in ex.forbidden:
                mod, name = getattr(banned, "__module__", None), getattr(banned, "__name__", None)
                if mod and name:
                    forbidden[f"{mod}.{name}"] = f"{ex.name} refers to a reference it must not call"
        given = set()
        release_nb = os.path.join(self.release_dir, f"{notebook}.ipynb")
        if os.path.exists(release_nb):
            given = {c.source for c in nbformat.read(release_nb, as_version=4).cells if c.cell_type == "code"}
        student_sources = [c.source for c in nb.cells if c.cell_type == "code"
                           and not c.metadata.get("nbgrader", {}).get("locked") and c.source not in given]
        for finding in scan(student_sources, forbidden, exercises, self.config):
            status["flags"].append(f"static scan: {finding}")

        status["verdict"] = verdicts
        if registry_problem:
            status["flags" if "could not be loaded" in registry_problem else "notes"].append(
                f"no trusted verdict: {registry_problem}")
        if any(verdict.get("forged") for verdict in verdicts.values()):
            status["flags"].append(f"{FORGED} (run_verdict.py)")
        for gid, cell in tests.items():
            governing = [ex.name for ex in exercises if gid in ex.grade_ids]
            self._apply(cell, gid, governing, verdicts, gid in hidden_in, status)
        path = os.path.join(self.status_dir, f"{notebook}.json")
        save_status(path, status)
        return nb, resources

    def _run(self, nb, notebook, sandbox, settings, seed, status) -> None:
        scratch = sandbox.new_scratch()
        try:
            work = os.path.join(scratch, "work")
            if self.release_dir and os.path.isdir(self.release_dir):  # support files of the release only
                for name in os.listdir(self.release_dir):
                    src = os.path.join(self.release_dir, name)
                    if not name.endswith(".ipynb") and not name.startswith("."):
                        (shutil.copytree if os.path.isdir(src) else shutil.copy2)(src, os.path.join(work, name))
            clean = nbformat.from_dict(json.loads(nbformat.writes(nb)))
            for cell in clean.cells:
                if cell.cell_type == "code":
                    cell.outputs, cell.execution_count = [], None
                if is_test_cell(cell):  # hidden blocks never enter the sandbox: their points come from the verdict
                    cell.source = strip_hidden_tests(cell.source)
            mount = scratch if self.unsafe else "/sandbox"
            nbformat.write(clean, os.path.join(work, f"{notebook}.ipynb"))
            job = {"notebook": f"{mount}/work/{notebook}.ipynb", "workdir": f"{mount}/work", "ipc_dir": f"{mount}/ipc",
                   "cell_timeout": settings.cell_timeout, "seed": seed, "max_output_chars": settings.max_output_chars}
            with open(os.path.join(scratch, "job.json"), "w") as job_file:
                json.dump(job, job_file)
            run = sandbox.run("run_notebook.py", [f"{mount}/job.json"], scratch, None, settings.notebook_timeout)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        status["run"] = {"seconds": run.seconds, "rc": run.rc, "timed_out": run.timed_out, "forged": run.forged}
        if run.forged:
            status["flags"].append(f"{FORGED} (run_notebook.py)")
        try:
            answer = json.loads(run.payload.decode())
            executed = nbformat.reads(answer["notebook"], as_version=4)
            run_info = answer["info"]
            if len(executed.cells) != len(nb.cells):
                raise ValueError("the executed notebook has a different number of cells")
        except Exception as error:  # noqa: BLE001
            why = (f"the notebook run ran past {settings.notebook_timeout} s" if run.timed_out
                   else f"the notebook run failed ({type(error).__name__}; exit {run.rc})")
            status["flags"].append(f"{why}: no cell output, every test cell scored 0")
            for cell in nb.cells:
                if cell.cell_type == "code":
                    cell.outputs = [error_output("SandboxError", why)]
            return
        for cell, done in zip(nb.cells, executed.cells):  # outputs only; sources stay the trusted ones
            if cell.cell_type == "code":
                cell.outputs = done.get("outputs", [])
                cell.execution_count = done.get("execution_count")
        status["run"].update(run_info)
        for event in run_info.get("events", []):
            msg = {"timeout": "cell {cell} timed out",
                   "kernel-killed": "kernel stopped after cell {cell} ignored the interrupt",
                   "kernel-died": "kernel died in cell {cell}; later cells not run",
                   "output-truncated": "cell {cell} output truncated",
                   "error": "cell {cell}: runner error",
                   "unseen-error": "cell {cell}: the kernel reported an error that showed no output; counted as "
                                   "failed"}.get(event["event"], event["event"])
            status["notes"].append(msg.format(cell=event.get("cell")))
        if run_info.get("dead"):
            status["flags"].append(f"kernel died: {run_info['dead']} (cells before it keep their credit)")

    def _start_verdict(self, pool: ThreadPoolExecutor, nb, exercises: list, seeds: dict, sandbox: Sandbox,
                       settings: Autograder) -> Future | _Deferred | None:
        """The trusted verdict, started in `pool` on a copy of the notebook's trusted sources (the notebook run
        writes outputs into `nb` meanwhile), in a sandbox of its own lane (its own uid as root; nothing shared with
        the notebook run's, which is running at the same time); run after the notebook when
        `concurrent_verdict` is off. None when no exercise governs this notebook."""
        if not exercises:
            return None
        sources = copy.deepcopy(nb)
        for cell in sources.cells:
            if cell.cell_type == "code":
                cell.outputs = []
        if not settings.concurrent_verdict:  # the verdict runs when its result is asked for, after the run
            return _Deferred(lambda: trusted_verdict(sources, exercises, seeds, sandbox, settings))
        verdict_sandbox = Sandbox(settings, slot=self.slot, unsafe=self.unsafe, lane=1)
        return pool.submit(trusted_verdict, sources, exercises, seeds, verdict_sandbox, settings)

    @staticmethod
    def _apply(cell, gid: str, governing: list[str], verdicts: dict, had_hidden: bool, status) -> None:
        """Points only if the visible part passed AND every governing verdict passed; a failed verdict's
        message (trusted) becomes the cell's last output, which makes nbgrader score it 0."""
        passed = not has_error(cell)
        if not governing:
            if had_hidden:  # never run beside student code, and nothing else checks them: an instructor decides
                cell.outputs.append(error_output("HiddenTestsNotRun", "this cell's hidden tests have no trusted check: "
                                                 "an instructor grades it"))
                status["flags"].append(f"{gid}: its hidden tests have no trusted check in the registry: "
                                       "0 points; review")
            return
        for name in governing:
            verdict = verdicts.get(name) or {"status": "unavailable", "detail": "no verdict",
                                             "message": "the trusted check did not run"}
            if verdict["status"] == "pass":
                if not passed:
                    status["flags"].append(f"{gid}: the trusted check of {name} passed but the visible test failed; "
                                           "both must pass (0 points); review")
                continue
            shown = withhold_values(verdict.get("message") or "failed")  # the student reads no hidden value
            cell.outputs.append(error_output("TrustedCheckFailed", f"{name}: {shown}"))
            if verdict.get("forbidden"):
                status["flags"].append(f"{gid}: the trusted check of {name} caught a forbidden call "
                                       f"({verdict['detail']}); 0 points")
            elif passed and verdict["status"] in ("fail", "error"):
                status["flags"].append(f"{gid}: visible test passed but the trusted check of {name} failed "
                                       f"({verdict['detail']}); 0 points")
            elif passed:
                status["flags"].append(f"{gid}: the trusted check of {name} could not confirm the pass "
                                       f"({verdict['status']}: {verdict['detail']}); 0 points; review")
            passed = False
