"""Keep secret values out of core dumps: no core file, and no ptrace-readable memory, for this process.

Value mode and ``verify`` hold secret values in memory for as long as one object is in flight. With core dumps
allowed (``ulimit -c unlimited`` is common on developer machines) a crash would write them to disk in plain text,
so before the first secret is read the process sets ``RLIMIT_CORE`` to 0 and, on Linux, marks itself non-dumpable
(``prctl(PR_SET_DUMPABLE, 0)``), which also stops other processes of the same user from attaching a debugger.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)
_PR_SET_DUMPABLE = 4
_done = False


def disable_core_dumps() -> None:
    """Turn core dumps off for this process; idempotent, and silent where the platform has no such control."""
    global _done
    if _done:
        return
    try:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_CORE)
        resource.setrlimit(resource.RLIMIT_CORE, (0, hard))  # the soft limit is what the kernel applies
    except (ImportError, ValueError, OSError) as exc:  # pragma: no cover - Windows, or a locked-down sandbox
        log.debug("cannot set RLIMIT_CORE: %s", exc)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:  # pragma: no cover
                log.debug("prctl(PR_SET_DUMPABLE) failed: errno %d", ctypes.get_errno())
    _done = True
