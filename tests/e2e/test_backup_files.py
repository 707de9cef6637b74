"""Restore a folder of per-object backup files, as az CLI, PowerShell and the portal leave them (and one file)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from azure.keyvault.certificates import CertificatePolicy

from kvmigrate.emulator import Emulator
from kvmigrate.vault.clients import VaultClients
from tests.e2e.test_copy import _in_thread
from tests.e2e.test_trust import journals, one_line, run
from tests.seed import version_map


async def write_backups(src: VaultClients, folder: Path) -> None:
    """The files a user who followed Microsoft's per-object workflow has: any names, any layout."""
    for i in range(3):
        await src.secrets.set_secret(f"app-{i}", f"v{i}")
        await src.secrets.set_secret(f"app-{i}", f"v{i}-2")
    await src.secrets.set_secret("real-name", "x")
    await src.keys.create_rsa_key("signing")
    await src.certificates.create_certificate("web", CertificatePolicy.get_default(), _polling_interval=0.1)
    await src.certificates.create_certificate("api", CertificatePolicy.get_default(), _polling_interval=0.1)
    (folder / "secrets").mkdir(parents=True)
    (folder / "other").mkdir()
    for i in range(3):
        (folder / "secrets" / f"app-{i}.secret").write_bytes(await src.secrets.backup_secret(f"app-{i}"))
    (folder / "secrets" / "wrong-name.secret").write_bytes(await src.secrets.backup_secret("real-name"))
    (folder / "signing.key").write_bytes(await src.keys.backup_key("signing"))
    (folder / "other" / "web.certificate").write_bytes(await src.certificates.backup_certificate("web"))
    api = await src.certificates.backup_certificate("api")  # a certificate in a file whose name does not say so
    (folder / "other" / "api.blob").write_text(base64.urlsafe_b64encode(api).decode().rstrip("="))  # as text
    (folder / "README.txt").write_text("backups taken on the 1st")


async def test_a_folder_of_backup_files_restores_with_the_same_engine(
    emulator: Emulator, src: VaultClients, dst: VaultClients, tmp_path: Path
) -> None:
    folder = tmp_path / "az-backups"
    await write_backups(src, folder)
    dst_url = emulator.vaults["dst"].url
    inspected, _ = await _in_thread(run, emulator, "archive", "inspect", str(folder), "-o", "json", cwd=tmp_path)
    listing = json.loads(inspected.stdout)
    assert inspected.returncode == 0 and len(listing["files"]) == 7 and len(listing["skipped"]) == 1
    planned, _ = await _in_thread(run, emulator, "plan", str(folder), dst_url, "-o", "json", cwd=tmp_path)
    plan = json.loads(planned.stdout)
    assert plan["operation"] == "restore" and plan["summary"]["counts"]["copy"] == {
        "secret": 4,
        "key": 2,
        "certificate": 1,
    }
    restored, _ = await _in_thread(run, emulator, "restore", str(folder), dst_url, "-o", "json", cwd=tmp_path)
    document = json.loads(restored.stdout)
    assert restored.returncode == 0, restored.stderr
    assert document["copied"] == 7 and document["failed"] == 0, document
    assert document["by_type"] == {"certificates": {"copied": 2}, "keys": {"copied": 1}, "secrets": {"copied": 4}}
    assert any("is secret real-name in the target" in note for note in document["notes"])
    assert await version_map(dst) == await version_map(src)  # versions, ids, attributes, as a blob keeps them

    again, _ = await _in_thread(run, emulator, "restore", str(folder), dst_url, "-o", "json", cwd=tmp_path)
    assert json.loads(again.stdout)["previously_done"] == 7  # the same journal, resume and all
    single, _ = await _in_thread(
        run, emulator, "restore", str(folder / "signing.key"), emulator.vaults["far"].url, cwd=tmp_path
    )
    assert single.returncode == 1 and "same Azure subscription and geography" in one_line(single)


async def test_a_folder_without_backups_is_refused_and_nothing_is_written(emulator: Emulator, tmp_path: Path) -> None:
    folder = tmp_path / "empty-ish"
    folder.mkdir()
    (folder / "notes.md").write_text("nothing here")
    result, _ = await _in_thread(run, emulator, "restore", str(folder), emulator.vaults["dst"].url, cwd=tmp_path)
    assert result.returncode == 2 and "no Key Vault backup files" in one_line(result)
    assert journals() == []


async def test_vault_urls_with_a_port_plan_and_copy_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``https://NAME.vault.azure.net:PORT`` works end to end; a vault whose challenge names another resource is one
    clear error. Names resolve through a patched getaddrinfo, as an /etc/hosts line would (tests never edit it)."""
    import socket

    from kvmigrate.engine import Engine
    from kvmigrate.errors import AuthenticationError
    from kvmigrate.options import ConnectionOptions, CopyOptions
    from kvmigrate.plan import build_plan
    from tests.conftest import emulator_config

    names = {
        "kvport.vault.azure.net": "127.0.0.1",
        "kvdest.vault.azure.net": "127.0.0.1",
        "elsewhere.example.com": "127.0.0.1",
    }
    real = socket.getaddrinfo

    def hosts(host: object, *args: object, **kwargs: object) -> object:
        return real(names.get(str(host), host), *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", hosts)
    config = emulator_config(
        a={"dns_name": "kvport.vault.azure.net"},
        b={"dns_name": "kvdest.vault.azure.net"},
        c={"dns_name": "elsewhere.example.com"},
    )
    async with Emulator(config, state_dir=tmp_path / "emu") as emu:
        for key, value in emu.environment().items():
            monkeypatch.setenv(key, value)
        emu.vaults["a"].vault.secrets.upsert(
            "p",
            __import__("kvmigrate.emulator.store", fromlist=["Version"]).Version(
                id="0" * 32, created=1, updated=1, data={"value": "v"}
            ),
        )
        connection = ConnectionOptions(ca_bundle=emu.ca_file, tenant_id=None)
        a, b, c = (emu.vaults[n].url for n in "abc")
        assert ":" in a.removeprefix("https://")  # a port, and a real-looking name
        plan = await build_plan(CopyOptions(source=a, target=b, connection=connection))
        assert [(i.name, i.action.value) for i in plan.items] == [("p", "copy")]
        copied = await Engine(CopyOptions(source=a, target=b, connection=connection, state=tmp_path / "j.db")).run()
        assert copied.copied == 1 and copied.failed == 0
        with pytest.raises(AuthenticationError, match="does not match its address"):
            await build_plan(CopyOptions(source=c, target=b, connection=connection))
