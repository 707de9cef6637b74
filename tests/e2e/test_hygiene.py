"""Secret hygiene across every command: canary values never reach output, logs, journals or archives."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from kvmigrate.emulator import Emulator
from kvmigrate.vault.clients import VaultClients
from tests.e2e.test_copy import _in_thread, run_cli

CANARY = "c4n4ry-9f8e7d"


async def test_every_command_keeps_values_out_of_everything_it_writes(
    emulator: Emulator, src: VaultClients, tmp_path: Path
) -> None:
    for i in range(4):
        await src.secrets.set_secret(f"hyg-{i}", f"{CANARY}-{i}", tags={"t": "x"})
    src_url, dst_url, far_url = (emulator.vaults[n].url for n in ("src", "dst", "far"))
    log = tmp_path / "all.log"
    common = ["-v", "--log-file", str(log)]
    archive = tmp_path / "archive"
    runs = [
        ["plan", src_url, dst_url, *common],
        ["copy", src_url, dst_url, *common, "--state", str(tmp_path / "copy.db")],
        ["verify", src_url, dst_url, *common],
        ["backup", src_url, str(archive), *common, "--state", str(tmp_path / "backup.db")],
        ["archive", "inspect", str(archive)],
        ["restore", str(archive), far_url, *common, "--state", str(tmp_path / "restore.db")],  # refused: other sub
        ["copy", src_url, far_url, "--mode", "value", *common, "--state", str(tmp_path / "value.db")],
        ["verify", src_url, far_url, "--mode", "value", *common],
    ]
    outputs = []
    for args in runs:
        result = await _in_thread(run_cli, emulator, *args, cwd=tmp_path)
        assert "Traceback" not in result.stderr, (args, result.stderr)
        outputs += [result.stdout, result.stderr]
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".blob" for p in written) and log.exists()
    for path in written:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    texts = outputs + [p.read_bytes().decode("latin-1") for p in written]
    assert any("hyg-0" in text for text in texts)  # names are logged...
    for text in texts:
        assert CANARY not in text  # ...values never
        assert (
            "Authorization" not in text and "eyJ0eXAi" not in text and "eyJhbGci" not in text
        )  # nor headers or tokens


async def test_full_disk_for_the_journal_is_one_clear_line(emulator: Emulator, tmp_path: Path) -> None:
    result = await _in_thread(
        run_cli,
        emulator,
        "copy",
        emulator.vaults["src"].url,
        emulator.vaults["dst"].url,
        "--state",
        "/dev/full",
        cwd=tmp_path,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "full" in result.stderr.strip().splitlines()[-1]
    assert stat.S_IMODE(os.stat("/dev/full").st_mode) == 0o666  # a device is never chmod-ed
