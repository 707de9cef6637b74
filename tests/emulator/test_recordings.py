"""The emulator answers as real Key Vault did in sessions recorded by the Azure SDKs' own tests.

Three folders beside the repository hold them (read at test time, never copied into the project; each has a README
that says where they come from): ``shared/recordings`` (Python SDK, api-version 7.3, 2022), ``shared/recordings-2025``
(Python SDK, 2025-07-01, 2026) and ``shared/recordings-js`` (JavaScript SDK, 7.6 and 2025-07-01, 2026, the only key
rotation policy sessions). Test ids say the folder: ``7.3-…``, ``2025-…``, ``js-…``. Each file is replayed against a
fresh emulated vault by ``tests/emulator/replay.py``, which lists every difference in status, error code, body shape,
id shape and headers, and configures the vault's soft-delete retention as the recorded vault had it.

The two JavaScript files whose README says they cannot replay as they stand do replay here: the malformed-backup
restore sends its own blob (there is no earlier backup to substitute, and the emulator must refuse the blob as the
service did), and the merge sends a certificate that replay.py issues for the emulator's CSR key in the recorded
``x5c`` form (base64 of PEM text). A recording that fails because of a known emulator gap is marked
``xfail(strict=True)`` with the gap, so the gap stays documented and the mark must go once the emulator is fixed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kvmigrate.emulator import Emulator
from tests.emulator.replay import load, replay

SHARED = Path(__file__).resolve().parents[3] / "shared"
FOLDERS = {"7.3": "recordings", "2025": "recordings-2025", "js": "recordings-js"}
PYTHON_NAME = re.compile(r"^test_(?P<module>\w+?)\.py(?:Test\w*?)test_(?P<test>\w+)\[[^\]]+\]\.json$")
JS_NAME = re.compile(r"^recording_(?P<test>\w+)\.json$")

#: Recordings that fail because of an emulator gap: test id → the precise gap.
KNOWN_GAPS: dict[str, str] = {}


def _short_id(prefix: str, path: Path) -> str:
    python, js = PYTHON_NAME.match(path.name), JS_NAME.match(path.name)
    if python:
        return f"{prefix}-{python['module']}-{python['test']}"
    if js:
        return f"{prefix}-{path.parent.name}-{js['test']}"
    return f"{prefix}-{path.stem}"


def _cases() -> list[object]:
    cases: list[object] = []
    for prefix, folder in FOLDERS.items():
        root = SHARED / folder
        files = sorted(root.rglob("*.json")) if root.is_dir() else []
        if not files:
            reason = f"no recordings at {root} (the shared/ folder beside the repository holds them)"
            cases.append(pytest.param(None, id=f"{prefix}-no-recordings", marks=pytest.mark.skip(reason=reason)))
        for path in files:
            short = _short_id(prefix, path)
            marks = [pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[short])] if short in KNOWN_GAPS else []
            cases.append(pytest.param(path, id=short, marks=marks))
    return cases


@pytest.mark.parametrize("recording", _cases())
async def test_emulator_answers_like_the_recorded_service(emulator: Emulator, recording: Path) -> None:
    session = load(recording)
    running = emulator.vaults["src"]
    settings = running.vault.settings
    settings.consistency_delay = 0.2  # polls absorb the timing; keep the replay quick
    settings.soft_delete_days = session.retention_days  # 7 days in 2022, 7 or 90 in the 2026 vaults
    token, _ = emulator.authority.issue("https://vault.azure.net")
    problems = await replay(session, running.url, token, emulator.ca_file)
    assert not problems, f"{len(problems)} difference(s) from {recording.name}:\n" + "\n".join(problems)
