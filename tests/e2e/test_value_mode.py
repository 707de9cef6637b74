"""``--mode value`` and ``--mode auto``: secrets and certificates across subscriptions and geographies."""

from __future__ import annotations

import datetime as dt
import json
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

from azure.keyvault.certificates import CertificatePolicy

from kvmigrate.emulator import Emulator
from kvmigrate.engine import Engine
from kvmigrate.models import ObjectType
from kvmigrate.options import ConnectionOptions, CopyOptions
from kvmigrate.vault.clients import VaultClients
from kvmigrate.verify import verify
from tests.e2e.test_copy import _in_thread, _sleep, cli_env, run_cli
from tests.helpers import verify_options
from tests.seed import seed_secrets

ALL = (ObjectType.SECRET, ObjectType.KEY, ObjectType.CERTIFICATE)


def options(emulator: Emulator, tmp_path: Path, **overrides: object) -> CopyOptions:
    return CopyOptions.model_validate(
        {
            "source": emulator.vaults["src"].url,
            "target": emulator.vaults["far"].url,
            "state": tmp_path / "v.db",
            "mode": "value",
            "connection": ConnectionOptions(ca_bundle=emulator.ca_file, tenant_id=None),
            **overrides,
        }
    )


async def seed_for_values(src: VaultClients, emulator: Emulator) -> dict[str, list[str]]:
    """Secrets with several versions and attributes, a key, an exportable certificate; returns the values.

    Versions made within one second tie on ``created`` (Key Vault's resolution is a second); the seeded ones get
    distinct creation times in the emulator's store so the order they must be copied in is unambiguous.
    """
    values: dict[str, list[str]] = {}
    expiry = dt.datetime(2032, 5, 1, tzinfo=dt.UTC)
    for i in range(3):
        name = f"db-{i}"
        values[name] = []
        for v in range(4):
            value = f"secret-value-{i}-{v}-c4n4ry"
            await src.secrets.set_secret(
                name,
                value,
                content_type="text/plain",
                tags={"rev": str(v)},
                expires_on=expiry if v == 3 else None,
                enabled=v != 1,
            )
            values[name].append(value)
        for offset, version in enumerate(emulator.vaults["src"].vault.secrets.get(name).versions.values()):
            version.created = version.updated = 1_700_000_000 + offset * 60
    await src.keys.create_rsa_key("signing")
    await src.certificates.create_certificate("tls", CertificatePolicy.get_default(), _polling_interval=0.1)
    return values


async def test_value_copy_across_subscriptions(
    emulator: Emulator, src: VaultClients, far: VaultClients, tmp_path: Path
) -> None:
    values = await seed_for_values(src, emulator)
    summary = await Engine(options(emulator, tmp_path)).run()
    assert summary.failed == 0, summary.failures
    assert [(b.type, b.name) for b in summary.blocked] == [("key", "signing")]
    assert summary.copied == 4  # three secrets and the certificate
    # The disabled version cannot be read from the source: reported, not silently dropped.
    assert len(summary.notes) == 3 and all("disabled older version" in note for note in summary.notes)
    for name, expected in values.items():
        readable = [value for index, value in enumerate(expected) if index != 1]
        # The order the target received them in (its store keeps creation order; kvmigrate wrote them within a
        # second, so `created` cannot tell): every readable version, oldest first.
        order = list(emulator.vaults["far"].vault.secrets.get(name).versions)
        assert len(order) == len(readable)
        got = [(await far.secrets.get_secret(name, version)).value for version in order]
        assert got == readable
        latest = await far.secrets.get_secret(name)
        assert latest.value == expected[-1] and latest.properties.tags == {"rev": "3"}
        assert latest.properties.expires_on == dt.datetime(2032, 5, 1, tzinfo=dt.UTC)
        assert latest.properties.content_type == "text/plain"
    source_cert = await src.certificates.get_certificate("tls")
    target_cert = await far.certificates.get_certificate("tls")
    assert target_cert.cer == source_cert.cer and target_cert.properties.version != source_cert.properties.version
    # verify cannot prove what value mode could not copy: the key, and each secret's disabled version.
    report = await verify(verify_options(emulator, "src", "far", mode="value"))
    assert not report.ok and report.matched == 1 and not report.different, json.dumps(report.as_dict())
    assert sorted((f.type, f.name) for f in report.unverified) == [
        ("key", "signing"),
        ("secret", "db-0"),
        ("secret", "db-1"),
        ("secret", "db-2"),
    ]
    # The secrets match version by version but for the hidden one; the certificate matches.
    partial = await verify(verify_options(emulator, "src", "far", mode="value", types=(ObjectType.CERTIFICATE,)))
    assert partial.ok and partial.matched == 1, json.dumps(partial.as_dict())

    again = await Engine(options(emulator, tmp_path)).run()  # finished: nothing written again
    assert again.previously_done == 4 and again.copied == 0 and len(again.blocked) == 1


