"""Where kvmigrate keeps state between runs: a per-user folder, so a rerun finds its journal from any directory.

``$KVMIGRATE_STATE_DIR``, else ``$XDG_STATE_HOME/kvmigrate``, else ``~/.local/state/kvmigrate`` (on Windows
``%LOCALAPPDATA%\\kvmigrate``). It holds ``journals/<source>__<target>.db`` (the default journal of each pair of
ends) and ``locks/`` (one lock per pair of ends, so two runs with different journals never write into the same
target from the same source at once). Why not the working directory: a rerun from another directory, a fresh CI
workspace or container would not find the earlier run's journal and would judge half-written objects afresh.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from kvmigrate.files import FileLock


def state_home() -> Path:
    """The per-user state folder (not created here)."""
    explicit = os.environ.get("KVMIGRATE_STATE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "kvmigrate"
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "state"
    return base / "kvmigrate"


def _slug(label: str) -> str:
    text = label.removeprefix("https://").strip("/")
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in text)[-80:]


def default_journal(source: str, target: str, *, operation: str = "copy") -> Path:
    """``<state home>/journals/<source>__<target>.db``; sync keeps a journal of its own for the same pair."""
    suffix = "" if operation in ("copy", "backup", "restore") else f".{operation}"
    return state_home() / "journals" / f"{_slug(source)}__{_slug(target)}{suffix}.db"


def pair_lock(source: str, target: str) -> FileLock:
    """The lock every writing run on ``source`` → ``target`` holds for its whole life (whatever its journal)."""
    digest = hashlib.sha256(f"{source}\n{target}".encode()).hexdigest()[:24]
    return FileLock(state_home() / "locks" / f"{digest}.lock", what="lock file")
