"""``archive inspect``: what an archive holds, whether it is whole, and whether every blob matches its SHA-256."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from kvmigrate.archive import Archive
from kvmigrate.archive.folder import BackupFolder
from kvmigrate.report.text import safe, say


def inspection(archive: Archive, bad: list[str] | None) -> dict[str, Any]:
    """The ``-o json`` document: the manifest, what makes it not whole, and (unless --quick) the SHA-256 check."""
    return {
        "source": archive.source,
        "created": archive.created,
        "complete": archive.complete,
        "whole": archive.is_whole and not bad,
        "problems": archive.problems(),
        "blobs_checked": bad is not None,
        "blob_mismatches": bad or [],
        "tool_version": archive.tool_version,
        "settings": archive.settings.as_dict(),
        "objects": [e.as_dict() for e in archive.sorted_entries()],
    }


def inspection_json(archive: Archive, bad: list[str] | None) -> str:
    return json.dumps(inspection(archive, bad), indent=2)


def print_archive(console: Console, archive: Archive, bad: list[str] | None) -> None:
    if archive.is_whole and not bad:
        state: tuple[str, str] = ("complete" + ("" if bad is not None else " (blobs not checked: --quick)"), "green")
    else:
        state = ("INCOMPLETE OR DAMAGED", "red")
    say(
        console,
        f"archive {archive.root}: backup of {archive.source} taken {archive.created} by kvmigrate "
        f"{archive.tool_version}; ",
        state,
    )
    for problem in archive.problems():
        say(console, ("problem:", "red"), f" {problem}")
    for mismatch in bad or []:
        say(console, ("damaged:", "red"), f" {mismatch}")
    table = Table()
    for column in ("type", "name", "versions", "enabled", "bytes", "sha256"):
        table.add_column(column, overflow="fold")
    for entry in archive.sorted_entries():
        table.add_row(
            entry.type.value,
            safe(entry.name),
            str(len(entry.versions)),
            "" if entry.enabled is None else str(entry.enabled).lower(),
            str(entry.size),
            entry.sha256[:16] + "…",
        )
    console.print(table)
    settings = archive.settings
    contacts = 0 if settings.contacts is None else len(settings.contacts.contacts)
    say(
        console,
        f"{len(archive.entries)} objects; settings: {contacts} contact(s), {len(settings.issuers)} issuer(s) (never a "
        f"password), {len(settings.rotation_policies)} key rotation policies",
    )


def folder_json(folder: BackupFolder) -> str:
    files = sorted(folder.files.values(), key=lambda f: (f.ref.type.value, f.ref.key))
    return json.dumps(
        {
            "folder": str(folder.root),
            "files": [
                {
                    "file": str(f.path),
                    "type": f.ref.type.value,
                    "presumed_name": f.ref.name,
                    "or_type": [t.value for t in f.others],
                    "size": f.size,
                    "sha256": f.sha256,
                }
                for f in files
            ],
            "skipped": folder.skipped,
        },
        indent=2,
    )


def print_folder(console: Console, folder: BackupFolder) -> None:
    say(console, f"{folder.root}: {len(folder.files)} Key Vault backup file(s) (names presumed from file names)")
    table = Table()
    for column in ("file", "type", "presumed name", "bytes", "sha256"):
        table.add_column(column, overflow="fold")
    for entry in sorted(folder.files.values(), key=lambda f: (f.ref.type.value, f.ref.key)):
        kind = entry.ref.type.value + "".join(f" or {t.value}" for t in entry.others)
        table.add_row(safe(entry.path.name), kind, safe(entry.ref.name), str(entry.size), entry.sha256[:16] + "…")
    console.print(table)
    for line in folder.skipped:
        say(console, ("skipped:", "yellow"), f" {line}")
