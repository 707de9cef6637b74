"""Completing a pending issuance: on time by a timer, or on the next read if the timer has not run yet."""

from __future__ import annotations

import asyncio
import time

from kvmigrate.emulator.app import JsonBody, Vault, now
from kvmigrate.emulator.certificates.managed import linked_item, versions_of
from kvmigrate.emulator.store import Item


def advance(vault: Vault, item: Item) -> None:
    """Complete a ``Self`` issuance whose time has come (the timer may not have run yet)."""
    op = item.extra.get("operation")
    if op and op["status"] == "inProgress" and op.get("due") is not None and time.time() >= op["due"]:
        finish(vault, item, op)


def finish(vault: Vault, item: Item, op: JsonBody) -> None:
    """Mark the operation done; enable the new certificate, key and secret versions unless cancelled."""
    op.pop("due", None)
    if op["cancellation_requested"]:
        op["status"] = "cancelled"  # guess: the status a cancelled request ends in (never recorded)
        return
    stamp = now()
    certificate = item.version(op["version"])
    if certificate is not None:
        certificate.data["pending"] = False
    for version in versions_of(vault, item, op["version"]):
        version.enabled = op["enabled"]
        version.updated = stamp
    op["status"] = "completed"


def schedule(vault: Vault, item: Item) -> None:
    """Complete a pending ``Self`` issuance on time even if nobody reads the certificate (its secret shows it)."""
    op = item.extra.get("operation")
    if not op or op.get("due") is None:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    name, request_id = item.name, op["request_id"]

    def on_due() -> None:
        current = linked_item(vault.certificates, name)
        if current is not None and current.extra.get("operation", {}).get("request_id") == request_id:
            advance(vault, current)

    loop.call_later(max(0.0, op["due"] - time.time()) + 0.01, on_due)
