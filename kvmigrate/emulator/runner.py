"""``kvmigrate emulator``: serve the configured vaults until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from kvmigrate.emulator.config import EmulatorConfig
from kvmigrate.emulator.server import Emulator


async def serve(config: EmulatorConfig, *, env_file: Path | None, state_dir: Path | None = None) -> None:
    """Start every vault, publish the environment, then wait for a stop signal."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with Emulator(config, state_dir=state_dir) as emulator:
        if env_file is not None:
            emulator.write_env_file(env_file)
        for key, value in emulator.environment().items():
            print(f"{key}={value}")
        for line in emulator.hosts_lines():
            print(f"# /etc/hosts needs: {line}", file=sys.stderr)
        print(f"# {len(emulator.vaults)} vault(s) ready; Ctrl-C to stop", file=sys.stderr)
        sys.stdout.flush()
        await stop.wait()