async def test_latest_only_and_plan(emulator: Emulator, src: VaultClients, far: VaultClients, tmp_path: Path) -> None:
    await seed_for_values(src, emulator)
    result = await _in_thread(
        run_cli,
        emulator,
        "plan",
        emulator.vaults["src"].url,
        emulator.vaults["far"].url,
        "--mode",
        "value",
        "-o",
        "json",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert [(b["type"], b["name"]) for b in document["blocked"]] == [("key", "signing")]
    summary = await Engine(options(emulator, tmp_path, latest_only=True)).run()
    assert summary.copied == 4
    assert len([p async for p in far.secrets.list_properties_of_secret_versions("db-0")]) == 1


async def test_resume_after_a_lost_journal_entry_creates_no_duplicate(
    emulator: Emulator, src: VaultClients, far: VaultClients, tmp_path: Path
) -> None:
    await seed_secrets(src, 1, prefix="dup", versions=5)
    state = tmp_path / "dup.db"
    assert (await Engine(options(emulator, tmp_path, state=state, types=(ObjectType.SECRET,))).run()).copied == 1
    # Simulate a crash right after the last write, before the journal recorded it and the object as done.
    last_written = list(emulator.vaults["far"].vault.secrets.get("dup-0000").versions)[-1]
    with closing(sqlite3.connect(state)) as db, db:
        assert db.execute("DELETE FROM version_map WHERE target_version = ?", (last_written,)).rowcount == 1
        db.execute("UPDATE item SET state = 'restoring', outcome = NULL")
    rerun = await Engine(options(emulator, tmp_path, state=state, types=(ObjectType.SECRET,))).run()
    # Settled against the target: the unjournaled write is found by its value, so nothing is written again.
    assert rerun.failed == 0 and rerun.copied == 0 and rerun.already_copied == 1
    assert len([p async for p in far.secrets.list_properties_of_secret_versions("dup-0000")]) == 5


async def test_resume_of_an_object_the_target_never_received(
    emulator: Emulator, src: VaultClients, far: VaultClients, tmp_path: Path
) -> None:
    """A crash after the journal said ``restoring`` and before the first write: the target has no such secret."""
    await seed_secrets(src, 1, prefix="none", versions=2)
    state = tmp_path / "none.db"
    assert (await Engine(options(emulator, tmp_path, state=state, types=(ObjectType.SECRET,))).run()).copied == 1
    await far.secrets.delete_secret("none-0000", _polling_interval=0.05)
    await far.secrets.purge_deleted_secret("none-0000")
    await _sleep(emulator.vaults["far"].vault.settings.consistency_delay + 0.2)  # until the name is free again
    with closing(sqlite3.connect(state)) as db, db:
        db.execute("DELETE FROM version_map")
        db.execute("UPDATE item SET state = 'restoring', outcome = NULL")
    rerun = await Engine(options(emulator, tmp_path, state=state, types=(ObjectType.SECRET,))).run()
    assert rerun.failed == 0 and rerun.copied == 1, rerun.failures
    assert len([p async for p in far.secrets.list_properties_of_secret_versions("none-0000")]) == 2


async def test_purge_deleted_waits_for_the_purge_then_writes_every_version(
    emulator: Emulator, src: VaultClients, far: VaultClients, tmp_path: Path
) -> None:
    """A soft-deleted name in the target, ``--purge-deleted``: the first write meets 409 "being deleted"."""
    await seed_secrets(src, 1, prefix="gone", versions=3)
    await far.secrets.set_secret("gone-0000", "someone else's, deleted")
    await far.secrets.delete_secret("gone-0000", _polling_interval=0.05)
    summary = await Engine(
        options(emulator, tmp_path, state=tmp_path / "purge.db", types=(ObjectType.SECRET,), purge_deleted=True)
    ).run()
    assert summary.failed == 0 and summary.copied == 1, summary.failures
    written = [p async for p in far.secrets.list_properties_of_secret_versions("gone-0000")]
    assert len(written) == 3  # the source's versions only: the deleted one was purged, none written twice
    assert (await far.secrets.get_secret("gone-0000")).value == "value-gone-0000-2"


async def test_sigkill_and_resume_creates_no_duplicates(
    emulator: Emulator, src: VaultClients, far: VaultClients, tmp_path: Path
) -> None:
    await seed_secrets(src, 30, prefix="k", versions=3)
    for vault in ("src", "far"):
        emulator.vaults[vault].vault.settings.latency_ms = 25
    state = tmp_path / "kill.db"
    args = [
        "copy",
        emulator.vaults["src"].url,
        emulator.vaults["far"].url,
        "--mode",
        "value",
        "--state",
        str(state),
        "--concurrency",
        "3",
    ]
    process = subprocess.Popen(
        [sys.executable, "-m", "kvmigrate", *args],
        env=cli_env(emulator),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ops = emulator.vaults["far"].vault.stats.operations
    deadline = time.monotonic() + 120
    while ops.get("secrets.set", 0) < 40 and time.monotonic() < deadline:
        await _sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    rerun = await _in_thread(run_cli, emulator, *args, "-o", "json", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    for i in range(30):
        versions = [p async for p in far.secrets.list_properties_of_secret_versions(f"k-{i:04d}")]
        assert len(versions) == 3, f"k-{i:04d} has {len(versions)} versions"


async def test_no_value_reaches_output_log_or_journal(emulator: Emulator, src: VaultClients, tmp_path: Path) -> None:
    values = await seed_for_values(src, emulator)
    log_file = tmp_path / "value.log"
    state = tmp_path / "leak.db"
    result = await _in_thread(
        run_cli,
        emulator,
        "copy",
        emulator.vaults["src"].url,
        emulator.vaults["far"].url,
        "--mode",
        "value",
        "-v",
        "--log-file",
        str(log_file),
        "--state",
        str(state),
        "-o",
        "json",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    verified = await _in_thread(
        run_cli,
        emulator,
        "verify",
        emulator.vaults["src"].url,
        emulator.vaults["far"].url,
        "--mode",
        "value",
        "-v",
        cwd=tmp_path,
    )
    assert verified.returncode == 1 and "unverified key signing" in verified.stdout, verified.stdout + verified.stderr
    written = [result.stdout, result.stderr, verified.stdout, verified.stderr, log_file.read_text()]
    written += [p.read_bytes().decode("latin-1") for p in tmp_path.glob("leak.db*")]
    assert "db-0" in log_file.read_text()
    for text in written:
        for secret_values in values.values():
            for value in secret_values:
                assert value not in text


async def test_auto_mode_switches_and_says_so(
    emulator: Emulator, src: VaultClients, far: VaultClients, tmp_path: Path
) -> None:
    await seed_secrets(src, 5, prefix="a", versions=2)
    await src.keys.create_ec_key("auto-key")
    result = await _in_thread(
        run_cli,
        emulator,
        "copy",
        emulator.vaults["src"].url,
        emulator.vaults["far"].url,
        "--mode",
        "auto",
        "-o",
        "json",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert any("switched to value mode" in note for note in document["notes"])
    assert "switched to value mode" in result.stderr
    assert [(b["type"], b["name"]) for b in document["blocked"]] == [("key", "auto-key")]
    assert document["copied"] == 5
    assert len([p async for p in far.secrets.list_properties_of_secret_versions("a-0003")]) == 2
