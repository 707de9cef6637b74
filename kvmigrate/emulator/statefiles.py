"""The ``--state-dir`` the emulator keeps its CA and token-signing key in, shared safely between processes.

Two emulator processes given the same state directory must end up with the same CA (so one ``--ca-bundle`` trusts
both) and the same signing key (so a token from one's identity endpoint is accepted by the other's vaults). Both may
start at the same moment, so creation happens under an exclusive ``flock`` and every file is made with ``O_EXCL``
(linked into place once complete, so a reader never sees half a key) and opened with ``O_NOFOLLOW``: a symlink planted
in the directory is refused rather than followed. Private keys live here, so the directory is 0700, the files 0600, and
a file another user could read or replace is refused.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class StateDirError(OSError):
    """The state directory or a file in it is unsafe to use; the message says which and why."""


def ensure_private_dir(directory: Path) -> Path:
    """Create ``directory`` (0700) or tighten an existing one we own; refuse a symlink or another user's directory."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = os.lstat(directory)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise StateDirError(f"state directory {directory} is a symlink or not a directory")
    if info.st_uid != os.geteuid():
        raise StateDirError(f"state directory {directory} belongs to another user")
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(directory, 0o700)
    return directory


@contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold the directory's exclusive lock so two starting processes create its files once, not twice."""
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def read_private(path: Path) -> bytes | None:
    """The content of a private state file, or None when it does not exist; refuse symlinks and loose modes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symlink
            raise StateDirError(f"{path} is a symlink; the emulator does not follow symlinks in its state") from exc
        raise
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise StateDirError(f"{path} is not a regular file")
        if info.st_uid != os.geteuid() or info.st_mode & 0o077:
            raise StateDirError(f"{path} is readable or owned by someone else; remove it or make it 0600")
        return handle.read()


def create_private(path: Path, data: bytes) -> bool:
    """Write ``data`` to a new 0600 file at ``path``; False (nothing written) when ``path`` already exists.

    The content goes to a temporary ``O_EXCL`` file first and is hard-linked into place, which fails rather than
    replaces when the name exists, so concurrent creators never clobber or half-read each other.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # O_EXCL, 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path, follow_symlinks=False)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp)


def replace_private(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` with a new 0600 file (a symlink at ``path`` is replaced, never written through)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
