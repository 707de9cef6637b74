"""The one bounded fan-out over a listing: the engine, plan and verify all walk a vault through it.

``fan_out(items, work, concurrency=N)`` runs ``work(item)`` for every item (a listing's or a collection's) with at
most N at once and memory bounded by N, whatever the listing's size. The first exception cancels everything else and
is raised unwrapped (fatal errors of ours first), so callers never see a task group's ``ExceptionGroup`` and users
never a traceback.

Why it cannot hang: the producer puts its end-of-work markers only on the normal path, when the workers are alive
to take them; on a failure or cancellation nothing in any task's cleanup awaits a queue, so the task group's
cancellation always completes. ``stop`` (the first Ctrl-C) stops the listing and makes workers drop the queued
items after finishing the ones in hand.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

from kvmigrate.errors import first_expected

T = TypeVar("T")
_END: Any = object()


async def _each(items: Iterable[T]) -> AsyncIterator[T]:
    for item in items:
        yield item


async def fan_out(
    items: AsyncIterable[T] | Iterable[T],
    work: Callable[[T], Awaitable[None]],
    *,
    concurrency: int,
    stop: asyncio.Event | None = None,
) -> None:
    """Run ``work`` over ``items`` (see the module docstring)."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency!r}")
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=concurrency)

    async def produce() -> None:
        iterator = aiter(items if isinstance(items, AsyncIterable) else _each(items))
        closer = getattr(iterator, "aclose", None)
        async with contextlib.AsyncExitStack() as stack:
            if closer is not None:
                stack.push_async_callback(closer)
            async for item in iterator:
                if stop is not None and stop.is_set():
                    break
                await queue.put(item)
        for _ in range(concurrency):
            await queue.put(_END)

    async def worker() -> None:
        while (item := await queue.get()) is not _END:
            if stop is not None and stop.is_set():
                continue  # left for a rerun
            await work(item)

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(produce())
            for _ in range(concurrency):
                group.create_task(worker())
    except BaseExceptionGroup as failed:
        raise first_expected(failed) from None
