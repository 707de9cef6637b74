"""Options of every command, validated once; the CLI builds them from flags and tests build them directly."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kvmigrate.models import ObjectType

ALL_TYPES = (ObjectType.SECRET, ObjectType.KEY, ObjectType.CERTIFICATE)
#: Key Vault allows 4,000 transactions per 10 s per vault; stay safely under it by default.
DEFAULT_RPS = 350.0


class ConnectionOptions(BaseModel):
    """How to reach vaults; shared by every command."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_bundle: Path | None = Field(None, description="Extra CA (PEM) to trust, e.g. the emulator's; TLS stays on.")
    tenant_id: str | None = Field(None, description="Preferred Azure AD tenant for the credential chain.")


class CopyOptions(BaseModel):
    """``kvmigrate copy``: what to copy and how hard to push each vault."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    operation: Literal["copy", "backup", "restore"] = Field(
        "copy", description="copy: vault → vault; backup: vault → archive directory; restore: archive → vault."
    )
    source: str = Field(description="Source vault name or https URL (restore: the archive directory).")
    target: str = Field(description="Target vault name or https URL (backup: the archive directory).")
    mode: Literal["backup", "value", "auto"] = Field(
        "backup",
        description="backup: Key Vault blobs (same subscription+geography); value: recreate secrets and "
        "certificates from their values (any vault); auto: backup, switching to value when the "
        "target refuses blobs.",
    )
    latest_only: bool = Field(False, description="Value mode: copy only each object's current version.")
    types: tuple[ObjectType, ...] = Field(ALL_TYPES, description="Object types to copy.")
    include: tuple[str, ...] = Field((), description="Glob(s) on names to include; empty = all (case-insensitive).")
    exclude: tuple[str, ...] = Field((), description="Glob(s) on names to exclude (after include).")
    concurrency: int = Field(32, ge=1, le=512, description="Objects in flight per stage (engine semaphore).")
    rps: float = Field(DEFAULT_RPS, gt=0, le=10_000, description="HTTP attempts per second per vault (rate policy).")
    on_conflict: Literal["skip", "fail"] = Field("skip", description="An active object of the same name in target.")
    recover_deleted: bool = Field(False, description="Recover a soft-deleted target object instead of reporting it.")
    purge_deleted: bool = Field(False, description="Purge a soft-deleted target object, then restore (destructive).")
    state: Path | None = Field(None, description="Journal path; default .kvmigrate/<source>__<target>.db.")
    restart: bool = Field(False, description="Discard the journal and start over.")
    dry_run: bool = Field(False, description="Read and decide everything, write nothing (the gate before writes).")
    connection: ConnectionOptions = Field(default_factory=lambda: ConnectionOptions(ca_bundle=None, tenant_id=None))

    @model_validator(mode="after")
    def _exclusive(self) -> CopyOptions:
        if self.recover_deleted and self.purge_deleted:
            raise ValueError("--recover-deleted and --purge-deleted exclude each other; choose one")
        if self.mode != "backup" and self.operation != "copy":
            raise ValueError("--mode value/auto works between two vaults (copy); archives hold backup blobs")
        if self.latest_only and self.mode == "backup":
            raise ValueError("--latest-only needs --mode value (a backup always carries every version)")
        if not self.types:
            raise ValueError("--types needs at least one of secrets, keys, certificates")
        return self
