"""SIGKILL at five points of a run, then a rerun: the target matches and nothing finished is moved again."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from kvmigrate.archive import Archive
from kvmigrate.emulator import Emulator
from kvmigrate.models import ObjectType
from kvmigrate.vault.clients import VaultClients
from kvmigrate.verify import verify
from tests.e2e.test_copy import _in_thread, _sleep, cli_env, run_cli
from tests.helpers import verify_options
from tests.seed import seed_secrets

COUNT = 60
# point → (vault to watch, operation, how many must have started, settings for that vault, operation run)
POINTS = {
    "during-listing": ("src", "secrets.list", 1, {"stall_ops": ["secrets.list"]}, "copy"),
    "between-backup-and-restore": ("dst", "secrets.restore", 4, {"stall_ops": ["secrets.restore"]}, "copy"),
    "during-restore": ("dst", "secrets.restore", 4, {"hang_after_ops": ["secrets.restore"]}, "copy"),
    "while-journaling": ("dst", "secrets.restore", 25, {}, "copy"),
    "during-archive-write": ("src", "secrets.backup", 25, {}, "backup"),
}


@pytest.mark.parametrize("point", sorted(POINTS))
async def test_sigkill_then_rerun(emulator: Emulator, src: VaultClients, tmp_path: Path, point: str) -> None:
    await seed_secrets(src, COUNT, prefix="c")
    vault, operation, started, settings, run = POINTS[point]
    for name in ("src", "dst"):
        emulator.vaults[name].vault.settings.latency_ms = 10
        emulator.vaults[name].vault.stats.reset()
    for key, value in settings.items():
        setattr(emulator.vaults[vault].vault.settings, key, value)
    src_url, dst_url = emulator.vaults["src"].url, emulator.vaults["dst"].url
    archive = tmp_path / "archive"
    state = tmp_path / "crash.db"
    args = ["copy", src_url, dst_url] if run == "copy" else ["backup", src_url, str(archive)]
    args += ["--state", str(state), "--concurrency", "4"]
    process = subprocess.Popen(
        [sys.executable, "-m", "kvmigrate", *args],
        env=cli_env(emulator),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stats = emulator.vaults[vault].vault.stats
    deadline = time.monotonic() + 120
    while stats.started[operation] < started and time.monotonic() < deadline and process.poll() is None:
        await _sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert stats.started[operation] >= started, f"the kill did not land at {point}"
    for key in settings:
        setattr(emulator.vaults[vault].vault.settings, key, [])
    done_before: set[str] = set()
    if state.exists():
        with closing(sqlite3.connect(state)) as db:
            done_before = {row[0] for row in db.execute("SELECT name_key FROM item WHERE state = 'done'")}
    for name in ("src", "dst"):
        emulator.vaults[name].vault.stats.reset()
    rerun = await _in_thread(run_cli, emulator, *args, "-o", "json", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["previously_done"] == len(done_before)
    moved_again = {
        key.split("/", 1)[1] for name in ("src", "dst") for key in emulator.vaults[name].vault.stats.objects
    } & done_before
    assert not moved_again, sorted(moved_again)[:5]
    if run == "copy":
        report = await verify(verify_options(emulator, "src", "dst", types=(ObjectType.SECRET,)))
        assert report.ok and report.matched == COUNT
    else:
        loaded = Archive.load(archive)
        assert loaded.complete and len(loaded.entries) == COUNT
        for entry in loaded.entries.values():
            loaded.read_blob(entry)  # every blob complete and matching its SHA-256
