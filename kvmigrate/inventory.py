"""What each end holds, read by listing: the source streamed (its first pages fetched early), the target as names.

Both start before anything is written: the first page of each selected type at the source and the target's whole
name index are the run's preflight, so an unreachable vault, a TLS failure, a refused token or a missing ``list``
permission on either side ends the run before a journal or folder exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
from collections import Counter, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from kvmigrate.errors import first_expected
from kvmigrate.models import Listed, ObjectType


class Lister(Protocol):
    def list_objects(self, object_type: ObjectType) -> AsyncIterator[Listed]: ...


class DeletedLister(Lister, Protocol):
    def list_deleted(self, object_type: ObjectType) -> AsyncIterator[str]: ...


def is_selected(name: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> bool:
    """Case-insensitive globs, as Key Vault names are: include (any) then exclude (any)."""
    lowered = name.lower()
    if include and not any(fnmatch.fnmatchcase(lowered, pattern.lower()) for pattern in include):
        return False
    return not any(fnmatch.fnmatchcase(lowered, pattern.lower()) for pattern in exclude)


@dataclass
class TargetIndex:
    """Names present in the target, active and soft-deleted, from one listing pass per type (names only)."""

    active: dict[tuple[ObjectType, str], Listed] = field(default_factory=dict)
    deleted: set[tuple[ObjectType, str]] = field(default_factory=set)
    listed: Counter[ObjectType] = field(default_factory=Counter)
    deleted_listed: Counter[ObjectType] = field(default_factory=Counter)

    @classmethod
    async def load(cls, target: DeletedLister, types: tuple[ObjectType, ...]) -> TargetIndex:
        """List every type's active and deleted names at once (each listing is its own paged call)."""
        index = cls()

        async def active(object_type: ObjectType) -> None:
            async for listed in target.list_objects(object_type):
                index.active[(object_type, listed.ref.key)] = listed
                index.listed[object_type] += 1

        async def deleted(object_type: ObjectType) -> None:
            async for name in target.list_deleted(object_type):
                index.deleted.add((object_type, name.lower()))
                index.deleted_listed[object_type] += 1

        try:
            async with asyncio.TaskGroup() as group:
                for object_type in types:
                    group.create_task(active(object_type))
                    group.create_task(deleted(object_type))
        except BaseExceptionGroup as failed:
            raise first_expected(failed) from None
        return index

    def has(self, listed: Listed) -> bool:
        return (listed.ref.type, listed.ref.key) in self.active

    def is_deleted(self, listed: Listed) -> bool:
        return (listed.ref.type, listed.ref.key) in self.deleted


class _ReadAhead:
    """One type's source listing, read to its end in the background; the consumer takes items as they arrive.

    Key Vault's pages are a chain (each ``nextLink`` comes from the page before), so a listing cannot be split; what
    can overlap is the source's chains with the target's index and with the work itself. Held items are names and
    attributes only, the same order of memory as the target index. An error is kept and raised where the consumer
    reaches it, as a direct listing would have raised it.
    """

    def __init__(self, iterator: AsyncIterator[Listed]) -> None:
        self._items: deque[Listed] = deque()
        self._error: BaseException | None = None
        self._done = False
        self._arrived = asyncio.Event()
        self.started = asyncio.Event()  # the first item, the end or an error is in
        self._task = asyncio.ensure_future(self._read(iterator))

    async def _read(self, iterator: AsyncIterator[Listed]) -> None:
        try:
            async with contextlib.aclosing(iterator):  # type: ignore[type-var]
                async for listed in iterator:
                    self._items.append(listed)
                    self.started.set()
                    self._arrived.set()
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            self._error = exc
        finally:
            self._done = True
            self.started.set()
            self._arrived.set()

    @property
    def error(self) -> BaseException | None:
        return self._error if not self._items else None

    async def __aiter__(self) -> AsyncIterator[Listed]:
        while True:
            while self._items:
                yield self._items.popleft()
            if self._done:
                if self._error is not None:
                    raise self._error
                return
            self._arrived.clear()
            await self._arrived.wait()

    async def aclose(self) -> None:
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task
        self._items.clear()


class Inventory:
    """The source's listing of the selected types, yielded in type order while every type is read ahead at once.

    ``prefetch`` starts the readers and waits for each type's first page. Why: a ``list`` denial or an unreachable
    source shows on the first page, and it must show before the run writes anything; the pages read are the ones the
    run then uses, so it costs no request. The rest keeps arriving while the target's index loads, so a run over a
    full target (a sync with nothing to do) lists both vaults in the time of one.
    """

    def __init__(self, source: Lister, types: tuple[ObjectType, ...]) -> None:
        self._source = source
        self._types = types
        self._readers: dict[ObjectType, _ReadAhead] = {}
        self.listed: Counter[ObjectType] = Counter()

    def _reader(self, object_type: ObjectType) -> _ReadAhead:
        if object_type not in self._readers:
            self._readers[object_type] = _ReadAhead(self._source.list_objects(object_type))
        return self._readers[object_type]

    async def prefetch(self) -> None:
        readers = [self._reader(object_type) for object_type in self._types]
        await asyncio.gather(*(reader.started.wait() for reader in readers))
        errors = [error for reader in readers if (error := reader.error) is not None]
        if errors:
            await self.aclose()
            raise first_expected(BaseExceptionGroup("source listing", errors))

    async def __aiter__(self) -> AsyncIterator[Listed]:
        for object_type in self._types:
            async for listed in self._reader(object_type):
                self.listed[object_type] += 1
                yield listed

    async def aclose(self) -> None:
        """Stop every reader (a stopped or failed run leaves the rest of the listing unread)."""
        for reader in self._readers.values():
            await reader.aclose()
