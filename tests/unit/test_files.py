"""kvmigrate's own files: every failure to create, open, write or read one is a one-line error of ours.

Some cases need a permission the test's user cannot lose: run as root, the child process that meets them drops the
capabilities that let root ignore file modes and owners (``without_capabilities``), so they run as root too.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kvmigrate import files
from kvmigrate.errors import UnsafePathError, UsageError
from kvmigrate.files import private_dir
from tests.helpers import CAP_FOWNER, EXIT_NO_CAPABILITY_DROP, without_capabilities


# -- private_dir -----------------------------------------------------------------------------------------------------
def test_a_folder_under_a_dangling_link_is_a_usage_error_naming_the_link(tmp_path: Path) -> None:
    ancestor = tmp_path / "link"
    ancestor.symlink_to(tmp_path / "nowhere")
    with pytest.raises(UsageError, match="symbolic link that leads nowhere") as raised:
        private_dir(ancestor / "sub" / "deeper", what="journal folder")
    assert f"journal folder {ancestor}:" in str(raised.value) and "pass a path whose folders exist" in str(raised.value)
    assert not (tmp_path / "nowhere").exists()


def test_a_folder_under_a_link_loop_is_a_usage_error(tmp_path: Path) -> None:
    ancestor = tmp_path / "link"
    ancestor.symlink_to(tmp_path / "other")
    (tmp_path / "other").symlink_to(ancestor)
    for path in (ancestor, ancestor / "sub"):
        with pytest.raises(UsageError, match="symbolic link|Too many levels") as raised:
            private_dir(path / "deeper", what="journal folder")
        assert "check the path" in str(raised.value) or "pass a path" in str(raised.value)


def test_a_folder_under_a_link_to_a_folder_is_created_there(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    private_dir(tmp_path / "link" / "sub", what="journal folder")
    assert oct((tmp_path / "real" / "sub").stat().st_mode & 0o777) == "0o700"


def test_a_file_as_ancestor_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="Not a directory"):
        private_dir(tmp_path / "file" / "sub", what="archive")
    assert os.path.isfile(tmp_path / "file")


# -- descriptors: opened once, closed once, by their owner ----------------------------------------------------------
def open_descriptors() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def swapped_in_device(monkeypatch: pytest.MonkeyPatch) -> Path:
    """/dev/null where a file was: the name passed its check, then a device took its place (a race kvmigrate loses)."""
    monkeypatch.setattr(files, "check_writable_path", lambda path, *, what: None)
    return Path(os.devnull)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open descriptors in /proc")
@pytest.mark.parametrize("opener", ["ensure_private_file", "open_private", "open_private_append", "lock"])
def test_a_device_swapped_in_is_refused_and_its_descriptor_closed_once(swapped_in_device: Path, opener: str) -> None:
    before = open_descriptors()
    mode = os.stat(swapped_in_device).st_mode
    with pytest.raises(UnsafePathError, match="not a regular file"):
        if opener == "ensure_private_file":
            files.ensure_private_file(swapped_in_device, what="journal")  # was: EBADF from a second close
        elif opener == "lock":
            files.FileLock(swapped_in_device, what="lock file").acquire(busy="busy")
        else:
            files.open_private(swapped_in_device, what="log file", append=opener == "open_private_append")
    assert open_descriptors() == before
    assert os.stat(swapped_in_device).st_mode == mode  # never chmod-ed


def test_check_regular_leaves_the_descriptor_to_its_caller(tmp_path: Path) -> None:
    descriptor = os.open(tmp_path, os.O_RDONLY)
    try:
        with pytest.raises(UnsafePathError):
            files._check_regular(descriptor, tmp_path, "lock file")
        os.fstat(descriptor)  # still open
    finally:
        os.close(descriptor)


def run_child(code: str, *args: str, without: tuple[int, ...]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=without_capabilities(*without),
    )
    if result.returncode == EXIT_NO_CAPABILITY_DROP:
        pytest.skip("this machine does not let a child drop a capability")
    return result


OPEN_PRIVATE = """
import json, os, sys
from pathlib import Path
from kvmigrate.errors import KvmigrateError
from kvmigrate.files import open_private
before = sorted(os.listdir('/proc/self/fd'))
try:
    open_private(Path(sys.argv[1]), what='log file', append=sys.argv[2] == 'append')
