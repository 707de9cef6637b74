"""Sample a copy at the limit with py-spy (the kvmigrate child and the emulator process) and say where time goes.

py-spy samples another process from outside (no instrumentation overhead inside it), including the emulator, which
runs in its own process. Its ``raw`` output is one collapsed stack per line (``frame;frame;... count``). Each sample
goes to an *owner*: the innermost frame that belongs to a known package (our code, the Azure SDK, aiohttp...), so
time in ``json`` or ``netrc`` called by aiohttp counts as aiohttp's; samples that only ever touch the standard
library count as the event loop, TLS or start-up.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RATE = 100  # samples per second
IDLE_OWNER = "idle (epoll wait, idle pool threads)"

#: Path fragments → owner, most specific first. The emulator's own code is told apart from the product's.
OWNERS: tuple[tuple[str, str], ...] = (
    ("/kvmigrate/emulator/", "emulator code"),
    ("/kvmigrate/journal.py", "kvmigrate: journal (SQLite)"),
    ("/kvmigrate/ratelimit.py", "kvmigrate: rate limiter"),
    ("/kvmigrate/", "kvmigrate: other"),
    ("/aiolimiter/", "kvmigrate: rate limiter"),
    ("/azure/identity/", "Azure SDK (identity)"),
    ("/azure/keyvault/", "Azure SDK (keyvault)"),
    ("/azure/core/", "Azure SDK (azure-core)"),
    ("/aiohttp/", "aiohttp"),
    ("/yarl/", "aiohttp"),
    ("/multidict/", "aiohttp"),
    ("/cryptography/", "cryptography"),
    ("/click/", "CLI (click/rich)"),
    ("/rich/", "CLI (click/rich)"),
    ("/pydantic", "pydantic"),
)
#: Frames that only start the program: they never own a sample (the loop they run does).
ENTRY = ("/kvmigrate/cli.py", "/kvmigrate/__main__.py", "/kvmigrate/emulator/runner.py", "/click/", "runpy")
STDLIB_OWNERS: tuple[tuple[str, str], ...] = (
    ("/ssl.py", "TLS (ssl, asyncio.sslproto)"),
    ("/asyncio/sslproto.py", "TLS (ssl, asyncio.sslproto)"),
    ("/asyncio/", "event loop (asyncio)"),
    ("/concurrent/futures/", "thread pool (submit/hand-off)"),
    ("/threading.py", "thread pool (submit/hand-off)"),
)
#: Leaves where a thread waits rather than computes (py-spy without --idle still reports some of them).
IDLE = ("EpollSelector.select (", "_worker (", "Condition.wait (", "Event.wait (")


def short(frame: str) -> str:
    """``func (/long/site-packages/pkg/mod.py:12)`` → ``func (pkg/mod.py:12)`` for display."""
    start = frame.rfind("(")
    if start < 0:
        return frame
    path = frame[start + 1 :]
    for marker in ("site-packages/", "/lib/python3.11/", "/work/main/", "/lib/python3.12/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{frame[:start]}({path}"


def frame_file(frame: str) -> str:
    """``func (path/file.py:12)`` → ``path/file.py``."""
    start = frame.rfind("(")
    return frame[start + 1 :].rsplit(":", 1)[0] if start >= 0 else ""


def owner_of(frames: list[str]) -> str:
    """Who a sample's time belongs to: start-up, waiting, or the innermost frame of a known package."""
    if any("_find_and_load" in frame for frame in frames):
        return "start-up (imports)"
    if frames and frames[-1].startswith(IDLE):
        return IDLE_OWNER
    for frame in reversed(frames):
        path = frame_file(frame)
        if any(fragment in path for fragment in ENTRY):
            continue
        for fragment, owner in OWNERS:
            if fragment in path:
                return owner
    leaf = frame_file(frames[-1]) if frames else ""
    for fragment, owner in STDLIB_OWNERS:
        if fragment in leaf:
            return owner
    return "other (stdlib)"


@dataclass
class ProfileSummary:
    """Samples by owner, the hottest functions by self time, and our functions by inclusive time."""

    samples: int = 0
    seconds: float = 0.0
    owners: Counter[str] = field(default_factory=Counter)
    self_time: Counter[str] = field(default_factory=Counter)
    inclusive_ours: Counter[str] = field(default_factory=Counter)
    in_threads: int = 0

    def as_dict(self, top: int = 12) -> dict[str, Any]:
        """Shares are of the busy samples (idle ones are reported apart)."""
        idle = self.owners.get(IDLE_OWNER, 0)
        busy = self.samples - idle

        def share(count: int) -> dict[str, float]:
            return {"seconds": round(count / RATE, 2), "share": round(count / busy, 4) if busy else 0}

        return {
            "samples": self.samples,
            "sampled_seconds": round(self.samples / RATE, 2),
            "busy_seconds": round(busy / RATE, 2),
            "idle_seconds": round(idle / RATE, 2),
            "in_worker_threads": share(self.in_threads),
            "by_owner": {k: share(v) for k, v in self.owners.most_common() if k != IDLE_OWNER},
            "top_self": [
                {"function": k, **share(v)} for k, v in self.self_time.most_common(top + 3) if not k.startswith(IDLE)
            ][:top],
            "top_inclusive_kvmigrate": [{"function": k, **share(v)} for k, v in self.inclusive_ours.most_common(top)],
        }


def summarise(raw: Path) -> ProfileSummary:
    summary = ProfileSummary()
    if not raw.exists():
        return summary
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        summary.samples += count
        summary.owners[owner_of(frames)] += count
        summary.self_time[short(frames[-1])] += count
        if any("/threading.py" in frame_file(frame) for frame in frames[:3]) and not frames[-1].startswith(IDLE):
            summary.in_threads += count
        seen: set[str] = set()
        for frame in frames:
            path = frame_file(frame)
            if "/kvmigrate/" in path and "/kvmigrate/emulator/" not in path and not any(e in path for e in ENTRY):
                name = f"{frame.split(' (')[0]} ({path.rsplit('/kvmigrate/', 1)[1]})"
                if name not in seen:
                    seen.add(name)
                    summary.inclusive_ours[name] += count
    summary.seconds = summary.samples / RATE
    return summary


def py_spy() -> str | None:
    """The py-spy binary next to this interpreter, or on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Recorder:
    """``py-spy record --pid PID``: started after the target, stopped by the target's exit or by ``stop()``."""

    def __init__(self, binary: str, pid: int, output: Path) -> None:
        self.output = output
        self.log = output.with_suffix(".log")
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    "record",
                    "--pid",
                    str(pid),
                    "--format",
                    "raw",
                    "--rate",
                    str(RATE),
                    "--nonblocking",
                    "--full-filenames",
                    "--output",
                    str(output),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def stop(self, timeout: float = 60.0) -> None:
        """SIGINT makes py-spy write its output and exit; SIGKILL if it does not within ``timeout``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
