"""The emulator answers as real Key Vault did in sessions recorded by the Azure SDK's own tests (api-version 7.3).

The recordings live in ``shared/recordings`` beside the repository (read at test time, never copied into the
project; its README says where they come from). Each file is replayed against a fresh emulated vault by
``tests/emulator/replay.py``, which lists every difference in status, error code, body shape, id shape and headers.
A recording that fails because of a known emulator gap is marked ``xfail(strict=True)`` with the gap, so the gap
stays documented and the mark must go once the emulator is fixed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kvmigrate.emulator import Emulator
from tests.emulator.replay import load, replay

RECORDINGS = Path(__file__).resolve().parents[3] / "shared" / "recordings"
FILE_NAME = re.compile(r"^test_(?P<module>\w+?)\.py(?:Test\w*?)test_(?P<test>\w+)\[[^\]]+\]\.json$")

#: Recordings that fail because of an emulator gap: short id → the precise gap.
KNOWN_GAPS: dict[str, str] = {}


def _short_id(path: Path) -> str:
    match = FILE_NAME.match(path.name)
    return f"{match['module']}-{match['test']}" if match else path.stem


def _cases() -> list[object]:
    files = sorted(RECORDINGS.glob("*/*.json")) if RECORDINGS.is_dir() else []
    if not files:
        reason = f"no recordings at {RECORDINGS} (the shared/ folder beside the repository holds them)"
        return [pytest.param(None, id="no-recordings", marks=pytest.mark.skip(reason=reason))]
    cases: list[object] = []
    for path in files:
        short = _short_id(path)
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[short])] if short in KNOWN_GAPS else []
        cases.append(pytest.param(path, id=short, marks=marks))
    return cases


@pytest.mark.parametrize("recording", _cases())
async def test_emulator_answers_like_the_recorded_service(emulator: Emulator, recording: Path) -> None:
    running = emulator.vaults["src"]
    settings = running.vault.settings
    settings.consistency_delay = 0.2  # polls absorb the timing; keep the replay quick
    settings.soft_delete_days = 7  # the recorded vaults: CustomizedRecoverable+Purgeable, 7 days
    token, _ = emulator.authority.issue("https://vault.azure.net")
    problems = await replay(load(recording), running.url, token, emulator.ca_file)
    assert not problems, f"{len(problems)} difference(s) from {recording.name}:\n" + "\n".join(problems)
