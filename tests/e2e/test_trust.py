"""The exit code and the summary never lie and a run never hangs (issue "Trust the exit code").

Every failure path here runs with more objects than any internal queue holds (the fan-out's queue is the
concurrency, 32 by default), through the CLI as a user runs it, and must end within a minute with one line.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kvmigrate.emulator import Emulator
from kvmigrate.vault.clients import VaultClients
from tests.e2e.test_copy import _in_thread, _sleep, cli_env
from tests.seed import fill

HANG_LIMIT = 60.0


def journals() -> list[Path]:
    """The journals in this test's per-user state folder."""
    folder = Path(os.environ["KVMIGRATE_STATE_DIR"]) / "journals"
    return sorted(p for p in folder.glob("*.db")) if folder.exists() else []


def run(
    emulator: Emulator, *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = HANG_LIMIT
) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "kvmigrate", *args],
        capture_output=True,
        text=True,
        env=env if env is not None else cli_env(emulator),
        cwd=cwd,
        timeout=timeout,
    )
    return result, time.monotonic() - started


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("journal: ")]
    assert lines, result.stderr
    return lines[-1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- 1. no run hangs ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("case", "objects", "words", "code"),
    [
        ("unreachable-target", 300, "unreachable", 1),
        ("other-subscription", 400, "same Azure subscription and geography", 1),
        ("no-backup-permission", 600, "'backup' permission on secrets", 1),
        ("no-restore-permission", 300, "'restore' permission on secrets", 1),
        ("no-list-permission", 300, "'list' permission on", 1),  # every type is denied: whichever answers first
    ],
)
async def test_fatal_errors_end_the_run_within_seconds(
    emulator: Emulator, tmp_path: Path, case: str, objects: int, words: str, code: int
) -> None:
    fill(emulator, "src", objects, prefix="h")
    source, target = emulator.vaults["src"].url, emulator.vaults["dst"].url
    extra: list[str] = []
    if case == "unreachable-target":
        target = f"https://127.0.0.1:{free_port()}"
    elif case == "other-subscription":
        target = emulator.vaults["far"].url
    elif case == "no-backup-permission":
        emulator.vaults["src"].vault.settings.deny = ["backup"]
    elif case == "no-restore-permission":
        emulator.vaults["dst"].vault.settings.deny = ["restore"]
        extra = ["--concurrency", "1"]
    else:
        emulator.vaults["dst"].vault.settings.deny = ["list"]
    result, elapsed = await _in_thread(run, emulator, "copy", source, target, *extra, cwd=tmp_path)
    assert result.returncode == code, result.stderr
    line = one_line(result)
    assert line.startswith("kvmigrate: error:") and words in line, result.stderr
    assert elapsed < HANG_LIMIT
    if case in ("unreachable-target", "no-list-permission", "no-backup-permission"):
        assert journals() == []  # nothing was written to the target: nothing is left behind
    assert not (tmp_path / ".kvmigrate").exists()


