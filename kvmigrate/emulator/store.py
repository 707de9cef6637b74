"""In-memory state of one vault: versioned objects per collection, soft delete, and eventual consistency.

One ``Collection`` class serves secrets, keys and certificates: what differs (the payload of a version) lives in
``Version.data``. Delete, recover and purge take effect at once for the caller but show only after
``consistency_delay`` seconds, as the real service does (facts §9): a deleted object is 404 on both routes until it
shows under ``deleted*``; a recovered one is 404 until it is back; a purged name stays taken for a while, so a restore
right after a purge gets 409.
"""

from __future__ import annotations

import bisect
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from kvmigrate.emulator.errors import KeyVaultError, bad_parameter, not_found

NAME_RULE = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
MAX_TAGS = 15
_V = TypeVar("_V")
_D = TypeVar("_D")
_MISSING: Any = object()


def new_version_id() -> str:
    return uuid.uuid4().hex


def check_name(name: str) -> None:
    """Key Vault's object-name rule: 1-127 of ``0-9a-zA-Z-``."""
    if not NAME_RULE.match(name):
        raise bad_parameter(
            f"The request URI contains an invalid name: {name}. Object names must be 1-127 characters of 0-9, a-z, "
            "A-Z and -."
        )


def check_tags(tags: Any, *, max_len: int) -> dict[str, str] | None:
    if tags is None:
        return None
    if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise bad_parameter("Tags must be a map of string names to string values.")
    if len(tags) > MAX_TAGS:
        raise bad_parameter(f"Too many tags: {len(tags)}. At most {MAX_TAGS} tags are allowed.")
    for k, v in tags.items():
        if len(k) > max_len or len(v) > max_len:
            raise bad_parameter(f"Tag names and values are limited to {max_len} characters.")
    return dict(tags)


def list_key(key: str) -> str:
    """The order of a listing: Key Vault sorts by the upper-cased name, which is also what a page marker holds."""
    return key.upper()


class NameIndex(dict[str, _V]):
    """A dict of lower-cased names that also keeps its keys in listing order, so a page costs O(page + log n).

    Every way of adding or removing a key keeps ``_order`` in step (``insort`` and a bisect lookup), so code that
    writes ``store.active[...]`` or ``store.deleted.pop(...)`` directly stays correct.
    """

    def __init__(self, items: Iterable[tuple[str, _V]] = ()) -> None:
        super().__init__()
        self._order: list[str] = []
        for key, value in items:
            self[key] = value

    def __setitem__(self, key: str, value: _V) -> None:
        if key not in self:
            bisect.insort_right(self._order, key, key=list_key)
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._unorder(key)

    @overload
    def pop(self, key: str) -> _V: ...
    @overload
    def pop(self, key: str, default: _V | _D) -> _V | _D: ...
    def pop(self, key: str, default: Any = _MISSING) -> Any:
        if key in self:
            value = super().pop(key)
            self._unorder(key)
            return value
        if default is _MISSING:
            raise KeyError(key)
        return default

    def popitem(self) -> tuple[str, _V]:
        key, value = super().popitem()
        self._unorder(key)
        return key, value

    def setdefault(self, key: str, default: _V) -> _V:
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: _V) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __ior__(self, other: Any) -> NameIndex[_V]:  # type: ignore[override,misc]
        self.update(other)
        return self

    def clear(self) -> None:
        super().clear()
        self._order.clear()

    def _unorder(self, key: str) -> None:
        start = bisect.bisect_left(self._order, list_key(key), key=list_key)
        del self._order[self._order.index(key, start)]

    def ordered(self) -> list[_V]:
        """Every value in listing order."""
        return [self[key] for key in self._order]

    def after(self, marker: str) -> Iterator[_V]:
        """Values whose listing key sorts after ``marker``, in order; stop iterating before the index changes."""
        order = self._order
        for position in range(bisect.bisect_right(order, marker, key=list_key), len(order)):
            yield self[order[position]]


@dataclass
class Version:
    """One version of an object: attributes common to all collections plus a collection-specific payload."""

    id: str
    created: int
    updated: int
    enabled: bool = True
    nbf: int | None = None
    exp: int | None = None
    tags: dict[str, str] | None = None
    content_type: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_blob(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created": self.created,
            "updated": self.updated,
            "enabled": self.enabled,
            "nbf": self.nbf,
            "exp": self.exp,
            "tags": self.tags,
            "content_type": self.content_type,
            "data": self.data,
        }

    @classmethod
    def from_blob(cls, raw: dict[str, Any]) -> Version:
        return cls(
            id=raw["id"],
            created=raw["created"],
            updated=raw["updated"],
            enabled=raw["enabled"],
            nbf=raw["nbf"],
            exp=raw["exp"],
            tags=raw["tags"],
            content_type=raw["content_type"],
            data=raw["data"],
        )


@dataclass
class Item:
    """A named object with its versions in creation order (the newest is current)."""

    name: str
    versions: dict[str, Version] = field(default_factory=dict)
    managed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def latest(self) -> Version:
        return next(reversed(self.versions.values()))

    def version(self, version_id: str) -> Version | None:
        return self.versions.get(version_id.lower())

    def add(self, version: Version) -> Version:
        self.versions[version.id] = version
        return version

    def to_blob(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "managed": self.managed,
            "extra": self.extra,
            "versions": [v.to_blob() for v in self.versions.values()],
        }

    @classmethod
    def from_blob(cls, raw: dict[str, Any]) -> Item:
        item = cls(name=raw["name"], managed=raw["managed"], extra=raw["extra"])
        for version in raw["versions"]:
            item.add(Version.from_blob(version))
        return item


