"""Emulators in their own processes (``python -m kvmigrate emulator``), as users and benchmarks start them.

``emulator_process`` starts one and yields its published environment; ``shared_state_pair`` (a fixture) starts two
that share one ``--state-dir``, so they share the CA and the token-signing key: a token from either identity
endpoint works on every vault of both, and one CA file trusts both. Tests of copies between two processes (the
product's) use the fixture as is::

    from tests.emulator.processes import shared_state_pair  # noqa: F401 - a fixture

    def test_something(shared_state_pair: EmulatorPair) -> None:
        first, second = shared_state_pair.first, shared_state_pair.second
        first.env["KVMIGRATE_VAULT_SRC"], second.env["KVMIGRATE_VAULT_DST"], first.ca_file ...
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

START_TIMEOUT = 60.0


@dataclass(frozen=True)
class EmulatorProcess:
    """A running emulator process: its published environment (the ``--env-file``) and its pid."""

    env: dict[str, str]
    pid: int
    log: Path

    @property
    def ca_file(self) -> Path:
        return Path(self.env["KVMIGRATE_CA_BUNDLE"])

    def vault_url(self, name: str) -> str:
        return self.env[f"KVMIGRATE_VAULT_{name.upper().replace('-', '_')}"]

    def client_environment(self) -> dict[str, str]:
        """A scrubbed environment for a child process that should use this emulator's identity endpoint."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "MSI_", "IDENTITY_"))}
        return {**base, **self.env}


@dataclass(frozen=True)
class EmulatorPair:
    """Two emulator processes sharing one state directory."""

    first: EmulatorProcess
    second: EmulatorProcess
    state_dir: Path


def toml_config(vaults: Mapping[str, Mapping[str, object]]) -> str:
    """A ``--config`` TOML text with one ``[vaults.NAME]`` table per vault (values: str, int, float, bool)."""
    lines = ["[defaults]", "consistency_delay = 0.2", "issuance_delay = 0.2"]
    for name, table in vaults.items():
        lines.append(f"[vaults.{name}]")
        for key, value in table.items():
            if isinstance(value, bool):
                lines.append(f"{key} = {'true' if value else 'false'}")
            else:
                lines.append(f'{key} = "{value}"' if isinstance(value, str) else f"{key} = {value}")
    return "\n".join(lines) + "\n"


@contextmanager
def emulator_process(
    workdir: Path, vaults: Mapping[str, Mapping[str, object]], *, state_dir: Path, label: str = "emulator"
) -> Iterator[EmulatorProcess]:
    """Start ``python -m kvmigrate emulator`` with these vaults; yield once its env file exists; SIGTERM on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / f"{label}.toml"
    config.write_text(toml_config(vaults), encoding="utf-8")
    env_file, log = workdir / f"{label}.env", workdir / f"{label}.log"
    scrubbed = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "MSI_", "IDENTITY_"))}
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "kvmigrate", "emulator", "--config", str(config), "--env-file", str(env_file)]
            + ["--state-dir", str(state_dir)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=scrubbed,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not env_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{label} did not start (exit {process.poll()}):\n{log.read_text()[-3000:]}")
            time.sleep(0.05)
        env = dict(line.split("=", 1) for line in env_file.read_text(encoding="utf-8").splitlines() if "=" in line)
        yield EmulatorProcess(env, process.pid, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)


@contextmanager
def shared_state(
    workdir: Path,
    first: Mapping[str, Mapping[str, object]],
    second: Mapping[str, Mapping[str, object]],
) -> Iterator[EmulatorPair]:
    """Two emulator processes started one after the other with the same ``--state-dir``."""
    state_dir = workdir / "state"
    with ExitStack() as stack:
        one = stack.enter_context(emulator_process(workdir, first, state_dir=state_dir, label="first"))
        two = stack.enter_context(emulator_process(workdir, second, state_dir=state_dir, label="second"))
        yield EmulatorPair(one, two, state_dir)


@pytest.fixture
def shared_state_pair(tmp_path: Path) -> Iterator[EmulatorPair]:
    """Vault ``src`` in one process and ``dst`` in another (same subscription and geography), one state dir."""
    with shared_state(tmp_path / "pair", {"src": {"port": 0}}, {"dst": {"port": 0}}) as pair:
        yield pair