except KvmigrateError as exc:
    leaked = sorted(os.listdir('/proc/self/fd')) != before
    print(json.dumps({'type': type(exc).__name__, 'error': str(exc), 'leaked': leaked}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can make a file another user owns (a child then lacks FOWNER)")
@pytest.mark.parametrize("append", ["append", "truncate"])
def test_a_file_someone_else_owns_is_refused_untouched_and_its_descriptor_closed(tmp_path: Path, append: str) -> None:
    theirs = tmp_path / "run.log"
    theirs.write_text("theirs\n")
    os.chown(theirs, 65534, 65534)
    os.chmod(theirs, 0o666)  # anyone may write it, but only its owner may change its mode
    result = run_child(OPEN_PRIVATE, str(theirs), append, without=(CAP_FOWNER,))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["type"] == "UsageError" and outcome["leaked"] is False
    assert outcome["error"] == (
        f"cannot make log file {theirs} private (0600): Operation not permitted; check who owns it"
    )
    assert theirs.read_text() == "theirs\n" and oct(theirs.stat().st_mode & 0o777) == "0o666"


# -- writes that fail (disk full, quota, too large) -----------------------------------------------------------------
def files_of_at_most(limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG, as on a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


WRITE = """
import json, os, sys
from pathlib import Path
from kvmigrate.errors import KvmigrateError
from kvmigrate.files import private_text, write_atomic
path, how = Path(sys.argv[1]), sys.argv[2]
try:
    if how == 'atomic':
        write_atomic(path, b'secret-looking-data ' * 5_000, what='manifest')
    else:
        with private_text(path, what='archive log', append=how == 'append') as handle:
            handle.write('secret-looking-data ' * 5_000)
            handle.flush()
            os.fsync(handle.fileno())
except KvmigrateError as exc:
    print(json.dumps({'type': type(exc).__name__, 'error': str(exc), 'fatal': exc.is_fatal, 'code': exc.exit_code}))
"""


@pytest.mark.parametrize("how", ["atomic", "append", "truncate"])
def test_a_write_past_the_file_size_limit_is_one_local_write_error(tmp_path: Path, how: str) -> None:
    path = tmp_path / "manifest.json"
    path.write_bytes(b"as it was\n")
    result = subprocess.run(
        [sys.executable, "-c", WRITE, str(path), how],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: files_of_at_most(10_000),
    )
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    outcome = json.loads(result.stdout)
    what = "manifest" if how == "atomic" else "archive log"
    assert outcome == {
        "type": "LocalWriteError",
        "error": f"cannot write {what} {path}: File too large; free space or choose another folder",
        "fatal": True,
        "code": 1,
    }
    if how == "atomic":
        assert path.read_bytes() == b"as it was\n"  # the old file stays whole; the temporary one is gone
        assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]


# -- read_regular: FileNotFoundError, or a UsageError for every other way a file cannot be read ---------------------
@pytest.mark.parametrize("kind", ["socket", "folder", "fifo", "link"])
def test_a_file_that_cannot_be_read_is_a_usage_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "x.blob"
    if kind == "socket":
        os.mknod(path, stat.S_IFSOCK | 0o600)  # open(2) refuses it (ENXIO), root included
    elif kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UsageError, match=f"blob file {path}"):
        files.read_regular(path, limit=1000, what="blob file")
    with pytest.raises(FileNotFoundError):
        files.read_regular(tmp_path / "absent", limit=1000, what="blob file")