@dataclass
class Deleted:
    item: Item
    deleted_date: int
    scheduled_purge: int
    visible_at: float


@dataclass
class Collection:
    """Active and deleted objects of one kind (``secret``, ``key`` or ``certificate``) in one vault."""

    kind: str
    delay: Callable[[], float]
    retention_days: Callable[[], int]
    clock: Callable[[], float] = time.monotonic
    active: NameIndex[Item] = field(default_factory=NameIndex)
    deleted: NameIndex[Deleted] = field(default_factory=NameIndex)
    recovering: dict[str, tuple[Item, float]] = field(default_factory=dict)
    purging: dict[str, float] = field(default_factory=dict)

    def _settle(self) -> None:
        now = self.clock()
        for key, (item, ready) in list(self.recovering.items()):
            if ready <= now:
                del self.recovering[key]
                self.active[key] = item
        for key, free in list(self.purging.items()):
            if free <= now:
                del self.purging[key]

    # -- active objects -------------------------------------------------------------------------------------------
    def get(self, name: str) -> Item:
        self._settle()
        item = self.active.get(name.lower())
        if item is None:
            raise not_found(self.kind, name)
        return item

    def find(self, name: str) -> Item | None:
        self._settle()
        return self.active.get(name.lower())

    def listing_after(self, marker: str, limit: int, where: Callable[[Item], bool] | None = None) -> list[Item]:
        """At most ``limit`` active objects that sort after ``marker`` (a page and its look-ahead), in listing order;
        ``where`` leaves objects out (a listing of certificates without the pending ones)."""
        self._settle()
        found: list[Item] = []
        for item in self.active.after(marker):
            if len(found) >= limit:
                break
            if where is None or where(item):
                found.append(item)
        return found

    def check_writable(self, name: str) -> None:
        """Refuse a write to a name that is deleted, being deleted or being purged (facts §9, §10)."""
        self._settle()
        key = name.lower()
        entry = self.deleted.get(key)
        if entry is not None and entry.visible_at <= self.clock():
            raise KeyVaultError(
                409,
                "Conflict",
                f"{self.kind.capitalize()} {name} is currently in a deleted but recoverable state, and its name cannot "
                f"be reused; in this state, the {self.kind} can only be recovered or purged.",
                inner="ObjectIsDeletedButRecoverable",
            )
        if entry is not None or key in self.purging or key in self.recovering:
            raise KeyVaultError(
                409,
                "Conflict",
                f"{self.kind.capitalize()} {name} is currently being deleted and cannot be re-created; retry later.",
                inner="ObjectIsBeingDeleted",
            )

    def upsert(self, name: str, version: Version, *, managed: bool = False) -> Item:
        """Add a version to ``name``, creating the object if needed."""
        self.check_writable(name)
        item = self.active.get(name.lower())
        if item is None:
            item = Item(name=name, managed=managed)
            self.active[name.lower()] = item
        item.add(version)
        return item

    def restore(self, item: Item, *, object_id: str) -> Item:
        """Put a restored object in place; any other object of that name, active or deleted, is a conflict."""
        self._settle()
        key = item.name.lower()
        if key in self.active or key in self.deleted or key in self.purging or key in self.recovering:
            raise KeyVaultError(
                409,
                "Conflict",
                f"There was a conflict restoring the {self.kind} '{object_id}'. This can happen if either: a second "
                f"{self.kind} with the same name was created after the first {self.kind} was deleted; thus trying to "
                f"restore a {self.kind} whose name is already in use. To fix this, rename the second {self.kind} to "
                f"some other name and try the restore again. Or: multiple operations were performed on this "
                f"{self.kind} in parallel. To fix this, retry the restore operation again.",
            )
        self.active[key] = item
        return item

    # -- soft delete ----------------------------------------------------------------------------------------------
    def delete(self, name: str) -> Deleted:
        item = self.get(name)
        key = name.lower()
        del self.active[key]
        now = int(time.time())
        days = self.retention_days()
        entry = Deleted(item, now, now + days * 86400, self.clock() + self.delay())
        if days:
            self.deleted[key] = entry
        else:
            self.purging[key] = self.clock() + self.delay()
        return entry

    def get_deleted(self, name: str) -> Deleted:
        self._settle()
        entry = self.deleted.get(name.lower())
        if entry is None or entry.visible_at > self.clock():
            raise not_found(self.kind, name, deleted=True)
        return entry

    def deleted_after(self, marker: str, limit: int, where: Callable[[Deleted], bool] | None = None) -> list[Deleted]:
        """At most ``limit`` visible deleted objects that sort after ``marker``; still-hidden ones (and those ``where``
        refuses) are stepped over."""
        now = self.clock()
        found: list[Deleted] = []
        for entry in self.deleted.after(marker):
            if len(found) >= limit:
                break
            if entry.visible_at <= now and (where is None or where(entry)):
                found.append(entry)
        return found

    def recover(self, name: str) -> Item:
        entry = self.get_deleted(name)
        key = name.lower()
        del self.deleted[key]
        self.recovering[key] = (entry.item, self.clock() + self.delay())
        return entry.item

    def purge(self, name: str) -> None:
        self.get_deleted(name)
        key = name.lower()
        del self.deleted[key]
        self.purging[key] = self.clock() + self.delay()
