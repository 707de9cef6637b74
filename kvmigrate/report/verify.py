"""The verify verdict for people (one line per finding, then the verdict) and for machines (one JSON document)."""

from __future__ import annotations

import json

from rich.console import Console

from kvmigrate.report.text import say
from kvmigrate.verify import VerifyReport


def verify_json(report: VerifyReport) -> str:
    return json.dumps(report.as_dict(), indent=2)


def print_verify(console: Console, report: VerifyReport) -> None:
    data = report.as_dict()

    def where(finding: dict[str, str]) -> str:
        return f" version {finding['version']}" if "version" in finding else ""

    for finding in data["missing"]:
        say(console, ("missing   ", "red"), f"{finding['type']} {finding['name']}")
    for finding in data["different"]:
        detail = f" ({finding['detail']})" if "detail" in finding else ""
        say(
            console,
            ("different ", "red"),
            f"{finding['type']} {finding['name']}{where(finding)}: {finding.get('field')}{detail}",
        )
    for finding in data["unverified"]:
        say(
            console, ("unverified", "red"), f" {finding['type']} {finding['name']}{where(finding)}: {finding['detail']}"
        )
    for finding in data["extra"]:
        say(console, ("extra     ", "red"), f"{finding['type']} {finding['name']}: only in the target")
    for finding in data["failed"]:
        say(console, ("failed    ", "red"), f"{finding['type']} {finding['name']}: {finding['detail']}")
    for finding in data["pending"]:
        say(console, ("pending", "yellow"), f"   {finding['type']} {finding['name']}: {finding['detail']}")
    if data["compared_by_identity"]:
        say(
            console,
            ("note:", "yellow"),
            f" {len(data['compared_by_identity'])} disabled version(s) compared by version id and attributes (Key"
            " Vault does not show a disabled version's value)",
        )
    verdict = ("OK", "green") if report.ok else ("MISMATCH", "red")
    say(
        console,
        f"verify {report.source} → {report.target}: ",
        verdict,
        f": {report.matched} matched, {len(report.missing)} missing, {len(report.different)} different, "
        f"{len(report.unverified)} unverified, {len(report.failed)} failed"
        + ("" if report.one_way else f", {len(report.extra)} only in the target"),
    )
