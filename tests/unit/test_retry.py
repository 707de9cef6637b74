"""call_with_retry and default_should_retry with a fake sleep and a seeded rng: no real waiting."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from kvmigrate.retry import call_with_retry, default_should_retry, retry_after_hint


class FakeResponse:
    """The parts of an azure-core response HttpResponseError reads."""

    def __init__(self, status_code: int, headers: dict[str, str] | None = None, body: str = "") -> None:
        self.status_code = status_code
        self.headers = headers or {}
        self.reason = "canned"
        self._body = body

    def text(self) -> str:
        return self._body


def http_error(status: int, headers: dict[str, str] | None = None, body: str = "") -> HttpResponseError:
    return HttpResponseError(response=FakeResponse(status, headers, body))  # type: ignore[arg-type]


class FakeSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def failing_then(errors: list[BaseException], result: str = "ok") -> tuple[Callable[[], Awaitable[str]], list[int]]:
    """Return an op that raises each error in turn, then returns ``result``; and its call counter."""
    calls = [0]

    async def op() -> str:
        calls[0] += 1
        if errors:
            raise errors.pop(0)
        return result

    return op, calls


async def test_returns_without_retry_on_success() -> None:
    sleep = FakeSleep()
    op, calls = failing_then([])
    assert await call_with_retry(op, what="backup secret a", sleep=sleep) == "ok"
    assert calls[0] == 1
    assert sleep.delays == []


async def test_retries_429_without_retry_after_with_jittered_backoff() -> None:
    sleep = FakeSleep()
    op, calls = failing_then([http_error(429), http_error(429), http_error(429)])
    result = await call_with_retry(
        op, what="restore secret a", sleep=sleep, rng=random.Random(7), base_delay=1.0, max_delay=3.0
    )
    assert result == "ok"
    assert calls[0] == 4
    assert len(sleep.delays) == 3
    for n, delay in enumerate(sleep.delays):
        assert 0.0 <= delay <= min(3.0, 1.0 * 2**n)
    # the same seed gives the same schedule
    expected = random.Random(7)
    assert sleep.delays == [expected.uniform(0, c) for c in (1.0, 2.0, 3.0)]


async def test_honours_retry_after_as_a_minimum() -> None:
    sleep = FakeSleep()
    op, _ = failing_then([http_error(429, {"Retry-After": "12"})])
    await call_with_retry(op, what="backup key k", sleep=sleep, rng=random.Random(1), max_delay=30.0)
    assert sleep.delays[0] >= 12.0


async def test_honours_retry_after_ms_headers() -> None:
    sleep = FakeSleep()
    op, _ = failing_then([http_error(503, {"x-ms-retry-after-ms": "4500"})])
    await call_with_retry(op, what="backup key k", sleep=sleep, rng=random.Random(1), base_delay=0.001)
    assert sleep.delays == [4.5]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409])
async def test_does_not_retry_answers(status: int) -> None:
    sleep = FakeSleep()
    error = http_error(status)
    op, calls = failing_then([error])
    with pytest.raises(HttpResponseError) as caught:
        await call_with_retry(op, what="restore secret a", sleep=sleep)
    assert caught.value is error
    assert calls[0] == 1
    assert sleep.delays == []


async def test_does_not_retry_409_subclass() -> None:
    sleep = FakeSleep()
    error = ResourceExistsError(response=FakeResponse(409))  # type: ignore[arg-type]
    op, calls = failing_then([error])
    with pytest.raises(ResourceExistsError):
        await call_with_retry(op, what="restore secret a", sleep=sleep)
    assert calls[0] == 1


async def test_gives_up_after_attempts_and_raises_the_last_error() -> None:
    sleep = FakeSleep()
    errors: list[BaseException] = [http_error(500), http_error(503), http_error(502)]
    last = errors[-1]
    op, calls = failing_then(errors)
    with pytest.raises(HttpResponseError) as caught:
        await call_with_retry(op, what="backup secret a", attempts=3, sleep=sleep, rng=random.Random(0))
    assert caught.value is last
    assert calls[0] == 3
    assert len(sleep.delays) == 2


async def test_429s_do_not_use_up_attempts() -> None:
    sleep = FakeSleep()
    op, calls = failing_then([http_error(429)] * 20 + [http_error(503)])
    assert await call_with_retry(op, what="backup secret a", attempts=2, sleep=sleep, max_delay=1.0) == "ok"
    assert calls[0] == 22


async def test_429s_give_up_after_throttle_patience() -> None:
    sleep = FakeSleep()
    errors: list[BaseException] = [http_error(429) for _ in range(1000)]
    op, calls = failing_then(errors)
    with pytest.raises(HttpResponseError) as caught:
        await call_with_retry(
            op, what="backup secret a", sleep=sleep, rng=random.Random(3), max_delay=10.0, throttle_patience=60.0
        )
    assert caught.value.status_code == 429
    assert 60.0 <= sum(sleep.delays) < 70.0
    assert calls[0] < 1000


async def test_retries_dropped_connections() -> None:
    sleep = FakeSleep()
    op, calls = failing_then([ServiceRequestError("refused"), ServiceResponseError("reset")])
    assert await call_with_retry(op, what="backup secret a", sleep=sleep, rng=random.Random(0)) == "ok"
    assert calls[0] == 3


async def test_does_not_retry_other_exceptions() -> None:
    sleep = FakeSleep()
    op, calls = failing_then([ValueError("bug")])
    with pytest.raises(ValueError):
        await call_with_retry(op, what="backup secret a", sleep=sleep)
    assert calls[0] == 1


async def test_custom_should_retry() -> None:
    sleep = FakeSleep()
    op, calls = failing_then([http_error(409)])

    def retry_conflicts(exc: BaseException) -> float | None:
        return 2.0 if isinstance(exc, HttpResponseError) and exc.status_code == 409 else None

    await call_with_retry(op, what="restore secret a", sleep=sleep, should_retry=retry_conflicts, rng=random.Random(0))
    assert calls[0] == 2
    assert sleep.delays[0] >= 2.0


async def test_rejects_zero_attempts() -> None:
    op, _ = failing_then([])
    with pytest.raises(ValueError):
        await call_with_retry(op, what="x", attempts=0)


async def test_logs_status_not_body(caplog: pytest.LogCaptureFixture) -> None:
    sleep = FakeSleep()
    body = '{"error": {"code": "Throttled", "message": "hunter2-secret-value"}}'
    op, _ = failing_then([http_error(429, body=body)])
    with caplog.at_level(logging.DEBUG, logger="kvmigrate.retry"):
        await call_with_retry(op, what="backup secret foo", sleep=sleep, rng=random.Random(0))
    text = caplog.text
    assert "backup secret foo" in text
    assert "429" in text
    assert "hunter2" not in text


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (http_error(429), 0.0),
        (http_error(500), 0.0),
        (http_error(502), 0.0),
        (http_error(503), 0.0),
        (http_error(504), 0.0),
        (http_error(429, {"retry-after": "3"}), 3.0),
        (http_error(429, {"Retry-After-Ms": "250"}), 0.25),
        (http_error(400), None),
        (ClientAuthenticationError(response=FakeResponse(401)), None),  # type: ignore[arg-type]
        (http_error(403), None),
        (ResourceNotFoundError(response=FakeResponse(404)), None),  # type: ignore[arg-type]
        (http_error(409), None),
        (HttpResponseError("no response at all"), None),
        (ServiceRequestError("dns"), 0.0),
        (ServiceResponseError("reset"), 0.0),
        (TimeoutError(), None),
    ],
)
def test_default_should_retry(exc: BaseException, expected: float | None) -> None:
    assert default_should_retry(exc) == expected


def test_retry_after_http_date() -> None:
    hint = retry_after_hint({"Retry-After": formatdate(time.time() + 60, usegmt=True)})
    assert hint is not None
    assert 50 <= hint <= 61
    assert retry_after_hint({"Retry-After": formatdate(0, usegmt=True)}) == 0.0


@pytest.mark.parametrize("value", ["soon", "", "nan", "inf"])
def test_retry_after_garbage_is_no_hint(value: str) -> None:
    assert retry_after_hint({"Retry-After": value}) is None
