"""Versions in creation order: the one sort key every route uses (no IO)."""

from __future__ import annotations

import datetime as dt

from kvmigrate.vault.adapter import VersionInfo
from kvmigrate.vault.values import EARLIEST, created_at, creation_order


def info(version: str, created: dt.datetime | None) -> VersionInfo:
    return VersionInfo(version, created, True, None, None, None, (), None)


def test_a_version_without_a_creation_time_sorts_first_among_the_services_aware_times() -> None:
    noon = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
    versions = [info("b", noon), info("a", None), info("c", noon + dt.timedelta(seconds=1))]
    assert [v.version for v in creation_order(versions, current=None)] == ["a", "b", "c"]
    assert created_at(versions[1]) == EARLIEST and EARLIEST.tzinfo is not None


def test_the_current_version_goes_last_among_versions_of_one_second() -> None:
    noon = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
    versions = [info("x", noon), info("y", noon), info("old", noon - dt.timedelta(minutes=1))]
    assert [v.version for v in creation_order(versions, current="x")] == ["old", "y", "x"]
