"""The autograder's own settings, read from the same nbgrader config file (`c.Autograder.*`)."""

from __future__ import annotations

import os

from traitlets import Bool, Dict, Int, List, Unicode
from traitlets.config import Configurable, PyFileConfigLoader

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CONFIG = os.path.join(HERE, "nbgrader_config.py")


class Autograder(Configurable):
    """Limits of the sandbox and knobs of the trusted verdict."""

    cell_timeout = Int(120, help="seconds one notebook cell may run").tag(config=True)
    notebook_timeout = Int(1200, help="wall-clock seconds for a whole notebook run").tag(config=True)
    verdict_timeout = Int(300, help="wall-clock seconds for the trusted-verdict run").tag(config=True)
    call_timeout = Int(30, help="seconds one call of a student function may take in the verdict run").tag(config=True)
    memory_mb = Int(4096, help="address-space limit (RLIMIT_AS) per sandboxed process").tag(config=True)
    cpu_seconds = Int(1800, help="CPU-time limit (RLIMIT_CPU) per sandboxed process").tag(config=True)
    max_processes = Int(64, help="processes the sandbox user may own (RLIMIT_NPROC)").tag(config=True)
    max_open_files = Int(256, help="RLIMIT_NOFILE").tag(config=True)
    max_file_mb = Int(64, help="largest file the sandbox may write (RLIMIT_FSIZE)").tag(config=True)
    max_output_chars = Int(200_000, help="notebook output kept per cell; the rest is dropped").tag(config=True)
    registry = Unicode("gptref.grading.exercises:load",
                       help="module:function giving day -> {name: Exercise}").tag(config=True)
    python_paths = List(Unicode(),
                        help="extra folders bound read-only into the sandbox and put on PYTHONPATH").tag(config=True)
    secret_file = Unicode("", help="instructor secret for case seeds (default: WORK/secret, created on first use)"
                          ).tag(config=True)
    sandbox_uid_base = Int(61000, help="when run as root: first uid/gid of the machine-wide pool sandboxes lease from"
                           ).tag(config=True)
    sandbox_uid_count = Int(64, help="size of the uid pool (leases are flock'ed files, shared by every course on the "
                            "machine)").tag(config=True)
    uid_lease_dir = Unicode("/run/autograder-uids",
                            help="where the uid leases live (machine-wide; used only as root)").tag(config=True)
    disk_mb = Int(512,
                  help="total writable space of one sandbox (a size-limited tmpfs; ENOSPC past it)").tag(config=True)
    concurrent_verdict = Bool(True, help="run the trusted verdict's sandbox while the notebook's runs (less wall time; "
                              "both sandboxes' memory at once); False: one after the other").tag(config=True)
    preimported = Bool(True, help="as root: fork each sandboxed run from a zygote that imported torch and the "
                       "notebook libraries once, into the namespaces bubblewrap made for it "
                       "(autograder/inside/zygote.py); False: a fresh interpreter per run").tag(config=True)
    retries = Int(2, help="times a worker that crashed (not the student's fault) is retried").tag(config=True)
    env = Dict(help="extra environment variables for the sandboxed kernel").tag(config=True)
    extra_ro_binds = List(Unicode(), help="extra host paths visible read-only in the sandbox").tag(config=True)


def load_config(path: str | None = None):
    """The traitlets Config of an nbgrader config file (the course's by default)."""
    path = os.path.abspath(path or os.environ.get("AUTOGRADER_CONFIG", DEFAULT_CONFIG))
    if not os.path.exists(path):
        raise FileNotFoundError(f"config file not found: {path}")
    return PyFileConfigLoader(os.path.basename(path), path=os.path.dirname(path)).load_config()
