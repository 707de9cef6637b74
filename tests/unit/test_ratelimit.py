"""Limiter math with a fake clock, and the policy inside a real azure-core pipeline with a fake transport."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiolimiter import AsyncLimiter
from azure.core.pipeline import AsyncPipeline
from azure.core.pipeline.policies import AsyncRetryPolicy
from azure.core.pipeline.transport import AsyncHttpTransport
from azure.core.rest import HttpRequest

from kvmigrate.ratelimit import WINDOW, AdaptiveRateLimiter, RateLimitPolicy


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeResponse:
    """Just what AsyncRetryPolicy and RateLimitPolicy read from a response."""

    def __init__(self, request: HttpRequest, status_code: int, headers: dict[str, str] | None = None) -> None:
        self.request = request
        self.status_code = status_code
        self.headers = headers or {}
        self.reason = "canned"

    def text(self) -> str:
        return ""

    async def read(self) -> bytes:
        return b""

    async def load_body(self) -> None:
        return None

    def close(self) -> None:
        return None


class CannedTransport(AsyncHttpTransport[HttpRequest, Any]):
    """Answer each send with the next canned status; record every request."""

    def __init__(self, statuses: list[int]) -> None:
        self._statuses: Iterator[int] = iter(statuses)
        self.sent: list[HttpRequest] = []

    async def send(self, request: HttpRequest, **kwargs: Any) -> FakeResponse:
        self.sent.append(request)
        return FakeResponse(request, next(self._statuses))

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def sleep(self, duration: float) -> None:
        return None  # no real sleeps in unit tests

    async def __aexit__(self, *args: object) -> None:
        return None


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_starts_at_max_rate(clock: FakeClock) -> None:
    limiter = AdaptiveRateLimiter(40, clock=clock)
    assert limiter.rate == limiter.max_rate == 40
    assert limiter.requests == limiter.throttled == 0


def test_429_with_nothing_admitted_halves_the_rate(clock: FakeClock) -> None:
    limiter = AdaptiveRateLimiter(40, clock=clock)
    limiter.on_response(429)
    assert limiter.rate == 20
    assert limiter.throttled == 1


def admit(limiter: AdaptiveRateLimiter, clock: FakeClock, count: int, seconds: float) -> None:
    """``count`` successful responses spread evenly over ``seconds``."""
    for _ in range(count):
        clock.advance(seconds / count)
        limiter.on_response(200)


def test_429_sets_the_rate_just_under_what_the_vault_admitted_in_its_window(clock: FakeClock) -> None:
    limiter = AdaptiveRateLimiter(400, clock=clock)
    admit(limiter, clock, 3000, 20.0)  # 150/s for 20 s; only the last 10 s (1,500) are the window
    limiter.on_response(429)
    assert limiter.rate == pytest.approx(0.9 * 1500 / WINDOW, rel=0.01)


def test_429_never_raises_the_rate(clock: FakeClock) -> None:
    limiter = AdaptiveRateLimiter(400, clock=clock)
    admit(limiter, clock, 2000, 5.0)  # 400/s for 5 s, then refused: the window holds 2,000
    limiter.on_response(429)
    assert limiter.rate == pytest.approx(180)
    clock.advance(WINDOW)
    admit(limiter, clock, 3000, 0.1)  # a burst of successes right before the next 429
    before = limiter.rate
    limiter.on_response(429)
    assert limiter.rate == before


def test_at_most_one_decrease_per_window(clock: FakeClock) -> None:
    limiter = AdaptiveRateLimiter(40, clock=clock)
    for _ in range(10):  # a burst of in-flight 429s answered together
        limiter.on_response(429)
    assert limiter.rate == 20
    assert limiter.throttled == 10
    clock.advance(WINDOW)
    limiter.on_response(429)
    assert limiter.rate == 10


def test_decrease_stops_at_min_rate(clock: FakeClock) -> None:
    limiter = AdaptiveRateLimiter(40, min_rate=3, clock=clock)
    for _ in range(10):
        limiter.on_response(429)
        clock.advance(WINDOW)
    assert limiter.rate == 3


def test_min_rate_never_exceeds_max_rate(clock: FakeClock) -> None:
    limiter = AdaptiveRateLimiter(0.5, clock=clock)
    limiter.on_response(429)
    assert limiter.rate == limiter.min_rate == 0.5


def test_recovers_to_max_over_recovery_seconds(clock: FakeClock) -> None:
    limiter = AdaptiveRateLimiter(41, min_rate=1, recovery_seconds=40, clock=clock)
    for _ in range(10):
        limiter.on_response(429)
        clock.advance(WINDOW)
    assert limiter.rate == 1
    limiter.on_response(200)  # one window after the last decrease: the reference point for elapsed time
    rates = []
    for _ in range(40):
        clock.advance(1)
        limiter.on_response(200)
        rates.append(limiter.rate)
    assert rates[0] == pytest.approx(2)  # (41 - 1) / 40 per second
    assert rates[19] == pytest.approx(21)
    assert rates == sorted(rates)
    assert rates[-1] == pytest.approx(41)


def test_never_exceeds_max_rate(clock: FakeClock) -> None:
    limiter = AdaptiveRateLimiter(10, clock=clock)
    limiter.on_response(429)
    clock.advance(3600)
    limiter.on_response(200)
    assert limiter.rate == 10
    limiter.on_response(200)
    assert limiter.rate == 10


def test_successes_inside_a_window_add_little(clock: FakeClock) -> None:
    limiter = AdaptiveRateLimiter(31, min_rate=1, recovery_seconds=30, clock=clock)
    limiter.on_response(429)
    assert limiter.rate == 15.5
    clock.advance(WINDOW / 2)
    limiter.on_response(200)
    assert limiter.rate == 15.5  # no recovery inside the window of the 429
    clock.advance(WINDOW / 2 + 0.1)
    for _ in range(100):  # many successes in the same instant add nothing
        limiter.on_response(200)
    assert limiter.rate == pytest.approx(15.6)


@pytest.mark.parametrize(("rate", "min_rate", "recovery_seconds"), [(0, 1, 30), (-1, 1, 30), (5, 0, 30), (5, 1, 0)])
def test_rejects_non_positive_settings(rate: float, min_rate: float, recovery_seconds: float) -> None:
    with pytest.raises(ValueError):
        AdaptiveRateLimiter(rate, min_rate=min_rate, recovery_seconds=recovery_seconds)


def test_aiolimiter_internals_still_exist() -> None:
    """_apply_rate relies on these private names of aiolimiter 1.3; fail here if an upgrade changes them."""
    assert {"_rate_per_sec", "_level", "_last_check"} <= set(AsyncLimiter.__slots__)
    assert callable(AsyncLimiter._leak)
    assert callable(AsyncLimiter._wake_next)


async def test_rate_change_retunes_the_running_limiter(clock: FakeClock) -> None:
    limiter = AdaptiveRateLimiter(20, clock=clock)
    bucket = limiter._limiter
    assert (bucket.max_rate, bucket.time_period) == (10, 0.5)  # 0.5 s of traffic: a small burst
    for _ in range(10):
        await limiter.acquire()
    assert limiter.requests == 10
    assert not bucket.has_capacity()  # the eleventh must wait: paced, not bursting

    limiter.on_response(429)
    assert limiter.rate == 10
    assert bucket._rate_per_sec == 10
    assert (bucket.max_rate, bucket.time_period) == (5, 0.5)
    assert bucket._level > bucket.max_rate  # the fuller-than-new bucket is the pause after a 429


async def test_429_holds_permits_until_the_window_frees(clock: FakeClock) -> None:
    limiter = AdaptiveRateLimiter(100, clock=clock)
    bucket = limiter._limiter
    admit(limiter, clock, 500, 5.0)  # the first admission leaves the window 5 s from now
    limiter.on_response(429)
    assert limiter.rate == pytest.approx(45)
    # The bucket is over-full by ~5 s of leak: nothing is handed out before the window frees a slot.
    assert bucket._level == pytest.approx(bucket.max_rate + 5.0 * 45, rel=0.01)
    assert not bucket.has_capacity()


async def test_a_later_429_in_the_window_holds_until_its_oldest_admission_leaves(clock: FakeClock) -> None:
    limiter = AdaptiveRateLimiter(100, clock=clock)
    bucket = limiter._limiter
    admit(limiter, clock, 500, 5.0)
    limiter.on_response(429)  # the decrease
    clock.advance(2.0)  # the hold is over (we skip it); the window still holds all 500
    admit(limiter, clock, 20, 0.5)  # now 7.5 s: the oldest admission (at 0.01 s) leaves the window in 2.51 s
    bucket._level = 0.0
    limiter.on_response(429)  # the window is full again, 2.5 s after the decrease: no second decrease...
    assert limiter.rate == pytest.approx(45)
    # ...but no permit either until that oldest admission leaves and frees the next slot.
    assert bucket._level == pytest.approx(bucket.max_rate + 2.51 * 45, rel=0.01)
    assert not bucket.has_capacity()


async def test_tiny_rate_keeps_a_one_permit_bucket(clock: FakeClock) -> None:
    limiter = AdaptiveRateLimiter(0.25, clock=clock)
    bucket = limiter._limiter
    assert (bucket.max_rate, bucket.time_period, bucket._rate_per_sec) == (1, 4, 0.25)
    await limiter.acquire()
    assert not bucket.has_capacity()


async def test_policy_counts_every_attempt_including_retries(clock: FakeClock) -> None:
    limiter = AdaptiveRateLimiter(100, clock=clock)
    transport = CannedTransport([503, 200])
    pipeline: AsyncPipeline[HttpRequest, Any] = AsyncPipeline(
        transport=transport,
        policies=[AsyncRetryPolicy(retry_total=2, retry_backoff_factor=0), RateLimitPolicy(limiter)],
    )
    async with pipeline:
        response = await pipeline.run(HttpRequest("GET", "https://vault.example/secrets"))
    assert response.http_response.status_code == 200
    assert len(transport.sent) == 2
    assert limiter.requests == 2
    assert limiter.throttled == 0
    assert limiter.rate == 100


async def test_policy_lowers_the_rate_on_429(clock: FakeClock) -> None:
    limiter = AdaptiveRateLimiter(100, clock=clock)
    transport = CannedTransport([429])
    pipeline: AsyncPipeline[HttpRequest, Any] = AsyncPipeline(
        transport=transport,
        policies=[AsyncRetryPolicy(retry_total=0, retry_backoff_factor=0), RateLimitPolicy(limiter)],
    )
    async with pipeline:
        response = await pipeline.run(HttpRequest("POST", "https://vault.example/secrets/a/backup"))
    assert response.http_response.status_code == 429
    assert limiter.requests == 1
    assert limiter.throttled == 1
    assert limiter.rate == 50
    assert limiter._limiter._rate_per_sec == 50
