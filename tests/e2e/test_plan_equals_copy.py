"""Plan, then copy, on pairs that exercise every action: per object, copy did exactly what plan said."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from azure.keyvault.certificates import CertificatePolicy, WellKnownIssuerNames

from kvmigrate.emulator import Emulator
from kvmigrate.emulator.store import Version, new_version_id
from kvmigrate.engine import Engine
from kvmigrate.models import Action, Listed, ObjectRef, Outcome
from kvmigrate.options import ConnectionOptions, CopyOptions
from kvmigrate.plan import build_plan
from kvmigrate.vault.clients import VaultClients
from tests.seed import fill

#: What copy must end in for each action plan predicted (not in the summary at all: excluded and managed).
RESULT = {
    Action.COPY: Outcome.COPIED,
    Action.RESUME: Outcome.COPIED,
    Action.PURGE_AND_COPY: Outcome.COPIED,
    Action.ALREADY_COPIED: Outcome.ALREADY_COPIED,
    Action.SKIP_EXISTING: Outcome.SKIPPED_EXISTING,
    Action.CONFLICT_EXISTING: Outcome.FAILED,
    Action.CONFLICT_DELETED: Outcome.CONFLICT_DELETED,
    Action.TOO_MANY_VERSIONS: Outcome.FAILED,
    Action.BLOCKED_NOT_EXPORTABLE: Outcome.BLOCKED,
    Action.BLOCKED_DISABLED: Outcome.BLOCKED_DISABLED,
    Action.PENDING: Outcome.PENDING,
}


class Outcomes:
    """The recording subscriber of the copy: how each object ended."""

    def __init__(self) -> None:
        self.by_ref: dict[tuple[str, str], Outcome] = {}

    def on_listed(self, listed: Listed) -> None: ...

    def on_decided(self, listed: Listed, decision: object, assessment: object) -> None: ...

    def on_finished(self, ref: ObjectRef, outcome: Outcome, detail: str | None) -> None:
        self.by_ref[(ref.type.value, ref.name)] = outcome


def options(emulator: Emulator, target: str, tmp_path: Path, **overrides: Any) -> CopyOptions:
    return CopyOptions.model_validate(
        {
            "source": emulator.vaults["src"].url,
            "target": emulator.vaults[target].url,
            "state": tmp_path / f"{target}.db",
            "connection": ConnectionOptions(ca_bundle=emulator.ca_file, tenant_id=None),
            **overrides,
        }
    )


async def plan_then_copy(emulator: Emulator, opts: CopyOptions) -> dict[Action, int]:
    plan = await build_plan(opts)
    recorder = Outcomes()
    await Engine(opts, events=recorder).run()
    seen: dict[Action, int] = {}
    for item in plan.items:
        seen[item.action] = seen.get(item.action, 0) + 1
        got = recorder.by_ref.get((item.type, item.name))
        if opts.mode == "auto" and item.action is Action.COPY and got in (Outcome.BLOCKED, Outcome.BLOCKED_DISABLED):
            # Auto mode learns at its first write that the target refuses blobs (plan warns of it): what cannot
            # move by value (keys, a disabled current version) is then blocked.
            assert any("auto mode" in warning for warning in plan.warnings())
            continue
        if item.action in (Action.EXCLUDED, Action.SKIP_MANAGED):
            assert got is None, (item, got)
        else:
            assert got is RESULT[item.action], (item.type, item.name, item.action, got)
    return seen


async def seed_backup_pair(emulator: Emulator, src: VaultClients, dst: VaultClients) -> None:
    fill(emulator, "src", 6, prefix="p")
    await dst.secrets.set_secret("p-0000", "someone else's")  # skip-existing / conflict-existing
    await dst.secrets.set_secret("p-0001", "deleted in the target")
    await dst.secrets.delete_secret("p-0001", _polling_interval=0.05)  # conflict-deleted / purge-and-copy
    huge = emulator.vaults["src"].vault.secrets
    huge.upsert("huge", Version(id=new_version_id(), created=1, updated=1, data={"value": "0"}))
    for i in range(501):
        huge.get("huge").add(Version(id=new_version_id(), created=2 + i, updated=2 + i, data={"value": str(i)}))
    await src.secrets.set_secret("skip-me", "excluded")
    await src.keys.create_ec_key("k1")
    await src.certificates.create_certificate("c1", CertificatePolicy.get_default(), _polling_interval=0.1)
    pending = CertificatePolicy(issuer_name=WellKnownIssuerNames.unknown, subject="CN=pending")
    await asyncio.wait_for(src.certificates.create_certificate("waiting", pending), timeout=20)


async def test_every_action_of_backup_mode(
    emulator: Emulator, src: VaultClients, dst: VaultClients, tmp_path: Path
) -> None:
    await seed_backup_pair(emulator, src, dst)
    first = options(emulator, "dst", tmp_path, include=("p-0005",), state=tmp_path / "first.db")
    await Engine(first).run()  # p-0005 is then already copied
    seen = await plan_then_copy(emulator, options(emulator, "dst", tmp_path, exclude=("skip-*",)))
    assert set(seen) >= {
        Action.COPY,
        Action.ALREADY_COPIED,
        Action.SKIP_EXISTING,
        Action.CONFLICT_DELETED,
        Action.TOO_MANY_VERSIONS,
        Action.EXCLUDED,
        Action.SKIP_MANAGED,
        Action.PENDING,
    }, seen
    flagged = options(emulator, "dst", tmp_path, on_conflict="fail", purge_deleted=True, state=tmp_path / "f.db")
    await dst.secrets.set_secret("p-0002", "another stranger")
    more = await plan_then_copy(emulator, flagged)
    assert {Action.CONFLICT_EXISTING, Action.PURGE_AND_COPY} <= set(more), more


@pytest.mark.parametrize("mode", ["value", "auto"])
async def test_every_action_of_value_and_auto_mode(
    emulator: Emulator, src: VaultClients, far: VaultClients, tmp_path: Path, mode: str
) -> None:
    fill(emulator, "src", 5, prefix="q", versions=3)
    await src.secrets.set_secret("off", "hidden", enabled=False)  # blocked-disabled
    await src.keys.create_rsa_key("k1")  # blocked-not-exportable (keys never move by value)
    source_store = emulator.vaults["src"].vault.secrets
    for version in list(source_store.get("q-0001").versions.values())[:2]:  # a half-written earlier copy: resume
        await far.secrets.set_secret(
            "q-0001", version.data["value"], content_type=version.content_type, tags=version.tags
        )
    await far.secrets.set_secret("q-0002", "not from the source")  # skip-existing
    copied = options(emulator, "far", tmp_path, mode="value", include=("q-0003",), state=tmp_path / "pre.db")
    await Engine(copied).run()  # already-copied, compared by value
    seen = await plan_then_copy(emulator, options(emulator, "far", tmp_path, mode=mode))
    expected = {Action.COPY, Action.RESUME, Action.SKIP_EXISTING, Action.ALREADY_COPIED}
    if mode == "value":
        expected |= {Action.BLOCKED_NOT_EXPORTABLE, Action.BLOCKED_DISABLED}
    assert expected <= set(seen), seen
