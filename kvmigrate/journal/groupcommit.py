"""Group commit: one fsync of the journal's WAL, in a worker thread, covers every commit made before it began.

Why: the ``restoring`` row must be on disk before the target write it announces, and an fsync per object on the
event loop cost about a sixth of the client's time in a copy at the vault's limit. Concurrent workers now share one
fsync, and the event loop never waits for the disk.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path


class WalSync:
    """``flush`` is called right after a commit; it returns once a sync that started after that commit finished.

    Commits made while a sync runs wait for the next one, which then covers all of them.
    """

    def __init__(self, wal: Path) -> None:
        self._wal = wal
        self._committed = 0  # commits that asked to be durable, in order
        self._synced = 0  # every commit up to this one is on disk
        self._running: asyncio.Future[None] | None = None

    async def flush(self) -> None:
        self._committed += 1
        wanted = self._committed
        while self._synced < wanted:
            if self._running is None:
                self._running = asyncio.ensure_future(self._sync())
            await asyncio.shield(self._running)

    async def _sync(self) -> None:
        covered = self._committed
        try:
            await asyncio.to_thread(fsync, self._wal)
        finally:
            self._running = None
        self._synced = max(self._synced, covered)


def fsync(path: Path) -> None:
    """fsync ``path`` through a descriptor of our own (SQLite's are not reachable); the kernel syncs the file."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return  # the journal was closed: SQLite checkpointed the WAL into the database, synced it and removed it
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
