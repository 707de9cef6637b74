"""The README documents every option of every command, so it cannot drift from ``--help``."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from kvmigrate.cli import main

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(main.commands))
def test_readme_names_every_option(name: str) -> None:
    command = main.commands[name]
    assert f"kvmigrate {name}" in README
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            longest = max(param.opts, key=len)
            if longest == "--help":
                continue
            assert longest in README, f"README does not mention {longest} of `kvmigrate {name}`"
