"""Create and write kvmigrate's own files safely: private modes, never through a symlink, never onto a device.

Every file and folder kvmigrate writes — journal and its SQLite siblings, lock files, log file, plan output, archive
files and folders — goes through here. Why so strict: users run migrations as privileged identities, often from
shared directories and CI workspaces, and a planted symlink must not turn kvmigrate into a tool that overwrites any
file its user can write. So an existing path that is a link, or not a regular file (a FIFO, a device), is refused
with one line (exit 2); new files are created with ``O_EXCL`` and ``O_NOFOLLOW``; folders kvmigrate creates are
0700 and files 0600 whatever the umask. A write that fails (disk full, quota, file too large, I/O error) is one
``LocalWriteError`` naming the file (exit 1), raised here so that no caller needs its own handling.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from kvmigrate.errors import LocalWriteError, RunLockedError, UnsafePathError, UsageError

FILE_MODE = 0o600
DIR_MODE = 0o700
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def check_writable_path(path: Path, *, what: str) -> None:
    """Refuse ``path`` if it exists as anything but a regular file (a symlink, FIFO, device or folder)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UsageError(f"cannot use {what} {path}: {exc.strerror}; check the path and its permissions") from exc
    if stat.S_ISLNK(info.st_mode):
        raise UnsafePathError(
            f"{what} {path} is a symbolic link; kvmigrate never writes through links: pass a path to a regular file",
            path=path,
        )
    if not stat.S_ISREG(info.st_mode):
        raise UnsafePathError(
            f"{what} {path} is not a regular file (a folder, device or pipe); pass a path to a regular file",
            path=path,
        )


def private_dir(path: Path, *, what: str = "folder") -> Path:
    """Create ``path`` and any missing ancestor as 0700 (whatever the umask); refuse a link; leave others alone.

    An existing folder is not ours to change (a shared parent such as /tmp), except that the last component must
    not be a symlink, so nothing kvmigrate writes inside lands somewhere else.
    """
    missing: list[Path] = []
    current = path
    while True:
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            missing.append(current)
            if current.parent == current:
                break
            current = current.parent
            continue
        except OSError as exc:
            raise UsageError(f"cannot use {what} {current}: {exc.strerror}; check the path and permissions") from exc
        if current == path and stat.S_ISLNK(info.st_mode):
            raise UnsafePathError(
                f"{what} {path} is a symbolic link; kvmigrate never writes through links: pass a real folder",
                path=path,
            )
        try:
            followed = os.stat(current)  # an ancestor may be a link to a folder: that is the user's choice
        except OSError as exc:
            if stat.S_ISLNK(info.st_mode):
                raise UsageError(
                    f"cannot use {what} {current}: it is a symbolic link that leads nowhere ({exc.strerror}); create "
                    "what it points to, or pass a path whose folders exist"
                ) from exc
            raise UsageError(f"cannot use {what} {current}: {exc.strerror}; check the path and permissions") from exc
        if not stat.S_ISDIR(followed.st_mode):
            raise UnsafePathError(f"{what} {current} is not a folder; pass another path", path=current)
        break
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:
            continue  # created concurrently; not ours to change
        except OSError as exc:
            raise UsageError(
                f"cannot create {what} {directory}: {exc.strerror}; check the path and permissions"
            ) from exc
        try:
            os.chmod(directory, DIR_MODE)  # mkdir's mode is filtered by the umask
        except OSError as exc:
            raise UsageError(
                f"cannot make {what} {directory} private (0700): {exc.strerror}; check the path and permissions"
            ) from exc
    return path


