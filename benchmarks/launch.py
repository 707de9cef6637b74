"""Start one command and report its own resource usage, untouched by the benchmark driver's memory.

``python -m benchmarks.launch RESULT -- COMMAND...``. Linux folds the parent's RSS high-water mark into a child's
``ru_maxrss`` when the child execs (the old address space's peak is kept), so a child spawned straight from the
driver, whose RSS grows while it seeds vaults, would report at least the driver's peak. This launcher is a fresh
interpreter of about 10 MB: it starts COMMAND, writes its pid to ``RESULT.pid`` (for py-spy), reaps it with
``os.wait4`` and writes ``{"returncode", "maxrss_kb", "cpu_seconds", "wall_seconds"}`` to RESULT. It prints nothing:
COMMAND inherits its stdout and stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        print("usage: python -m benchmarks.launch RESULT -- COMMAND...", file=sys.stderr)
        return 2
    result, command = Path(sys.argv[1]), sys.argv[3:]
    started = time.monotonic()
    child = subprocess.Popen(command)
    Path(f"{result}.pid").write_text(str(child.pid), encoding="ascii")
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - started
    child.returncode = returncode = os.waitstatus_to_exitcode(status)
    result.write_text(
        json.dumps(
            {
                "returncode": returncode,
                "maxrss_kb": usage.ru_maxrss,
                "cpu_seconds": usage.ru_utime + usage.ru_stime,
                "wall_seconds": wall,
                "pid": child.pid,
            }
        ),
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
