"""IO-free value types shared by inventory, plan, engine, journal and report.

They carry names, version ids and attributes only: never a secret value or a backup blob.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


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


class ItemState(StrEnum):
    """Where one object is in a run; the journal stores these.

    ``pending → restoring → done``; ``restoring`` is committed before the target write so a crash leaves a row that
    resume settles by looking at the target. ``skipped`` and ``failed`` are final for a run. ``backed_up`` is
    written only when an in-flight row was settled and is about to be written again: a blob is kept only in memory,
    so a rerun backs the object up again whatever that row says.
    """

    PENDING = "pending"
    BACKED_UP = "backed_up"
    RESTORING = "restoring"
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in (ItemState.DONE, ItemState.SKIPPED)


class Outcome(StrEnum):
    """How an object ended, as reported in summaries."""

    COPIED = "copied"
    ALREADY_COPIED = "already-copied"
    SKIPPED_EXISTING = "skip-existing"
    CONFLICT_DELETED = "conflict-deleted"
    BLOCKED = "blocked-not-exportable"
    FAILED = "failed"


class Action(StrEnum):
    """What copy does (or would do) with one source object; ``plan`` lists these."""

    COPY = "copy"
    ALREADY_COPIED = "already-copied"
    SKIP_EXISTING = "skip-existing"
    CONFLICT_EXISTING = "conflict-existing"  # --on-conflict fail: the object is counted as failed
    CONFLICT_DELETED = "conflict-deleted"
    RECOVER_DELETED = "recover-deleted"
    PURGE_AND_COPY = "purge-and-copy"
    TOO_MANY_VERSIONS = "too-many-versions"
    BLOCKED_NOT_EXPORTABLE = "blocked-not-exportable"  # value mode: keys, and certificates without exportable keys
    SKIP_MANAGED = "skip-managed"
    EXCLUDED = "excluded"