def open_private(path: Path, *, what: str, append: bool = False, exclusive: bool = False) -> int:
    """Open ``path`` for writing as a private regular file and return the descriptor.

    New files are created 0600 with ``O_EXCL`` (``exclusive`` refuses an existing one); an existing regular file is
    opened without following a link and made 0600. ``append`` keeps its content, otherwise it is emptied, but only
    once it is made private: a file that cannot be (a device, someone else's) is refused as it was.
    """
    check_writable_path(path, what=what)
    flags = os.O_WRONLY | _NOFOLLOW | _CLOEXEC | (os.O_APPEND if append else 0)
    try:
        return os.open(path, flags | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        if exclusive:
            raise UnsafePathError(f"{what} {path} already exists; pass a new path", path=path) from None
    except OSError as exc:
        raise _unsafe_or_usage(exc, path, what) from exc
    try:
        descriptor = os.open(path, flags)  # truncated only once it is known to be a file kvmigrate may make its own
    except OSError as exc:
        raise _unsafe_or_usage(exc, path, what) from exc
    try:
        _make_private(descriptor, path, what)
        if not append:
            os.ftruncate(descriptor, 0)
    except BaseException as exc:
        os.close(descriptor)
        if isinstance(exc, OSError):
            raise UsageError(f"cannot empty {what} {path}: {exc.strerror}; check the path and its permissions") from exc
        raise
    return descriptor


def ensure_private_file(path: Path, *, what: str) -> bool:
    """Make sure ``path`` exists as a private regular file (0600), creating it empty; True when it was created.

    Used for files another library then opens by name (SQLite): the name is checked and the file made ours first.
    """
    check_writable_path(path, what=what)
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, FILE_MODE)
        created = True
    except FileExistsError:
        try:
            descriptor = os.open(path, os.O_RDWR | _NOFOLLOW | _CLOEXEC)
        except OSError as exc:
            raise _unsafe_or_usage(exc, path, what) from exc
        created = False
    except OSError as exc:
        raise _unsafe_or_usage(exc, path, what) from exc
    try:
        _make_private(descriptor, path, what)
    finally:
        os.close(descriptor)
    return created


@contextlib.contextmanager
def private_text(path: Path, *, what: str, append: bool = False) -> Iterator[TextIO]:
    """A text handle on a private file (see ``open_private``), closed on exit.

    Any ``OSError`` inside the block or on close is taken as a failed write of this file and becomes one
    ``LocalWriteError`` (disk full, quota, file too large), so callers need no handling of their own.
    """
    descriptor = open_private(path, what=what, append=append)
    try:
        with os.fdopen(descriptor, "a" if append else "w", encoding="utf-8") as handle:
            yield handle
    except OSError as exc:
        raise _write_error(exc, path, what) from exc


def write_atomic(path: Path, data: bytes, *, what: str) -> None:
    """Replace ``path`` with ``data`` atomically: a new private temporary file beside it, fsync, rename.

    The rename replaces whatever name ``path`` is (never what a link points to), but an existing link or special
    file is refused first anyway: it is not kvmigrate's. A failed write leaves ``path`` as it was, removes the
    temporary file and raises ``LocalWriteError``.
    """
    check_writable_path(path, what=what)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        if stat.S_ISREG(os.lstat(temporary).st_mode):
            os.unlink(temporary)  # left by a crash
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise _write_error(exc, path, what) from exc
    descriptor = open_private(temporary, what=what, exclusive=True)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(exc, OSError):
            raise _write_error(exc, path, what) from exc
        raise


