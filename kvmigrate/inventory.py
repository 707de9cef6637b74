"""What each end holds, read by listing: the source streamed (its first pages fetched early), the target as names.

Both start before anything is written: the first page of each selected type at the source and the target's whole
name index are the run's preflight, so an unreachable vault, a TLS failure, a refused token or a missing ``list``
permission on either side ends the run before a journal or folder exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
from collections import Counter
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


class Inventory:
    """The source's listing of the selected types, in type order; ``prefetch`` reads each type's first page now.

    Why prefetch: a ``list`` denial or an unreachable source shows on the first page, and it must show before the
    run writes anything. The pages fetched are the ones the run then uses, so it costs no request.
    """

    def __init__(self, source: Lister, types: tuple[ObjectType, ...]) -> None:
        self._source = source
        self._types = types
        self._first: dict[ObjectType, tuple[Listed | None, AsyncIterator[Listed]]] = {}
        self.listed: Counter[ObjectType] = Counter()

    async def prefetch(self) -> None:
        async def first(object_type: ObjectType) -> None:
            iterator = self._source.list_objects(object_type)
            head = await anext(iterator, None)
            self._first[object_type] = (head, iterator)

        try:
            async with asyncio.TaskGroup() as group:
                for object_type in self._types:
                    group.create_task(first(object_type))
        except BaseExceptionGroup as failed:
            await self.aclose()
            raise first_expected(failed) from None

    async def __aiter__(self) -> AsyncIterator[Listed]:
        for object_type in self._types:
            if object_type not in self._first:
                iterator = self._source.list_objects(object_type)
                head = await anext(iterator, None)
            else:
                head, iterator = self._first.pop(object_type)
            async with contextlib.aclosing(iterator):  # type: ignore[type-var]
                if head is None:
                    continue
                self.listed[object_type] += 1
                yield head
                async for listed in iterator:
                    self.listed[object_type] += 1
                    yield listed

    async def aclose(self) -> None:
        for _, iterator in self._first.values():
            with contextlib.suppress(Exception):
                await iterator.aclose()  # type: ignore[attr-defined]
        self._first.clear()
