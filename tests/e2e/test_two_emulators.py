"""A copy between vaults of two emulator processes that share one ``--state-dir`` (one CA, one token authority)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.emulator.processes import EmulatorPair, shared_state_pair  # noqa: F401 - a fixture

SEED = """
import asyncio, os, sys
from azure.identity.aio import DefaultAzureCredential
from azure.keyvault.secrets.aio import SecretClient

async def main():
    async with DefaultAzureCredential() as credential:
        client = SecretClient(sys.argv[1], credential, connection_verify=os.environ["KVMIGRATE_CA_BUNDLE"],
                              verify_challenge_resource=False)
        async with client:
            for i in range(5):
                await client.set_secret(f"two-{i}", f"value-{i}")
asyncio.run(main())
"""


def test_a_copy_between_two_emulator_processes(shared_state_pair: EmulatorPair, tmp_path: Path) -> None:  # noqa: F811
    first, second = shared_state_pair.first, shared_state_pair.second
    assert first.ca_file == second.ca_file  # one CA trusts both
    source, target = first.vault_url("src"), second.vault_url("dst")
    env = first.client_environment()  # the first process's identity: its tokens must work on the second's vault
    seeded = subprocess.run([sys.executable, "-c", SEED, source], env=env, capture_output=True, text=True, timeout=120)
    assert seeded.returncode == 0, seeded.stderr
    env["KVMIGRATE_STATE_DIR"] = str(tmp_path / "state")
    copied = subprocess.run(
        [sys.executable, "-m", "kvmigrate", "copy", source, target, "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert copied.returncode == 0, copied.stderr
    assert json.loads(copied.stdout)["copied"] == 5
    verified = subprocess.run(
        [sys.executable, "-m", "kvmigrate", "verify", source, target],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
