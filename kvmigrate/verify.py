"""``kvmigrate verify``: prove the target holds every selected source object, and say everything that is not so.

Exit 0 only when every selected source object is in the target as compared. Per object, backup mode compares the
version ids; per version enabled / nbf / exp / content type / tags and the material (secret value, public key,
certificate), as SHA-256 digests in memory, never printed or written. Value mode (after ``copy --mode value``, where
version ids differ) compares content and attributes version by version in creation order.

What cannot be compared is listed and fails the verdict unless excluded: keys in value mode (they cannot move by
value), and versions the source will not show (disabled) in value mode (they were not copied). In backup mode a
disabled version is compared by identity: the same version id (Key Vault's, unique, of an immutable version) with the
same attributes. Objects only in the target are listed too (``--one-way`` ignores them, as in rclone's ``check``).
The parts of a vault no blob carries are compared as well: contacts, issuers (all but the password, which Key Vault
never shows) and, outside value mode, each key's rotation policy.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from kvmigrate.errors import KvmigrateError, ObjectNotFoundError
from kvmigrate.fanout import fan_out
from kvmigrate.hardening import disable_core_dumps
from kvmigrate.inventory import is_selected
from kvmigrate.models import Listed, ObjectRef, ObjectType, Outcome
from kvmigrate.options import VerifyOptions
from kvmigrate.routes.build import Vaults
from kvmigrate.settings.model import Contacts
from kvmigrate.summary import Events, Subscriber
from kvmigrate.vault.adapter import VaultAdapter, VersionInfo
from kvmigrate.vault.credential import Credential
from kvmigrate.vault.pair import vault_pair_urls
from kvmigrate.vault.settings import VaultSettings
from kvmigrate.vault.values import VaultValues, VersionValue, created_at, signature

COMPARED_FIELDS = ("enabled", "not_before", "expires_on", "content_type", "tags", "thumbprint")
VALUE_FIELDS = ("enabled", "not_before", "expires_on", "content_type", "tags")
HIDDEN = "disabled: the service does not show its value"
PENDING = "only a pending certificate request: not compared (no copy can carry it)"


@dataclass(frozen=True)
class Finding:
    type: str
    name: str
    version: str | None = None
    field: str | None = None
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "name": self.name}
        for key in ("version", "field", "detail"):
            if getattr(self, key) is not None:
                body[key] = getattr(self, key)
        return body


@dataclass
class VerifyReport:
    source: str
    target: str
    one_way: bool = False
    matched: int = 0
    missing: list[Finding] = field(default_factory=list)
    different: list[Finding] = field(default_factory=list)
    unverified: list[Finding] = field(default_factory=list)
    extra: list[Finding] = field(default_factory=list)
    failed: list[Finding] = field(default_factory=list)
    by_identity: list[Finding] = field(default_factory=list)
    settings_matched: int = 0  # contacts, issuers and rotation policies found equal
    pending: list[Finding] = field(default_factory=list)  # certificates that are only a pending request
    interrupted: bool = False  # stopped before everything was compared: never ok, whatever was found so far

    @property
    def ok(self) -> bool:
        found = self.missing or self.different or self.unverified or self.failed or self.extra
        return not (found or self.interrupted)

    def as_dict(self) -> dict[str, Any]:
        def key(f: Finding) -> tuple[str, str, str]:
            return (f.type, f.name.lower(), f.version or "")

        def listing(findings: list[Finding]) -> list[dict[str, Any]]:
            return [f.as_dict() for f in sorted(findings, key=key)]

        return {
            "source": self.source,
            "target": self.target,
            "ok": self.ok,
            "matched": self.matched,
            "missing": listing(self.missing),
            "different": listing(self.different),
            "unverified": listing(self.unverified),
            "extra": listing(self.extra),
            "failed": listing(self.failed),
            "compared_by_identity": listing(self.by_identity),
            "settings_matched": self.settings_matched,
            "pending": listing(self.pending),
            "one_way": self.one_way,
            "interrupted": self.interrupted,
        }


class _Verifier:
    def __init__(
        self, options: VerifyOptions, vaults: Vaults, report: VerifyReport, events: Events, stop: asyncio.Event
    ) -> None:
        self.options = options
        self.report = report
        self.events = events
        self.stop = stop
        self.source: VaultAdapter = vaults.adapters[report.source]
        self.target: VaultAdapter = vaults.adapters[report.target]
        self.source_values: VaultValues = vaults.values[report.source]
        self.target_values: VaultValues = vaults.values[report.target]
        self.seen: set[tuple[ObjectType, str]] = set()
        self.keys: list[str] = []
        self.source_settings: VaultSettings = vaults.settings[report.source]
        self.target_settings: VaultSettings = vaults.settings[report.target]

    def selected(self, listed: Listed) -> bool:
        options = self.options
        return not listed.managed and is_selected(listed.ref.name, options.include, options.exclude)

    async def listing(self) -> AsyncIterator[Listed]:
        for object_type in self.options.types:
            async for listed in self.source.list_objects(object_type):
                if self.selected(listed) and listed.pending:
                    # Only a certificate request, no certificate yet: nothing a copy can carry (it says so too).
                    self.report.pending.append(Finding(object_type.value, listed.ref.name, detail=PENDING))
                    self.seen.add((object_type, listed.ref.key))
                elif self.selected(listed):
                    self.seen.add((object_type, listed.ref.key))
                    if object_type is ObjectType.KEY:
                        self.keys.append(listed.ref.name)
                    self.events.on_listed(listed)
                    yield listed

    async def one(self, listed: Listed) -> None:
        ref = listed.ref
        before = (len(self.report.missing), len(self.report.different), len(self.report.unverified))
        try:
            if self.options.mode == "value":
                await self._by_value(ref)
            else:
                await self._by_id(ref)
        except ObjectNotFoundError:
            self.report.missing.append(Finding(ref.type.value, ref.name))
        except KvmigrateError as error:
            if error.is_fatal:
                raise
            self.report.failed.append(Finding(ref.type.value, ref.name, detail=str(error)))
        after = (len(self.report.missing), len(self.report.different), len(self.report.unverified))
        self.events.on_finished(ref, Outcome.ALREADY_COPIED if after == before else Outcome.FAILED, None)

    async def _by_id(self, ref: ObjectRef) -> None:
        kind = ref.type.value
        source_versions, target_versions = await asyncio.gather(
            self.source.version_infos(ref), self.target.version_infos(ref)
        )
        if not target_versions:
            self.report.missing.append(Finding(kind, ref.name))
            return
        found: list[Finding] = []
        unverified: list[Finding] = []
        theirs = {info.version: info for info in target_versions}
        ours = {info.version: info for info in source_versions}
        for version in sorted(ours.keys() - theirs.keys()):
            found.append(Finding(kind, ref.name, version, "versions", "version missing in the target"))
        for version in sorted(theirs.keys() - ours.keys()):
            found.append(Finding(kind, ref.name, version, "versions", "extra version in the target"))
        for version in sorted(ours.keys() & theirs.keys()):
            differing = _attribute_differences(ours[version], theirs[version])
            found += [Finding(kind, ref.name, version, name) for name in differing]
            if ref.type is ObjectType.SECRET and self.options.no_values:
                continue
            mine, other = await asyncio.gather(
                self.source.material_digest(ref, version), self.target.material_digest(ref, version)
            )
            if mine is None or other is None:
                if mine is None and other is None and not differing:
                    self.report.by_identity.append(
                        Finding(kind, ref.name, version, _material_field(ref.type), f"{HIDDEN}; same version id")
                    )
                else:
                    unverified.append(Finding(kind, ref.name, version, _material_field(ref.type), HIDDEN))
            elif mine != other:
                found.append(Finding(kind, ref.name, version, _material_field(ref.type)))
        self.report.unverified += unverified
        if found:
            self.report.different += found
        elif not unverified:
            self.report.matched += 1

    async def _by_value(self, ref: ObjectRef) -> None:
        """Value mode recreated versions under new ids: compare them in creation order, by content and attributes."""
        kind = ref.type.value
        if ref.type is ObjectType.KEY:
            self.report.unverified.append(Finding(kind, ref.name, None, "key", "keys do not move in value mode"))
            return
        source_infos, target_infos = await asyncio.gather(
            self.source.version_infos(ref), self.target.version_infos(ref)
        )
        if not target_infos:
            self.report.missing.append(Finding(kind, ref.name))
            return
        ours_all, theirs = await asyncio.gather(
            self.source_values.read(ref, source_infos, latest_only=self.options.latest_only),
            self.target_values.read(ref, target_infos, latest_only=False),
        )
        # Disabled on both sides (disabled after the copy, and followed by sync): their values are hidden on both,
        # so they are compared by attributes in creation order — listed, never counted as a value match.
        unmatched = _pair_hidden(ref, ours_all.hidden, theirs.hidden, source_infos, target_infos, self.report)
        unverified = [Finding(kind, ref.name, v, "value", HIDDEN + " (not copied by value)") for v in unmatched[0]]
        self.report.unverified += unverified
        ours = ours_all.versions
        others = theirs.versions[-len(ours) :] if self.options.latest_only and ours else theirs.versions
        found: list[Finding] = []
        if len(ours) != len(others) or unmatched[1]:
            found.append(
                Finding(
                    kind,
                    ref.name,
                    None,
                    "versions",
                    f"{len(ours)} readable versions in the source, {len(theirs.versions)} in the target"
                    + (f" and {len(unmatched[1])} other disabled one(s)" if unmatched[1] else ""),
                )
            )
        remaining = list(others)
        for mine in ours:
            if not remaining:
                break
            # Creation times have one-second resolution: versions written within a second tie, so the order is
            # checked up to ties - the match must come from the earliest remaining second.
            tied = [other for other in remaining if other.created == remaining[0].created]
            match = next((o for o in tied if not _value_differences(mine, o, ref)), None)
            other = match or tied[0]
            remaining.remove(other)
            found += [Finding(kind, ref.name, mine.version, name) for name in _value_differences(mine, other, ref)]
        if found:
            self.report.different += found
        elif not unverified:
            self.report.matched += 1

    async def settings(self) -> None:
        """Contacts and issuers (all but the password, which is never readable) and each key's rotation policy."""
        source, target = self.source_settings, self.target_settings
        if ObjectType.CERTIFICATE in self.options.types:
            mine, theirs = await asyncio.gather(source.contacts(), target.contacts())
            if mine is not None and (theirs is None or not mine.same_as(theirs)):
                self.report.different.append(Finding("contacts", "vault", None, "contacts", _contacts(mine, theirs)))
            elif mine is not None:
                self.report.settings_matched += 1
            source_issuers = [name async for name in source.issuer_names()]
            for name in source_issuers:
                ours, other = await asyncio.gather(source.issuer(name), target.issuer(name))
                if ours is None:
                    continue
                if other is None:
                    self.report.missing.append(Finding("issuer", name))
                elif not ours.same_as(other):
                    fields = [k for k, v in ours.as_dict().items() if other.as_dict()[k] != v and k != "name"]
                    self.report.different.append(Finding("issuer", name, None, ",".join(fields)))
                else:
                    self.report.settings_matched += 1
            if not self.options.one_way:
                known = {name.lower() for name in source_issuers}
                async for name in target.issuer_names():
                    if name.lower() not in known:
                        self.report.extra.append(Finding("issuer", name, detail="only in the target"))
        if ObjectType.KEY in self.options.types and self.options.mode != "value":
            keys = sorted(self.keys)
            await fan_out(keys, self._rotation_policy, concurrency=self.options.concurrency, stop=self.stop)

    async def _rotation_policy(self, key: str) -> None:
        source, target = self.source_settings, self.target_settings
        ours, theirs = await asyncio.gather(source.rotation_policy(key), target.rotation_policy(key))
        if ours is None or theirs is None or (ours.is_default and theirs.is_default):
            return
        if not ours.same_as(theirs):
            detail = f"source: {ours.describe()}; target: {theirs.describe()}"
            self.report.different.append(Finding("rotation-policy", key, None, "lifetime_actions", detail))
        else:
            self.report.settings_matched += 1

    async def extras(self) -> None:
        """Objects the target has and the source does not (selected types and names, managed ones aside)."""
        for object_type in self.options.types:
            async for listed in self.target.list_objects(object_type):
                if self.selected(listed) and (object_type, listed.ref.key) not in self.seen:
                    self.report.extra.append(Finding(object_type.value, listed.ref.name, detail="only in the target"))


