"""Pure planning: from what both vaults hold, decide what copy does with each object. No IO here.

``decide`` is the one decision function: ``copy`` calls it per object while it runs, ``plan`` for every object up
front, so the plan shows exactly what copy would do.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from kvmigrate.models import Action, ObjectRef, ObjectType
from kvmigrate.options import CopyOptions

MAX_BACKUP_VERSIONS = 500
PAGE_SIZE = 25


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str


def decide(
    ref: ObjectRef,
    *,
    options: CopyOptions,
    managed: bool = False,
    selected: bool = True,
    source_versions: Sequence[str] | None = None,
    target_versions: Sequence[str] = (),
    target_deleted: bool = False,
    by_value: bool = False,
) -> Decision:
    """What copy does with ``ref``. ``source_versions`` may be None when not read (then it is not compared).

    ``by_value``: value mode (or auto mode after its switch): keys cannot move, the 500-version limit does not
    apply, and version ids never match (values are recreated as new versions).
    """
    if not selected:
        return Decision(Action.EXCLUDED, "not selected by --types/--include/--exclude")
    if managed:
        return Decision(Action.SKIP_MANAGED, "belongs to a certificate; travels inside the certificate's backup")
    if by_value and ref.type is ObjectType.KEY:
        return Decision(
            Action.BLOCKED_NOT_EXPORTABLE,
            "Key Vault keys cannot be exported; move keys with backup mode inside one subscription and geography",
        )
    if by_value and target_versions:
        if options.on_conflict == "fail":
            return Decision(
                Action.CONFLICT_EXISTING, "an object of this name exists in the target (--on-conflict fail)"
            )
        return Decision(Action.SKIP_EXISTING, "an object of this name exists in the target")
    if not by_value and source_versions is not None and len(source_versions) > MAX_BACKUP_VERSIONS:
        return Decision(
            Action.TOO_MANY_VERSIONS,
            f"{len(source_versions)} versions: Key Vault refuses to back up more than {MAX_BACKUP_VERSIONS}",
        )
    if target_versions:
        if source_versions is not None and sorted(source_versions) == sorted(target_versions):
            return Decision(Action.ALREADY_COPIED, "the target holds the same version ids")
        if options.on_conflict == "fail":
            return Decision(
                Action.CONFLICT_EXISTING,
                "an object of this name with other versions exists in the target (--on-conflict fail)",
            )
        return Decision(Action.SKIP_EXISTING, "an object of this name with other versions exists in the target")
    if target_deleted:
        if options.recover_deleted:
            return Decision(Action.RECOVER_DELETED, "soft-deleted in the target: it will be recovered, not copied")
        if options.purge_deleted:
            return Decision(Action.PURGE_AND_COPY, "soft-deleted in the target: it will be PURGED, then restored")
        return Decision(
            Action.CONFLICT_DELETED,
            "soft-deleted in the target: restore is refused until it is recovered or purged "
            "(--recover-deleted / --purge-deleted)",
        )
    return Decision(Action.COPY, "")


@dataclass(slots=True)
class PlanItem:
    """One source object's line in the plan. Slots: a plan of 100,000 objects holds 100,000 of these."""

    type: str
    name: str
    versions: int | None
    enabled: bool | None
    action: Action
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "name": self.name,
            "versions": self.versions,
            "enabled": self.enabled,
            "action": self.action.value,
            "reason": self.reason,
        }


@dataclass
class Plan:
    """Every source object with its action, and what copy would cost on each vault."""

    source: str
    target: str
    rps: float
    items: list[PlanItem] = field(default_factory=list)
    source_pages: int = 0
    target_pages: int = 0

    def counts(self) -> dict[str, dict[str, int]]:
        table: dict[str, Counter[str]] = {}
        for item in self.items:
            table.setdefault(item.action.value, Counter())[item.type] += 1
        return {action: dict(types) for action, types in sorted(table.items())}

    def requests(self) -> dict[str, int]:
        """Requests copy would make per vault: listings, a version read per name in both, backup and restore."""
        copying = sum(1 for i in self.items if i.action in (Action.COPY, Action.PURGE_AND_COPY))
        compared = sum(
            1 for i in self.items if i.action in (Action.ALREADY_COPIED, Action.SKIP_EXISTING, Action.CONFLICT_EXISTING)
        )
        purges = sum(1 for i in self.items if i.action is Action.PURGE_AND_COPY)
        recovers = sum(1 for i in self.items if i.action is Action.RECOVER_DELETED)
        challenges = 3  # one 401 probe per SDK client
        return {
            self.source: challenges + self.source_pages + copying + compared,
            self.target: challenges + self.target_pages + copying + compared + purges + 2 * recovers,
        }

    def eta_seconds(self) -> float:
        """Both vaults work in parallel: the busier one at ``rps`` bounds the run."""
        return round(max(self.requests().values(), default=0) / self.rps, 2)

    def warnings(self) -> list[str]:
        notes = []
        for item in self.items:
            if item.action is Action.TOO_MANY_VERSIONS:
                notes.append(f"{item.type} {item.name}: {item.reason}; copy will fail for it")
            elif item.action is Action.CONFLICT_EXISTING:
                notes.append(f"{item.type} {item.name}: exists in the target; copy will count it as failed")
            elif item.action is Action.BLOCKED_NOT_EXPORTABLE:
                notes.append(f"{item.type} {item.name}: {item.reason}")
            elif item.action is Action.PURGE_AND_COPY:
                notes.append(f"{item.type} {item.name}: will be purged from the target (irreversible)")
        return notes

    def summary(self) -> dict[str, Any]:
        return {
            "objects": len(self.items),
            "counts": self.counts(),
            "requests": self.requests(),
            "eta_seconds": self.eta_seconds(),
            "rps": self.rps,
            "warnings": self.warnings(),
        }

    def blocked(self) -> Iterator[PlanItem]:
        """The items value mode cannot move, in plan order (the ``blocked`` list of the JSON document)."""
        return (i for i in self.items if i.action is Action.BLOCKED_NOT_EXPORTABLE)

    def as_dict(self) -> dict[str, Any]:
        """The whole ``-o json`` document in memory; ``report.write_plan_json`` streams the same text."""
        blocked = [i.as_dict() for i in self.blocked()]
        return {
            "source": self.source,
            "target": self.target,
            "items": [i.as_dict() for i in self.items],
            "blocked": blocked,
            "summary": self.summary(),
        }


def pages(count: int) -> int:
    """List requests for ``count`` objects at Key Vault's 25 per page (an empty listing is still one page)."""
    return max(1, math.ceil(count / PAGE_SIZE))
