"""Small test helpers: HTTPS calls to the emulator's control endpoints, and polling."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

T = TypeVar("T")


async def control(url: str, ca_file: Path, path: str, *, method: str = "GET", body: Any = None) -> Any:
    """Call a loopback-only ``/_emulator/...`` endpoint of a vault over verified TLS."""
    context = ssl.create_default_context(cafile=str(ca_file))
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, f"{url}/_emulator/{path}", ssl=context, data=json.dumps(body) if body is not None else None
        ) as response,
    ):
        return await response.json()


async def eventually(check: Callable[[], Awaitable[T]], *, within: float = 5.0, interval: float = 0.05) -> T:
    """Retry ``check`` until it stops raising (eventual consistency), then return its result."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            return await check()
        except Exception:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(interval)


def verify_options(emulator: Any, source: str, target: str, **overrides: Any) -> Any:
    """``VerifyOptions`` between two of the emulator's vaults (by name), trusting its CA."""
    from kvmigrate.options import ConnectionOptions, VerifyOptions

    return VerifyOptions.model_validate(
        {
            "source": emulator.vaults[source].url,
            "target": emulator.vaults[target].url,
            "connection": ConnectionOptions(ca_bundle=emulator.ca_file, tenant_id=None),
            **overrides,
        }
    )
