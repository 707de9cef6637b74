"""Every example script runs against the emulator exactly as a reader would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


#: Not run here: ``make interop`` runs it (it needs root for port 443 and /etc/hosts, and the az CLI).
OWN_TARGET = {"lib.sh", "az-cli-workflow.sh"}


@pytest.mark.parametrize("script", sorted(p.name for p in EXAMPLES.glob("*.sh") if p.name not in OWN_TARGET))
def test_example_runs(script: str, tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_", "KVMIGRATE_"))}
    env.update(
        {
            "KVMIGRATE": str(bin_dir / "kvmigrate"),
            "PYTHON": sys.executable,
            "TMPDIR": str(tmp_path),
            "PATH": f"{bin_dir}:{env.get('PATH', '')}",
            "KVMIGRATE_STATE_DIR": str(tmp_path / "state"),
        }
    )
    result = subprocess.run(["bash", str(EXAMPLES / script)], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"{script.removesuffix('.sh')}: OK" in result.stdout
    assert "Traceback" not in result.stderr


async def test_seed_rides_out_the_create_throttle(tmp_path: Path) -> None:
    """examples/seed.py at a size that meets the vault's create budget: it waits, as kvmigrate does, and finishes."""
    import asyncio

    from kvmigrate.emulator import Emulator
    from tests.conftest import emulator_config

    config = emulator_config(seedme={"create_rate_limit": 20, "rate_limit": 200})
    async with Emulator(config, state_dir=tmp_path / "emulator") as emu:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_"))}
        env.update(emu.environment())
        args = [sys.executable, str(EXAMPLES / "seed.py"), emu.vaults["seedme"].url, "--secrets", "15"]
        args += ["--versions", "2", "--keys", "2", "--certificates", "1"]
        result = await asyncio.to_thread(subprocess.run, args, capture_output=True, text=True, env=env, timeout=180)
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
        assert emu.vaults["seedme"].vault.stats.throttled > 0  # it did meet the limit
        assert len(emu.vaults["seedme"].vault.secrets.active) >= 15
