"""``backup`` / ``restore`` through a directory archive: the same engine with another source or sink."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kvmigrate.archive import Archive, ArchiveWriter
from kvmigrate.emulator import Emulator
from kvmigrate.engine import Engine
from kvmigrate.errors import ArchiveError, WrongSecurityDomainError
from kvmigrate.options import ConnectionOptions, CopyOptions
from kvmigrate.vault.clients import VaultClients
from tests.e2e.test_copy import _in_thread, _sleep, cli_env, run_cli
from tests.seed import seed_mixed, seed_secrets, version_map


def run(emulator: Emulator, operation: str, source: str, target: str, state: Path, **extra: object) -> CopyOptions:
    return CopyOptions.model_validate(
        {
            "operation": operation,
            "source": source,
            "target": target,
            "state": state,
            "connection": ConnectionOptions(ca_bundle=emulator.ca_file, tenant_id=None),
            **extra,
        }
    )


async def test_round_trip_through_an_archive_keeps_every_version(
    emulator: Emulator, src: VaultClients, dst: VaultClients, tmp_path: Path
) -> None:
    seeded = await seed_mixed(src, secrets=20, certificates=1)
    archive_dir = tmp_path / "archive"
    backup = await Engine(
        run(emulator, "backup", emulator.vaults["src"].url, str(archive_dir), tmp_path / "b.db")
    ).run()
    assert backup.failed == 0 and backup.copied == seeded.total
    assert oct(archive_dir.stat().st_mode & 0o777) == "0o700"
    for path in archive_dir.rglob("*"):
        if path.is_file():
            assert oct(path.stat().st_mode & 0o777) == "0o600", path
    archive = Archive.load(archive_dir)
    assert archive.complete and len(archive.entries) == seeded.total and not (archive_dir / "entries.jsonl").exists()
    manifest = json.loads((archive_dir / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and manifest["source"] == emulator.vaults["src"].url
    entry = next(e for e in manifest["objects"] if e["name"] == "multi-0")
    assert len(entry["versions"]) == 6 and len(entry["sha256"]) == 64
    for value in ("m-0-0", "value-s-0001-0"):  # blobs are Key Vault's encrypted backups: no plain values
        assert all(value.encode() not in p.read_bytes() for p in archive_dir.rglob("*") if p.is_file())

    restore = await Engine(
        run(emulator, "restore", str(archive_dir), emulator.vaults["dst"].url, tmp_path / "r.db")
    ).run()
    assert restore.failed == 0 and restore.copied == seeded.total
    assert await version_map(dst) == await version_map(src)

    inspect = await _in_thread(run_cli, emulator, "archive", "inspect", str(archive_dir), "-o", "json", cwd=tmp_path)
    assert inspect.returncode == 0 and len(json.loads(inspect.stdout)["objects"]) == seeded.total
    planned = await _in_thread(
        run_cli, emulator, "plan", str(archive_dir), emulator.vaults["dst"].url, "-o", "json", cwd=tmp_path
    )
    assert planned.returncode == 0, planned.stderr
    assert set(json.loads(planned.stdout)["summary"]["counts"]) == {"already-copied"}


async def test_tampered_blob_fails_alone_and_others_restore(
    emulator: Emulator, src: VaultClients, dst: VaultClients, tmp_path: Path
) -> None:
    await seed_secrets(src, 6, prefix="t")
    archive_dir = tmp_path / "archive"
    src_url, dst_url = emulator.vaults["src"].url, emulator.vaults["dst"].url
    backed = await _in_thread(run_cli, emulator, "backup", src_url, str(archive_dir), cwd=tmp_path)
    assert backed.returncode == 0, backed.stderr
    tampered = archive_dir / "secrets" / "t-0002.blob"
    data = bytearray(tampered.read_bytes())
    data[100] ^= 0xFF
    tampered.write_bytes(bytes(data))
    (archive_dir / "secrets" / "t-0004.blob").unlink()
    refused = await _in_thread(run_cli, emulator, "restore", str(archive_dir), dst_url, "-o", "json", cwd=tmp_path)
    assert refused.returncode == 1 and "incomplete" in refused.stderr and "--allow-incomplete" in refused.stderr
    assert [p async for p in dst.secrets.list_properties_of_secrets()] == []  # refused before writing anything
    result = await _in_thread(
        run_cli, emulator, "restore", str(archive_dir), dst_url, "--allow-incomplete", "-o", "json", cwd=tmp_path
    )
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["copied"] == 4 and document["failed"] == 2
    errors = {f["name"]: f["error"] for f in document["failures"]}
    assert "SHA-256" in errors["t-0002"] and "missing" in errors["t-0004"]
    names = sorted([p.name async for p in dst.secrets.list_properties_of_secrets()])
    assert names == ["t-0000", "t-0001", "t-0003", "t-0005"]


async def test_bad_archives_get_clear_errors(emulator: Emulator, src: VaultClients, tmp_path: Path) -> None:
    await seed_secrets(src, 2, prefix="b")
    archive_dir = tmp_path / "archive"
    dst_url = emulator.vaults["dst"].url
    assert (
        await _in_thread(run_cli, emulator, "backup", emulator.vaults["src"].url, str(archive_dir), cwd=tmp_path)
    ).returncode == 0
    manifest = archive_dir / "manifest.json"
    original = manifest.read_text()
    manifest.write_text(original[: len(original) // 2])
    truncated = await _in_thread(run_cli, emulator, "restore", str(archive_dir), dst_url, cwd=tmp_path)
    assert truncated.returncode == 2 and "damaged or truncated" in truncated.stderr
    assert "Traceback" not in truncated.stderr
    manifest.write_text(original.replace('"format_version": 1', '"format_version": 9'))
    newer = await _in_thread(run_cli, emulator, "restore", str(archive_dir), dst_url, cwd=tmp_path)
    assert newer.returncode == 2 and "newer than this kvmigrate" in newer.stderr
    manifest.unlink()  # without its manifest, an archive is a folder of backup files: it still restores, by file
    by_files = await _in_thread(run_cli, emulator, "restore", str(archive_dir), dst_url, "-o", "json", cwd=tmp_path)
    assert by_files.returncode == 0 and json.loads(by_files.stdout)["copied"] == 2, by_files.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = await _in_thread(run_cli, emulator, "restore", str(empty), dst_url, cwd=tmp_path)
    assert missing.returncode == 2 and "no manifest.json and no Key Vault backup files" in missing.stderr
    manifest.write_text(original)
    os.chmod(archive_dir, 0o755)
    exposed = await _in_thread(run_cli, emulator, "restore", str(archive_dir), dst_url, cwd=tmp_path)
    assert exposed.returncode == 0 and "readable by other users" in exposed.stderr
    with pytest.raises(ArchiveError, match="not empty"):
        ArchiveWriter(tmp_path, source="https://x")


async def test_restore_into_another_subscription_says_why(
    emulator: Emulator, src: VaultClients, tmp_path: Path
) -> None:
    await seed_secrets(src, 3, prefix="x")
    archive_dir = tmp_path / "archive"
    await Engine(run(emulator, "backup", emulator.vaults["src"].url, str(archive_dir), tmp_path / "b.db")).run()
    with pytest.raises(WrongSecurityDomainError, match="same Azure subscription and geography"):
        await Engine(run(emulator, "restore", str(archive_dir), emulator.vaults["far"].url, tmp_path / "r.db")).run()


@pytest.mark.parametrize("operation", ["backup", "restore"])
async def test_interrupted_backup_and_restore_resume(
    emulator: Emulator, src: VaultClients, dst: VaultClients, tmp_path: Path, operation: str
) -> None:
    await seed_secrets(src, 80, prefix="r")
    archive_dir = tmp_path / "archive"
    src_url, dst_url = emulator.vaults["src"].url, emulator.vaults["dst"].url
    if operation == "restore":
        await Engine(run(emulator, "backup", src_url, str(archive_dir), tmp_path / "b.db")).run()
    for name in ("src", "dst"):
        emulator.vaults[name].vault.settings.latency_ms = 30
    args = ["backup", src_url, str(archive_dir)] if operation == "backup" else ["restore", str(archive_dir), dst_url]
    state = tmp_path / f"{operation}.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "kvmigrate", *args, "--state", str(state), "--concurrency", "2"],
        env=cli_env(emulator),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    watched = emulator.vaults["src" if operation == "backup" else "dst"].vault.stats.objects
    deadline = time.monotonic() + 120
    while len(watched) < 20 and time.monotonic() < deadline:
        await _sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    watched.clear()
    rerun = await _in_thread(run_cli, emulator, *args, "--state", str(state), "-o", "json", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    document = json.loads(rerun.stdout)
    # In flight at the kill: settled by looking at the target (already copied) or done again.
    assert document["previously_done"] >= 15
    assert document["previously_done"] + document["copied"] + document["already_copied"] == 80
    assert len(watched) <= 80 - document["previously_done"]  # finished objects were not moved again
    if operation == "backup":
        assert Archive.load(archive_dir).complete and len(Archive.load(archive_dir).entries) == 80
    else:
        assert await version_map(dst) == await version_map(src)
