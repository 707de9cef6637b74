"""The bad-input catalogue: each case ends in one clear line, the right exit code, and no damage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from azure.keyvault.certificates import CertificatePolicy

from kvmigrate.emulator import Emulator
from kvmigrate.emulator.store import Version, new_version_id
from kvmigrate.vault.clients import VaultClients
from tests.e2e.test_copy import _in_thread, cli_env, run_cli


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["copy", "not a vault", "dst-vault"], "contains whitespace"),
        (["copy", "not-a-vault!", "dst-vault"], "is not a vault name"),
        (["copy", "http://vault.example.com", "dst-vault"], "not https"),
        (["copy", "https://src.vault.azure.net/keys", "dst-vault"], "has a path"),
        (["copy", "src-vault", "SRC-VAULT"], "same vault"),
        (["copy", "src-vault"], "Missing argument"),
        (["copy", "a-vault", "b-vault", "--types", "certs"], "unknown object type"),
        (["copy", "a-vault", "b-vault", "--recover-deleted", "--purge-deleted"], "exclude each other"),
        (["copy", "a-vault", "b-vault", "--latest-only"], "needs --mode value"),
        (["copy", "a-vault", "b-vault", "--rps", "0"], "--rps"),
        (["copy", "a-vault", "b-vault", "--ca-bundle", "/nonexistent.pem"], "does not exist"),
        (["sync", "a-vault", "b-vault", "--delete", "--max-delete", "inf%"], "--max-delete"),
        (["sync", "a-vault", "b-vault", "--delete", "--max-delete", "150%"], "--max-delete"),
        (["sync", "a-vault", "b-vault", "--delete", "--max-delete", "1e3"], "--max-delete"),
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path: Path, args: list[str], words: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kvmigrate", *args], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert words in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / ".kvmigrate").exists()  # nothing written


async def test_corrupt_and_foreign_journals(emulator: Emulator, src: VaultClients, tmp_path: Path) -> None:
    await src.secrets.set_secret("j", "v")
    src_url, dst_url, far_url = (emulator.vaults[n].url for n in ("src", "dst", "far"))
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not sqlite" * 100)
    result = await _in_thread(run_cli, emulator, "copy", src_url, dst_url, "--state", str(corrupt), cwd=tmp_path)
    assert result.returncode == 2 and "corrupt" in last_line(result) and "--restart" in last_line(result)
    assert corrupt.read_bytes().startswith(b"this is not sqlite")  # left alone
    journal = tmp_path / "pair.db"
    first = await _in_thread(run_cli, emulator, "copy", src_url, dst_url, "--state", str(journal), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    other = await _in_thread(run_cli, emulator, "copy", src_url, far_url, "--state", str(journal), cwd=tmp_path)
    assert other.returncode == 2 and "belongs to" in last_line(other)
    restart = await _in_thread(
        run_cli, emulator, "copy", src_url, dst_url, "--state", str(corrupt), "--restart", cwd=tmp_path
    )
    assert restart.returncode == 0, restart.stderr


async def test_unwritable_state_path(emulator: Emulator, src: VaultClients, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        state = Path("/proc/kvmigrate/journal.db")  # root ignores modes; /proc refuses new files to anyone
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        state = locked / "journal.db"
    result = await _in_thread(
        run_cli,
        emulator,
        "copy",
        emulator.vaults["src"].url,
        emulator.vaults["dst"].url,
        "--state",
        str(state),
        cwd=tmp_path,
    )
    assert result.returncode == 2 and str(state.parent) in last_line(result)


async def test_awkward_objects_are_copied_or_explained(
    emulator: Emulator, src: VaultClients, dst: VaultClients, tmp_path: Path
) -> None:
    longest = "n" * 127
    await src.secrets.set_secret(longest, "v")
    await src.secrets.set_secret("A-1", "case")  # names are case-insensitive
    await src.secrets.set_secret("big-25kb", "x" * 25 * 1024)
    await src.secrets.set_secret("disabled", "off", enabled=False)
    await src.secrets.set_secret("many", "v")
    many = emulator.vaults["src"].vault.secrets.get("many")
    for i in range(500):
        many.add(Version(id=new_version_id(), created=1, updated=1, data={"value": str(i)}))
    unknown = CertificatePolicy(issuer_name="Unknown", subject="CN=pending")
    await src.certificates.create_certificate("pending-cert", unknown, _polling_interval=0.1)  # stays pending
    result = await _in_thread(
        run_cli, emulator, "copy", emulator.vaults["src"].url, emulator.vaults["dst"].url, "-o", "json", cwd=tmp_path
    )
    document = json.loads(result.stdout)
    failures = {f["name"]: f["error"] for f in document["failures"]}
    assert result.returncode == 1 and set(failures) <= {"many", "pending-cert"} and "many" in failures
    assert "more than 500 versions" in failures["many"]
    for name in (longest, "A-1", "big-25kb", "disabled"):
        assert [p.version async for p in dst.secrets.list_properties_of_secret_versions(name)], name
    assert (await dst.secrets.get_secret("big-25kb")).value == "x" * 25 * 1024
    assert not (await dst.secrets.get_secret("a-1")).properties.managed


def test_help_and_version_work_without_a_vault(tmp_path: Path) -> None:
    for args in (
        ["--help"],
        ["--version"],
        ["copy", "--help"],
        ["plan", "--help"],
        ["verify", "--help"],
        ["backup", "--help"],
        ["restore", "--help"],
        ["archive", "inspect", "--help"],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "kvmigrate", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
            env=cli_env_none(),
        )
        assert result.returncode == 0 and result.stdout, args


def cli_env_none() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_"))}


__all__ = ["cli_env"]


@pytest.mark.parametrize(
    ("vault", "denied", "extra", "permission"),
    [
        ("src", "secrets/list", [], "'list' permission on secrets"),
        ("src", "backup", [], "'backup' permission on secrets"),
        ("dst", "secrets/list", [], "'list' permission on secrets"),
        ("dst", "restore", [], "'restore' permission on secrets"),
        ("src", "secrets/get", ["--mode", "value"], "'get' permission on secrets"),
        ("dst", "secrets/set", ["--mode", "value"], "'set' permission on secrets"),
    ],
)
async def test_each_missing_permission_is_named_with_its_vault(
    emulator: Emulator, src: VaultClients, tmp_path: Path, vault: str, denied: str, extra: list[str], permission: str
) -> None:
    await src.secrets.set_secret("perm", "v")
    emulator.vaults[vault].vault.settings.deny = [denied]
    result = await _in_thread(
        run_cli, emulator, "copy", emulator.vaults["src"].url, emulator.vaults["dst"].url, *extra, cwd=tmp_path
    )
    line = last_line(result)
    assert result.returncode == 1 and permission in line and emulator.vaults[vault].url in line, line


FAILURES = {
    "source-list": ("src", ["list"]),
    "target-list": ("dst", ["list"]),
    "source-get": ("src", ["get"]),
    "source-backup": ("src", ["backup"]),
    "target-restore": ("dst", ["restore"]),
    "dns": None,
    "tls": None,
    "foreign-token": None,
}


@pytest.mark.parametrize("failure", sorted(FAILURES))
@pytest.mark.parametrize("command", ["plan", "copy", "verify", "sync", "backup"])
async def test_no_command_prints_a_traceback_on_an_expected_failure(
    emulator: Emulator, src: VaultClients, tmp_path: Path, command: str, failure: str
) -> None:
    """Every command, every kind of refusal: one line and an exit code, or a clean run where it does not apply."""
    for i in range(3):
        await src.secrets.set_secret(f"m-{i}", "v")
    env = cli_env(emulator)
    source, target = emulator.vaults["src"].url, emulator.vaults["dst"].url
    denied = FAILURES[failure]
    if denied is not None:
        emulator.vaults[denied[0]].vault.settings.deny = denied[1]
    elif failure == "dns":
        target = "https://no-such-vault.invalid"
    elif failure == "tls":
        env.pop("KVMIGRATE_CA_BUNDLE")
    else:
        env["IDENTITY_HEADER"] = "wrong"
    args = [command, source, str(tmp_path / "archive") if command == "backup" else target]
    if command == "verify" or failure == "source-get":
        args += ["--mode", "value"] if command in ("copy", "verify", "sync", "plan") else []
    result = await _in_thread(run_cli, emulator, *args, env=env, cwd=tmp_path)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    if result.returncode != 0:
        assert result.returncode in (1, 2), result.stderr
        lines = result.stderr.strip().splitlines()
        assert (
            (lines and lines[-1].startswith("kvmigrate: error:"))
            or "MISMATCH" in result.stdout
            or ("failed" in result.stdout)
        ), result.stdout + result.stderr
