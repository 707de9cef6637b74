"""What each vault holds, read by listing: the source streamed, the target as a set of names."""

from __future__ import annotations

import asyncio
import fnmatch
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kvmigrate.errors import first_expected
from kvmigrate.models import ObjectType

if TYPE_CHECKING:
    from kvmigrate.endpoints import Sink


def is_selected(name: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> bool:
    """Case-insensitive globs, as Key Vault names are: include (any) then exclude (any)."""
    lowered = name.lower()
    if include and not any(fnmatch.fnmatchcase(lowered, pattern.lower()) for pattern in include):
        return False
    return not any(fnmatch.fnmatchcase(lowered, pattern.lower()) for pattern in exclude)


@dataclass
class TargetIndex:
    """Names present in the target, active and soft-deleted, from one listing pass per type (names only)."""

    active: set[tuple[ObjectType, str]] = field(default_factory=set)
    deleted: set[tuple[ObjectType, str]] = field(default_factory=set)
    pages: int = 0

    @classmethod
    async def load(cls, target: Sink, types: tuple[ObjectType, ...]) -> TargetIndex:
        """List every type's active and deleted names at once.

        Why concurrently: each listing is its own paged call (the first one of each SDK client also answers a 401
        challenge), and one after another they held back the first backup by a dozen round trips.
        """
        index = cls()

        async def active(object_type: ObjectType) -> None:
            async for listed in target.list_objects(object_type):
                index.active.add((object_type, listed.ref.key))

        async def deleted(object_type: ObjectType) -> None:
            async for name in target.list_deleted(object_type):
                index.deleted.add((object_type, name.lower()))

        try:
            async with asyncio.TaskGroup() as group:
                for object_type in types:
                    group.create_task(active(object_type))
                    group.create_task(deleted(object_type))
        except BaseExceptionGroup as failed:
            raise first_expected(failed) from None
        return index
