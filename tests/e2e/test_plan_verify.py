"""``plan`` and ``verify`` against emulated vaults: what copy would do, and proof that nothing was lost."""

from __future__ import annotations

import json
from pathlib import Path

from kvmigrate.emulator import Emulator
from kvmigrate.emulator.store import Version, new_version_id
from kvmigrate.engine import Engine
from kvmigrate.models import Action
from kvmigrate.options import ConnectionOptions, CopyOptions
from kvmigrate.plan import build_plan
from kvmigrate.vault.clients import VaultClients
from kvmigrate.verify import verify
from tests.e2e.test_copy import _in_thread, run_cli
from tests.helpers import verify_options
from tests.seed import seed_mixed, seed_secrets


def options(emulator: Emulator, tmp_path: Path, **overrides: object) -> CopyOptions:
    values: dict[str, object] = {
        "source": emulator.vaults["src"].url,
        "target": emulator.vaults["dst"].url,
        "state": tmp_path / "j.db",
        "connection": ConnectionOptions(ca_bundle=emulator.ca_file, tenant_id=None),
    }
    values.update(overrides)
    return CopyOptions.model_validate(values)


async def test_plan_shows_every_action_and_writes_nothing(
    emulator: Emulator, src: VaultClients, dst: VaultClients, tmp_path: Path
) -> None:
    await seed_secrets(src, 4, prefix="p")  # p-0000 .. p-0003
    await dst.secrets.set_secret("p-0000", "other")  # active name, other versions
    await dst.secrets.set_secret("p-0001", "gone")
    await dst.secrets.delete_secret("p-0001", _polling_interval=0.05)  # soft-deleted name
    await src.secrets.set_secret("huge", "v")
    huge = emulator.vaults["src"].vault.secrets.get("huge")
    for i in range(501):
        huge.add(Version(id=new_version_id(), created=1, updated=1, data={"value": str(i)}))
    await src.secrets.set_secret("skipme-1", "v")
    await src.keys.create_ec_key("k1")
    await src.certificates.create_certificate("c1", _default_policy(), _polling_interval=0.1)
    copied_before = await Engine(options(emulator, tmp_path, include=("p-0003",))).run()
    assert copied_before.copied == 1
    for vault in ("src", "dst"):
        emulator.vaults[vault].vault.stats.reset()

    plan = await build_plan(options(emulator, tmp_path, exclude=("skipme-*",)))
    actions = {(item.type, item.name): item.action for item in plan.items}
    assert actions[("secret", "p-0000")] is Action.SKIP_EXISTING
    assert actions[("secret", "p-0001")] is Action.CONFLICT_DELETED
    assert actions[("secret", "p-0002")] is Action.COPY
    assert actions[("secret", "p-0003")] is Action.ALREADY_COPIED
    assert actions[("secret", "huge")] is Action.TOO_MANY_VERSIONS
    assert actions[("secret", "skipme-1")] is Action.EXCLUDED
    assert actions[("secret", "c1")] is Action.SKIP_MANAGED and actions[("key", "c1")] is Action.SKIP_MANAGED
    assert actions[("key", "k1")] is Action.COPY and actions[("certificate", "c1")] is Action.COPY
    versions = {(item.type, item.name): item.versions for item in plan.items}
    assert versions[("secret", "huge")] == 502
    summary = plan.summary()
    assert summary["counts"]["copy"] == {"secret": 1, "key": 1, "certificate": 1}
    assert summary["eta_seconds"] > 0 and any("huge" in w for w in summary["warnings"])
    for vault in ("src", "dst"):
        ops = emulator.vaults[vault].vault.stats.operations
        reads = (".list", ".versions", ".list_deleted", ".list_issuers", ".get_contacts", ".get_rotation_policy")
        writes = [op for op in ops if not op.endswith(reads) and op != "certificates.get_pending"]
        assert writes == [], f"plan touched {vault} with {writes}"

    fail_plan = await build_plan(options(emulator, tmp_path, on_conflict="fail", purge_deleted=True))
    fail_actions = {(item.type, item.name): item.action for item in fail_plan.items}
    assert fail_actions[("secret", "p-0000")] is Action.CONFLICT_EXISTING
    assert fail_actions[("secret", "p-0001")] is Action.PURGE_AND_COPY


