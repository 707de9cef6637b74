"""Loopback-only test hooks of a vault under ``/_emulator/``: read or reset counters, change settings at run time."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from aiohttp import web

from kvmigrate.emulator.config import VaultSettings

if TYPE_CHECKING:  # app.py routes /_emulator/ here, so this module cannot import it at run time
    from kvmigrate.emulator.app import Vault


async def control(vault: Vault, request: web.Request) -> web.Response:
    """Loopback-only test hooks: read or reset the counters, change settings at run time."""
    peer = request.remote or ""
    if not ipaddress.ip_address(peer.split("%")[0]).is_loopback:
        return web.json_response({"error": "loopback only"}, status=403)
    if request.path == "/_emulator/stats" and request.method == "GET":
        return web.json_response({"vault": vault.name, **vault.stats.snapshot()})
    if request.path == "/_emulator/stats/reset" and request.method == "POST":
        vault.stats.reset()
        return web.json_response({"vault": vault.name, **vault.stats.snapshot()})
    if request.path == "/_emulator/throttle/reset" and request.method == "POST":
        vault.throttle.reset()
        return web.json_response({"vault": vault.name})
    if request.path == "/_emulator/settings" and request.method in ("GET", "PATCH"):
        if request.method == "PATCH":
            changes = await request.json()
            try:
                for key, value in changes.items():
                    if key not in VaultSettings.model_fields or key in ("port", "host", "dns_name"):
                        raise ValueError(f"setting {key!r} cannot be changed at run time")
                    setattr(vault.settings, key, value)
            except ValueError as exc:
                return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(vault.settings.model_dump())
    return web.json_response({"error": "unknown control endpoint"}, status=404)
