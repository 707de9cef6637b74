"""Run the kvmigrate CLI with experimental patches applied in-process, to measure what a fix would buy.

``BENCH_PATCHES=no-trust-env,journal-off python -m benchmarks.whatif copy SRC DST ...``. Nothing here is shipped or
changes kvmigrate's files; each patch stands in for a fix suggested in benchmarks/README.md, so the benchmark can say
"this fix would take the ratio from A to B" with numbers from the same run:

* ``none``: no patch (the baseline, run next to the others).
* ``no-trust-env``: aiohttp sessions with ``trust_env=False``. azure-core opens its aiohttp session with
  ``trust_env=True``, and aiohttp 3.10+ then runs two thread-pool hops per request (proxy variables and ``~/.netrc``).
  The fix would open the session once with ``trust_env=False`` and hand the proxies read at start-up to azure-core.
* ``shared-ssl``: one ``SSLContext`` per CA file. With ``connection_verify=<file>`` azure-core builds a new context
  for every request, so aiohttp (whose connection key includes the context) opens a new TLS connection each time.
* ``journal-nondurable``: the ``restoring`` commit without fsync (an upper bound of batching those fsyncs).
* ``journal-off``: journal calls do nothing (the upper bound of moving the journal off the event loop entirely).
* ``limiter-no-burst``: the limiter's bucket starts full, so the first second is paced like the rest. aiolimiter
  starts empty and hands out ``BURST_SECONDS x rps`` permits at once; at ``--rps`` equal to the vault's limit the
  first 10-second window then gets 4,200 requests for a budget of 4,000.
* ``limiter-window``: the adaptive limiter reacts to a 429 the way a 10-second window needs: it keeps the times of
  its last 10 s of admitted (non-429) responses; the first 429 of a window sets the rate to 90 % of what the vault
  admitted over those 10 s and holds every permit until the oldest of them is 10 s old (when the window frees a
  slot); further 429s within 10 s change nothing; recovery towards ``--rps`` starts only after that.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Iterator
from typing import Any

PATCHES = ("none", "no-trust-env", "shared-ssl", "journal-nondurable", "journal-off", "limiter-no-burst",
           "limiter-window")
WINDOW = 10.0


def apply(patches: set[str]) -> None:
    unknown = patches - set(PATCHES)
    if unknown:
        raise SystemExit(f"unknown patch(es) {sorted(unknown)}; choose from {', '.join(PATCHES)}")
    if "no-trust-env" in patches:
        import aiohttp

        original_init = aiohttp.ClientSession.__init__

        @functools.wraps(original_init)
        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            kwargs["trust_env"] = False
            original_init(self, *args, **kwargs)

        aiohttp.ClientSession.__init__ = init  # type: ignore[method-assign]
    if "shared-ssl" in patches:
        from azure.core.pipeline.transport import _aiohttp

        build = _aiohttp.AioHttpTransport._build_ssl_config
        cache: dict[Any, Any] = {}

        def cached(self: Any, cert: Any, verify: Any) -> Any:
            key = (repr(cert), repr(verify))
            if key not in cache:
                cache[key] = build(self, cert, verify)
            return cache[key]

        _aiohttp.AioHttpTransport._build_ssl_config = cached  # type: ignore[method-assign]
    if "limiter-window" in patches:
        patch_limiter()
    if "limiter-no-burst" in patches:
        patch_no_burst()
    if "journal-nondurable" in patches or "journal-off" in patches:
        from kvmigrate import journal

        if "journal-off" in patches:
            journal.Journal.get = lambda self, ref: None  # type: ignore[method-assign, assignment]
            journal.Journal.record_pending = lambda self, ref, versions: None  # type: ignore[method-assign]
            journal.Journal.mark = lambda self, ref, state, **kw: None  # type: ignore[method-assign]
        else:
            transaction = journal.Journal._transaction.__wrapped__  # type: ignore[attr-defined]

            @contextlib.contextmanager
            def relaxed(self: Any, *, durable: bool = False) -> Iterator[Any]:
                with contextlib.contextmanager(transaction)(self, durable=False) as connection:
                    yield connection

            journal.Journal._transaction = relaxed  # type: ignore[method-assign]


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


def patch_limiter() -> None:
    """Replace AdaptiveRateLimiter.on_response with a window-aware one (see ``limiter-window`` above)."""
    import asyncio
    from collections import deque

    from kvmigrate import ratelimit

    def on_response(self: Any, status: int) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._last_response)
        self._last_response = now
        admitted: deque[float] = self.__dict__.setdefault("_admitted", deque())
        while admitted and admitted[0] <= now - WINDOW:
            admitted.popleft()
        if status == ratelimit.THROTTLED:
            self._throttled += 1
            if self._last_decrease is None or now - self._last_decrease >= WINDOW:
                self._last_decrease = now
                budget = len(admitted) / WINDOW  # what the vault let through per second, lately
                self._rate = max(self._min_rate, min(self._rate, 0.9 * budget))
                pause = max(0.0, (admitted[0] + WINDOW - now) if admitted else 1.0)
                self.__dict__["_hold_until"] = now + pause
                self.__dict__["_hold_pending"] = pause
        else:
            admitted.append(now)
            recovering = self._last_decrease is None or now - self._last_decrease >= WINDOW
            if recovering and self._rate < self._max_rate:
                step = (self._max_rate - self._min_rate) / self._recovery_seconds * elapsed
                self._rate = min(self._max_rate, self._rate + step)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self._apply_rate()
        pause = self.__dict__.pop("_hold_pending", None)
        if pause:  # hold the permits already waiting in the bucket too: fill it for ``pause`` seconds
            bucket = self._limiter
            bucket._leak()
            bucket._level = bucket.max_rate + pause * bucket._rate_per_sec
            bucket._wake_next()

    original_acquire = ratelimit.AdaptiveRateLimiter.acquire

    async def acquire(self: Any) -> None:
        hold = self.__dict__.get("_hold_until", 0.0) - self._clock()
        if hold > 0:
            await asyncio.sleep(hold)
        await original_acquire(self)

    ratelimit.AdaptiveRateLimiter.on_response = on_response  # type: ignore[method-assign]
    ratelimit.AdaptiveRateLimiter.acquire = acquire  # type: ignore[method-assign]


def main() -> None:
    apply({p.strip() for p in os.environ.get("BENCH_PATCHES", "").split(",") if p.strip()})
    from kvmigrate.cli import main as cli

    sys.argv[0] = "kvmigrate"
    cli()


if __name__ == "__main__":
    main()
