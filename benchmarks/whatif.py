"""Run the kvmigrate CLI with experimental patches applied in-process, to measure what a fix would buy.

``BENCH_PATCHES=journal-off python -m benchmarks.whatif copy SRC DST ...``. Nothing here is shipped or
changes kvmigrate's files; each patch stands in for a fix suggested in benchmarks/README.md, so the benchmark can say
"this fix would take the ratio from A to B" with numbers from the same run:

* ``none``: no patch (the baseline, run next to the others).
* ``journal-nondurable``: the ``restoring`` commit without any fsync (what the group commit of those fsyncs
  still costs).
* ``journal-off``: journal calls do nothing (the upper bound of moving the journal off the event loop entirely).
* ``limiter-no-burst``: the limiter's bucket starts full, so the first second is paced like the rest. aiolimiter
  starts empty and hands out ``BURST_SECONDS x rps`` permits at once; at ``--rps`` equal to the vault's limit the
  first 10-second window then gets 4,200 requests for a budget of 4,000.

Patches for fixes that have since shipped were removed with them: ``no-trust-env`` and ``shared-ssl`` (one TLS
context and session per vault, 58f982a and the proxy fix after it) and ``limiter-window`` (the window-aware
limiter in kvmigrate/ratelimit.py); benchmarks/README.md keeps what they measured.
"""

from __future__ import annotations

import os
import sys
from typing import Any

PATCHES = ("none", "journal-nondurable", "journal-off", "limiter-no-burst")


def apply(patches: set[str]) -> None:
    unknown = patches - set(PATCHES)
    if unknown:
        raise SystemExit(f"unknown patch(es) {sorted(unknown)}; choose from {', '.join(PATCHES)}")
    if "limiter-no-burst" in patches:
        patch_no_burst()
    if "journal-nondurable" in patches or "journal-off" in patches:
        from kvmigrate.journal import groupcommit, store

        if "journal-off" in patches:

            async def nothing(self: Any, ref: Any, **kw: Any) -> None:
                return None

            store.Journal.get = lambda self, ref: None  # type: ignore[method-assign, assignment]
            store.Journal.finish = lambda self, ref, state, **kw: None  # type: ignore[method-assign]
            store.Journal.mark_restoring = nothing  # type: ignore[method-assign]
        else:
            write = store.Journal._write

            def relaxed(self: Any, sql: str, parameters: Any, *, durable: bool = False) -> Any:
                return write(self, sql, parameters)

            async def no_flush(self: Any) -> None:
                return None

            store.Journal._write = relaxed  # type: ignore[method-assign]
            groupcommit.WalSync.flush = no_flush  # type: ignore[method-assign]


def patch_no_burst() -> None:
    """Fill each vault's bucket on its first acquire, so no initial burst is handed out."""
    from kvmigrate import ratelimit

    original_acquire = ratelimit.AdaptiveRateLimiter.acquire

    async def acquire(self: Any) -> None:
        if not self.__dict__.get("_primed"):
            self.__dict__["_primed"] = True
            bucket = self._limiter
            bucket._leak()
            bucket._level = bucket.max_rate
        await original_acquire(self)

    ratelimit.AdaptiveRateLimiter.acquire = acquire  # type: ignore[method-assign]


def main() -> None:
    apply({p.strip() for p in os.environ.get("BENCH_PATCHES", "").split(",") if p.strip()})
    from kvmigrate.cli import main as cli

    sys.argv[0] = "kvmigrate"
    cli()


if __name__ == "__main__":
    main()