def _contacts(mine: Contacts, theirs: Contacts | None) -> str:
    if theirs is None:
        return f"the target has no contacts; the source has {len(mine.contacts)}"
    return f"the source has {len(mine.contacts)} contact(s), the target {len(theirs.contacts)} (emails compared)"


def _pair_hidden(
    ref: ObjectRef,
    mine: list[str],
    theirs: list[str],
    source_infos: list[VersionInfo],
    target_infos: list[VersionInfo],
    report: VerifyReport,
) -> tuple[list[str], list[str]]:
    """Pair disabled versions of both sides by attributes in creation order; returns what stayed unpaired."""
    by_id = {info.version: info for info in [*source_infos, *target_infos]}
    ordered_theirs = sorted(theirs, key=lambda v: (created_at(by_id[v]), v))
    lonely_mine = []
    for version in sorted(mine, key=lambda v: (created_at(by_id[v]), v)):
        match = next((t for t in ordered_theirs if not _attribute_differences(by_id[version], by_id[t])), None)
        if match is None:
            lonely_mine.append(version)
            continue
        ordered_theirs.remove(match)
        report.by_identity.append(
            Finding(ref.type.value, ref.name, version, "value", f"{HIDDEN} on both sides; compared by attributes")
        )
    return lonely_mine, ordered_theirs


