"""IO-free value types shared by inventory, decide, engine, journal and report.

They carry names, version ids and attributes only: never a secret value or a backup blob.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ObjectType(StrEnum):
    """The three kinds of Key Vault object kvmigrate moves."""

    SECRET = "secret"
    KEY = "key"
    CERTIFICATE = "certificate"

    @property
    def plural(self) -> str:
        """The collection name used on the wire and in ``--types`` (``secrets``...)."""
        return f"{self.value}s"

    @classmethod
    def parse(cls, text: str) -> ObjectType:
        """Accept ``secret``/``secrets`` (any case); raise ``ValueError`` otherwise."""
        word = text.strip().lower()
        for member in cls:
            if word in (member.value, member.plural):
                return member
        raise ValueError(f"unknown object type {text!r}: use secrets, keys or certificates")


@dataclass(frozen=True, order=True)
class ObjectRef:
    """One named object of one type; names compare case-insensitively as in Key Vault."""

    type: ObjectType
    name: str = field(compare=False)
    key: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", self.name.lower())

    def __str__(self) -> str:
        return f"{self.type.value} {self.name}"


@dataclass(frozen=True, slots=True)
class Listed:
    """One object as a listing shows it: enough to filter, plan and notice a change without reading it.

    ``fingerprint`` summarises what the listing shows of the object (the current version's update time, enabled
    state, expiry, tags, content type, thumbprint): the journal keeps it for finished objects, so a rerun re-decides
    exactly the objects that changed in the source, at no extra request. ``pending``: a certificate whose only
    version is a pending request (listed only with ``includePending``).
    """

    ref: ObjectRef
    managed: bool = False
    enabled: bool | None = None
    fingerprint: str = ""
    pending: bool = False


def fingerprint(**fields: Any) -> str:
    """A short stable digest of a listing's fields (values are attributes, never secret material)."""
    text = json.dumps(fields, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class ItemState(StrEnum):
    """Where one object is in a run; the journal stores these.

    ``restoring`` is committed (durably) before the target write, so a crash leaves a row that resume settles by
    looking at the target; ``done`` after it. ``skipped`` and ``failed`` say how the last run ended for the object;
    both are decided afresh on a rerun (the user may have fixed the cause). Only ``done`` is final, and only while
    the source's listing fingerprint is unchanged and the target still holds the object.
    """

    RESTORING = "restoring"
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"


class Action(StrEnum):
    """What a run does (or would do) with one source object: ``plan`` lists these, the engine acts on them."""

    COPY = "copy"
    RESUME = "resume"  # by value: the target holds the first versions; the missing ones are appended in order
    ALREADY_COPIED = "already-copied"
    PREVIOUSLY_DONE = "previously-done"
    SKIP_EXISTING = "skip-existing"
    CONFLICT_EXISTING = "conflict-existing"  # --on-conflict fail: the object is counted as failed
    CONFLICT_DELETED = "conflict-deleted"
    RECOVER_DELETED = "recover-deleted"
    PURGE_AND_COPY = "purge-and-copy"
    TOO_MANY_VERSIONS = "too-many-versions"
    BLOCKED_NOT_EXPORTABLE = "blocked-not-exportable"  # value mode: keys, and certificates without exportable keys
    BLOCKED_DISABLED = "blocked-disabled"  # value mode: the current version is disabled, so its value is hidden
    PENDING = "pending"  # a certificate whose only version is a pending request
    SKIP_MANAGED = "skip-managed"
    EXCLUDED = "excluded"
    UPDATE = "update"  # sync: new versions appended and/or attributes updated in place
    CANNOT_FOLLOW = "cannot-follow"  # sync: a change the route cannot carry (a new key version, an older version)
    DELETE = "delete"  # sync --delete: gone from the source, soft-deleted in the target

    @property
    def writes(self) -> bool:
        """Whether the action writes to the target (the dry-run gate stops exactly these)."""
        return self in (Action.COPY, Action.RESUME, Action.PURGE_AND_COPY, Action.RECOVER_DELETED, Action.UPDATE)

    @property
    def fails(self) -> bool:
        return self in (Action.CONFLICT_EXISTING, Action.TOO_MANY_VERSIONS, Action.CANNOT_FOLLOW)

    @property
    def is_blocked(self) -> bool:
        return self in (Action.BLOCKED_NOT_EXPORTABLE, Action.BLOCKED_DISABLED)


class Outcome(StrEnum):
    """How an object ended, as summaries count it (and the journal's ``outcome`` column stores it)."""

    COPIED = "copied"
    ALREADY_COPIED = "already-copied"
    PREVIOUSLY_DONE = "previously-done"
    SKIPPED_EXISTING = "skip-existing"
    CONFLICT_DELETED = "conflict-deleted"
    BLOCKED = "blocked-not-exportable"
    BLOCKED_DISABLED = "blocked-disabled"
    PENDING = "pending"
    FAILED = "failed"
    WOULD_COPY = "would-copy"  # dry run
    UPDATED = "updated"  # sync
    DELETED = "deleted"  # sync --delete

    @property
    def is_skip(self) -> bool:
        return self in (
            Outcome.SKIPPED_EXISTING,
            Outcome.CONFLICT_DELETED,
            Outcome.BLOCKED,
            Outcome.BLOCKED_DISABLED,
            Outcome.PENDING,
        )


#: The outcome each final action ends in (the actions that write end in ``copied`` or ``failed``).
OUTCOME_OF: dict[Action, Outcome] = {
    Action.ALREADY_COPIED: Outcome.ALREADY_COPIED,
    Action.PREVIOUSLY_DONE: Outcome.PREVIOUSLY_DONE,
    Action.SKIP_EXISTING: Outcome.SKIPPED_EXISTING,
    Action.CONFLICT_DELETED: Outcome.CONFLICT_DELETED,
    Action.BLOCKED_NOT_EXPORTABLE: Outcome.BLOCKED,
    Action.BLOCKED_DISABLED: Outcome.BLOCKED_DISABLED,
    Action.PENDING: Outcome.PENDING,
    Action.CONFLICT_EXISTING: Outcome.FAILED,
    Action.TOO_MANY_VERSIONS: Outcome.FAILED,
    Action.CANNOT_FOLLOW: Outcome.FAILED,
}
