"""The archive's manifest: its format, and the checks that make a crafted one harmless.

An archive is something users receive from elsewhere (a disaster-recovery copy, another team), so nothing in a
manifest is trusted: every entry must name a Key Vault object (``0-9a-zA-Z-``, at most 127 characters), a blob file
that is a plain name inside its own type folder (no ``..``, no absolute path, no separator), a size no larger than a
backup blob can be, a SHA-256, and version ids. A manifest that breaks any rule is refused as damaged (exit 2)
before anything is read or written.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from kvmigrate.errors import ArchiveError
from kvmigrate.models import ObjectRef, ObjectType
from kvmigrate.settings.model import Contacts, Issuer, RotationPolicy

FORMAT = "kvmigrate-archive"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ENTRIES = "entries.jsonl"
#: Larger than any backup Key Vault makes: 500 versions (its backup limit) of its largest objects come to about 21 MB.
MAX_BLOB_BYTES = 32 * 1024 * 1024
#: A manifest lists names and digests only; 64 MB holds several hundred thousand entries.
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
_FILE_NAME = re.compile(r"^[0-9a-zA-Z._-]{1,200}$")
_VERSION = re.compile(r"^[0-9a-zA-Z]{1,64}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Entry:
    """One object in the archive (names and version ids only: never a value)."""

    type: ObjectType
    name: str
    versions: tuple[str, ...]
    enabled: bool | None
    blob: str
    size: int
    sha256: str

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.type, self.name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.type.value,
            "name": self.name,
            "versions": list(self.versions),
            "enabled": self.enabled,
            "blob": self.blob,
            "size": self.size,
            "sha256": self.sha256,
        }

    @classmethod
    def from_dict(cls, raw: Any) -> Entry:
        """Validate one manifest entry; ``ValueError`` names the first rule it breaks."""
        if not isinstance(raw, dict):
            raise ValueError("an entry is not an object")
        object_type = ObjectType(str(raw.get("type")))
        name = raw.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            raise ValueError(f"the name {escape_for_message(name)} is not a Key Vault object name")
        blob = raw.get("blob")
        if not isinstance(blob, str) or not is_blob_path(blob, object_type):
            raise ValueError(
                f"{object_type.value} {name}: its blob path {escape_for_message(blob)} is not a plain file name "
                f"inside {object_type.plural}/"
            )
        size = raw.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_BLOB_BYTES:
            raise ValueError(f"{object_type.value} {name}: its size {escape_for_message(size)} is not a blob's size")
        digest = raw.get("sha256")
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise ValueError(f"{object_type.value} {name}: its sha256 is not a SHA-256 digest")
        versions = raw.get("versions", [])
        if not isinstance(versions, list) or not all(isinstance(v, str) and _VERSION.match(v) for v in versions):
            raise ValueError(f"{object_type.value} {name}: its versions are not version ids")
        enabled = raw.get("enabled")
        if enabled is not None and not isinstance(enabled, bool):
            raise ValueError(f"{object_type.value} {name}: enabled is not true, false or null")
        return cls(object_type, name, tuple(versions), enabled, blob, size, digest)


def is_blob_path(path: str, object_type: ObjectType) -> bool:
    """``<type folder>/<plain file name>``: nothing that could leave the archive's own type folder."""
    folder, separator, file_name = path.partition("/")
    return (
        separator == "/"
        and folder == object_type.plural
        and bool(_FILE_NAME.match(file_name))
        and file_name not in (".", "..")
        and not file_name.startswith(".")
    )


@dataclass
class Settings:
    """What the archive keeps besides blobs: the vault's contacts and issuers (never a password), rotation policies."""

    contacts: Contacts | None = None
    issuers: dict[str, Issuer] = field(default_factory=dict)
    rotation_policies: dict[str, RotationPolicy] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "contacts": None if self.contacts is None else self.contacts.as_dict(),
            "issuers": [self.issuers[name].as_dict() for name in sorted(self.issuers)],
            "rotation_policies": {
                name: self.rotation_policies[name].as_dict() for name in sorted(self.rotation_policies)
            },
        }

    @classmethod
    def from_dict(cls, raw: Any) -> Settings:
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise ValueError("settings is not an object")
        contacts = None if raw.get("contacts") is None else Contacts.from_dict(raw["contacts"])
        issuers = {}
        for item in raw.get("issuers", []):
            issuer = Issuer.from_dict(item)
            if not NAME.match(issuer.name):
                raise ValueError(f"the issuer name {escape_for_message(issuer.name)} is not a Key Vault name")
            issuers[issuer.name.lower()] = issuer
        policies = raw.get("rotation_policies", {})
        if not isinstance(policies, dict) or not all(isinstance(k, str) and NAME.match(k) for k in policies):
            raise ValueError("rotation_policies is not an object of key names")
        return cls(contacts, issuers, {k.lower(): RotationPolicy.from_dict(v) for k, v in policies.items()})


@dataclass
class Manifest:
    source: str
    created: str
    tool_version: str
    complete: bool
    entries: list[Entry]
    settings: Settings = field(default_factory=Settings)


def parse(text: str, *, where: str) -> Manifest:
    """Parse and validate a manifest's text, or raise ``ArchiveError`` saying why it cannot be trusted."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError("not a kvmigrate manifest")
        version = data.get("format_version", 0)
        if not isinstance(version, int):
            raise ValueError("format_version is not a number")
        if version > FORMAT_VERSION:
            raise ArchiveError(
                f"archive {where} has format version {version}, newer than this kvmigrate understands "
                f"({FORMAT_VERSION}); upgrade kvmigrate to read it"
            )
        objects = data["objects"]
        if not isinstance(objects, list):
            raise ValueError("objects is not a list")
        entries = [Entry.from_dict(raw) for raw in objects]
        seen: set[tuple[ObjectType, str]] = set()
        for entry in entries:
            key = (entry.type, entry.name.lower())
            if key in seen:
                raise ValueError(f"{entry.ref} is listed twice")
            seen.add(key)
        return Manifest(
            source=str(data["source"]),
            created=str(data["created"]),
            tool_version=str(data.get("tool_version", "")),
            complete=bool(data.get("complete", False)),
            entries=entries,
            settings=Settings.from_dict(data.get("settings")),
        )
    except ArchiveError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise ArchiveError(
            f"{where}/{MANIFEST} is damaged or truncated ({escape_for_message(str(exc), quote=False)}); the archive "
            "cannot be trusted - take the backup again"
        ) from exc


def escape_for_message(value: object, *, quote: bool = True) -> str:
    """``repr``-style text for a value read from a file: control characters come out escaped, never raw."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    escaped = text.encode("unicode_escape").decode("ascii")[:120]
    return f"'{escaped}'" if quote else escaped
