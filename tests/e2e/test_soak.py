"""Fault soak: 5xx, dropped connections, slow answers and 429 bursts together; nothing lost or duplicated.

``make test`` runs a small case; ``make soak`` sets KVMIGRATE_SOAK_OBJECTS=3000 for the large one.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from kvmigrate.emulator import Emulator
from kvmigrate.engine import Engine
from kvmigrate.models import ObjectType
from kvmigrate.options import ConnectionOptions, CopyOptions
from kvmigrate.vault.clients import VaultClients
from kvmigrate.verify import verify
from tests.helpers import verify_options
from tests.seed import seed_secrets

OBJECTS = int(os.environ.get("KVMIGRATE_SOAK_OBJECTS", "150"))


async def test_fault_soak_loses_and_duplicates_nothing(
    emulator: Emulator, src: VaultClients, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed_secrets(src, OBJECTS, prefix="soak", versions=2)
    for name in ("src", "dst"):
        settings = emulator.vaults[name].vault.settings
        settings.error_rate, settings.drop_rate, settings.slow_rate, settings.slow_ms = 0.05, 0.03, 0.02, 300
        settings.rate_limit = OBJECTS // 2  # a 10-second window far smaller than the run: 429 bursts
        emulator.vaults[name].vault.stats.reset()
    connection = ConnectionOptions(ca_bundle=emulator.ca_file, tenant_id=None)
    started = time.monotonic()
    summary = await Engine(
        CopyOptions(
            source=emulator.vaults["src"].url,
            target=emulator.vaults["dst"].url,
            state=tmp_path / "soak.db",
            connection=connection,
            rps=400,
            concurrency=16,
        )
    ).run()
    elapsed = time.monotonic() - started
    stats = {name: emulator.vaults[name].vault.stats.snapshot() for name in ("src", "dst")}
    for name in ("src", "dst"):
        settings = emulator.vaults[name].vault.settings
        settings.error_rate = settings.drop_rate = settings.slow_rate = 0
        settings.rate_limit = 0
    throttled = sum(summary.throttled.values())
    faults = stats["src"]["faults"] + stats["dst"]["faults"]  # 5xx answers and dropped connections
    with capsys.disabled():
        # With nothing failed, every 429 and every fault was retried: that is the retry count.
        print(
            f"\nsoak: {OBJECTS} objects in {elapsed:.1f} s; requests {sum(summary.requests.values())}, "
            f"retries {throttled + faults} (429s {throttled}, injected faults {faults}), failed {summary.failed}"
        )
    assert summary.failed == 0, summary.failures[:3]
    assert summary.copied == OBJECTS
    assert (
        stats["src"]["faults"] + stats["dst"]["faults"] > 0
        and stats["src"]["throttled"] + stats["dst"]["throttled"] > 0
    )
    restored = emulator.vaults["dst"].vault.secrets
    assert all(len(restored.get(f"soak-{i:04d}").versions) == 2 for i in range(OBJECTS))  # no duplicates
    report = await verify(verify_options(emulator, "src", "dst", types=(ObjectType.SECRET,)))
    assert report.ok and report.matched == OBJECTS
