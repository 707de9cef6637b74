"""Run one benchmark child process and measure it: wall time, peak RSS and CPU of exactly that child.

The child is started through ``benchmarks/launch.py``, a small interpreter that reaps it with ``os.wait4`` and
reports that one child's usage: RUSAGE_CHILDREN would mix every child of the driver, and a child spawned straight
from the driver would inherit the driver's RSS high-water mark (see launch.py). The driver's wait is bounded: a
child that outlives its timeout is killed with its launcher and the run is reported as timed out.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


class ChildTimeout(RuntimeError):
    """A benchmark child ran past its time budget and was killed."""


@dataclass
class ChildResult:
    """What one child did: exit code, wall seconds, peak RSS (MB), user+system CPU seconds, its output files."""

    command: list[str]
    returncode: int  # the command's exit code (not the launcher's)
    wall_seconds: float
    peak_rss_mb: float
    cpu_seconds: float
    stdout_path: Path
    stderr_path: Path
    pid: int

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


class Child:
    """A started child (behind its launcher); ``wait()`` reaps it. Output goes to files (no pipe can fill up)."""

    def __init__(
        self, command: list[str], *, env: dict[str, str], workdir: Path, label: str, cwd: Path | None = None
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.command = command
        self.stdout_path = workdir / f"{label}.out"
        self.stderr_path = workdir / f"{label}.err"
        self.result_path = workdir / f"{label}.usage.json"
        for stale in (self.result_path, Path(f"{self.result_path}.pid")):
            stale.unlink(missing_ok=True)
        launcher = [sys.executable, "-m", "benchmarks.launch", str(self.result_path), "--", *command]
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.started = time.monotonic()
            # The launcher imports benchmarks/: run it from the repository root, whatever cwd the command wants.
            self.process = subprocess.Popen(
                launcher,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=cwd or REPO,
                start_new_session=True,
            )

    def command_pid(self, timeout: float = 10.0) -> int:
        """The pid of the command itself (for py-spy), once the launcher has started it."""
        pid_file = Path(f"{self.result_path}.pid")
        deadline = time.monotonic() + timeout
        while not pid_file.exists() or not pid_file.read_text().strip():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise ChildTimeout(f"the launcher did not start {self.command[:3]} within {timeout:.0f} s")
            time.sleep(0.01)
        return int(pid_file.read_text())

    def wait(self, timeout: float) -> ChildResult:
        """Reap the launcher (polling, so the wait is bounded by ``timeout``) and return the command's usage."""
        deadline = self.started + timeout
        delay = 0.005
        while True:
            pid, status, usage = os.wait4(self.process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                os.killpg(self.process.pid, signal.SIGKILL)  # the launcher and the command share the group
                os.wait4(self.process.pid, 0)
                self.process.returncode = -9
                raise ChildTimeout(f"{' '.join(self.command[:6])} ... ran longer than {timeout:.0f} s; killed")
            time.sleep(delay)
            delay = min(0.05, delay * 1.5)
        self.process.returncode = os.waitstatus_to_exitcode(status)  # reaped here; Popen must not wait again
        try:
            report = json.loads(self.result_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ChildTimeout(
                f"the launcher of {self.command[:3]} exited {self.process.returncode} without a "
                f"report; see {self.stderr_path}"
            ) from exc
        return ChildResult(
            self.command,
            int(report["returncode"]),
            float(report["wall_seconds"]),
            report["maxrss_kb"] / 1024,
            float(report["cpu_seconds"]),
            self.stdout_path,
            self.stderr_path,
            int(report["pid"]),
        )


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy (not idle or iowait) since boot, from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU seconds of this (driver) process so far."""
    times = os.times()
    return times.user + times.system


def run_child(
    command: list[str], *, env: dict[str, str], workdir: Path, label: str, timeout: float, cwd: Path | None = None
) -> ChildResult:
    """Start ``command``, wait for it (bounded) and measure it."""
    return Child(command, env=env, workdir=workdir, label=label, cwd=cwd).wait(timeout)
