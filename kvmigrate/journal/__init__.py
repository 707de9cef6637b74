"""The run journal: SQLite, one file per run of one pair of ends, the source of truth for resume."""

from kvmigrate.journal.schema import SCHEMA_VERSION
from kvmigrate.journal.session import run_journal
from kvmigrate.journal.store import ItemRecord, Journal

__all__ = ["SCHEMA_VERSION", "ItemRecord", "Journal", "run_journal"]
