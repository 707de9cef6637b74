"""Pace every HTTP attempt to one vault, backing off when the vault answers 429.

One ``AdaptiveRateLimiter`` per vault, shared by a ``RateLimitPolicy`` on each of that vault's SDK clients placed
after azure-core's retry policy (``vault/clients.py`` picks the slot), so retries, auth challenges and list pages all
pay for a permit. Rate is one of three separate controls: concurrency is a semaphore in the engine, and retries are
azure-core's policy plus ``kvmigrate.retry``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TypeVar

from aiolimiter import AsyncLimiter
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import AsyncHTTPPolicy

__all__ = ["AdaptiveRateLimiter", "RateLimitPolicy"]

log = logging.getLogger(__name__)

HTTPRequestType = TypeVar("HTTPRequestType")
AsyncHTTPResponseType = TypeVar("AsyncHTTPResponseType")

THROTTLED = 429
#: Seconds of traffic the bucket may absorb at once; keeps pacing smooth (at most ~1.5x the rate in any one second).
BURST_SECONDS = 0.5
#: Key Vault counts transactions over 10-second windows (facts §11). After a 429, further 429s within one window do
#: not decrease again: they answer requests that were already admitted at the old rate, and the window will free.
WINDOW = 10.0
#: After a 429 the rate becomes this share of what the vault admitted over the last window: just under its limit.
WINDOW_SHARE = 0.9
#: The decrease when nothing was admitted in the last window (another client is using up the vault's budget).
DECREASE_FACTOR = 0.5


def _bucket(rate: float) -> tuple[float, float]:
    """Return ``(max_rate, time_period)`` for an AsyncLimiter that leaks ``rate`` permits per second.

    The bucket holds ``BURST_SECONDS`` of traffic but never less than one permit, because aiolimiter refuses an
    ``acquire(1)`` on a bucket smaller than one.
    """
    capacity = max(1.0, rate * BURST_SECONDS)
    return capacity, capacity / rate


class AdaptiveRateLimiter:
    """Per-vault rate limit that learns the vault's window: on a 429, drop to what the vault admitted, then climb.

    Why adaptive: Key Vault's limits are per vault and per operation kind, shared with every other client of the
    vault, so the configured ``--rps`` is a ceiling, not a promise. Why window-aware: the vault counts admitted
    transactions over 10 seconds, so the first 429 of a window says how much the vault takes — what it admitted over
    the last 10 s. The limiter then (1) sets its rate to ``WINDOW_SHARE`` of that, (2) holds every permit until the
    oldest of those admissions leaves the window (before then every request would be refused and wasted), (3) does not
    decrease again for one window (further 429s answer requests already in flight) but holds permits on each of them
    until the next admission leaves the window, the moment a sliding window frees a slot, and only then (4) climbs
    back linearly over ``recovery_seconds`` towards ``--rps``. Halving blindly instead overshoots down and up, and kept
    4 % of requests throttled in the benchmark's adaptive case; without the hold in (3) 3 %, with it 1 %
    (benchmarks/README.md).
    """

    def __init__(
        self,
        rate: float,
        *,
        min_rate: float = 1.0,
        recovery_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate!r}")
        if min_rate <= 0:
            raise ValueError(f"min_rate must be positive, got {min_rate!r}")
        if recovery_seconds <= 0:
            raise ValueError(f"recovery_seconds must be positive, got {recovery_seconds!r}")
        self._max_rate = float(rate)
        # A --rps below the default floor is the user's choice; the floor must not exceed the ceiling.
        self._min_rate = min(float(min_rate), self._max_rate)
        self._recovery_seconds = float(recovery_seconds)
        self._clock = clock
        self._rate = self._max_rate
        self._last_response = clock()
        self._last_decrease: float | None = None
        self._requests = 0
        self._throttled = 0
        self._admitted: deque[float] = deque()  # times of the non-429 responses of the last WINDOW seconds
        self._limiter = AsyncLimiter(*_bucket(self._max_rate))
        self._applied_rate = self._max_rate

    @property
    def rate(self) -> float:
        """The current permitted rate in requests per second."""
        return self._rate

    @property
    def max_rate(self) -> float:
        """The configured ceiling (``--rps``)."""
        return self._max_rate

    @property
    def min_rate(self) -> float:
        """The floor that decreases stop at."""
        return self._min_rate

    @property
    def requests(self) -> int:
        """How many permits were acquired, one per HTTP attempt."""
        return self._requests

    @property
    def throttled(self) -> int:
        """How many 429 responses were seen."""
        return self._throttled

    async def acquire(self) -> None:
        """Wait for a permit at the current rate."""
        self._apply_rate()
        await self._limiter.acquire()
        self._requests += 1

    def on_response(self, status: int) -> None:
        """Adjust the rate after one HTTP attempt: learn the window on a 429, otherwise climb back towards ``--rps``.

        Recovery is time-based (``max_rate - min_rate`` per ``recovery_seconds`` of elapsed time, counted only across
        responses) rather than per success, so it takes about the same wall time whatever the current rate.
        """
        now = self._clock()
        elapsed = max(0.0, now - self._last_response)
        self._last_response = now
        admitted = self._admitted
        while admitted and admitted[0] <= now - WINDOW:
            admitted.popleft()
        hold = 0.0
        if status == THROTTLED:
            self._throttled += 1
            if self._last_decrease is None or now - self._last_decrease >= WINDOW:
                self._last_decrease = now
                old = self._rate
                learned = WINDOW_SHARE * len(admitted) / WINDOW if admitted else self._rate * DECREASE_FACTOR
                self._rate = max(self._min_rate, min(self._rate, learned))
                hold = admitted[0] + WINDOW - now if admitted else 1.0
                log.debug("vault throttled (429): rate %.2f -> %.2f requests/s, holding %.1f s", old, self._rate, hold)
            elif admitted:
                # The window is full again: the next slot frees when its oldest admission leaves it.
                hold = admitted[0] + WINDOW - now
        else:
            admitted.append(now)
            if self._last_decrease is not None:  # recovery starts one window after the decrease
                elapsed = min(elapsed, max(0.0, now - self._last_decrease - WINDOW))
            if self._rate < self._max_rate:
                step = (self._max_rate - self._min_rate) / self._recovery_seconds * elapsed
                self._rate = min(self._max_rate, self._rate + step)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a unit test driving the math): acquire() applies the new rate
        self._apply_rate()
        if hold > 0:
            self._hold(hold)

    def _hold(self, seconds: float) -> None:
        """Hand out no permit for ``seconds``, to waiters already queued as well as to new ones.

        The bucket is filled ``seconds`` worth of leak above its size, so it drains back to where it has room again
        after that time; the same private attributes as ``_apply_rate`` (see there), after the same ``_leak()``.
        """
        bucket = self._limiter
        bucket._leak()
        bucket._level = max(bucket._level, bucket.max_rate + seconds * bucket._rate_per_sec)
        bucket._wake_next()

    def _apply_rate(self) -> None:
        """Retune the running AsyncLimiter to ``self._rate`` in place.

        Why in place and through private attributes: aiolimiter 1.3 (checked in its ``leakybucket.py``) derives the
        leak rate ``_rate_per_sec = max_rate / time_period`` once in ``__init__``; assigning ``max_rate`` alone would
        change the bucket size but not the pace. Replacing the AsyncLimiter instead would strand tasks already
        waiting on the old one at the old rate and hand out a fresh, empty bucket (a burst) on every change, and the
        rate changes on nearly every response. So: first ``_leak()`` to drain the bucket at the old rate up to now,
        then set ``max_rate``, ``time_period`` and ``_rate_per_sec`` together, then ``_wake_next()`` so the timer of
        the first waiter is rescheduled at the new rate. ``_level`` is kept: after a decrease it may exceed the
        smaller bucket, which pauses new permits for roughly one window, the backoff we want after a 429. Every
        waiter acquires one permit, so the waiter heap stays FIFO. ``tests/unit/test_ratelimit.py`` checks that these
        internals still exist, so an aiolimiter upgrade that changes them fails there, not in production.
        """
        if self._applied_rate == self._rate:
            return
        limiter = self._limiter
        limiter._leak()
        limiter.max_rate, limiter.time_period = _bucket(self._rate)
        limiter._rate_per_sec = self._rate
        limiter._wake_next()
        self._applied_rate = self._rate


class RateLimitPolicy(AsyncHTTPPolicy[HTTPRequestType, AsyncHTTPResponseType]):
    """Take a permit from the vault's limiter before each HTTP attempt and report the status after it.

    Why after the retry policy: there it runs once per HTTP attempt, so retries and list pages count against the
    vault's rate. In Key Vault clients ``per_retry_policies`` lands before the challenge-auth policy (whose 401 probe
    and re-send would then pass once); a slot after the auth policy counts those too.
    """

    def __init__(self, limiter: AdaptiveRateLimiter) -> None:
        super().__init__()
        self._limiter = limiter

    async def send(
        self, request: PipelineRequest[HTTPRequestType]
    ) -> PipelineResponse[HTTPRequestType, AsyncHTTPResponseType]:
        """Send one attempt at the limiter's pace."""
        await self._limiter.acquire()
        response = await self.next.send(request)
        status: int = response.http_response.status_code  # type: ignore[attr-defined]
        self._limiter.on_response(status)
        return response
