"""The journal's SQLite schema, its version, and the upgrade of journals an older kvmigrate wrote.

Stored: type, name, state, the route that wrote the object (``blob`` or ``value``), the source listing's fingerprint
when the object finished, what the target calls it when that differs (a backup file's presumed name), outcome,
reason, error, attempts, timestamps; value mode's map of source version ids to the target version ids they became;
the vault settings (rotation policies, contacts, issuers) a run has finished. Never a secret value, key material,
issuer password or backup blob.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from kvmigrate.models import ItemState, ObjectType, Outcome

SCHEMA_VERSION = 3  # 2: version_map (value mode); 3: route, fingerprint, settings, no pending/backed_up states
OPERATIONS = frozenset({"copy", "backup", "restore", "sync"})
ROUTES = ("blob", "value")


def _in_list(values: Sequence[str]) -> str:
    return ", ".join(f"'{value}'" for value in values)


_OUTCOMES = _in_list([o.value for o in Outcome])

SCHEMA = (
    """
    CREATE TABLE run (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        operation TEXT NOT NULL,
        source TEXT NOT NULL,
        target TEXT NOT NULL,
        created_at TEXT NOT NULL,
        tool_version TEXT NOT NULL
    )
    """,
    f"""
    CREATE TABLE item (
        type TEXT NOT NULL CHECK (type IN ({_in_list([t.value for t in ObjectType])})),
        name_key TEXT NOT NULL,
        name TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ({_in_list([s.value for s in ItemState])})),
        route TEXT CHECK (route IS NULL OR route IN ({_in_list(ROUTES)})),
        fingerprint TEXT,
        target_ref TEXT,
        outcome TEXT CHECK (outcome IS NULL OR outcome IN ({_OUTCOMES})),
        reason TEXT,
        error TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (type, name_key)
    ) WITHOUT ROWID
    """,
    # Value mode recreates versions under new ids: this map is how a resumed run knows, cheaply, which source versions
    # already exist in the target (it is checked against the target's own listing, never trusted alone).
    """
    CREATE TABLE version_map (
        type TEXT NOT NULL,
        name_key TEXT NOT NULL,
        source_version TEXT NOT NULL,
        target_version TEXT NOT NULL,
        PRIMARY KEY (type, name_key, source_version)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE setting (
        kind TEXT NOT NULL,
        name_key TEXT NOT NULL,
        state TEXT NOT NULL,
        fingerprint TEXT,
        outcome TEXT,
        reason TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (kind, name_key)
    ) WITHOUT ROWID
    """,
)


def create(connection: sqlite3.Connection) -> None:
    for statement in SCHEMA:
        connection.execute(statement)


def upgrade_from_2(connection: sqlite3.Connection) -> None:
    """Carry a version-2 journal (kvmigrate 0.1) over: rows keep their state; ``pending``/``backed_up`` go.

    Finished rows get no fingerprint, so a rerun re-decides them once against the target (a version-list read
    each) instead of trusting that the source did not change; rows in flight keep ``restoring``, written by the
    value route when the version map has entries for them.
    """
    connection.execute("ALTER TABLE item RENAME TO item_v2")
    connection.execute("DROP INDEX IF EXISTS item_by_state")
    connection.execute(SCHEMA[1])
    connection.execute(SCHEMA[3])
    connection.execute(
        "INSERT INTO item (type, name_key, name, state, route, outcome, reason, error, attempts, created_at,"
        " updated_at) SELECT type, name_key, name, state,"
        " CASE WHEN EXISTS (SELECT 1 FROM version_map m WHERE m.type = item_v2.type"
        " AND m.name_key = item_v2.name_key) THEN 'value' ELSE 'blob' END,"
        " outcome, reason, error, attempts, created_at, updated_at FROM item_v2"
        " WHERE state IN ('restoring', 'done', 'skipped', 'failed')"
    )
    connection.execute("DROP TABLE item_v2")
