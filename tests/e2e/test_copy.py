"""``copy`` end to end: the engine API and the CLI against emulated vaults over HTTPS."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kvmigrate.emulator import Emulator
from kvmigrate.engine import Engine
from kvmigrate.models import ObjectType
from kvmigrate.options import ConnectionOptions, CopyOptions
from kvmigrate.vault.clients import VaultClients
from tests.seed import seed_mixed, seed_secrets, version_map


def copy_options(emulator: Emulator, tmp_path: Path, **overrides: object) -> CopyOptions:
    values: dict[str, object] = {
        "source": emulator.vaults["src"].url,
        "target": emulator.vaults["dst"].url,
        "state": tmp_path / "journal.db",
        "connection": ConnectionOptions(ca_bundle=emulator.ca_file, tenant_id=None),
    }
    values.update(overrides)
    return CopyOptions.model_validate(values)


def stats(emulator: Emulator, vault: str) -> dict[str, int]:
    return dict(emulator.vaults[vault].vault.stats.operations)


async def test_copy_mixed_vault_keeps_every_version_and_attribute(
    emulator: Emulator, src: VaultClients, dst: VaultClients, tmp_path: Path
) -> None:
    seeded = await seed_mixed(src)
    summary = await Engine(copy_options(emulator, tmp_path)).run()
    assert summary.failed == 0, summary.failures
    assert summary.copied == seeded.total
    assert await version_map(dst) == await version_map(src)
    source_ops = stats(emulator, "src")
    # Managed keys/secrets travel inside their certificate: never backed up on their own.
    assert source_ops["secrets.backup"] == len(seeded.secrets)
    assert source_ops["keys.backup"] == len(seeded.keys)
    assert source_ops["certificates.backup"] == len(seeded.certificates)
    for name in seeded.certificates:
        assert f"secrets.backup/{name}" not in emulator.vaults["src"].vault.stats.objects
    assert summary.requests["https://" + emulator.vaults["src"].url.removeprefix("https://")] > 0
    assert summary.throttled == {summary.source: 0, summary.target: 0}

    # A second run finds everything done in the journal: no backup or restore at all.
    emulator.vaults["src"].vault.stats.reset()
    emulator.vaults["dst"].vault.stats.reset()
    again = await Engine(copy_options(emulator, tmp_path)).run()
    assert again.previously_done == seeded.total and again.copied == 0
    assert not any(op.endswith((".backup", ".restore")) for op in stats(emulator, "src") | stats(emulator, "dst"))

    # With a fresh journal, identical version ids in the target count as already copied, not as conflicts.
    fresh = await Engine(copy_options(emulator, tmp_path, state=tmp_path / "fresh.db")).run()
    assert fresh.already_copied == seeded.total and fresh.copied == 0 and fresh.failed == 0


async def test_filters_select_types_and_names(
    emulator: Emulator, src: VaultClients, dst: VaultClients, tmp_path: Path
) -> None:
    await seed_secrets(src, 10, prefix="app")
    await seed_secrets(src, 5, prefix="db")
    await src.keys.create_ec_key("app-key")
    summary = await Engine(
        copy_options(emulator, tmp_path, types=(ObjectType.SECRET,), include=("APP-*",), exclude=("app-0009",))
    ).run()
    assert summary.copied == 9
    names = sorted([p.name async for p in dst.secrets.list_properties_of_secrets()])
    assert names == [f"app-{i:04d}" for i in range(9)]
    assert [k async for k in dst.keys.list_properties_of_keys()] == []


async def test_conflicts_skip_fail_and_soft_deleted(
    emulator: Emulator, src: VaultClients, dst: VaultClients, tmp_path: Path
) -> None:
    await seed_secrets(src, 3, prefix="c")
    await dst.secrets.set_secret("c-0000", "someone else's")
    await dst.secrets.set_secret("c-0001", "deleted here")
    await dst.secrets.delete_secret("c-0001", _polling_interval=0.05)
    skip = await Engine(copy_options(emulator, tmp_path, state=tmp_path / "skip.db")).run()
    assert skip.copied == 1 and skip.skipped == {"skip-existing": 1, "conflict-deleted": 1} and skip.failed == 0
    assert (await dst.secrets.get_secret("c-0000")).value == "someone else's"  # never overwritten

    fail = await Engine(copy_options(emulator, tmp_path, state=tmp_path / "fail.db", on_conflict="fail")).run()
    assert [f.name for f in fail.failures] == ["c-0000"] and "already exists" in fail.failures[0].error

    recovered = await Engine(copy_options(emulator, tmp_path, state=tmp_path / "purge.db", purge_deleted=True)).run()
    assert recovered.failed == 0 and recovered.copied == 1  # purged, then restored once the name was free
    assert (await dst.secrets.get_secret("c-0001")).value == "value-c-0001-0"


async def test_rate_limited_vault_settles_near_its_limit(emulator: Emulator, src: VaultClients, tmp_path: Path) -> None:
    await seed_secrets(src, 100, prefix="t")
    for name in ("src", "dst"):
        emulator.vaults[name].vault.settings.rate_limit = 60  # 6 per second, --rps far above it
    summary = await Engine(copy_options(emulator, tmp_path, rps=200, concurrency=16)).run()
    assert summary.failed == 0 and summary.copied == 100
    throttled, requests = sum(summary.throttled.values()), sum(summary.requests.values())
    assert throttled > 0  # it met the limit and adapted instead of failing
    assert throttled < 0.5 * requests, (throttled, requests)  # and settled rather than retrying in a storm


async def test_faults_lose_nothing(emulator: Emulator, src: VaultClients, dst: VaultClients, tmp_path: Path) -> None:
    await seed_secrets(src, 80, prefix="f", versions=2)
    for name in ("src", "dst"):
        settings = emulator.vaults[name].vault.settings
        settings.error_rate = 0.05
        settings.drop_rate = 0.05
    summary = await Engine(copy_options(emulator, tmp_path, concurrency=8)).run()
    for name in ("src", "dst"):
        emulator.vaults[name].vault.settings.error_rate = 0
        emulator.vaults[name].vault.settings.drop_rate = 0
    assert summary.failed == 0, summary.failures
    assert await version_map(dst) == await version_map(src)
    assert emulator.vaults["src"].vault.stats.faults + emulator.vaults["dst"].vault.stats.faults > 0


def cli_env(emulator: Emulator) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "MSI_"))}
    env.update(emulator.environment())
    return env


def run_cli(
    emulator: Emulator, *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kvmigrate", *args],
        capture_output=True,
        text=True,
        env=env if env is not None else cli_env(emulator),
        cwd=cwd,
        timeout=300,
    )


async def test_cli_json_summary_and_exit_codes(emulator: Emulator, src: VaultClients, tmp_path: Path) -> None:
    await seed_secrets(src, 5, prefix="j")
    src_url, dst_url = emulator.vaults["src"].url, emulator.vaults["dst"].url
    result = await _in_thread(run_cli, emulator, "copy", src_url, dst_url, "-o", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    for key in ("copied", "skipped", "failed", "failures", "requests", "throttled", "elapsed_seconds", "state"):
        assert key in document
    assert document["copied"] == 5 and document["failed"] == 0
    state = Path(document["state"])
    # The default journal lives in the per-user state folder, so a rerun from any directory finds it.
    assert state.parent == Path(os.environ["KVMIGRATE_STATE_DIR"]) / "journals"
    assert oct(state.stat().st_mode & 0o777) == "0o600" and oct(state.parent.stat().st_mode & 0o777) == "0o700"
    assert not (tmp_path / ".kvmigrate").exists()

    same = await _in_thread(run_cli, emulator, "copy", src_url, src_url + "/", cwd=tmp_path)
    assert same.returncode == 2 and "same vault" in same.stderr and "Traceback" not in same.stderr
    bad = await _in_thread(run_cli, emulator, "copy", "http://example.com", dst_url, cwd=tmp_path)
    assert bad.returncode == 2 and "not https" in bad.stderr
    unknown = await _in_thread(run_cli, emulator, "copy", src_url, dst_url, "--frobnicate", cwd=tmp_path)
    assert unknown.returncode == 2


async def test_cli_resumes_after_sigkill_without_redoing_finished_objects(
    emulator: Emulator, src: VaultClients, dst: VaultClients, tmp_path: Path
) -> None:
    await seed_secrets(src, 120, prefix="k")
    for name in ("src", "dst"):
        emulator.vaults[name].vault.settings.latency_ms = 30
    state = tmp_path / "resume.db"
    src_url, dst_url = emulator.vaults["src"].url, emulator.vaults["dst"].url
    args = [sys.executable, "-m", "kvmigrate", "copy", src_url, dst_url, "--state", str(state), "--concurrency", "4"]
    process = subprocess.Popen(
        args, env=cli_env(emulator), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    objects = emulator.vaults["dst"].vault.stats.objects
    deadline = time.monotonic() + 120
    while sum(1 for key in objects if key.startswith("secrets.restore/")) < 30 and time.monotonic() < deadline:
        await _sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(state)) as db:
        done_before = {row[0].lower() for row in db.execute("SELECT name FROM item WHERE state = 'done'")}
    assert 0 < len(done_before) < 120
    emulator.vaults["src"].vault.stats.reset()
    emulator.vaults["dst"].vault.stats.reset()
    rerun = await _in_thread(
        run_cli, emulator, "copy", src_url, dst_url, "--state", str(state), "-o", "json", cwd=tmp_path
    )
    assert rerun.returncode == 0, rerun.stderr
    again = emulator.vaults["src"].vault.stats.objects | emulator.vaults["dst"].vault.stats.objects
    redone = {key.split("/", 1)[1] for key in again} & done_before
    assert redone == set(), f"finished objects were moved again: {sorted(redone)[:5]}"
    assert await version_map(dst) == await version_map(src)


async def _in_thread(func: object, *args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
    import asyncio

    return await asyncio.to_thread(func, *args, **kwargs)  # type: ignore[arg-type]


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


async def test_cli_interrupt_exits_130_and_resumes(
    emulator: Emulator, src: VaultClients, dst: VaultClients, tmp_path: Path
) -> None:
    await seed_secrets(src, 80, prefix="i")
    for name in ("src", "dst"):
        emulator.vaults[name].vault.settings.latency_ms = 30
    state = tmp_path / "interrupt.db"
    src_url, dst_url = emulator.vaults["src"].url, emulator.vaults["dst"].url
    args = [sys.executable, "-m", "kvmigrate", "copy", src_url, dst_url, "--state", str(state), "--concurrency", "2"]
    process = subprocess.Popen(
        args, env=cli_env(emulator), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    objects = emulator.vaults["dst"].vault.stats.objects
    deadline = time.monotonic() + 120
    while len(objects) < 10 and time.monotonic() < deadline:
        await _sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = await _in_thread(process.communicate, timeout=120)  # type: ignore[arg-type]
    assert process.returncode == 130, err
    assert "rerun the same command to resume" in err and "Traceback" not in err
    rerun = await _in_thread(
        run_cli, emulator, "copy", src_url, dst_url, "--state", str(state), "-o", "json", cwd=tmp_path
    )
    assert rerun.returncode == 0, rerun.stderr
    document = json.loads(rerun.stdout)
    assert document["previously_done"] >= 10 and document["previously_done"] + document["copied"] == 80
    assert await version_map(dst) == await version_map(src)


async def test_missing_permission_stops_with_one_line(emulator: Emulator, src: VaultClients, tmp_path: Path) -> None:
    await seed_secrets(src, 3, prefix="p")
    emulator.vaults["src"].vault.settings.deny = ["backup"]
    result = await _in_thread(
        run_cli, emulator, "copy", emulator.vaults["src"].url, emulator.vaults["dst"].url, cwd=tmp_path
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("kvmigrate: error:") and "'backup' permission on secrets" in last
    assert emulator.vaults["src"].url in last and "Traceback" not in result.stderr


async def test_secret_values_never_reach_output_journal_or_log(
    emulator: Emulator, src: VaultClients, tmp_path: Path
) -> None:
    canaries = [f"canary-{i}-7f3a9c" for i in range(5)]
    for i, value in enumerate(canaries):
        await src.secrets.set_secret(f"leak-{i}", value)
    log_file = tmp_path / "run.log"
    result = await _in_thread(
        run_cli,
        emulator,
        "copy",
        emulator.vaults["src"].url,
        emulator.vaults["dst"].url,
        "-v",
        "--log-file",
        str(log_file),
        "-o",
        "json",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    state = Path(json.loads(result.stdout)["state"])
    assert oct(log_file.stat().st_mode & 0o777) == "0o600"
    written = [result.stdout, result.stderr, log_file.read_text()]
    written += [p.read_bytes().decode("latin-1") for p in state.parent.iterdir()]
    assert "leak-0" in log_file.read_text()  # the log names objects...
    for blob in written:
        for value in canaries:
            assert value not in blob  # ...never their values
        assert "Bearer" not in blob and "eyJ0eXAi" not in blob and "eyJhbGci" not in blob  # nor tokens (JWTs)


@pytest.mark.parametrize("case", ["tls", "unreachable", "unknown-host", "no-credential", "foreign-tenant-token"])
async def test_connection_problems_give_one_clear_line(emulator: Emulator, tmp_path: Path, case: str) -> None:
    import socket

    src_url, dst_url = emulator.vaults["src"].url, emulator.vaults["dst"].url
    env = cli_env(emulator)
    args = ["copy", src_url, dst_url]
    expected = ""
    if case == "tls":
        env.pop("KVMIGRATE_CA_BUNDLE")
        expected = "TLS verification failed"
    elif case == "unreachable":
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            free_port = sock.getsockname()[1]
        args = ["copy", f"https://127.0.0.1:{free_port}", dst_url]
        expected = "unreachable"
    elif case == "unknown-host":
        args = ["copy", "https://no-such-vault.invalid", dst_url]
        expected = "cannot be resolved (DNS)"
    elif case == "no-credential":
        env.pop("IDENTITY_ENDPOINT")
        env.pop("IDENTITY_HEADER")
        env["PATH"] = "/nonexistent"  # no az / azd / pwsh to fall back on
        expected = "cannot get a token"
    else:
        env["IDENTITY_HEADER"] = "wrong"
        expected = "cannot get a token"
    result = await _in_thread(
        subprocess.run,
        [sys.executable, "-m", "kvmigrate", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("kvmigrate: error:") and expected in last, result.stderr
    assert "Traceback" not in result.stderr