def read_regular(path: Path, *, limit: int, what: str) -> bytes:
    """Read a regular file that must not be a link, a FIFO or a device, and must hold at most ``limit`` bytes.

    Raises ``FileNotFoundError`` when there is no such file, ``UnsafePathError`` when it is a link, not a regular
    file or too large, and ``UsageError`` (their base) for any other failure (EACCES, EIO...), so a caller that
    catches ``UsageError`` has every way the file cannot be read.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise _unsafe_or_usage(exc, path, what) from exc
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafePathError(f"{what} {path} is not a regular file", path=path)
        if info.st_size > limit:
            raise UnsafePathError(f"{what} {path} is larger than {limit} bytes", path=path)
        chunks: list[bytes] = []
        remaining = limit + 1
        while remaining > 0:
            chunk = os.read(descriptor, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}; check the file and its disk") from exc
    finally:
        os.close(descriptor)
    data = b"".join(chunks)
    if len(data) > limit:
        raise UnsafePathError(f"{what} {path} is larger than {limit} bytes", path=path)
    return data


def _check_regular(descriptor: int, path: Path, what: str) -> os.stat_result:
    """Refuse a descriptor that is not a regular file (a device or pipe swapped in after the name was checked).

    It only raises: closing the descriptor is its caller's, which owns it (closing it here as well would close it
    twice, and the second close could hit a descriptor another thread has just been given).
    """
    try:
        info = os.fstat(descriptor)
    except OSError as exc:
        raise UsageError(f"cannot use {what} {path}: {exc.strerror}; check the path and its permissions") from exc
    if not stat.S_ISREG(info.st_mode):
        raise UnsafePathError(
            f"{what} {path} is not a regular file (a device or pipe); pass a path to a regular file", path=path
        )
    return info


def _make_private(descriptor: int, path: Path, what: str) -> None:
    """Check that an open existing file is a regular file and make it 0600; the caller closes it on error."""
    info = _check_regular(descriptor, path, what)
    if stat.S_IMODE(info.st_mode) == FILE_MODE:
        return
    try:
        os.fchmod(descriptor, FILE_MODE)
    except OSError as exc:
        raise UsageError(f"cannot make {what} {path} private (0600): {exc.strerror}; check who owns it") from exc


def _write_error(exc: OSError, path: Path, what: str) -> LocalWriteError:
    """The one line for a failed write: the file and the system's reason (never the data)."""
    reason = exc.strerror or type(exc).__name__
    return LocalWriteError(f"cannot write {what} {path}: {reason}; free space or choose another folder", path=path)


def _unsafe_or_usage(exc: OSError, path: Path, what: str) -> UsageError:
    if exc.errno in (errno.ELOOP, errno.EMLINK):
        return UnsafePathError(
            f"{what} {path} is a symbolic link; kvmigrate never writes through links: pass a path to a regular file",
            path=path,
        )
    return UsageError(f"cannot open {what} {path}: {exc.strerror}; check the path and its permissions")


class FileLock:
    """An exclusive ``flock`` on a private lock file, held from ``acquire`` until ``release`` (or process exit).

    Why flock on a file of its own: it is released by the kernel when the process dies (no stale locks after a
    SIGKILL), it does not interfere with SQLite's own fcntl locks, and the file is never deleted, so two runs can
    never each hold a lock on a different inode of the same name.
    """

    def __init__(self, path: Path, *, what: str) -> None:
        self.path = path
        self.what = what
        self._descriptor: int | None = None

    def acquire(self, *, busy: str) -> None:
        """Take the lock or raise ``RunLockedError(busy + holder)``; records this process as the holder."""
        private_dir(self.path.parent, what="state folder")
        check_writable_path(self.path, what=self.what)
        try:
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC, FILE_MODE)
        except OSError as exc:
            raise _unsafe_or_usage(exc, self.path, self.what) from exc
        try:
            _check_regular(descriptor, self.path, self.what)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunLockedError(f"{busy}{self._holder(descriptor)}") from None
            except OSError as exc:
                raise UsageError(
                    f"cannot lock {self.what} {self.path}: {exc.strerror}; pass a path on a local disk"
                ) from exc
            try:
                os.ftruncate(descriptor, 0)
                os.pwrite(descriptor, f"pid {os.getpid()}".encode(), 0)
            except OSError as exc:
                raise _write_error(exc, self.path, self.what) from exc
        except BaseException:
            os.close(descriptor)
            raise
        self._descriptor = descriptor

    @staticmethod
    def _holder(descriptor: int) -> str:
        """`` (pid N)`` of the run that holds the lock, as it wrote it (empty when it cannot be read)."""
        try:
            holder = os.pread(descriptor, 512, 0).decode("utf-8", "replace").strip()
        except OSError:
            return ""
        return f" ({holder})" if holder else ""

    def release(self) -> None:
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(descriptor, 0)
            os.close(descriptor)  # closing releases the flock
