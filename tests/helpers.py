"""Small test helpers: the emulator's control endpoints over HTTPS, polling, children without root's overrides."""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
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


#: Linux capabilities that let root ignore file modes and owners; ``without_capabilities`` takes them from a child.
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER = 1, 2, 3
EXIT_NO_CAPABILITY_DROP = 97


def without_capabilities(*capabilities: int) -> Callable[[], None]:
    """A ``preexec_fn`` after which the child, even as root, lacks ``capabilities`` (so file modes apply to it).

    Why: tests often run as root, whom chmod 000 or another owner does not stop. Dropping a capability from the
    bounding set before exec leaves root's exec'd process without it. A child that cannot drop it exits
    ``EXIT_NO_CAPABILITY_DROP`` (the test then skips); for other users it changes nothing.
    """

    def drop() -> None:
        if os.geteuid() != 0:
            return
        libc = ctypes.CDLL(None, use_errno=True)
        for capability in capabilities:
            if libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
                os._exit(EXIT_NO_CAPABILITY_DROP)

    return drop


_PR_CAPBSET_DROP = 24
