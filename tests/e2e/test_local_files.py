"""The local files of a run that cannot be made, written or read end in one line, never a traceback."""

from __future__ import annotations

import json
import os
import resource
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kvmigrate.archive import Archive
from kvmigrate.emulator import Emulator
from kvmigrate.emulator.store import Version, new_version_id
from kvmigrate.vault.clients import VaultClients
from tests.e2e.test_copy import _in_thread, cli_env
from tests.e2e.test_trust import journals, one_line, run
from tests.helpers import (
    CAP_DAC_OVERRIDE,
    CAP_DAC_READ_SEARCH,
    CAP_FOWNER,
    EXIT_NO_CAPABILITY_DROP,
    without_capabilities,
)
from tests.seed import fill


def run_limited(
    emulator: Emulator, *args: str, cwd: Path, preexec: Callable[[], None], timeout: float = 60
) -> tuple[subprocess.CompletedProcess[str], float]:
    """``run`` with a ``preexec_fn`` (a resource limit, capabilities dropped) applied to the kvmigrate process only."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "kvmigrate", *args],
        capture_output=True,
        text=True,
        env=cli_env(emulator),
        cwd=cwd,
        timeout=timeout,
        preexec_fn=preexec,
    )
    if result.returncode == EXIT_NO_CAPABILITY_DROP:
        pytest.skip("this machine does not let a child drop a capability")
    return result, time.monotonic() - started


async def test_a_state_file_under_a_dangling_link_is_one_line(emulator: Emulator, tmp_path: Path) -> None:
    fill(emulator, "src", 2, prefix="d")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    state = tmp_path / "dangling" / "sub" / "run.db"
    src_url, dst_url = emulator.vaults["src"].url, emulator.vaults["dst"].url
    result, _ = await _in_thread(run, emulator, "copy", src_url, dst_url, "--state", str(state), cwd=tmp_path)
    line = one_line(result)
    assert result.returncode == 2 and line.startswith("kvmigrate: error: "), result.stderr
    assert f"{tmp_path / 'dangling'}: it is a symbolic link that leads nowhere" in line
    assert not (tmp_path / "nowhere").exists() and journals() == []
    assert emulator.vaults["dst"].vault.stats.operations.get("secrets.restore", 0) == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can make a file another user owns (the run then lacks FOWNER)")
async def test_a_log_file_someone_else_owns_is_one_line_and_left_alone(emulator: Emulator, tmp_path: Path) -> None:
    fill(emulator, "src", 2, prefix="o")
    theirs = tmp_path / "run.log"
    theirs.write_text("theirs\n")
    os.chown(theirs, 65534, 65534)
    os.chmod(theirs, 0o666)
    src_url, dst_url = emulator.vaults["src"].url, emulator.vaults["dst"].url
    result, _ = await _in_thread(
        run_limited,
        emulator,
        *("copy", src_url, dst_url, "--log-file", str(theirs)),
        cwd=tmp_path,
        preexec=without_capabilities(CAP_FOWNER),
    )
    assert result.returncode == 2, result.stderr
    assert one_line(result) == (
        f"kvmigrate: error: cannot make log file {theirs} private (0600): Operation not permitted; check who owns it"
    )
    assert theirs.read_text() == "theirs\n"
    assert emulator.vaults["dst"].vault.stats.operations.get("secrets.restore", 0) == 0


def files_of_at_most(limit: int) -> Callable[[], None]:
    """A ``preexec_fn``: no file the process writes may pass ``limit`` bytes (a quota, a full disk)."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def big_secret(emulator: Emulator, name: str, *, versions: int) -> None:
    """A secret whose backup is about ``versions`` x 24 KB (random values: the blob's compression cannot shrink it)."""
    store = emulator.vaults["src"].vault.secrets
    for index in range(versions):
        moment = 1_700_000_000 + index * 60
        value = secrets.token_urlsafe(18_000)  # 24,000 characters, within Key Vault's 25 KB
        store.upsert(name, Version(id=new_version_id(), created=moment, updated=moment, data={"value": value}))


async def test_a_blob_that_cannot_be_written_stops_the_backup_in_one_line(emulator: Emulator, tmp_path: Path) -> None:
    names = fill(emulator, "src", 60, prefix="w")  # more objects than every queue (concurrency 2)
    big_secret(emulator, "a-big", versions=60)  # about 1.4 MB, the limit 1 MB
    src_url, archive = emulator.vaults["src"].url, tmp_path / "archive"
    args = ("backup", src_url, str(archive), "--concurrency", "2")
    result, elapsed = await _in_thread(
        run_limited, emulator, *args, cwd=tmp_path, preexec=files_of_at_most(1_000_000), timeout=60
    )
    lines = [line for line in result.stderr.splitlines() if not line.startswith("journal: ")]
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines == [
        f"kvmigrate: error: cannot write blob file {archive / 'secrets' / 'a-big.blob'}: File too large; free space "
        "or choose another folder"
    ], result.stderr
    assert elapsed < 30
    assert not (archive / "secrets" / "a-big.blob").exists() and not (archive / "secrets" / ".a-big.blob.tmp").exists()
    assert Archive.load(archive).complete is False

    rerun, _ = await _in_thread(run, emulator, *args, "-o", "json", cwd=tmp_path)  # space freed: the backup completes
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["failed"] == 0
    finished = Archive.load(archive)
    assert finished.is_whole and sorted(e.name for e in finished.entries.values()) == ["a-big", *names]


