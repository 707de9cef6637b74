"""Emulator settings: one table of defaults and one table per vault, read from TOML; unknown keys are errors."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

#: Operations a vault can be told to deny (access-policy permission names, as Key Vault spells them).
DENIABLE = frozenset(
    {"get", "list", "set", "create", "import", "update", "delete", "recover", "backup", "restore", "purge"}
    | {"getrotationpolicy", "setrotationpolicy", "rotate"}
    | {"getissuers", "listissuers", "setissuers", "deleteissuers", "manageissuers", "managecontacts"}
)
_VAULT_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-]{0,62}$")


class ConfigError(ValueError):
    """The emulator configuration is invalid; the message says which key and why."""


class VaultSettings(BaseModel):
    """How one emulated vault behaves. Defaults follow the real service where the facts sheet knows it."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    port: int = Field(0, ge=0, le=65535, description="TCP port; 0 picks a free one.")
    host: str = Field("127.0.0.1", description="Loopback bind address, e.g. 127.0.0.2.")
    dns_name: str | None = Field(None, description="Name the server certificate covers, e.g. src.vault.azure.net.")
    subscription: str = Field("00000000-0000-0000-0000-00000000a001", description="Backup blobs bind to it.")
    geography: str = Field("local", description="Backup blobs bind to it, like Azure's security worlds.")
    tenant: str = Field("72f988bf-86f1-41af-91ab-2d7cd011db47", description="Tenant named in the 401 challenge.")
    rate_limit: int = Field(4000, ge=0, description="Transactions per 10 s per vault; 0 = unlimited.")
    create_rate_limit: int = Field(300, ge=0, description="Secret creates + key/certificate imports per 10 s.")
    retry_after: bool = Field(False, description="Send Retry-After on 429 (the real one on record had none).")
    latency_ms: float = Field(0.0, ge=0, description="Added to every answer.")
    latency_jitter_ms: float = Field(0.0, ge=0, description="Uniform jitter added to latency_ms.")
    error_rate: float = Field(0.0, ge=0, le=1, description="Share of requests answered 500/503.")
    drop_rate: float = Field(0.0, ge=0, le=1, description="Share of requests whose connection is dropped unanswered.")
    slow_rate: float = Field(0.0, ge=0, le=1, description="Share of requests answered slowly.")
    slow_ms: float = Field(2000.0, ge=0, description="Extra delay of a slow answer.")
    soft_delete_days: int = Field(90, ge=0, le=90, description="Retention; 0 turns soft delete off (Purgeable).")
    purge_protection: bool = Field(False, description="Refuse purge while retained.")
    consistency_delay: float = Field(
        1.0, ge=0, description="Seconds before a delete/recover shows and before a purged name is free again."
    )
    issuance_delay: float = Field(
        1.0, ge=0, description="Seconds a self-signed certificate stays inProgress (the recorded service: about 10)."
    )
    deny: list[str] = Field(default_factory=list, description="Operations answered 403, e.g. backup or secrets/get.")
    stall_ops: list[str] = Field(
        default_factory=list, description="Operations (e.g. secrets.restore) held stall_ms before they act."
    )
    hang_after_ops: list[str] = Field(
        default_factory=list, description="Operations that act, then hold their answer stall_ms."
    )
    stall_ms: float = Field(10_000.0, ge=0, description="How long stall_ops and hang_after_ops are held.")
    max_page_size: int = Field(25, ge=1, le=25, description="Items per list page (Key Vault: at most 25).")

    @field_validator("soft_delete_days")
    @classmethod
    def _retention(cls, days: int) -> int:
        if days and not 7 <= days <= 90:
            raise ValueError("soft_delete_days must be 0 (off) or 7-90, as in Key Vault")
        return days

    @field_validator("host")
    @classmethod
    def _loopback(cls, host: str) -> str:
        if not (host.startswith("127.") or host in ("::1", "localhost")):
            raise ValueError(f"host {host!r} is not a loopback address; the emulator binds only to loopback")
        return host

    @field_validator("deny")
    @classmethod
    def _deny(cls, ops: list[str]) -> list[str]:
        for op in ops:
            collection, _, perm = op.rpartition("/")
            if perm not in DENIABLE or collection not in ("", "secrets", "keys", "certificates"):
                raise ValueError(f"unknown operation {op!r} in deny; use e.g. backup or secrets/get")
        return ops


class EmulatorConfig(BaseModel):
    """Every vault the emulator serves, by name."""

    model_config = ConfigDict(extra="forbid")

    vaults: dict[str, VaultSettings]

    @field_validator("vaults")
    @classmethod
    def _names(cls, vaults: dict[str, VaultSettings]) -> dict[str, VaultSettings]:
        if not vaults:
            raise ValueError("configure at least one vault")
        for name in vaults:
            if not _VAULT_NAME.match(name):
                raise ValueError(f"vault name {name!r}: use letters, digits and '-'")
        ports = [v.port for v in vaults.values() if v.port]
        if len(ports) != len(set(ports)):
            raise ValueError("two vaults share a port")
        return vaults

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> EmulatorConfig:
        """Merge ``[defaults]`` into each ``[vaults.NAME]`` table and validate."""
        data = dict(data)
        defaults = data.pop("defaults", {}) or {}
        unknown = set(data) - {"vaults"}
        if unknown:
            raise ConfigError(f"unknown top-level table(s) {sorted(unknown)}; use [defaults] and [vaults.NAME]")
        vaults = {name: {**defaults, **(table or {})} for name, table in (data.get("vaults") or {}).items()}
        try:
            return cls.model_validate({"vaults": vaults})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False)
            )
            raise ConfigError(f"invalid emulator config: {problems}") from exc

    @classmethod
    def load(cls, path: Path) -> EmulatorConfig:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read emulator config {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"emulator config {path} is not valid TOML: {exc}") from exc
        return cls.from_mapping(data)

    @classmethod
    def from_pairs(cls, pairs: list[str]) -> EmulatorConfig:
        """Build from ``NAME=PORT`` shorthands; each vault gets its own subscription-free defaults."""
        vaults: dict[str, Any] = {}
        for pair in pairs:
            name, sep, port = pair.partition("=")
            if not sep or not port.isdigit():
                raise ConfigError(f"--vault {pair!r}: use NAME=PORT, e.g. --vault src=8443")
            vaults[name] = {"port": int(port)}
        return cls.from_mapping({"vaults": vaults})
