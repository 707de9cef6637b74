"""The local files of a run that cannot be made, written or read end in one line, never a traceback."""

from __future__ import annotations

from pathlib import Path

from kvmigrate.emulator import Emulator
from tests.e2e.test_copy import _in_thread
from tests.e2e.test_trust import journals, one_line, run
from tests.seed import fill


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