async def test_sigterm_finishes_in_flight_and_a_second_one_stops_now(emulator: Emulator, tmp_path: Path) -> None:
    fill(emulator, "src", 400, prefix="t")
    dst = emulator.vaults["dst"].vault
    dst.settings.latency_ms = 30
    args = [sys.executable, "-m", "kvmigrate", "copy", emulator.vaults["src"].url, emulator.vaults["dst"].url]
    first = subprocess.Popen(args, env=cli_env(emulator), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while dst.stats.operations.get("secrets.restore", 0) < 20:
        await _sleep(0.05)
    first.send_signal(signal.SIGTERM)
    started = time.monotonic()
    _, err = await _in_thread(first.communicate, timeout=HANG_LIMIT)  # type: ignore[arg-type]
    assert first.returncode == 130 and b"rerun the same command to resume" in err
    assert time.monotonic() - started < HANG_LIMIT

    # Restores that hang: the first SIGTERM waits for them, the second does not.
    dst.settings.hang_after_ops = ["secrets.restore"]
    dst.settings.stall_ms = 120_000
    dst.stats.reset()
    second = subprocess.Popen(args, env=cli_env(emulator), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while dst.stats.started.get("secrets.restore", 0) < 25:
        await _sleep(0.05)
    second.send_signal(signal.SIGTERM)
    await _sleep(1.0)
    assert second.poll() is None  # still finishing the objects in flight
    second.send_signal(signal.SIGTERM)
    started = time.monotonic()
    _, err = await _in_thread(second.communicate, timeout=HANG_LIMIT)  # type: ignore[arg-type]
    assert second.returncode == 130 and b"Traceback" not in err
    assert time.monotonic() - started < 15


@pytest.mark.parametrize("command", ["plan", "verify"])
async def test_an_interrupted_plan_or_verify_shows_nothing_and_exits_130(
    emulator: Emulator, tmp_path: Path, command: str
) -> None:
    """A part of a plan read as the plan, or a part of a verify read as ok, would lie: neither is shown."""
    fill(emulator, "src", 400, prefix="i")
    fill(emulator, "dst", 400, prefix="i")
    src = emulator.vaults["src"].vault
    src.settings.latency_ms = 40  # every object costs a version list at the source: long enough to interrupt
    output_file = tmp_path / "plan.json"
    args = [sys.executable, "-m", "kvmigrate", command, emulator.vaults["src"].url, emulator.vaults["dst"].url]
    args += ["--output", "json"] + (["--output-file", str(output_file)] if command == "plan" else [])
    child = subprocess.Popen(args, env=cli_env(emulator), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while src.stats.operations.get("secrets.versions", 0) < 20:
        assert child.poll() is None, child.communicate()
        await _sleep(0.05)
    child.send_signal(signal.SIGTERM)
    out, err = await _in_thread(child.communicate, timeout=HANG_LIMIT)  # type: ignore[arg-type]
    assert child.returncode == 130, err
    assert f"{command} interrupted before every object was" in err.decode().strip().splitlines()[-1]
    assert out.strip() == b"" and not output_file.exists()  # no partial plan, no report saying "ok"
    assert src.stats.operations.get("secrets.versions", 0) < 400  # it stopped, rather than ran to the end


# -- 2. one journal, one run -----------------------------------------------------------------------------------------
async def test_a_journal_in_use_is_never_restarted_and_a_pair_has_one_writer(
    emulator: Emulator, tmp_path: Path
) -> None:
    fill(emulator, "src", 50, prefix="l")
    dst = emulator.vaults["dst"].vault
    dst.settings.hang_after_ops = ["secrets.restore"]
    dst.settings.stall_ms = 30_000
    src_url, dst_url = emulator.vaults["src"].url, emulator.vaults["dst"].url
    state = tmp_path / "held.db"
    holder = subprocess.Popen(
        [sys.executable, "-m", "kvmigrate", "copy", src_url, dst_url, "--state", str(state)],
        env=cli_env(emulator),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while dst.stats.started.get("secrets.restore", 0) < 5:
            await _sleep(0.05)
        before = state.read_bytes()
        restart, _ = await _in_thread(
            run, emulator, "copy", src_url, dst_url, "--state", str(state), "--restart", cwd=tmp_path
        )
        assert restart.returncode == 2 and "another kvmigrate run is writing" in one_line(restart)
        far_url = emulator.vaults["far"].url  # another pair, the same journal: the journal's own lock refuses it
        stolen, _ = await _in_thread(
            run, emulator, "copy", src_url, far_url, "--state", str(state), "--restart", cwd=tmp_path
        )
        assert stolen.returncode == 2 and "in use by another kvmigrate run" in one_line(stolen)
        assert state.exists() and state.read_bytes()[:100] == before[:100]
        other, _ = await _in_thread(
            run, emulator, "copy", src_url, dst_url, "--state", str(tmp_path / "other.db"), cwd=tmp_path
        )
        assert other.returncode == 2 and "another kvmigrate run is writing" in one_line(other)
        assert not (tmp_path / "other.db").exists()
    finally:
        holder.kill()
        holder.wait()


# -- 3. a rerun notices what changed -----------------------------------------------------------------------------------
async def test_a_rerun_after_the_source_changed_does_not_call_it_done(
    emulator: Emulator, src: VaultClients, tmp_path: Path
) -> None:
    fill(emulator, "src", 20, prefix="c")
    src_url, dst_url = emulator.vaults["src"].url, emulator.vaults["dst"].url
    first, _ = await _in_thread(run, emulator, "copy", src_url, dst_url, "-o", "json", cwd=tmp_path)
    assert first.returncode == 0 and json.loads(first.stdout)["copied"] == 20
    await src.secrets.set_secret("c-0007", "a new version")
    emulator.vaults["src"].vault.stats.reset()
    rerun, _ = await _in_thread(run, emulator, "copy", src_url, dst_url, "-o", "json", cwd=tmp_path)
    document = json.loads(rerun.stdout)
    assert document["previously_done"] == 19 and document["skipped_by_reason"] == {"skip-existing": 1}
    assert emulator.vaults["src"].vault.stats.operations.get("secrets.versions", 0) == 1  # only the changed one
    planned, _ = await _in_thread(run, emulator, "plan", src_url, dst_url, "-o", "json", cwd=tmp_path)
    actions = {item["name"]: item["action"] for item in json.loads(planned.stdout)["items"]}
    assert actions["c-0007"] == "skip-existing"  # plan and copy agree
    table, _ = await _in_thread(run, emulator, "copy", src_url, dst_url, cwd=tmp_path)
    assert "changed in the source since an earlier run copied it" in table.stdout
    restarted, _ = await _in_thread(run, emulator, "copy", src_url, dst_url, "--restart", "-o", "json", cwd=tmp_path)
    again = json.loads(restarted.stdout)
    assert again["copied"] == 0 and again["skipped_by_reason"] == {"skip-existing": 1} and again["already_copied"] == 19


# -- 4. value mode never makes the target more readable than the source ----------------------------------------------
async def test_value_mode_blocks_a_disabled_current_version(
    emulator: Emulator, src: VaultClients, far: VaultClients, tmp_path: Path
) -> None:
    await src.secrets.set_secret("cur-off", "old readable value")
    latest = await src.secrets.set_secret("cur-off", "current value", enabled=False)
    assert latest.properties.enabled is False
    await src.secrets.set_secret("all-off", "never readable", enabled=False)
    await src.secrets.set_secret("fine", "ok")
    src_url, far_url = emulator.vaults["src"].url, emulator.vaults["far"].url
    planned, _ = await _in_thread(
        run, emulator, "plan", src_url, far_url, "--mode", "value", "-o", "json", cwd=tmp_path
    )
    actions = {item["name"]: item["action"] for item in json.loads(planned.stdout)["items"]}
    assert actions == {"cur-off": "blocked-disabled", "all-off": "blocked-disabled", "fine": "copy"}
    copied, _ = await _in_thread(run, emulator, "copy", src_url, far_url, "--mode", "value", "-o", "json", cwd=tmp_path)
    document = json.loads(copied.stdout)
    assert document["copied"] == 1 and sorted(b["name"] for b in document["blocked"]) == ["all-off", "cur-off"]
    names = sorted([p.name async for p in far.secrets.list_properties_of_secrets()])
    assert names == ["fine"]  # no older value made current and readable, nothing counted copied that was not


# -- 5. verify is strict and says everything --------------------------------------------------------------------------
async def test_verify_lists_what_it_cannot_compare_and_what_only_the_target_has(
    emulator: Emulator, src: VaultClients, far: VaultClients, tmp_path: Path
) -> None:
    fill(emulator, "src", 5, prefix="v")
    await src.keys.create_ec_key("only-by-backup")
    src_url, far_url = emulator.vaults["src"].url, emulator.vaults["far"].url
    copied, _ = await _in_thread(run, emulator, "copy", src_url, far_url, "--mode", "value", cwd=tmp_path)
    assert copied.returncode == 0, copied.stderr
    keys, _ = await _in_thread(run, emulator, "verify", src_url, far_url, "--mode", "value", "-o", "json", cwd=tmp_path)
    report = json.loads(keys.stdout)
    assert keys.returncode == 1 and [f["name"] for f in report["unverified"]] == ["only-by-backup"]
    secrets_only = ["--types", "secrets,certificates"]
    fine, _ = await _in_thread(
        run, emulator, "verify", src_url, far_url, "--mode", "value", *secrets_only, cwd=tmp_path
    )
    assert fine.returncode == 0, fine.stdout
    await far.secrets.set_secret("stray", "only in the target")
    extra, _ = await _in_thread(
        run, emulator, "verify", src_url, far_url, "--mode", "value", *secrets_only, "-o", "json", cwd=tmp_path
    )
    assert extra.returncode == 1 and [f["name"] for f in json.loads(extra.stdout)["extra"]] == ["stray"]
    one_way, _ = await _in_thread(
        run, emulator, "verify", src_url, far_url, "--mode", "value", *secrets_only, "--one-way", cwd=tmp_path
    )
    assert one_way.returncode == 0, one_way.stdout


@pytest.mark.parametrize("command", ["verify", "plan"])
@pytest.mark.parametrize("case", ["unreachable", "no-list"])
async def test_verify_and_plan_fail_in_one_line(emulator: Emulator, tmp_path: Path, command: str, case: str) -> None:
    fill(emulator, "src", 40, prefix="n")
    target = emulator.vaults["dst"].url
    if case == "unreachable":
        target = f"https://127.0.0.1:{free_port()}"
    else:
        emulator.vaults["dst"].vault.settings.deny = ["list"]
    result, elapsed = await _in_thread(run, emulator, command, emulator.vaults["src"].url, target, cwd=tmp_path)
    assert result.returncode == 1 and one_line(result).startswith("kvmigrate: error:")
    assert len(result.stderr.strip().splitlines()) <= 2 and elapsed < HANG_LIMIT


# -- 6. a run that cannot start writes nothing --------------------------------------------------------------------
@pytest.mark.parametrize("address", ["https://exa mple", "https://127.0.0.1 :8444", "https://bad_host.example"])
def test_invalid_addresses_are_usage_errors_that_write_nothing(tmp_path: Path, address: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kvmigrate", "copy", address, "dst-vault"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 2 and one_line(result).startswith("kvmigrate: error:")
    assert journals() == [] and list(tmp_path.iterdir()) == []


async def test_refused_runs_leave_no_journal_and_touch_no_folder(emulator: Emulator, tmp_path: Path) -> None:
    fill(emulator, "src", 40, prefix="w")
    src_url, dst_url = emulator.vaults["src"].url, emulator.vaults["dst"].url
    no_manifest = tmp_path / "not-an-archive"
    no_manifest.mkdir()
    restored, _ = await _in_thread(run, emulator, "restore", str(no_manifest), dst_url, cwd=tmp_path)
    assert restored.returncode == 2 and "no manifest.json" in one_line(restored)
    env = cli_env(emulator)
    env.pop("KVMIGRATE_CA_BUNDLE")
    tls, _ = await _in_thread(run, emulator, "copy", src_url, dst_url, env=env, cwd=tmp_path)
    assert tls.returncode == 1 and "TLS verification failed" in one_line(tls)
    busy = tmp_path / "busy"
    busy.mkdir(mode=0o755)
    os.chmod(busy, 0o755)
    (busy / "notes.txt").write_text("mine")
    backup, _ = await _in_thread(run, emulator, "backup", src_url, str(busy), cwd=tmp_path)
    assert backup.returncode == 2 and "not empty" in one_line(backup)
    assert oct(busy.stat().st_mode & 0o777) == "0o755" and sorted(p.name for p in busy.iterdir()) == ["notes.txt"]
    assert journals() == []


async def test_a_killed_dry_run_leaves_no_temporary_folder(emulator: Emulator, tmp_path: Path) -> None:
    fill(emulator, "src", 300, prefix="d")
    emulator.vaults["src"].vault.settings.latency_ms = 40
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**cli_env(emulator), "TMPDIR": str(scratch)}
    args = ["copy", emulator.vaults["src"].url, emulator.vaults["dst"].url, "--dry-run"]
    process = subprocess.Popen(
        [sys.executable, "-m", "kvmigrate", *args],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while emulator.vaults["src"].vault.stats.operations.get("secrets.versions", 0) < 30:
        await _sleep(0.05)
    process.kill()
    process.wait()
    assert list(scratch.iterdir()) == [] and journals() == []


# -- 7. an archive is whole or says so ---------------------------------------------------------------------------------
async def test_incomplete_and_tampered_archives_say_so(emulator: Emulator, dst: VaultClients, tmp_path: Path) -> None:
    fill(emulator, "src", 6, prefix="a")
    archive = tmp_path / "archive"
    src_url, dst_url = emulator.vaults["src"].url, emulator.vaults["dst"].url
    backed, _ = await _in_thread(run, emulator, "backup", src_url, str(archive), cwd=tmp_path)
    assert backed.returncode == 0, backed.stderr
    whole, _ = await _in_thread(run, emulator, "archive", "inspect", str(archive), cwd=tmp_path)
    assert whole.returncode == 0 and "complete" in whole.stdout
    blob = archive / "secrets" / "a-0002.blob"
    data = bytearray(blob.read_bytes())
    data[50] ^= 0x01
    blob.write_bytes(bytes(data))
    tampered, _ = await _in_thread(run, emulator, "archive", "inspect", str(archive), "-o", "json", cwd=tmp_path)
    document = json.loads(tampered.stdout)
    assert tampered.returncode == 1 and not document["whole"] and "a-0002" in document["blob_mismatches"][0]
    quick, _ = await _in_thread(run, emulator, "archive", "inspect", str(archive), "--quick", cwd=tmp_path)
    assert quick.returncode == 0
    (archive / "secrets" / "a-0004.blob").unlink()
    planned, _ = await _in_thread(run, emulator, "plan", str(archive), dst_url, "-o", "json", cwd=tmp_path)
    plan = json.loads(planned.stdout)
    assert plan["operation"] == "restore" and any("incomplete" in w for w in plan["summary"]["warnings"])
    refused, _ = await _in_thread(run, emulator, "restore", str(archive), dst_url, cwd=tmp_path)
    assert refused.returncode == 1 and "--allow-incomplete" in one_line(refused)
    assert [p async for p in dst.secrets.list_properties_of_secrets()] == []
    allowed, _ = await _in_thread(
        run, emulator, "restore", str(archive), dst_url, "--allow-incomplete", "-o", "json", cwd=tmp_path
    )
    summary = json.loads(allowed.stdout)
    assert allowed.returncode == 1 and summary["copied"] == 4 and summary["failed"] == 2


# -- 8. output tells the truth -------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["copy", "verify", "backup", "restore"])
def test_markdown_only_where_it_exists(tmp_path: Path, command: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kvmigrate", command, "a-vault", str(tmp_path / "b"), "-o", "markdown"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 2 and "markdown" in result.stderr and "Traceback" not in result.stderr


async def test_purges_are_counted_and_messages_name_the_object_once(
    emulator: Emulator, src: VaultClients, dst: VaultClients, tmp_path: Path
) -> None:
    fill(emulator, "src", 4, prefix="g")
    await dst.secrets.set_secret("g-0001", "old")
    await dst.secrets.delete_secret("g-0001", _polling_interval=0.05)
    await dst.secrets.set_secret("g-0002", "someone else's")
    src_url, dst_url = emulator.vaults["src"].url, emulator.vaults["dst"].url
    result, _ = await _in_thread(
        run, emulator, "copy", src_url, dst_url, "--purge-deleted", "--on-conflict", "fail", "-o", "json", cwd=tmp_path
    )
    document = json.loads(result.stdout)
    assert document["purged"] == 1 and document["copied"] == 3 and document["failed"] == 1
    table, _ = await _in_thread(run, emulator, "copy", src_url, dst_url, "--on-conflict", "fail", cwd=tmp_path)
    assert "failed secret g-0002: already exists in the target" in table.stdout
    assert "secret g-0002: secret g-0002" not in table.stdout + table.stderr


async def test_an_interrupted_backup_says_what_a_rerun_does(emulator: Emulator, tmp_path: Path) -> None:
    fill(emulator, "src", 200, prefix="b")
    emulator.vaults["src"].vault.settings.latency_ms = 30
    args = [sys.executable, "-m", "kvmigrate", "backup", emulator.vaults["src"].url, str(tmp_path / "a")]
    process = subprocess.Popen(
        args, env=cli_env(emulator), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    while emulator.vaults["src"].vault.stats.operations.get("secrets.backup", 0) < 10:
        await _sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = await _in_thread(process.communicate, timeout=HANG_LIMIT)  # type: ignore[arg-type]
    assert process.returncode == 130 and b"finished objects are not backed up again" in err


async def test_the_value_plan_predicts_the_run_within_a_quarter(emulator: Emulator, tmp_path: Path) -> None:
    fill(emulator, "src", 100, prefix="eta", versions=3)
    for vault in ("src", "far"):
        emulator.vaults[vault].vault.settings.latency_ms = 20
    src_url, far_url = emulator.vaults["src"].url, emulator.vaults["far"].url
    planned, _ = await _in_thread(
        run, emulator, "plan", src_url, far_url, "--mode", "value", "-o", "json", cwd=tmp_path
    )
    summary = json.loads(planned.stdout)["summary"]
    copied, _ = await _in_thread(
        run, emulator, "copy", src_url, far_url, "--mode", "value", "-o", "json", cwd=tmp_path, timeout=120
    )
    measured = json.loads(copied.stdout)
    assert measured["copied"] == 100
    assert abs(summary["eta_seconds"] - measured["elapsed_seconds"]) <= 0.25 * measured["elapsed_seconds"], (
        summary["eta_seconds"],
        measured["elapsed_seconds"],
    )
    for vault, predicted in summary["requests"].items():
        actual = measured["requests_by_vault"][vault]
        assert abs(predicted - actual) <= 0.25 * actual, (vault, predicted, actual)


# -- 10. a denial scoped to one object fails that object ----------------------------------------------------------
async def test_a_denial_scoped_to_one_object_fails_only_that_object(emulator: Emulator, tmp_path: Path) -> None:
    fill(emulator, "src", 600, prefix="r")
    emulator.vaults["src"].vault.settings.deny = ["secrets/backup/r-0000", "secrets/backup/r-0300"]
    src_url, dst_url = emulator.vaults["src"].url, emulator.vaults["dst"].url
    result, elapsed = await _in_thread(run, emulator, "copy", src_url, dst_url, "-o", "json", cwd=tmp_path)
    document = json.loads(result.stdout)
    assert result.returncode == 1 and document["copied"] == 598 and elapsed < HANG_LIMIT
    failures = {f["name"]: f["error"] for f in document["failures"]}
    assert sorted(failures) == ["r-0000", "r-0300"]
    assert all("Microsoft.KeyVault/vaults/secrets/backup/action" in error for error in failures.values())
