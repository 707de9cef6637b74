"""Retry the operations azure-core's retry policy will not: POST backup and restore throttled without Retry-After.

azure-core's ``AsyncRetryPolicy`` retries a POST on 429 only when the response carries ``Retry-After``, and Key
Vault's real 429s carry none; backup and restore are POSTs. So the engine wraps each such call in
``call_with_retry``. Rate stays with ``kvmigrate.ratelimit`` (every attempt here passes through the vault's
pipeline again and pays for a permit); this module only decides whether and when to try again.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

__all__ = ["RETRYABLE_STATUSES", "call_with_retry", "default_should_retry", "retry_after_hint"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Throttling and transient server errors. Never 400/401/403/404/409: retrying those cannot change the answer.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


def retry_after_hint(headers: Mapping[str, str] | None) -> float | None:
    """Return the server's requested wait in seconds, or ``None`` when it asked for none.

    Reads ``retry-after-ms``, ``x-ms-retry-after-ms`` (milliseconds) and ``Retry-After`` (seconds or an HTTP date),
    the same headers azure-core honours, case-insensitively because test fakes may pass a plain dict.
    """
    if not headers:
        return None
    lowered = {name.lower(): value for name, value in headers.items()}
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        millis = _parse_number(lowered.get(name))
        if millis is not None:
            return max(0.0, millis / 1000.0)
    text = lowered.get("retry-after")
    if text is None:
        return None
    seconds = _parse_number(text)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _parse_number(text: str | None) -> float | None:
    """Parse a header value as a finite number; ``None`` if absent or not one, so the caller tries the next form."""
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def default_should_retry(exc: BaseException) -> float | None:
    """Return ``None`` to give up, or the minimum delay (0.0 for none) before trying ``exc``'s operation again.

    Why these: 429 and 5xx gateway/server errors are transient by definition, and a dropped connection
    (``ServiceRequestError``/``ServiceResponseError``) says nothing about the request itself. Everything else,
    notably 409 (the name exists, or is deleted but not purged), is an answer, not a failure to answer.
    """
    if isinstance(exc, HttpResponseError):
        if exc.status_code not in RETRYABLE_STATUSES:
            return None
        response = exc.response
        headers = getattr(response, "headers", None) if response is not None else None
        hint = retry_after_hint(headers)
        return hint if hint is not None else 0.0
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return 0.0
    return None


def _describe(exc: BaseException) -> str:
    """Name the failure for a log line: the HTTP status, or the exception class; never a body or message."""
    if isinstance(exc, HttpResponseError) and exc.status_code is not None:
        return f"status {exc.status_code}"
    return type(exc).__name__


#: One generator for every call: a ``random.Random()`` per call seeds itself from os.urandom, which showed up in the
#: profile of a copy (every SDK call goes through here, and almost none is retried).
_JITTER = random.Random()


async def call_with_retry(
    op: Callable[[], Awaitable[T]],
    *,
    what: str,
    attempts: int = 8,
    base_delay: float = 1.0,
    max_delay: float = 30.0,
    throttle_patience: float = 300.0,
    should_retry: Callable[[BaseException], float | None] = default_should_retry,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: random.Random | None = None,
) -> T:
    """Await ``op()`` until it succeeds, retrying what ``should_retry`` allows with full-jitter exponential backoff.

    Why full jitter (``uniform(0, min(max_delay, base_delay * 2**n))``): many workers throttled together must not
    come back together. The delay is never shorter than the server's hint. ``what`` (e.g. "backup secret foo")
    names the operation in DEBUG logs. When ``attempts`` run out, or the error is not retryable, the last
    exception propagates unchanged. Cancellation is never retried.

    A 429 does not use up an attempt: throttling says "later", not "failed", and a busy vault (other clients share
    its budget) may refuse one request many times in a row. 429s are retried until ``throttle_patience`` seconds
    of backoff have been spent on them, so only a vault throttled for minutes fails an object.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts!r}")
    chooser = rng if rng is not None else _JITTER
    attempt = failures = 0
    throttled_wait = 0.0
    while True:
        attempt += 1
        try:
            return await op()
        except Exception as exc:
            hint = should_retry(exc)
            if hint is None:
                raise
            throttled = isinstance(exc, HttpResponseError) and exc.status_code == 429
            failures += not throttled
            if failures >= attempts or (throttled and throttled_wait >= throttle_patience):
                log.debug("%s: giving up after %d attempts (%s)", what, attempt, _describe(exc))
                raise
            ceiling = min(max_delay, base_delay * 2 ** (attempt - 1))
            delay = max(hint, chooser.uniform(0.0, ceiling))
            if throttled:
                throttled_wait += delay
            log.debug(
                "%s: %s, retrying in %.2fs (attempt %d, failure %d of %d)",
                what,
                _describe(exc),
                delay,
                attempt + 1,
                failures,
                attempts,
            )
        await sleep(delay)
