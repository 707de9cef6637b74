"""The one decision path: from what the source lists, the route compared and the journal recorded, what to do.

``plan``, ``copy --dry-run`` and ``copy`` all decide through the engine, which calls these two functions, so they
cannot disagree; ``REASONS`` is the one table of what each action means to a user. No IO here.
"""

from __future__ import annotations

from dataclasses import dataclass

from kvmigrate.journal import ItemRecord
from kvmigrate.models import Action, ItemState, Listed
from kvmigrate.options import CopyOptions
from kvmigrate.routes.base import Assessment, Match

#: What each action means, in the words plan and the summary use.
REASONS: dict[Action, str] = {
    Action.COPY: "not in the target",
    Action.RESUME: "an interrupted run wrote the first versions; the missing ones will be appended in order",
    Action.ALREADY_COPIED: "the target holds the same versions",
    Action.PREVIOUSLY_DONE: "finished by an earlier run and unchanged in the source since",
    Action.SKIP_EXISTING: "already exists in the target with other versions",
    Action.CONFLICT_EXISTING: "already exists in the target with other versions (--on-conflict fail)",
    Action.CONFLICT_DELETED: "soft-deleted in the target: restore is refused until it is recovered or purged "
    "(--recover-deleted / --purge-deleted)",
    Action.RECOVER_DELETED: "soft-deleted in the target: it will be recovered, then compared",
    Action.PURGE_AND_COPY: "soft-deleted in the target: it will be PURGED, then copied",
    Action.TOO_MANY_VERSIONS: "more than 500 versions: Key Vault refuses to back it up; --mode value copies it",
    Action.BLOCKED_NOT_EXPORTABLE: "cannot be exported: keys never leave Key Vault, and a certificate whose key is "
    "not exportable neither; move it with backup mode inside one subscription and geography",
    Action.BLOCKED_DISABLED: "its current version is disabled, and Key Vault does not reveal a disabled version's "
    "value (copying the older versions would make an older value current and readable in the target); enable it "
    "in the source and rerun, or --exclude it",
    Action.PENDING: "its only version is a pending certificate request: complete the merge or cancel the request in "
    "the source, then rerun",
    Action.SKIP_MANAGED: "belongs to a certificate; travels with the certificate",
    Action.EXCLUDED: "not selected by --types/--include/--exclude",
    Action.UPDATE: "changed in the source: the target follows",
    Action.CANNOT_FOLLOW: "changed in the source in a way this route cannot carry",
    Action.DELETE: "gone from the source: soft-deleted in the target (never purged)",
}
CHANGED = (
    "changed in the source since an earlier run copied it; `kvmigrate sync` brings the change, or delete the "
    "target's object and rerun"
)
MISSING_AGAIN = "an earlier run copied it, but the target no longer has it: copied again"


def reason_for(action: Action) -> str:
    return REASONS[action]


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str


def _decision(action: Action, *details: str) -> Decision:
    return Decision(action, "; ".join([REASONS[action], *(d for d in details if d)]))


def is_unchanged_and_done(listed: Listed, row: ItemRecord | None, *, present: bool) -> bool:
    """An earlier run finished this object, the source lists it as it was then, and the target still has it."""
    return (
        row is not None
        and row.state is ItemState.DONE
        and bool(row.fingerprint)
        and row.fingerprint == listed.fingerprint
        and present
    )


def decide_listed(
    listed: Listed,
    *,
    selected: bool,
    blocked: Action | None,
    row: ItemRecord | None,
    present: bool,
    trust_fingerprint: bool = True,
) -> Decision | None:
    """Decide what needs no request: exclusions, managed objects, what the route cannot move, finished objects."""
    if not selected:
        return _decision(Action.EXCLUDED)
    if listed.managed:
        return _decision(Action.SKIP_MANAGED)
    if listed.pending:
        return _decision(Action.PENDING)
    if blocked is not None:
        return _decision(blocked)
    if trust_fingerprint and is_unchanged_and_done(listed, row, present=present):
        return _decision(Action.PREVIOUSLY_DONE)
    return None


def decide_assessed(
    listed: Listed,
    assessment: Assessment,
    *,
    options: CopyOptions,
    target_deleted: bool,
    row: ItemRecord | None,
) -> Decision:
    """Decide from the route's comparison of the target with the source (and the journal's row, for the why)."""
    copied_before = row is not None and row.state is ItemState.DONE
    if assessment.blocked is not None:
        return _decision(assessment.blocked, assessment.detail)
    if assessment.too_many_versions:
        return _decision(Action.TOO_MANY_VERSIONS, f"{assessment.versions} versions")
    hidden = (
        f"{assessment.hidden_versions} disabled older version(s) will not be copied (Key Vault hides their values)"
        if assessment.hidden_versions
        else ""
    )
    if assessment.match is Match.SAME:
        return _decision(Action.ALREADY_COPIED, hidden)
    if assessment.match is Match.PREFIX:
        return _decision(Action.RESUME, assessment.detail, hidden)
    if assessment.match is Match.CHANGED:
        return _decision(Action.UPDATE, assessment.detail, hidden)
    if assessment.match is Match.DIFFERENT:
        changed = CHANGED if copied_before and row is not None and row.fingerprint != listed.fingerprint else ""
        action = Action.CONFLICT_EXISTING if options.on_conflict == "fail" else Action.SKIP_EXISTING
        return _decision(action, assessment.detail, changed)
    if target_deleted:
        if options.recover_deleted:
            return _decision(Action.RECOVER_DELETED)
        if options.purge_deleted:
            return _decision(Action.PURGE_AND_COPY, hidden)
        return _decision(Action.CONFLICT_DELETED)
    return _decision(Action.COPY, MISSING_AGAIN if copied_before else "", hidden)
