"""What each vault holds, read by listing: the source streamed, the target as a set of names."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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
        index = cls()
        for object_type in types:
            async for listed in target.list_objects(object_type):
                index.active.add((object_type, listed.ref.key))
            async for name in target.list_deleted(object_type):
                index.deleted.add((object_type, name.lower()))
        return index
