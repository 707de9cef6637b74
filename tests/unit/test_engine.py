"""The engine with in-memory ends: no sockets, no SDK; resume, conflicts, recover, purge wait, auto fallback, stop.

``MemoryVault`` is a real (if small) vault end: blobs are JSON of an object's versions, a restore refuses a name
that exists, a purge keeps the name busy for a few attempts, a recover shows the object a few looks later.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kvmigrate import engine as engine_module
from kvmigrate.engine import Engine
from kvmigrate.errors import (
    ObjectConflictError,
    PermissionDeniedError,
    VaultUnreachableError,
    WrongSecurityDomainError,
)
from kvmigrate.journal import ItemRecord, Journal
from kvmigrate.models import Action, Listed, ObjectRef, ObjectType, fingerprint
from kvmigrate.options import CopyOptions
from kvmigrate.routes.auto import AutoRoute
from kvmigrate.routes.base import Assessment, Blob, Match
from kvmigrate.routes.blobs import BlobRoute

S = ObjectType.SECRET


@dataclass
class MemoryVault:
    """A vault end in memory: objects are lists of version ids; blobs carry them as JSON."""

    label: str
    objects: dict[tuple[ObjectType, str], list[str]] = field(default_factory=dict)
    deleted: dict[tuple[ObjectType, str], list[str]] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    busy_after_purge: int = 0  # restores refused with 409 right after a purge
    hidden_after_recover: int = 0  # looks that still miss a recovered object
    refuse_blobs: bool = False  # another subscription: every restore is refused
    deny: set[str] = field(default_factory=set)  # "backup/NAME" or "backup"
    unreachable: bool = False
    finished: list[bool] = field(default_factory=list)  # what each finish() was told: was the run complete?
    wants_versions = False

    def add(self, name: str, versions: int = 1) -> None:
        self.objects[(S, name.lower())] = [f"{name}-v{i}" for i in range(versions)]

    def _name(self, key: tuple[ObjectType, str]) -> str:
        return key[1]

    async def list_objects(self, object_type: ObjectType) -> AsyncIterator[Listed]:
        self.calls["list"] += 1
        if self.unreachable:
            raise VaultUnreachableError(f"vault {self.label} is unreachable", vault=self.label)
        for (kind, name), versions in sorted(self.objects.items()):
            if kind is object_type:
                yield Listed(ObjectRef(kind, name), enabled=True, fingerprint=fingerprint(versions=versions))

    async def list_deleted(self, object_type: ObjectType) -> AsyncIterator[str]:
        for kind, name in sorted(self.deleted):
            if kind is object_type:
                yield name

    async def versions(self, ref: ObjectRef) -> list[str]:
        self.calls["versions"] += 1
        if self.hidden_after_recover:
            self.hidden_after_recover -= 1
            return []
        return sorted(self.objects.get((ref.type, ref.key), []))

    def _check(self, operation: str, ref: ObjectRef) -> None:
        if operation in self.deny or f"{operation}/{ref.key}" in self.deny:
            raise PermissionDeniedError(
                f"vault {self.label} denied {operation} of {ref}", vault=self.label, operation=operation, status=403
            )

    async def backup(self, ref: ObjectRef) -> bytes:
        self.calls["backup"] += 1
        self._check("backup", ref)
        await asyncio.sleep(0)
        return json.dumps({"name": ref.name, "versions": self.objects[(ref.type, ref.key)]}).encode()

    def others(self, ref: ObjectRef) -> tuple[ObjectType, ...]:
        return ()

    async def delete(self, ref: ObjectRef) -> None:
        self.objects.pop((ref.type, ref.key), None)

    async def restore(self, ref: ObjectRef, blob: Blob) -> ObjectRef | None:
        self.calls["restore"] += 1
        self._check("restore", ref)
        await asyncio.sleep(0)
        if self.refuse_blobs:
            raise WrongSecurityDomainError(f"vault {self.label} refused the backup of {ref}", vault=self.label)
        key = (ref.type, ref.key)
        if self.busy_after_purge:
            self.busy_after_purge -= 1
            raise ObjectConflictError(f"{ref} is currently being deleted", vault=self.label, status=409)
        if key in self.objects or key in self.deleted:
            raise ObjectConflictError(f"{ref} exists", vault=self.label, status=409)
        self.objects[key] = list(json.loads(blob.data)["versions"])
        return None

    async def recover_deleted(self, ref: ObjectRef) -> None:
        self.calls["recover"] += 1
        self.objects[(ref.type, ref.key)] = self.deleted.pop((ref.type, ref.key))

    async def purge_deleted(self, ref: ObjectRef) -> None:
        self.calls["purge"] += 1
        del self.deleted[(ref.type, ref.key)]

    async def prepare(self) -> None:
        return None

    def finish(self, *, complete: bool) -> None:
        self.finished.append(complete)


class MemoryValues:
    """A stand-in value route for auto mode: it copies what it is given, without version ids."""

    route = "value"
    name = "values"
    limiters: dict[str, Any] = {}

    def __init__(self, source: MemoryVault, target: MemoryVault) -> None:
        self.source, self.target = source, target
        self.written: list[str] = []

    def blocked(self, listed: Listed) -> Action | None:
        return Action.BLOCKED_NOT_EXPORTABLE if listed.ref.type is ObjectType.KEY else None

    async def assess(
        self, listed: Listed, *, present: bool, row: ItemRecord | None, journal: Journal, thorough: bool
    ) -> Assessment:
        return Assessment(Match.ABSENT, "value", versions=1)

    async def read(self, listed: Listed, assessment: Assessment) -> Any:
        return listed.ref.name

    async def write(self, listed: Listed, payload: Any, assessment: Assessment, journal: Journal) -> ObjectRef | None:
        self.written.append(payload)
        self.target.objects[(listed.ref.type, listed.ref.key)] = ["by-value"]
        return None

    async def delete(self, ref: ObjectRef) -> None: ...

    def counters(self) -> dict[str, int]:
        return {}

    async def recover(self, ref: ObjectRef) -> None: ...

    async def purge(self, ref: ObjectRef) -> None: ...

    async def prepare(self) -> None: ...

    def finish(self, *, complete: bool) -> None: ...

    def notes(self) -> list[str]:
        return []


def options(tmp_path: Path, **overrides: Any) -> CopyOptions:
    values: dict[str, Any] = {
        "source": "https://src.vault.azure.net",
        "target": "https://dst.vault.azure.net",
        "state": tmp_path / "journal.db",
        "types": (S,),
        "concurrency": 4,
    }
    values.update(overrides)
    return CopyOptions.model_validate(values)


def ends(count: int = 10, versions: int = 2) -> tuple[MemoryVault, MemoryVault, BlobRoute]:
    source, target = MemoryVault("https://src.vault.azure.net"), MemoryVault("https://dst.vault.azure.net")
    for index in range(count):
        source.add(f"s{index:03d}", versions)
    return source, target, BlobRoute(source, target, name="blobs", limiters={})


async def test_copy_then_resume_redoes_nothing(tmp_path: Path) -> None:
    source, target, route = ends(10)
    summary = await Engine(options(tmp_path), route=route).run()
    assert summary.copied == 10 and target.objects == source.objects and target.finished == [True]
    source.calls.clear()
    again = await Engine(options(tmp_path), route=route).run()
    assert again.previously_done == 10 and source.calls["backup"] == 0 and source.calls["versions"] == 0


async def test_an_in_flight_object_is_settled_by_looking_at_the_target(tmp_path: Path) -> None:
    source, target, route = ends(3)
    with Journal.open(tmp_path / "journal.db", source=source.label, target=target.label, operation="copy") as journal:
        await journal.mark_restoring(ObjectRef(S, "s001"), route="blob")
    target.objects[(S, "s001")] = list(source.objects[(S, "s001")])  # the restore happened, its answer was lost
    summary = await Engine(options(tmp_path), route=route).run()
    assert summary.copied == 2 and summary.already_copied == 1 and target.calls["restore"] == 2


async def test_conflicts_skip_or_fail(tmp_path: Path) -> None:
    source, target, route = ends(3)
    target.objects[(S, "s000")] = ["someone-else"]
    skip = await Engine(options(tmp_path, state=tmp_path / "a.db"), route=route).run()
    assert skip.skipped == {"skip-existing": 1} and skip.failed == 0
    target.objects.clear()
    target.objects[(S, "s000")] = ["someone-else"]
    fail = await Engine(options(tmp_path, state=tmp_path / "b.db", on_conflict="fail"), route=route).run()
    assert [f.name for f in fail.failures] == ["s000"] and "already exists" in fail.failures[0].error
    assert target.objects[(S, "s000")] == ["someone-else"]  # never overwritten


async def test_recover_deleted_then_compare(tmp_path: Path) -> None:
    source, target, route = ends(2)
    target.deleted[(S, "s001")] = list(source.objects[(S, "s001")])
    target.hidden_after_recover = 2  # Key Vault shows a recovered object only a little later
    monkey = pytest.MonkeyPatch()
    monkey.setattr(engine_module, "SETTLE_INTERVAL", 0.0)
    try:
        summary = await Engine(options(tmp_path, recover_deleted=True), route=route).run()
    finally:
        monkey.undo()
    assert summary.recovered == 1 and summary.already_copied == 1 and summary.copied == 1
    assert target.calls["recover"] == 1 and target.calls["restore"] == 1


async def test_purge_then_wait_for_the_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "SETTLE_INTERVAL", 0.0)
    source, target, route = ends(1)
    target.deleted[(S, "s000")] = ["old"]
    target.busy_after_purge = 3
    summary = await Engine(options(tmp_path, purge_deleted=True), route=route).run()
    assert summary.purged == 1 and summary.copied == 1 and target.calls["restore"] == 4
    assert target.objects[(S, "s000")] == source.objects[(S, "s000")]


async def test_conflict_deleted_without_flags(tmp_path: Path) -> None:
    _, target, route = ends(1)
    target.deleted[(S, "s000")] = ["old"]
    summary = await Engine(options(tmp_path), route=route).run()
    assert summary.skipped == {"conflict-deleted": 1} and target.calls["restore"] == 0


async def test_auto_falls_back_to_values_inside_the_write(tmp_path: Path) -> None:
    source, target, blobs = ends(5)
    target.refuse_blobs = True
    values = MemoryValues(source, target)
    route = AutoRoute(blobs, values, limiters={})  # type: ignore[arg-type]
    summary = await Engine(options(tmp_path), route=route).run()
    assert summary.copied == 5 and summary.failed == 0 and route.switched
    assert sorted(values.written) == [f"s{i:03d}" for i in range(5)]
    assert target.calls["restore"] >= 1 and any("switched to value mode" in note for note in summary.notes)


async def test_a_dry_run_writes_nothing_and_keeps_no_journal(tmp_path: Path) -> None:
    source, target, route = ends(4)
    target.deleted[(S, "s003")] = ["old"]
    summary = await Engine(options(tmp_path, dry_run=True, purge_deleted=True), route=route).run()
    assert summary.copied == 4 and summary.dry_run  # would copy, including the one it would purge
    assert target.calls["restore"] == target.calls["purge"] == 0 and source.calls["backup"] == 0
    assert list(tmp_path.iterdir()) == []


async def test_stop_finishes_in_flight_and_a_rerun_does_the_rest(tmp_path: Path) -> None:
    source, target, route = ends(200)
    stop = asyncio.Event()

    class StopAfter:
        def __init__(self) -> None:
            self.finished = 0

        def on_listed(self, listed: Listed) -> None: ...

        def on_decided(self, listed: Listed, decision: object, assessment: object) -> None: ...

        def on_finished(self, ref: ObjectRef, outcome: object, detail: object) -> None:
            self.finished += 1
            if self.finished == 20:
                stop.set()

    summary = await Engine(options(tmp_path), route=route, stop=stop, events=StopAfter()).run()  # type: ignore[arg-type]
    assert summary.interrupted and 20 <= summary.copied < 200
    rest = await Engine(options(tmp_path), route=route).run()
    assert rest.previously_done == summary.copied and rest.copied == 200 - summary.copied
    assert target.objects == source.objects


@pytest.mark.parametrize("failure", ["unreachable", "denied", "wrong-domain"])
async def test_a_fatal_error_ends_a_large_run_at_once(tmp_path: Path, failure: str) -> None:
    source, target, route = ends(3000, versions=1)
    if failure == "unreachable":
        target.unreachable = True
    elif failure == "denied":
        source.deny = {"backup"}
    else:
        target.refuse_blobs = True
    started = time.monotonic()
    with pytest.raises((VaultUnreachableError, PermissionDeniedError, WrongSecurityDomainError)):
        await asyncio.wait_for(Engine(options(tmp_path), route=route).run(), timeout=20)
    assert time.monotonic() - started < 20
    assert source.calls["backup"] < 100  # it stopped, it did not carry on through the listing
    assert target.finished == ([] if failure == "unreachable" else [False])  # an archive would say: not complete


async def test_a_denial_scoped_to_one_object_fails_only_that_object(tmp_path: Path) -> None:
    source, target, route = ends(300, versions=1)
    source.deny = {"backup/s000", "backup/s150"}
    summary = await Engine(options(tmp_path), route=route).run()
    assert summary.copied == 298 and sorted(f.name for f in summary.failures) == ["s000", "s150"]
