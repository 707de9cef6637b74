"""Hostile files, paths and names, and two silent divergences (issue "Hostile files, paths and names").

kvmigrate runs as a privileged identity, often in shared folders and CI workspaces, and reads archives that came from
elsewhere: a planted link must not make it overwrite a file, a crafted manifest must not make it read or send one.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kvmigrate.emulator import Emulator
from kvmigrate.vault.clients import VaultClients
from tests.e2e.test_copy import _in_thread, _sleep, cli_env
from tests.e2e.test_trust import journals, one_line, run
from tests.seed import fill

VICTIM = b"precious: must never change\n"


def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim.txt"
    path.write_bytes(VICTIM)
    os.chmod(path, 0o644)
    return path


def untouched(path: Path) -> bool:
    return path.read_bytes() == VICTIM and oct(path.stat().st_mode & 0o777) == "0o644"


# -- 1. never through a symlink --------------------------------------------------------------------------------------
@pytest.mark.parametrize("planted", ["state", "state-dangling", "wal", "log-file", "plan-output"])
async def test_a_planted_link_is_refused_and_its_target_unchanged(
    emulator: Emulator, tmp_path: Path, planted: str
) -> None:
    fill(emulator, "src", 3, prefix="y")
    target = victim(tmp_path)
    src_url, dst_url = emulator.vaults["src"].url, emulator.vaults["dst"].url
    link = tmp_path / "link"
    if planted == "state-dangling":
        link.symlink_to(tmp_path / "created-through-the-link")
    else:
        link.symlink_to(target)
    state = tmp_path / "run.db"
    args = {
        "state": ["copy", src_url, dst_url, "--state", str(link)],
        "state-dangling": ["copy", src_url, dst_url, "--state", str(link)],
        "wal": ["copy", src_url, dst_url, "--state", str(state)],
        "log-file": ["copy", src_url, dst_url, "--log-file", str(link), "-v"],
        "plan-output": ["plan", src_url, dst_url, "--output-file", str(link)],
    }[planted]
    if planted == "wal":
        (tmp_path / "run.db-wal").symlink_to(target)
    result, _ = await _in_thread(run, emulator, *args, cwd=tmp_path)
    assert result.returncode == 2 and "symbolic link" in one_line(result), result.stderr
    assert untouched(target)
    assert not (tmp_path / "created-through-the-link").exists()
    assert emulator.vaults["dst"].vault.stats.operations.get("secrets.restore", 0) == 0


@pytest.mark.parametrize("planted", ["blob", "manifest", "log", "folder"])
async def test_archive_files_are_never_written_through_links(emulator: Emulator, tmp_path: Path, planted: str) -> None:
    fill(emulator, "src", 3, prefix="z")
    target = victim(tmp_path)
    src_url = emulator.vaults["src"].url
    archive = tmp_path / "archive"
    first, _ = await _in_thread(run, emulator, "backup", src_url, str(archive), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    fill(emulator, "src", 1, prefix="new")  # the rerun has one more object to write
    if planted == "blob":
        (archive / "secrets").rename(tmp_path / "old-secrets")
        (archive / "secrets").mkdir(mode=0o700)
        (archive / "secrets" / "new-0000.blob").symlink_to(target)
        for blob in (tmp_path / "old-secrets").iterdir():
            blob.rename(archive / "secrets" / blob.name)
    elif planted == "manifest":
        (archive / "manifest.json").unlink()
        (archive / "manifest.json").symlink_to(target)
    elif planted == "log":
        (archive / "entries.jsonl").symlink_to(target)
    else:
        (archive / "secrets").rename(tmp_path / "elsewhere")
        (archive / "secrets").symlink_to(tmp_path / "elsewhere")
    result, _ = await _in_thread(run, emulator, "backup", src_url, str(archive), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "link" in one_line(result) or "not a regular file" in one_line(result), result.stderr
    assert untouched(target)


# -- 2. and 3. crafted manifests --------------------------------------------------------------------------------------
def crafted_archive(tmp_path: Path, blob: str, *, size: int | None = None, name: str = "s-0000") -> Path:
    """A real-looking archive of one secret, whose manifest entry is what a test crafts."""
    archive = tmp_path / "crafted"
    (archive / "secrets").mkdir(parents=True)
    data = b"x" * 100
    (archive / "secrets" / "s-0000.blob").write_bytes(data)
    import hashlib

    entry = {
        "type": "secret",
        "name": name,
        "versions": ["0" * 32],
        "enabled": True,
        "blob": blob,
        "size": size if size is not None else len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    manifest = {
        "format": "kvmigrate-archive",
        "format_version": 1,
        "source": "https://x.vault.azure.net",
        "created": "2026-01-01T00:00:00+00:00",
        "tool_version": "0.1.0",
        "complete": True,
        "objects": [entry],
    }
    (archive / "manifest.json").write_text(json.dumps(manifest))
    return archive


@pytest.mark.parametrize("case", ["dotdot", "absolute", "dev-zero", "fifo", "wrong-size", "escape-in-name"])
async def test_a_crafted_manifest_restores_nothing_and_exits_2(
    emulator: Emulator, dst: VaultClients, tmp_path: Path, case: str
) -> None:
    outside = tmp_path / "outside.blob"
    outside.write_bytes(b"y" * 100)
    if case == "dotdot":
        archive = crafted_archive(tmp_path, "secrets/../../outside.blob")
    elif case == "absolute":
        archive = crafted_archive(tmp_path, str(outside))
    elif case == "dev-zero":
        archive = crafted_archive(tmp_path, "secrets/zero.blob")
        (archive / "secrets" / "zero.blob").symlink_to("/dev/zero")
    elif case == "fifo":
        archive = crafted_archive(tmp_path, "secrets/pipe.blob")
        os.mkfifo(archive / "secrets" / "pipe.blob")
    elif case == "wrong-size":
        archive = crafted_archive(tmp_path, "secrets/s-0000.blob", size=10_000_000)
    else:
        archive = crafted_archive(tmp_path, "secrets/s-0000.blob", name="evil\x1b]0;pwned\x07\x1b[2J")
    result, elapsed = await _in_thread(
        run, emulator, "restore", str(archive), emulator.vaults["dst"].url, cwd=tmp_path, timeout=30
    )
    assert result.returncode == 2, result.stderr
    assert "damaged" in one_line(result) or "not a regular file" in one_line(result), result.stderr
    assert "\x1b" not in result.stderr + result.stdout and "\x07" not in result.stderr + result.stdout
    assert elapsed < 30 and journals() == []
    assert emulator.vaults["dst"].vault.stats.operations.get("secrets.restore", 0) == 0
    assert [p async for p in dst.secrets.list_properties_of_secrets()] == []
    inspected, _ = await _in_thread(run, emulator, "archive", "inspect", str(archive), cwd=tmp_path, timeout=30)
    assert inspected.returncode == 2 and "\x1b" not in inspected.stdout + inspected.stderr


def test_vault_messages_reach_the_terminal_escaped() -> None:
    from rich.console import Console

    from kvmigrate.report.text import safe, say

    console = Console(record=True, width=200, force_terminal=True)
    say(console, ("failed", "red"), " secret x: vault said \x1b[2J\x1b]0;title\x07 [bold]markup[/bold]")
    text = console.export_text()
    assert "\x1b[2J" not in text and "\\x1b[2J" in text and "[bold]markup[/bold]" in text
    assert safe("ok\u202eevil") == "ok\\u202eevil"  # a bidirectional override cannot reorder the line


# -- 4. core dumps ---------------------------------------------------------------------------------------------------
async def test_no_core_file_holds_a_secret(emulator: Emulator, src: VaultClients, tmp_path: Path) -> None:
    if Path("/proc/sys/kernel/core_pattern").read_text().startswith("|"):
        pytest.skip("this machine pipes core dumps to a handler: no core file to look for")
    canary = "c0re-dump-canary-6b1f"
    for i in range(30):
        await src.secrets.set_secret(f"core-{i}", f"{canary}-{i}")
    emulator.vaults["far"].vault.settings.latency_ms = 50

    def unlimited() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    control = subprocess.run([sys.executable, "-c", "import os; os.abort()"], cwd=tmp_path, preexec_fn=unlimited)
    assert control.returncode == -signal.SIGABRT
    produced = sorted(tmp_path.glob("core*"))
    if not produced:
        pytest.skip("this machine writes no core files even with the limit lifted")
    for core in produced:
        core.unlink()
    args = ["copy", emulator.vaults["src"].url, emulator.vaults["far"].url, "--mode", "value", "--concurrency", "2"]
    process = subprocess.Popen(
        [sys.executable, "-m", "kvmigrate", *args],
        env=cli_env(emulator),
        cwd=tmp_path,
        preexec_fn=unlimited,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while emulator.vaults["src"].vault.stats.operations.get("secrets.get", 0) < 10:
        await _sleep(0.05)
    process.send_signal(signal.SIGABRT)  # an abort while secret values are in memory
    process.wait()
    assert process.returncode == -signal.SIGABRT
    assert sorted(tmp_path.glob("core*")) == []


def test_log_folder_is_private_whatever_the_umask(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "deep" / "run.log"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import os; os.umask(0); from kvmigrate.cli.runner import setup_logging; "
            f"from pathlib import Path; setup_logging(False, Path({str(log)!r}))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert oct((tmp_path / "logs").stat().st_mode & 0o777) == "0o700"
    assert oct(log.parent.stat().st_mode & 0o777) == "0o700" and oct(log.stat().st_mode & 0o777) == "0o600"


# -- 5. the target was emptied: the journal's "done" is checked against it ---------------------------------------
async def test_objects_the_target_lost_are_copied_again(emulator: Emulator, dst: VaultClients, tmp_path: Path) -> None:
    fill(emulator, "src", 12, prefix="e", versions=2)
    src_url, dst_url = emulator.vaults["src"].url, emulator.vaults["dst"].url
    first, _ = await _in_thread(run, emulator, "copy", src_url, dst_url, "-o", "json", cwd=tmp_path)
    assert json.loads(first.stdout)["copied"] == 12
    for name in ("e-0003", "e-0007"):
        await dst.secrets.delete_secret(name, _polling_interval=0.05)
        await dst.secrets.purge_deleted_secret(name)
    await _sleep(emulator.vaults["dst"].vault.settings.consistency_delay + 0.3)
    rerun, _ = await _in_thread(run, emulator, "copy", src_url, dst_url, "-o", "json", cwd=tmp_path)
    document = json.loads(rerun.stdout)
    assert rerun.returncode == 0 and document["copied"] == 2 and document["previously_done"] == 10
    assert document["recopied_missing"] == 2
    names = sorted([p.name async for p in dst.secrets.list_properties_of_secrets()])
    assert len(names) == 12


# -- 6. verify in every mode lists missing objects ---------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["backup", "value"])
async def test_verify_lists_a_missing_object_without_a_traceback(
    emulator: Emulator, src: VaultClients, tmp_path: Path, mode: str
) -> None:
    fill(emulator, "src", 4, prefix="m")
    src_url, dst_url = emulator.vaults["src"].url, emulator.vaults["dst"].url
    copied, _ = await _in_thread(run, emulator, "copy", src_url, dst_url, "--mode", mode, cwd=tmp_path)
    assert copied.returncode == 0, copied.stderr
    await src.secrets.set_secret("m-late", "only in the source")
    result, _ = await _in_thread(run, emulator, "verify", src_url, dst_url, "--mode", mode, "-o", "json", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert [f["name"] for f in json.loads(result.stdout)["missing"]] == ["m-late"]


# -- 7. purge protection is a condition of one object, not a missing permission ---------------------------------------
async def test_purge_protection_fails_those_objects_and_the_rest_is_copied(
    emulator: Emulator, dst: VaultClients, tmp_path: Path
) -> None:
    fill(emulator, "src", 20, prefix="pp")
    for name in ("pp-0002", "pp-0009", "pp-0015"):
        await dst.secrets.set_secret(name, "deleted here")
        await dst.secrets.delete_secret(name, _polling_interval=0.05)
    emulator.vaults["dst"].vault.settings.purge_protection = True
    src_url, dst_url = emulator.vaults["src"].url, emulator.vaults["dst"].url
    result, _ = await _in_thread(run, emulator, "copy", src_url, dst_url, "--purge-deleted", "-o", "json", cwd=tmp_path)
    document = json.loads(result.stdout)
    assert result.returncode == 1 and document["copied"] == 17 and document["failed"] == 3
    assert all("purge protection" in f["error"] and "--recover-deleted" in f["error"] for f in document["failures"])
