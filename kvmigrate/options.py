"""Options of every command, validated once; the CLI builds them from flags and tests build them directly.

Each field's description says which layer handles it: the route (``mode``), the engine (``concurrency``,
conflicts), the rate policy (``rps``), the journal (``state``, ``restart``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kvmigrate.models import ObjectType

ALL_TYPES = (ObjectType.SECRET, ObjectType.KEY, ObjectType.CERTIFICATE)
#: Key Vault allows 4,000 transactions per 10 s per vault; stay safely under it by default.
DEFAULT_RPS = 350.0
DEFAULT_CONCURRENCY = 32
#: Key Vault allows 300 secret creates and certificate/key imports per 10 s per vault: stay under it by default.
DEFAULT_CREATE_RPS = 25.0
Mode = Literal["backup", "value", "auto"]
Operation = Literal["copy", "backup", "restore", "sync"]


def _no_connection() -> ConnectionOptions:
    return ConnectionOptions(ca_bundle=None, tenant_id=None)


class ConnectionOptions(BaseModel):
    """How to reach vaults; shared by every command."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_bundle: Path | None = Field(None, description="Extra CA (PEM) to trust, e.g. the emulator's; TLS stays on.")
    tenant_id: str | None = Field(None, description="Preferred Azure AD tenant for the credential chain.")


class Selection(BaseModel):
    """Which source objects a command looks at (``--types``/``--include``/``--exclude``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    types: tuple[ObjectType, ...] = Field(ALL_TYPES, description="Object types to look at.")
    include: tuple[str, ...] = Field((), description="Glob(s) on names to include; empty = all (case-insensitive).")
    exclude: tuple[str, ...] = Field((), description="Glob(s) on names to exclude (after include).")

    @model_validator(mode="after")
    def _some_type(self) -> Selection:
        if not self.types:
            raise ValueError("--types needs at least one of secrets, keys, certificates")
        return self


class CopyOptions(Selection):
    """``copy``, ``backup``, ``restore`` and ``plan``: what to move, by which route, how hard to push each vault."""

    operation: Operation = Field(
        "copy", description="copy: vault → vault; backup: vault → archive folder; restore: archive → vault."
    )
    source: str = Field(description="Source vault name or https URL (restore: the archive folder).")
    target: str = Field(description="Target vault name or https URL (backup: the archive folder).")
    mode: Mode = Field(
        "backup",
        description="The route: backup = Key Vault blobs (same subscription+geography); value = recreate secrets "
        "and certificates from their values (any vault); auto = blobs, switching to values when the target refuses "
        "them.",
    )
    latest_only: bool = Field(False, description="Value route: copy only each object's current version.")
    create_rps: float = Field(
        DEFAULT_CREATE_RPS,
        gt=0,
        le=10_000,
        description="Value route: creates and imports per second at the target (Key Vault: 300 per 10 s).",
    )
    concurrency: int = Field(DEFAULT_CONCURRENCY, ge=1, le=512, description="Objects in flight at once (engine).")
    rps: float = Field(DEFAULT_RPS, gt=0, le=10_000, description="HTTP attempts per second per vault (rate policy).")
    on_conflict: Literal["skip", "fail"] = Field("skip", description="An object of the same name in the target.")
    recover_deleted: bool = Field(False, description="Recover a soft-deleted target object instead of reporting it.")
    purge_deleted: bool = Field(False, description="Purge a soft-deleted target object, then copy (destructive).")
    allow_incomplete: bool = Field(False, description="Restore from an archive whose backup did not finish.")
    issuer_credentials: Path | None = Field(
        None, description="JSON file mapping certificate issuer names to their passwords (settings stage)."
    )
    allow_missing_issuer_credentials: bool = Field(
        False, description="Exit 0 although issuers were created without their password (settings stage)."
    )
    replace_settings: bool = Field(
        False, description="Replace contacts, issuers and rotation policies the target holds otherwise."
    )
    state: Path | None = Field(None, description="Journal path; default: the per-user state folder (statedir.py).")
    restart: bool = Field(False, description="Discard the journal and start over.")
    dry_run: bool = Field(False, description="Read and decide everything, write nothing (the gate before writes).")
    delete: bool = Field(False, description="Sync: soft-delete target objects gone from the source (deletion stage).")
    max_delete: str | None = Field(
        None, description="Sync: refuse the deletion step beyond N objects or P% (default: the smaller of 10 and 25%)."
    )
    deep: bool = Field(
        False, description="Sync: read every object's version lists (attribute changes on old versions)."
    )
    connection: ConnectionOptions = Field(default_factory=_no_connection)

    def delete_limit(self, target_objects: int) -> int:
        """How many objects the deletion step may remove at most (the safety catch of sync --delete)."""
        if self.max_delete is None:
            return min(10, target_objects // 4)
        if self.max_delete.endswith("%"):
            return int(target_objects * float(self.max_delete[:-1]) / 100)
        return int(self.max_delete)

    @model_validator(mode="after")
    def _exclusive(self) -> CopyOptions:
        if self.recover_deleted and self.purge_deleted:
            raise ValueError("--recover-deleted and --purge-deleted exclude each other; choose one")
        if self.mode != "backup" and self.operation not in ("copy", "sync"):
            raise ValueError("--mode value/auto works between two vaults (copy, sync); archives hold backup blobs")
        if self.max_delete is not None:
            number = self.max_delete.removesuffix("%")
            try:
                share = self.max_delete.endswith("%")
                valid = (0 <= float(number) <= 100) if share else number.isdigit()  # refuses inf and nan too
            except ValueError:
                valid = False
            if not valid:
                raise ValueError(f"--max-delete {self.max_delete!r}: give a number of objects (10) or a share (25%)")
        if (self.delete or self.deep or self.max_delete) and self.operation != "sync":
            raise ValueError("--delete, --max-delete and --deep belong to sync")
        if self.latest_only and self.mode == "backup":
            raise ValueError("--latest-only needs --mode value (a backup always carries every version)")
        return self


class VerifyOptions(Selection):
    """``verify``: compare every selected source object with the target."""

    source: str = Field(description="Source vault name or https URL.")
    target: str = Field(description="Target vault name or https URL.")
    mode: Literal["backup", "value"] = Field(
        "backup", description="backup: compare version ids; value: compare values and attributes in creation order."
    )
    latest_only: bool = Field(False, description="Value mode: compare only each object's current version.")
    no_values: bool = Field(False, description="Do not read secret values (identities without get).")
    one_way: bool = Field(False, description="Do not report objects that exist only in the target.")
    concurrency: int = Field(16, ge=1, le=512, description="Objects compared at once.")
    rps: float = Field(DEFAULT_RPS, gt=0, le=10_000, description="HTTP attempts per second per vault.")
    connection: ConnectionOptions = Field(default_factory=_no_connection)

    @model_validator(mode="after")
    def _value_only(self) -> VerifyOptions:
        if self.latest_only and self.mode != "value":
            raise ValueError("--latest-only needs --mode value")
        return self