def _attribute_differences(mine: VersionInfo, other: VersionInfo) -> list[str]:
    return [name for name in COMPARED_FIELDS if getattr(mine, name) != getattr(other, name)]


def _material_field(object_type: ObjectType) -> str:
    return {ObjectType.SECRET: "value", ObjectType.KEY: "key", ObjectType.CERTIFICATE: "cer"}[object_type]


def _value_differences(mine: VersionValue, other: VersionValue, ref: ObjectRef) -> list[str]:
    fields = [name for name in VALUE_FIELDS if getattr(mine, name) != getattr(other, name)]
    if ref.type is ObjectType.CERTIFICATE:
        fields = [name for name in fields if name != "content_type"]  # PFX or PEM: the same certificate
    if signature(ref.type, mine.digest, mine)[0] != signature(ref.type, other.digest, other)[0]:
        fields.insert(0, "value" if ref.type is ObjectType.SECRET else "cer")
    return fields


async def verify(
    options: VerifyOptions,
    *,
    credential: Credential | None = None,
    events: Subscriber | None = None,
    stop: asyncio.Event | None = None,
) -> VerifyReport:
    """Compare every non-managed, selected source object with the target (see the module docstring)."""
    disable_core_dumps()
    source, target = vault_pair_urls(options.source, options.target)
    report = VerifyReport(source, target, one_way=options.one_way)
    broadcast = Events() if events is None else Events(events)
    vaults = Vaults((source, target), connection=options.connection, rps=options.rps, credential=credential)
    async with contextlib.AsyncExitStack() as stack:
        await vaults.open(stack)
        stop = stop if stop is not None else asyncio.Event()
        verifier = _Verifier(options, vaults, report, broadcast, stop)
        await fan_out(verifier.listing(), verifier.one, concurrency=options.concurrency, stop=stop)
        if not stop.is_set():
            await verifier.settings()
        if not options.one_way and not stop.is_set():
            await verifier.extras()
        report.interrupted = stop.is_set()
    return report
