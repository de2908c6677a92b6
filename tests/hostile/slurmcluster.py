"""A throwaway one-node Slurm cluster for tests: munged, slurmctld and slurmd of Debian's slurm-wlm on localhost.

Everything lives in a temp folder: the munge key and socket, slurm.conf (free ports, the node declared with
8 CPUs and 64 GB so the doc's `--cpus-per-task=4 --mem=16G` tasks fit on a small machine:
SlurmdParameters=config_overrides), state, spool and logs. The daemons run in the foreground as children of
the test (as root: slurmd must start jobs as their submitter) and `stop()` cancels every job and stops them.
Client commands find the cluster through SLURM_CONF (`env`).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "sinfo")


def problem() -> str | None:
    """Why no cluster can be started here, or None."""
    if os.geteuid() != 0:
        return "needs root (slurmd starts jobs as their user; ./run test as root installs slurm-wlm and munge)"
    missing = [p for p in DAEMONS + CLIENTS if not shutil.which(p) and not os.path.exists(f"/usr/sbin/{p}")]
    if missing:
        return f"{', '.join(missing)} missing (apt-get install slurm-wlm munge; ./run test does it as root)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _exe(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


CONF = """ClusterName=agtest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={dir}/munge.socket
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
KillWait=5
NodeName={host} NodeAddr=127.0.0.1 CPUs=8 RealMemory=64000 State=UNKNOWN
PartitionName=agtest Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


class Cluster:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="agslurm-")
        os.chmod(self.dir, 0o755)
        for sub in ("state", "spool"):
            os.makedirs(os.path.join(self.dir, sub))
        self.conf = os.path.join(self.dir, "slurm.conf")
        self.host = socket.gethostname().split(".")[0]
        with open(self.conf, "w") as f:
            f.write(CONF.format(host=self.host, dir=self.dir, ctld_port=_free_port(), slurmd_port=_free_port()))
        self.env = {**os.environ, "SLURM_CONF": self.conf}
        self.procs: list[subprocess.Popen] = []
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _spawn(self, cmd: list[str], log: str) -> subprocess.Popen:
        out = open(os.path.join(self.dir, log), "ab")
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=self.dir)
        self.procs.append(p)
        return p

    def _start(self) -> None:
        key = os.path.join(self.dir, "munge.key")
        with open(key, "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o400)
        d = self.dir
        self._spawn([_exe("munged"), "--foreground", "--force", f"--socket={d}/munge.socket", f"--key-file={key}",
                     f"--pid-file={d}/munged.pid", f"--log-file={d}/munged.log", f"--seed-file={d}/munged.seed"],
                    "munged.out")
        self._wait(lambda: os.path.exists(f"{d}/munge.socket"), 30, "munged's socket")
        self._spawn([_exe("slurmctld"), "-D", "-i", "-f", self.conf], "slurmctld.out")
        self._spawn([_exe("slurmd"), "-D", "-f", self.conf, "-N", self.host], "slurmd.out")
        self._wait(self._node_idle, 90, "the node to come up idle")

    def _node_idle(self) -> bool:
        r = self.run("sinfo", "-h", "-N", "-o", "%T", check=False)
        return r.returncode == 0 and r.stdout.strip() in ("idle", "mixed", "allocated")

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [p for p in self.procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{dead[0].args[0]} exited ({dead[0].returncode}) while waiting for {what}:\n"
                                   + self.logs())
            if ready():
                return
            time.sleep(0.5)
        raise RuntimeError(f"timed out waiting for {what}:\n" + self.logs())

    def logs(self) -> str:
        out = []
        for name in sorted(os.listdir(self.dir)):
            if name.endswith((".log", ".out")):
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    out.append(f"--- {name}\n" + f.read()[-3000:])
        return "\n".join(out)

    def run(self, *cmd: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
        r = subprocess.run([_exe(cmd[0]), *cmd[1:]], capture_output=True, text=True, env=kw.pop("env", self.env),
                           timeout=120, **kw)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stdout}{r.stderr}")
        return r

    def jobs(self) -> list[str]:
        """'jobid state' lines of every job the cluster still knows as pending or running."""
        r = self.run("squeue", "-h", "-r", "-o", "%i %T", check=False)
        return [line for line in r.stdout.splitlines() if line.strip()]

    def wait_idle(self, timeout: float) -> None:
        self._wait(lambda: not self.jobs(), timeout, "every job to end")

    def stop(self) -> None:
        """Cancel every job, wait for them to end, stop the daemons (slurmd first), remove the folder."""
        try:
            if len(self.procs) == 3 and all(p.poll() is None for p in self.procs):
                self.run("scancel", "--full", "-u", "root", check=False)
                try:
                    self.wait_idle(60)
                except RuntimeError:
                    pass
        finally:
            for p in reversed(self.procs):
                if p.poll() is None:
                    p.terminate()
                    try:
                        p.wait(20)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait(10)
            shutil.rmtree(self.dir, ignore_errors=True)