async def test_plan_cli_formats(emulator: Emulator, src: VaultClients, tmp_path: Path) -> None:
    await seed_secrets(src, 3, prefix="m")
    src_url, dst_url = emulator.vaults["src"].url, emulator.vaults["dst"].url
    as_json = await _in_thread(run_cli, emulator, "plan", src_url, dst_url, "-o", "json", cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert {"type", "name", "versions", "action", "reason"} <= set(document["items"][0])
    assert {"counts", "requests", "eta_seconds"} <= set(document["summary"])
    report = tmp_path / "plan.md"
    markdown = await _in_thread(
        run_cli, emulator, "plan", src_url, dst_url, "-o", "markdown", "--output-file", str(report), cwd=tmp_path
    )
    assert markdown.returncode == 0 and report.read_text().startswith("# kvmigrate plan")
    assert oct(report.stat().st_mode & 0o777) == "0o600"
    dry = await _in_thread(run_cli, emulator, "copy", src_url, dst_url, "--dry-run", "-o", "json", cwd=tmp_path)
    assert json.loads(dry.stdout)["summary"]["counts"] == document["summary"]["counts"]
    assert emulator.vaults["dst"].vault.stats.operations.get("secrets.restore", 0) == 0
    assert not (tmp_path / ".kvmigrate").exists()  # a dry run writes no journal


async def test_verify_after_copy_and_each_kind_of_drift(
    emulator: Emulator, src: VaultClients, dst: VaultClients, tmp_path: Path
) -> None:
    await seed_mixed(src, secrets=10, certificates=1)
    assert (await Engine(options(emulator, tmp_path)).run()).failed == 0
    src_url, dst_url = emulator.vaults["src"].url, emulator.vaults["dst"].url
    clean = await verify(verify_options(emulator, "src", "dst"))
    assert clean.ok and clean.matched > 10 and not clean.missing and not clean.different and not clean.unverified
    # A disabled secret's value cannot be read: in backup mode it is compared by its (unique) version id.
    assert [f.name for f in clean.by_identity] == ["disabled-one"]

    cli = await _in_thread(run_cli, emulator, "verify", src_url, dst_url, "-o", "json", cwd=tmp_path)
    assert cli.returncode == 0, cli.stderr

    await src.secrets.set_secret("only-in-source", "x")
    await dst.secrets.set_secret("s-0001", "extra version in target")
    latest = await dst.secrets.get_secret("s-0002")
    await dst.secrets.update_secret_properties("s-0002", latest.properties.version, tags={"changed": "yes"})
    dst_item = emulator.vaults["dst"].vault.secrets.get("s-0003")  # tamper with a value behind the SDK's back
    dst_item.latest.data["value"] = "tampered-value-9d2e"
    key = await dst.keys.get_key("rsa-0")
    await dst.keys.update_key_properties("rsa-0", key.properties.version, enabled=False)

    drift = await verify(verify_options(emulator, "src", "dst"))
    assert not drift.ok
    assert [(f.type, f.name) for f in drift.missing] == [("secret", "only-in-source")]
    different = {(f.name, f.field) for f in drift.different}
    assert ("s-0001", "versions") in different
    assert ("s-0002", "tags") in different
    assert ("s-0003", "value") in different
    assert ("rsa-0", "enabled") in different
    cli = await _in_thread(run_cli, emulator, "verify", src_url, dst_url, cwd=tmp_path)
    assert cli.returncode == 1
    assert "tampered-value-9d2e" not in cli.stdout + cli.stderr and "value-s-0003" not in cli.stdout + cli.stderr
    assert "s-0003" in cli.stdout


def _default_policy() -> object:
    from azure.keyvault.certificates import CertificatePolicy

    return CertificatePolicy.get_default()


async def test_verify_tells_a_subscriber_as_it_goes(emulator: Emulator, src: VaultClients, tmp_path: Path) -> None:
    """The progress display of verify is a subscriber: every compared object is announced, then finished."""
    await seed_secrets(src, 40, prefix="prog")
    assert (await Engine(options(emulator, tmp_path)).run()).copied == 40

    class Counting:
        listed = finished = 0

        def on_listed(self, listed: object) -> None:
            self.listed += 1

        def on_decided(self, listed: object, decision: object, assessment: object) -> None: ...

        def on_finished(self, ref: object, outcome: object, detail: object) -> None:
            self.finished += 1

    counting = Counting()
    report = await verify(verify_options(emulator, "src", "dst"), events=counting)  # type: ignore[arg-type]
    assert report.ok and counting.listed == counting.finished == 40
