"""What the engine tells its subscribers, and the run summary built from it (the ``-o json`` document).

The engine emits three events per object — listed, decided, finished — to every subscriber: the summary counts
outcomes, the progress display draws, plan records decisions. Subscribers must be cheap: they run inline.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from kvmigrate.models import Listed, ObjectRef, Outcome

if TYPE_CHECKING:
    from kvmigrate.decide import Decision
    from kvmigrate.routes.base import Assessment


class Subscriber(Protocol):
    """What the engine tells a subscriber (progress display, summary, plan); every method must be cheap."""

    def on_listed(self, listed: Listed) -> None: ...

    def on_decided(self, listed: Listed, decision: Decision, assessment: Assessment | None) -> None: ...

    def on_finished(self, ref: ObjectRef, outcome: Outcome, detail: str | None) -> None: ...


class Events:
    """Broadcast each event to every subscriber, in the order they were added."""

    def __init__(self, *subscribers: Subscriber) -> None:
        self.subscribers: list[Subscriber] = list(subscribers)

    def add(self, subscriber: Subscriber) -> None:
        self.subscribers.append(subscriber)

    def on_listed(self, listed: Listed) -> None:
        for subscriber in self.subscribers:
            subscriber.on_listed(listed)

    def on_decided(self, listed: Listed, decision: Decision, assessment: Assessment | None) -> None:
        for subscriber in self.subscribers:
            subscriber.on_decided(listed, decision, assessment)

    def on_finished(self, ref: ObjectRef, outcome: Outcome, detail: str | None) -> None:
        for subscriber in self.subscribers:
            subscriber.on_finished(ref, outcome, detail)


@dataclass
class Failure:
    type: str
    name: str
    error: str


@dataclass
class RunSummary:
    """What a run did, counted from the engine's events; ``as_dict`` is the ``-o json`` document."""

    source: str
    target: str
    state: Path | None
    dry_run: bool = False
    operation: str = "copy"
    copied: int = 0
    already_copied: int = 0
    previously_done: int = 0
    recopied: int = 0  # finished by an earlier run, missing in the target, copied again
    purged: int = 0
    recovered: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    blocked: list[Failure] = field(default_factory=list)
    pending: list[Failure] = field(default_factory=list)
    skips: list[Failure] = field(default_factory=list)  # skip-existing and conflict-deleted, with why
    notes: list[str] = field(default_factory=list)
    settings: list[dict[str, str]] = field(default_factory=list)  # contacts, issuers, rotation policies
    needs_credentials: list[str] = field(default_factory=list)  # issuers created without their password
    pending_requests: list[str] = field(default_factory=list)  # certificates copied without their pending version
    allow_missing_credentials: bool = False
    deleted: int = 0  # sync --delete
    updated: int = 0  # sync: objects that followed their source (versions appended, attributes updated)
    counters: dict[str, int] = field(default_factory=dict)  # the route's own: appended versions, updated attributes
    per_type: dict[str, Counter[str]] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    throttled: dict[str, int] = field(default_factory=dict)
    elapsed_seconds: float = 0.0
    interrupted: bool = False

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def exit_code(self) -> int:
        """0 when nothing failed (skips are not failures) and no issuer lacks its password (unless allowed)."""
        if self.failures or (self.needs_credentials and not self.allow_missing_credentials):
            return 1
        return 0

    def add_settings(self, results: list[Any]) -> None:
        """Take the settings stage's results: each a line; failures also count as failed (the run exits 1)."""
        for result in results:
            self.settings.append(result.as_dict())
            if result.failed:
                self.failures.append(Failure(result.kind.value, result.name, result.detail or result.reason))
            elif result.action == "needs-credentials":
                self.needs_credentials.append(result.name)

    # -- Subscriber -------------------------------------------------------------------------------------------------
    def on_listed(self, listed: Listed) -> None:
        return None

    def on_decided(self, listed: Listed, decision: Decision, assessment: Assessment | None) -> None:
        return None

    def on_finished(self, ref: ObjectRef, outcome: Outcome, detail: str | None) -> None:
        self.per_type.setdefault(ref.type.plural, Counter())[outcome.value] += 1
        entry = Failure(ref.type.value, ref.name, detail or outcome.value)
        if outcome in (Outcome.COPIED, Outcome.WOULD_COPY):
            self.copied += 1
        elif outcome is Outcome.ALREADY_COPIED:
            self.already_copied += 1
        elif outcome is Outcome.PREVIOUSLY_DONE:
            self.previously_done += 1
        elif outcome is Outcome.UPDATED:
            self.updated += 1
        elif outcome is Outcome.DELETED:
            pass  # counted where the deletion happened (a dry run counts none)
        elif outcome is Outcome.FAILED:
            self.failures.append(entry)
        else:
            self.skipped[outcome.value] += 1
            if outcome in (Outcome.BLOCKED, Outcome.BLOCKED_DISABLED):
                self.blocked.append(entry)
            elif outcome is Outcome.PENDING:
                self.pending.append(entry)
            else:
                self.skips.append(entry)

    def as_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "source": self.source,
            "target": self.target,
            "dry_run": self.dry_run,
            "copied": self.copied,
            "already_copied": self.already_copied,
            "previously_done": self.previously_done,
            "recopied_missing": self.recopied,
            "purged": self.purged,
            "updated": self.updated,
            "deleted": self.deleted,
            **self.counters,
            "recovered": self.recovered,
            "skipped": sum(self.skipped.values()),
            "skipped_by_reason": dict(self.skipped),
            "failed": self.failed,
            "failures": [{"type": f.type, "name": f.name, "error": f.error} for f in self.failures],
            "blocked": [{"type": f.type, "name": f.name, "reason": f.error} for f in self.blocked],
            "pending": [{"type": f.type, "name": f.name, "reason": f.error} for f in self.pending],
            "skipped_objects": [{"type": f.type, "name": f.name, "reason": f.error} for f in self.skips],
            "settings": self.settings,
            "needs_credentials": self.needs_credentials,
            "pending_requests": self.pending_requests,
            "notes": self.notes,
            "by_type": {t: dict(c) for t, c in sorted(self.per_type.items())},
            "requests": sum(self.requests.values()),
            "requests_by_vault": self.requests,
            "throttled": sum(self.throttled.values()),
            "throttled_by_vault": self.throttled,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "interrupted": self.interrupted,
            "state": None if self.state is None else str(self.state),
        }
