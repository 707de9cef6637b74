"""Emulator settings: one table of defaults and one table per vault, read from TOML; unknown keys are errors."""

from __future__ import annotations

import ipaddress
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

#: Operations a vault can be told to deny (access-policy permission names, as Key Vault spells them).
DENIABLE = frozenset(
    {"get", "list", "set", "create", "import", "update", "delete", "recover", "backup", "restore", "purge"}
    | {"getrotationpolicy", "setrotationpolicy", "rotate"}
    | {"getissuers", "listissuers", "setissuers", "deleteissuers", "manageissuers", "managecontacts"}
)
_VAULT_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-]{0,62}$")
_DNS_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DEFAULT_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def _loopback_host(host: str) -> str:
    """Accept a loopback address (any of 127/8, ::1) or ``localhost``; the emulator never listens beyond loopback."""
    if host == "localhost":
        return host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise ValueError(f"host {host!r} is not a loopback address; the emulator binds only to loopback")
    return str(address)


def _dns_name(name: str | None) -> str | None:
    if name is None:
        return None
    lowered = name.lower().rstrip(".")
    if not _DNS_NAME.match(lowered):
        raise ValueError(f"dns_name {name!r} is not a host name (no scheme, port or path), e.g. src.vault.azure.net")
    return lowered


def _guid(value: str) -> str:
    lowered = value.lower()
    if not _GUID.match(lowered):
        raise ValueError(f"{value!r} is not a GUID; Azure AD tenants and subscriptions are GUIDs")
    return lowered


def _addresses(host: str) -> set[str]:
    """The addresses a listener on ``host`` occupies (``localhost`` binds both loopbacks)."""
    return {"127.0.0.1", "::1"} if host == "localhost" else {host}


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
    tenant: str = Field(
        DEFAULT_TENANT, description="The vault's Azure AD tenant: named in the 401 challenge; tokens must carry it."
    )
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
        return _loopback_host(host)

    @field_validator("dns_name")
    @classmethod
    def _name(cls, name: str | None) -> str | None:
        return _dns_name(name)

    @field_validator("tenant", "subscription")
    @classmethod
    def _ids(cls, value: str) -> str:
        return _guid(value)

    @field_validator("deny")
    @classmethod
    def _deny(cls, ops: list[str]) -> list[str]:
        for op in ops:
            parts = op.split("/")
            if len(parts) == 3 and parts[0] in ("secrets", "keys", "certificates") and parts[1] in DENIABLE:
                if re.fullmatch(r"[0-9a-zA-Z-]{1,127}", parts[2]):
                    continue  # scoped to one object, as an RBAC role assignment can be
            collection, _, perm = op.rpartition("/")
            if perm not in DENIABLE or collection not in ("", "secrets", "keys", "certificates"):
                raise ValueError(
                    f"unknown operation {op!r} in deny; use e.g. backup, secrets/get or secrets/backup/NAME"
                )
        return ops


class IdentitySettings(BaseModel):
    """The emulated managed identity: which tenant its tokens come from."""

    model_config = ConfigDict(extra="forbid")

    tenant: str | None = Field(
        None, description="Home tenant of the identity's tokens; default: the tenant all vaults share."
    )

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, value: str | None) -> str | None:
        return None if value is None else _guid(value)


class ArmSettings(BaseModel):
    """A minimal Azure Resource Manager (subscription and tenant lists) so ``az login --identity`` completes."""

    model_config = ConfigDict(extra="forbid")

    port: int = Field(0, ge=0, le=65535, description="TCP port; 443 with dns_name management.azure.com for az.")
    host: str = Field("127.0.0.1", description="Loopback bind address, e.g. 127.0.0.5.")
    dns_name: str | None = Field(None, description="Name the server certificate covers, e.g. management.azure.com.")

    @field_validator("host")
    @classmethod
    def _loopback(cls, host: str) -> str:
        return _loopback_host(host)

    @field_validator("dns_name")
    @classmethod
    def _name(cls, name: str | None) -> str | None:
        return _dns_name(name)


class EmulatorConfig(BaseModel):
    """Every vault the emulator serves, by name, plus the managed identity and the optional ARM endpoint."""

    model_config = ConfigDict(extra="forbid")

    vaults: dict[str, VaultSettings]
    identity: IdentitySettings = Field(default_factory=lambda: IdentitySettings(tenant=None))
    arm: ArmSettings | None = None

    @field_validator("vaults")
    @classmethod
    def _names(cls, vaults: dict[str, VaultSettings]) -> dict[str, VaultSettings]:
        if not vaults:
            raise ValueError("configure at least one vault")
        for name in vaults:
            if not _VAULT_NAME.match(name):
                raise ValueError(f"vault name {name!r}: use letters, digits and '-'")
        return vaults

    @model_validator(mode="after")
    def _bindings(self) -> EmulatorConfig:
        """Refuse two listeners on one address and port; vaults may share a port on different loopback addresses."""
        listeners = [(f"vault {name!r}", v.host, v.port) for name, v in self.vaults.items()]
        if self.arm is not None:
            listeners.append(("arm", self.arm.host, self.arm.port))
        taken: dict[tuple[str, int], str] = {}
        for who, host, port in listeners:
            if not port:
                continue  # port 0: the system picks a free one
            for address in _addresses(host):
                other = taken.setdefault((address, port), who)
                if other != who:
                    raise ValueError(f"{other} and {who} both bind {address} port {port}; use another host or port")
        named = [v.dns_name for v in self.vaults.values() if v.dns_name]
        if len(named) != len(set(named)):
            raise ValueError("two vaults have the same dns_name")
        if self.identity.tenant is None and len({v.tenant for v in self.vaults.values()}) > 1:
            raise ValueError(
                "the vaults name different tenants: set [identity] tenant to the one the managed identity belongs "
                "to (vaults of the other tenants then refuse its tokens, AKV10032)"
            )
        return self

    @property
    def identity_tenant(self) -> str:
        """The managed identity's home tenant: the configured one, else the vaults' common tenant."""
        if self.identity.tenant is not None:
            return self.identity.tenant
        return next(iter(self.vaults.values())).tenant

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> EmulatorConfig:
        """Merge ``[defaults]`` into each ``[vaults.NAME]`` table and validate (``[identity]``, ``[arm]`` as given)."""
        data = dict(data)
        defaults = data.pop("defaults", {}) or {}
        unknown = set(data) - {"vaults", "identity", "arm"}
        if unknown:
            raise ConfigError(
                f"unknown top-level table(s) {sorted(unknown)}; use [defaults], [vaults.NAME], [identity] and [arm]"
            )
        vaults = {name: {**defaults, **(table or {})} for name, table in (data.get("vaults") or {}).items()}
        tables: dict[str, Any] = {"vaults": vaults}
        for optional in ("identity", "arm"):
            if optional in data:
                tables[optional] = data[optional] or {}
        try:
            return cls.model_validate(tables)
        except ValidationError as exc:
            problems = "; ".join(
                (f"{'.'.join(str(p) for p in err['loc'])}: " if err["loc"] else "")
                + err["msg"].removeprefix("Value error, ")
                for err in exc.errors(include_url=False)
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