# -- files that cannot be read: that object fails, or that file is skipped ------------------------------------------
def as_a_user() -> Callable[[], None]:
    """The run meets file modes as any user does, also when the tests run as root."""
    return without_capabilities(CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH)


async def test_an_unreadable_blob_fails_its_object_and_the_rest_restores(
    emulator: Emulator, dst: VaultClients, tmp_path: Path
) -> None:
    names = fill(emulator, "src", 40, prefix="u")
    archive, dst_url = tmp_path / "archive", emulator.vaults["dst"].url
    backed, _ = await _in_thread(run, emulator, "backup", emulator.vaults["src"].url, str(archive), cwd=tmp_path)
    assert backed.returncode == 0, backed.stderr
    os.chmod(archive / "secrets" / "u-0007.blob", 0)
    inspected, _ = await _in_thread(
        run_limited, emulator, "archive", "inspect", str(archive), "-o", "json", cwd=tmp_path, preexec=as_a_user()
    )
    assert inspected.returncode == 1 and "Traceback" not in inspected.stderr, inspected.stderr  # was: exit 2
    mismatches = json.loads(inspected.stdout)["blob_mismatches"]
    assert len(mismatches) == 1 and mismatches[0].startswith("secret u-0007: cannot read blob file")
    assert "Permission denied" in mismatches[0]
    restored, _ = await _in_thread(
        run_limited, emulator, "restore", str(archive), dst_url, "-o", "json", cwd=tmp_path, preexec=as_a_user()
    )
    assert restored.returncode == 1 and "Traceback" not in restored.stderr, restored.stderr  # was: exit 2, stopped
    document = json.loads(restored.stdout)
    assert document["copied"] == 39 and [f["name"] for f in document["failures"]] == ["u-0007"]
    assert "Permission denied" in document["failures"][0]["error"]
    present = sorted([p.name async for p in dst.secrets.list_properties_of_secrets()])
    assert present == [name for name in names if name != "u-0007"]


async def test_an_unreadable_backup_file_is_skipped_and_the_others_listed(emulator: Emulator, tmp_path: Path) -> None:
    fill(emulator, "src", 3, prefix="f")
    archive = tmp_path / "archive"
    backed, _ = await _in_thread(run, emulator, "backup", emulator.vaults["src"].url, str(archive), cwd=tmp_path)
    assert backed.returncode == 0, backed.stderr
    folder = tmp_path / "az"
    (archive / "secrets").rename(folder)  # the blobs alone are what az keyvault secret backup writes
    os.chmod(folder / "f-0001.blob", 0)
    inspected, _ = await _in_thread(
        run_limited, emulator, "archive", "inspect", str(folder), "-o", "json", cwd=tmp_path, preexec=as_a_user()
    )
    assert inspected.returncode == 0 and "Traceback" not in inspected.stderr, inspected.stderr  # was: exit 2
    listing = json.loads(inspected.stdout)
    assert sorted(Path(f["file"]).name for f in listing["files"]) == ["f-0000.blob", "f-0002.blob"]
    assert len(listing["skipped"]) == 1 and "f-0001.blob" in listing["skipped"][0]
    assert "Permission denied" in listing["skipped"][0]


async def test_a_log_file_that_fills_up_ends_in_one_warning_and_the_run_goes_on(
    emulator: Emulator, tmp_path: Path
) -> None:
    fill(emulator, "src", 60, prefix="g")
    log = tmp_path / "run.log"
    src_url, dst_url = emulator.vaults["src"].url, emulator.vaults["dst"].url
    result, _ = await _in_thread(
        run_limited,
        emulator,
        *("plan", src_url, dst_url, "-o", "json", "--log-file", str(log)),
        cwd=tmp_path,
        preexec=files_of_at_most(2_000),
    )
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert json.loads(result.stdout)["summary"]["counts"]["copy"] == {"secret": 60}
    assert result.stderr.count("kvmigrate: warning: cannot write log file") == 1, result.stderr
    assert f"cannot write log file {log}: File too large; the log file stops here, the run goes on" in result.stderr
    assert 0 < log.stat().st_size <= 2_000
