"""kvmigrate's own files: every failure to create, open, write or read one is a one-line error of ours.

Some cases need a permission the test's user cannot lose: run as root, the child process that meets them drops the
capabilities that let root ignore file modes and owners (``without_capabilities``), so they run as root too.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kvmigrate.errors import UsageError
from kvmigrate.files import private_dir


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
