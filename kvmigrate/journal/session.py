"""A run's hold on its journal: the vault pair's lock, the journal's own, and the file — or none, for a dry run."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from kvmigrate.errors import KvmigrateError
from kvmigrate.journal.store import Journal
from kvmigrate.statedir import pair_lock


@contextlib.contextmanager
def run_journal(
    path: Path | None, *, source: str, target: str, operation: str, restart: bool = False
) -> Iterator[Journal]:
    """The journal of one run, held for its whole life (``path`` None: a dry run's, in memory, holding nothing).

    Why the pair's lock as well as the journal's: two runs on one source and target with different journals would
    write the same objects twice. A fatal error before any target write discards a journal this run created, so
    a run that could not start leaves nothing behind.
    """
    if path is None:
        with Journal.in_memory(source=source, target=target, operation=operation) as journal:
            yield journal
        return
    lock = pair_lock(source, target)
    lock.acquire(
        busy=f"another kvmigrate run is writing from {source} into {target}; wait for it to finish (two runs on one "
        "pair would write the same objects twice)"
    )
    try:
        journal = Journal.open(path, source=source, target=target, operation=operation, restart=restart)
        try:
            yield journal
        except BaseException as error:
            if isinstance(error, KvmigrateError) and error.is_fatal:
                journal.discard()  # removes it only if this run created it and wrote nothing to the target
            raise
        finally:
            journal.close()
    finally:
        lock.release()
