"""Value and auto mode finish what an interrupted run half-wrote: never skip it, never write it twice.

Each case copies secrets of three versions into a vault of another subscription under faults or kills, then checks
through the SDK that the target equals the source version by version (values in order, attributes, tags, the right
current value) and that ``verify --mode value`` agrees.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from kvmigrate.emulator import Emulator
from kvmigrate.vault.clients import VaultClients
from tests.e2e.test_copy import _in_thread, _sleep, cli_env
from tests.e2e.test_trust import journals, one_line, run
from tests.seed import assert_same_values, fill

FAST = ["--create-rps", "400", "--concurrency", "16"]


def prepare(emulator: Emulator, count: int = 200, versions: int = 3, prefix: str = "v") -> list[str]:
    names = fill(emulator, "src", count, prefix=prefix, versions=versions)
    far = emulator.vaults["far"].vault.settings
    far.create_rate_limit = 0  # the test is about settling, not about Key Vault's create budget
    far.latency_ms = 5
    return names


def value_args(emulator: Emulator, mode: str = "value") -> list[str]:
    return ["copy", emulator.vaults["src"].url, emulator.vaults["far"].url, "--mode", mode, *FAST]


async def kill_after(emulator: Emulator, args: list[str], cwd: Path, *, writes: int) -> None:
    """Start ``kvmigrate ARGS`` and SIGKILL it once the target has seen ``writes`` more version writes."""
    stats = emulator.vaults["far"].vault.stats
    start = stats.started.get("secrets.set", 0)
    process = subprocess.Popen(
        [sys.executable, "-m", "kvmigrate", *args],
        env=cli_env(emulator),
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while stats.started.get("secrets.set", 0) - start < writes and process.poll() is None:
        assert time.monotonic() < deadline, "the run never reached the kill point"
        await _sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()


async def verified(emulator: Emulator, cwd: Path) -> None:
    src_url, far_url = emulator.vaults["src"].url, emulator.vaults["far"].url
    result, _ = await _in_thread(run, emulator, "verify", src_url, far_url, "--mode", "value", cwd=cwd, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr


async def test_auto_mode_resumes_in_the_route_the_kill_interrupted(
    emulator: Emulator, src: VaultClients, far: VaultClients, tmp_path: Path
) -> None:
    names = prepare(emulator)
    emulator.vaults["far"].vault.settings.drop_rate = 0.03
    args = value_args(emulator, "auto")
    await kill_after(emulator, args, tmp_path, writes=200)
    rerun, _ = await _in_thread(run, emulator, *args, "-o", "json", cwd=tmp_path, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    document = json.loads(rerun.stdout)
    assert document["skipped"] == 0, document["skipped_by_reason"]  # nothing half-written is skipped for good
    emulator.vaults["far"].vault.settings.drop_rate = 0
    await assert_same_values(src, far, names)
    await verified(emulator, tmp_path)


async def test_a_rerun_without_the_journal_settles_against_the_target(
    emulator: Emulator, src: VaultClients, far: VaultClients, tmp_path: Path
) -> None:
    names = prepare(emulator)
    args = value_args(emulator)
    first_dir, second_dir = tmp_path / "a", tmp_path / "b"
    first_dir.mkdir()
    second_dir.mkdir()
    await kill_after(emulator, args, first_dir, writes=150)
    await kill_after(emulator, [*args, "--restart"], second_dir, writes=150)  # the journal discarded
    for journal in journals():
        journal.unlink()  # and then lost altogether (a fresh CI workspace, a container)
    rerun, _ = await _in_thread(run, emulator, *args, "-o", "json", cwd=second_dir, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    document = json.loads(rerun.stdout)
    assert document["skipped"] == 0 and document["copied"] + document["already_copied"] == len(names)
    await assert_same_values(src, far, names)
    await verified(emulator, tmp_path)


async def test_lost_answers_never_become_duplicate_versions(
    emulator: Emulator, src: VaultClients, far: VaultClients, tmp_path: Path
) -> None:
    names = prepare(emulator)
    settings = emulator.vaults["far"].vault.settings
    settings.drop_rate = 0.10  # half of them after the vault acted: the answer is lost, the version exists
    result, _ = await _in_thread(run, emulator, *value_args(emulator), "-o", "json", cwd=tmp_path, timeout=300)
    settings.drop_rate = 0
    assert result.returncode == 0, result.stderr
    assert emulator.vaults["far"].vault.stats.faults > 20
    await assert_same_values(src, far, names)
    await verified(emulator, tmp_path)


async def test_two_runs_on_one_pair_at_once_write_nothing_twice(
    emulator: Emulator, src: VaultClients, far: VaultClients, tmp_path: Path
) -> None:
    names = prepare(emulator)
    args = value_args(emulator)
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "kvmigrate", *args, "--state", str(tmp_path / f"{index}.db")],
            env=cli_env(emulator),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(2)
    ]
    outputs = [await _in_thread(p.communicate, timeout=300) for p in processes]  # type: ignore[arg-type]
    codes = sorted(p.returncode for p in processes)
    assert codes == [0, 2], outputs
    refused = next(err for (_, err), p in zip(outputs, processes, strict=True) if p.returncode == 2)
    assert "another kvmigrate run is writing" in refused
    await assert_same_values(src, far, names)
    await verified(emulator, tmp_path)


async def test_a_target_that_stops_answering_is_ridden_out_or_named(
    emulator: Emulator, src: VaultClients, far: VaultClients, tmp_path: Path
) -> None:
    names = prepare(emulator, count=60)
    settings = emulator.vaults["far"].vault.settings
    args = value_args(emulator)
    process = subprocess.Popen(
        [sys.executable, "-m", "kvmigrate", *args, "-o", "json"],
        env=cli_env(emulator),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    while emulator.vaults["far"].vault.stats.started.get("secrets.set", 0) < 30:
        await _sleep(0.01)
    settings.drop_rate = 1.0  # every request to the target is cut for 20 seconds
    await _sleep(20.0)
    settings.drop_rate = 0
    out, err = await _in_thread(process.communicate, timeout=180)  # type: ignore[arg-type]
    assert process.returncode == 0, err
    assert "Traceback" not in err and json.loads(out)["failed"] == 0
    await assert_same_values(src, far, names)

    settings.drop_rate = 1.0  # and for good: one line, the run ends
    fill(emulator, "src", 5, prefix="late")
    gone, elapsed = await _in_thread(run, emulator, *args, cwd=tmp_path, timeout=240)
    settings.drop_rate = 0
    assert gone.returncode == 1 and "unreachable" in one_line(gone) and elapsed < 240


async def test_a_kill_storm_under_faults_loses_and_duplicates_nothing(
    emulator: Emulator, src: VaultClients, far: VaultClients, tmp_path: Path
) -> None:
    names = prepare(emulator, count=1000, versions=1, prefix="storm")
    settings = emulator.vaults["far"].vault.settings
    settings.error_rate = 0.05
    settings.drop_rate = 0.03
    args = value_args(emulator)
    for _ in range(6):
        await kill_after(emulator, args, tmp_path, writes=120)
    final, _ = await _in_thread(run, emulator, *args, "-o", "json", cwd=tmp_path, timeout=300)
    settings.error_rate = settings.drop_rate = 0
    assert final.returncode == 0, final.stderr
    await assert_same_values(src, far, names)
