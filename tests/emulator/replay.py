"""Replay recorded Azure Key Vault HTTP sessions against an emulated vault and list where the answers differ.

The recordings (``shared/recordings*`` beside the repository, see their READMEs) are real sessions between the Azure
SDKs' own tests and live Key Vault: the Python SDK at api-version 7.3 (2022) and 2025-07-01 (2026), and the JavaScript
SDK at 7.6 and 2025-07-01 (2026). A replay sends each vault request of a session, in order, to one emulated vault over
HTTPS and compares the answer with the recorded one: status, error code, the body's *shape* (key sets, recursively,
and JSON kinds), a few values that follow from the request, id path shapes and the headers Key Vault always sends.
What the emulator rightly generates differently (version ids, timestamps, backup blobs, paging tokens, CSRs and
certificates of generated keys) is substituted or compared by shape only:

* recorded version ids in later request paths are mapped to the ids the emulator gave for the same objects;
* a restore sends the blob the emulator returned from the earlier backup in the same replay (a recording without a
  backup sends its own blob: the malformed-blob test);
* a merge sends a certificate issued, by a throwaway CA, for the key of the CSR the emulator gave, in the recorded
  form of ``x5c`` (base64 DER, or base64 of the PEM text as the JavaScript SDK sends);
* a listing follows the emulator's own ``nextLink`` and is compared as a whole; whole-vault listings of the shared
  test vault are compared by this recording's own object names only;
* consecutive identical GETs (and a restore, which Key Vault answers 409 right after a purge) are a poll: the request
  is repeated until the emulator gives the run's final recorded status, and only that answer is compared.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from yarl import URL

#: Hosts the recorders wrote requests to: the 7.3 set keeps the placeholder, the 2026 sets say ``Sanitized``.
REQUEST_HOSTS = frozenset({"vaultname.vault.azure.net", "sanitized.vault.azure.net"})
#: Placeholder origins of the ids inside recorded bodies (Python recorder, JavaScript recorder).
BODY_ORIGINS = ("https://vaultname.vault.azure.net", "https://keyvault_name.vault.azure.net")
HEX32 = re.compile(r"^[0-9a-f]{32}$")
GUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
#: The challenge of 2022 names login.windows.net, the one of 2026 login.microsoftonline.com: either is the service's.
CHALLENGE = re.compile(
    rf'^Bearer authorization="https://login\.(?:windows\.net|microsoftonline\.com)/{GUID}", '
    r'resource="https://vault\.azure\.net"$'
)
#: The 401 message as the service has worded it over time (2022: bearer or PoP; 2026: adds MTLS_POP). The emulator
#: answers as one point in time, so a recording of another time is matched against any of them.
CHALLENGE_MESSAGES = frozenset(
    {
        "AKV10000: Request is missing a Bearer or PoP token.",
        "AKV10000: Request is missing a Bearer, PoP, or MTLS_POP token.",
    }
)
COLLECTION = "(?:secrets|keys|certificates)"
#: Words under /certificates that are vault-level resources, not certificate names.
RESERVED = frozenset({"restore", "contacts", "issuers"})
OBJECT_PATH = re.compile(rf"^/(?:deleted)?{COLLECTION}/(?:issuers/)?(?P<name>[^/]+)")
LISTING_PATH = re.compile(rf"^/(?:(?:deleted)?{COLLECTION}|{COLLECTION}/[^/]+/versions|certificates/issuers)$")
POLL_TIMEOUT = 10.0
POLL_INTERVAL = 0.1
MAX_PAGES = 40

#: Headers the recordings show on every vault answer that the emulator must send too. Not compared: ``Date`` and
#: ``Content-Length`` (HTTP layer), ``X-Powered-By`` (legacy IIS banner, gone from the service since 2022) and
#: ``x-ms-keyvault-rbac-*`` (sent only by vaults that use Azure RBAC).
REQUIRED_HEADERS = (
    "cache-control",
    "pragma",
    "expires",
    "strict-transport-security",
    "x-content-type-options",
    "x-ms-keyvault-network-info",
    "x-ms-keyvault-region",
    "x-ms-keyvault-service-version",
)
#: Headers whose presence means something to a client: the emulator must send them exactly when the recording does.
SIGNIFICANT_HEADERS = ("www-authenticate", "location", "retry-after")

#: Members whose values follow from the request (or from the imported certificate), so they must match the recording,
#: not just their shape. Lists of strings compare as sets (``key_ops`` order is not significant to clients).
VALUE_MEMBERS = frozenset(
    {
        "kty",
        "crv",
        "key_ops",
        "key_size",
        "e",
        "status",
        "recoveryLevel",
        "recoverableDays",
        "enabled",
        "contentType",
        "tags",
        "subject",
        "sans",
        "ekus",
        "key_usage",
        "validity_months",
        "basic_constraints",
        "exportable",
        "reuse_key",
        "cancellation_requested",
        "lifetime_actions",
        "issuer",
        "secret_props",
    }
)

#: Members the emulator may send although the 7.3 recordings lack them, each with the reason, e.g.
#: ``"attributes.hsmPlatform": "added by api-version 7.5"``. Matched against the dotted member path without list
#: positions, so ``attributes.x`` also matches ``value[3].attributes.x``. Empty today: on the recorded operations the
#: emulator sends nothing the recordings lack (members of newer api-versions appear only when a request sets them).
ALLOWED_EXTRA: dict[str, str] = {}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


@dataclass(frozen=True)
class Exchange:
    """One recorded request to the vault host and the recorded answer."""

    index: int
    method: str
    path: str
    query: str
    body: Any
    status: int
    headers: dict[str, str]
    response: Any

    @property
    def query_keys(self) -> list[str]:
        return [key for key, _ in parse_qsl(self.query, keep_blank_values=True)]

    @property
    def is_challenge(self) -> bool:
        return self.status == 401 and "www-authenticate" in self.headers

    @property
    def is_restore(self) -> bool:
        return self.method == "POST" and self.path.endswith("/restore")

    @property
    def is_listing(self) -> bool:
        return self.method == "GET" and bool(LISTING_PATH.match(self.path))

    @property
    def is_merge(self) -> bool:
        return self.method == "POST" and self.path.endswith("/pending/merge")

    @property
    def collection(self) -> str:
        return self.path.split("/")[1]

    def same_request(self, other: Exchange) -> bool:
        return (self.method, self.path, self.query, self.body) == (other.method, other.path, other.query, other.body)

    def label(self) -> str:
        query = f"?{self.query}" if self.query and "$skiptoken" not in self.query else ""
        return f"#{self.index} {self.method} {self.path}{query}"


@dataclass(frozen=True)
class Recording:
    path: Path
    exchanges: list[Exchange]
    origin: str  # the placeholder origin of ids in the recorded bodies

    @property
    def retention_days(self) -> int:
        """The recorded vault's soft-delete retention (``recoverableDays``): the 2022 vaults kept 7 days, some 2026
        ones 90; the replayed vault must be configured the same."""
        found = re.search(r'"recoverableDays":\s*(\d+)', json.dumps([e.response for e in self.exchanges]))
        return int(found[1]) if found else 7

    @property
    def names(self) -> frozenset[str]:
        """This session's own object and issuer names (lower case), taken from its request paths."""
        found = set()
        for exchange in self.exchanges:
            match = OBJECT_PATH.match(exchange.path)
            if match and match["name"].lower() not in RESERVED:
                found.add(match["name"].lower())
        return frozenset(found)


def load(path: Path) -> Recording:
    """Read one recording; keep the entries for the vault host (the Azure AD discovery documents are skipped).

    The files differ in form (CRLF line ends, escaped or plain strings, a ``Variables`` table of the JavaScript
    recorder); as JSON they read the same, and ``Variables`` is not needed: the names are in the request paths.
    """
    text = path.read_text(encoding="utf-8")
    raw = json.loads(text)
    origin = next((candidate for candidate in BODY_ORIGINS if candidate + "/" in text), BODY_ORIGINS[0])
    exchanges = []
    for index, entry in enumerate(raw["Entries"]):
        url = urlsplit(entry["RequestUri"])
        if url.hostname not in REQUEST_HOSTS:
            continue
        exchanges.append(
            Exchange(
                index=index,
                method=entry["RequestMethod"],
                path=url.path,
                query=url.query,
                body=entry["RequestBody"],
                status=entry["StatusCode"],
                headers={name.lower(): value for name, value in entry["ResponseHeaders"].items()},
                response=entry["ResponseBody"],
            )
        )
    return Recording(path, exchanges, origin)


@dataclass(frozen=True)
class Step:
    """``challenge`` (no token), ``call`` (one request), ``poll`` (repeat until the final status) or ``listing``."""

    kind: str
    exchanges: list[Exchange]

    @property
    def final(self) -> Exchange:
        return self.exchanges[-1]


def plan(recording: Recording) -> list[Step]:
    """Group the exchanges into the steps a replay performs."""
    steps: list[Step] = []
    entries = recording.exchanges
    i = 0
    while i < len(entries):
        entry = entries[i]
        if entry.is_challenge:
            steps.append(Step("challenge", [entry]))
            i += 1
            continue
        j = i + 1
        if entry.is_listing and "$skiptoken" not in entry.query_keys:
            while j < len(entries) and entries[j].path == entry.path and "$skiptoken" in entries[j].query_keys:
                j += 1
            steps.append(Step("listing", entries[i:j]))
        elif entry.method == "GET" or entry.is_restore:
            while j < len(entries) and not entries[j].is_challenge and entries[j].same_request(entry):
                j += 1
            steps.append(Step("poll" if j - i > 1 or entry.is_restore else "call", entries[i:j]))
        else:
            steps.append(Step("call", [entry]))
        i = j
    return steps


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    raw: bytes
    body: Any


def _error_code(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        return code if isinstance(code, str) else None
    return None


def _same_offset(recorded: dict[str, Any], emulated: dict[str, Any], key: str) -> bool:
    """Whether ``nbf``/``exp`` lie as far from ``created`` as recorded: a rotated key's ``exp`` is created plus the
    policy's expiryTime, so its value follows from the request relative to the time it was made."""
    values = (recorded.get(key), recorded.get("created"), emulated.get(key), emulated.get("created"))
    if key not in ("nbf", "exp") or not all(isinstance(value, int) for value in values):
        return False
    rec_value, rec_created, emu_value, emu_created = values
    return bool(rec_value - rec_created == emu_value - emu_created)


def _member_matches(path: str, allowed: str) -> bool:
    plain = re.sub(r"\[[^\]]*\]", "", path)
    return plain == allowed or plain.endswith("." + allowed)


@dataclass
class Replay:
    """One replay of a recording against one emulated vault; ``problems`` lists every difference found."""

    recording: Recording
    base_url: str
    token: str
    ssl_context: ssl.SSLContext
    session: aiohttp.ClientSession
    problems: list[str] = field(default_factory=list)
    fixed: frozenset[str] = VALUE_MEMBERS  # members compared by value in this recording
    poll_timeout: float = POLL_TIMEOUT  # shortened once a poll timed out, so a broken replay fails fast
    versions: dict[str, str] = field(default_factory=dict)  # recorded version id → the emulator's
    backups: dict[str, str] = field(default_factory=dict)  # collection → the emulator's latest backup blob
    csrs: dict[str, str] = field(default_factory=dict)  # certificate name (lower) → the emulator's latest CSR

    # -- sending -------------------------------------------------------------------------------------------------
    def _path(self, exchange: Exchange) -> str:
        segments = []
        for segment in exchange.path.split("/"):
            if HEX32.match(segment):
                if segment not in self.versions:
                    self.problems.append(f"{exchange.label()}: version {segment} was never returned by the emulator")
                segment = self.versions.get(segment, segment)
            segments.append(segment)
        return "/".join(segments)

    def _body(self, exchange: Exchange) -> Any:
        body = exchange.body
        if exchange.is_restore and isinstance(body, dict) and "value" in body:
            blob = self.backups.get(exchange.collection)
            if blob is not None:
                body = {**body, "value": blob}
            elif exchange.status == 200:
                self.problems.append(f"{exchange.label()}: no earlier backup from the emulator to restore")
        if exchange.is_merge and isinstance(body, dict) and isinstance(body.get("x5c"), list):
            name = exchange.path.split("/")[2].lower()
            if name in self.csrs:
                body = {**body, "x5c": [issued_like(body["x5c"][0], self.csrs[name])]}
            else:
                self.problems.append(f"{exchange.label()}: the emulator gave no CSR to merge a certificate for")
        return body

    async def send(self, method: str, url: str, body: Any = None, *, authorize: bool = True) -> Answer:
        headers = {"Accept": "application/json"}
        if authorize:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        async with self.session.request(
            method, URL(url, encoded=True), data=data, headers=headers, ssl=self.ssl_context
        ) as response:
            raw = await response.read()
            answer_headers = {name.lower(): value for name, value in response.headers.items()}
        parsed: Any = None
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = raw.decode(errors="replace")
        return Answer(response.status, answer_headers, raw, parsed)

    async def send_recorded(self, exchange: Exchange, *, authorize: bool = True) -> Answer:
        url = self.base_url + self._path(exchange) + (f"?{exchange.query}" if exchange.query else "")
        return await self.send(exchange.method, url, self._body(exchange), authorize=authorize)

    # -- running ---------------------------------------------------------------------------------------------------
    async def run(self) -> list[str]:
        exchanges = self.recording.exchanges
        if not any(e.path.startswith("/certificates/") and e.path.endswith("/create") for e in exchanges):
            # Without generated certificates these values follow from the requests and the imported PFX too.
            self.fixed = VALUE_MEMBERS | {"nbf", "exp", "x5t", "cer"}
        for step in plan(self.recording):
            if step.kind == "challenge":
                await self._challenge(step.final)
            elif step.kind == "listing":
                await self._listing(step)
            elif step.kind == "poll":
                await self._poll(step)
            else:
                exchange = step.final
                self.compare(exchange, await self.send_recorded(exchange))
        return list(dict.fromkeys(self.problems))  # a poll can find the same difference on every try

    async def _challenge(self, exchange: Exchange) -> None:
        """The SDK's first, bodiless request without a token: 401 with the exact challenge form (facts §1.1)."""
        url = self.base_url + exchange.path + (f"?{exchange.query}" if exchange.query else "")
        answer = await self.send(exchange.method, url, None, authorize=False)
        self.compare(exchange, answer)
        challenge = answer.headers.get("www-authenticate", "")
        if not CHALLENGE.match(challenge):
            self.problems.append(
                f"{exchange.label()}: WWW-Authenticate is {challenge!r}, recording has the form "
                f"{exchange.headers['www-authenticate']!r}"
            )
        recorded = exchange.response["error"]["message"]
        message = answer.body.get("error", {}).get("message") if isinstance(answer.body, dict) else None
        if message != recorded and message not in CHALLENGE_MESSAGES:
            self.problems.append(f"{exchange.label()}: 401 message {message!r}, recording {recorded!r}")

    def _reached(self, final: Exchange, answer: Answer) -> bool:
        if answer.status != final.status:
            return False
        if isinstance(final.response, dict) and isinstance(final.response.get("status"), str):
            return isinstance(answer.body, dict) and answer.body.get("status") == final.response["status"]
        return True

    async def _poll(self, step: Step) -> None:
        """Repeat until the emulator gives the final recorded answer; intermediate answers must be recorded ones."""
        final = step.final
        allowed = {exchange.status for exchange in step.exchanges}
        if final.is_restore:
            allowed.add(409)  # a restore right after a purge: Key Vault answers 409 for a while (facts §9)
        seen: list[int] = []
        compared: set[int] = set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.poll_timeout
        while True:
            answer = await self.send_recorded(final)
            seen.append(answer.status)
            if self._reached(final, answer):
                self.compare(final, answer)
                return
            if answer.status not in allowed:
                self.problems.append(
                    f"{final.label()}: status {answer.status} ({_error_code(answer.body)}) while "
                    f"polling; the recording shows only {sorted(allowed)}"
                )
                return
            earlier = next((e for e in step.exchanges if e.status == answer.status), None)
            if earlier is not None and answer.status not in compared:
                compared.add(answer.status)
                self.compare(earlier, answer)
            if loop.time() > deadline:
                self.problems.append(
                    f"{final.label()}: still {seen[-1]} after {self.poll_timeout:.0f} s of polling "
                    f"({len(seen)} tries); the recording ends with {final.status}"
                )
                self.poll_timeout = 1.0
                return
            await asyncio.sleep(POLL_INTERVAL)

    async def _listing(self, step: Step) -> None:
        """Follow the emulator's own nextLinks to the end and compare the listing as a whole."""
        first = step.exchanges[0]
        url: str | None = self.base_url + self._path(first) + (f"?{first.query}" if first.query else "")
        pages: list[Any] = []
        while url is not None and len(pages) < MAX_PAGES:
            answer = await self.send("GET", url)
            if answer.status != 200 or not isinstance(answer.body, dict):
                self.compare(first, answer)
                return
            self._check_headers(first, answer)
            pages.append(answer.body)
            link = answer.body.get("nextLink")
            url = link if isinstance(link, str) else None
        if url is not None:
            self.problems.append(f"{first.label()}: listing still had a nextLink after {MAX_PAGES} pages")
        recorded_pages = [exchange.response for exchange in step.exchanges]
        for number, page in enumerate(pages):
            if set(page) != set(recorded_pages[0]):
                self.problems.append(
                    f"{first.label()}: page {number} has members {sorted(page)}, recording {sorted(recorded_pages[0])}"
                )
        recorded_link = next((p["nextLink"] for p in recorded_pages if isinstance(p.get("nextLink"), str)), None)
        emulator_link = next((p["nextLink"] for p in pages if isinstance(p.get("nextLink"), str)), None)
        if recorded_link and emulator_link:
            self._compare_next_link(first, recorded_link, emulator_link)
        recorded = [item for page in recorded_pages for item in page.get("value") or []]
        emulated = [item for page in pages for item in page.get("value") or []]
        if first.path.endswith("/versions"):
            self._compare_versions(first, recorded_pages, pages, recorded, emulated)
        else:
            self._compare_own_items(first, recorded, emulated)

    def _compare_next_link(self, first: Exchange, recorded: str, emulated: str) -> None:
        rec, emu = urlsplit(recorded), urlsplit(emulated)
        base = urlsplit(self.base_url)
        if emu.hostname != base.hostname or emu.port is None:
            self.problems.append(
                f"{first.label()}: nextLink {emulated} is not an absolute URL of this vault with "
                f"an explicit port (recording: {rec.netloc})"
            )
        if self._shape(rec.path) != self._shape(emu.path):
            self.problems.append(f"{first.label()}: nextLink path {emu.path}, recording {rec.path}")
        rec_keys = [key for key, _ in parse_qsl(rec.query)]
        emu_keys = [key for key, _ in parse_qsl(emu.query)]
        if rec_keys != emu_keys:
            self.problems.append(f"{first.label()}: nextLink query parameters {emu_keys}, recording {rec_keys}")

    def _compare_versions(
        self, first: Exchange, recorded_pages: list[Any], pages: list[Any], recorded: list[Any], emulated: list[Any]
    ) -> None:
        """A versions listing holds only this object's versions: counts, page sizes, order and every item's shape."""
        rec_sizes = [len(page.get("value") or []) for page in recorded_pages]
        emu_sizes = [len(page.get("value") or []) for page in pages]
        if rec_sizes != emu_sizes:
            self.problems.append(f"{first.label()}: page sizes {emu_sizes}, recording {rec_sizes}")

        def version_of(item: Any) -> str:
            return str(item.get("id") or item.get("kid") or "").rsplit("/", 1)[-1]

        rec_ids = [version_of(item) for item in recorded]
        emu_ids = [version_of(item) for item in emulated]
        if rec_ids == sorted(rec_ids) and emu_ids != sorted(emu_ids):
            self.problems.append(f"{first.label()}: versions are not in version-id order, as the recording's are")
        for number, (rec_item, emu_item) in enumerate(zip(recorded, emulated, strict=False)):
            self.compare_value(rec_item, emu_item, first, f"value[{number}]", learn=False)

    def _compare_own_items(self, first: Exchange, recorded: list[Any], emulated: list[Any]) -> None:
        """A whole-vault listing of the shared test vault: compare this recording's own objects only."""
        names = self.recording.names

        def own(items: list[Any]) -> dict[str, Any]:
            found = {}
            for item in items:
                name = str(item.get("id") or item.get("kid") or "").split("/")[4:]
                name = name[1:] if name[:1] == ["issuers"] else name
                if name and name[0].lower() in names:
                    found[name[0].lower()] = item
            return found

        rec_own, emu_own = own(recorded), own(emulated)
        if set(rec_own) != set(emu_own):
            self.problems.append(f"{first.label()}: own objects listed {sorted(emu_own)}, recording {sorted(rec_own)}")
        for name in sorted(set(rec_own) & set(emu_own)):
            self.compare_value(rec_own[name], emu_own[name], first, f"value[{name}]", learn=False)

    # -- comparing -------------------------------------------------------------------------------------------------
    def compare(self, exchange: Exchange, answer: Answer) -> None:
        """Compare one answer with the recorded one."""
        where = exchange.label()
        if answer.status != exchange.status:
            detail = _error_code(answer.body) or ""
            self.problems.append(
                f"{where}: status {answer.status} {detail}, recording {exchange.status} "
                f"{_error_code(exchange.response) or ''}".rstrip()
            )
            return
        self._check_headers(exchange, answer)
        if exchange.response is None:
            if answer.raw:
                self.problems.append(f"{where}: the recording has no body, the emulator sent {answer.raw[:60]!r}")
            return
        if not isinstance(answer.body, dict):
            self.problems.append(f"{where}: the emulator sent no JSON object ({answer.raw[:60]!r})")
            return
        if exchange.status >= 400:
            recorded_code, code = _error_code(exchange.response), _error_code(answer.body)
            if code != recorded_code:
                self.problems.append(f"{where}: error code {code}, recording {recorded_code}")
        self.compare_value(exchange.response, answer.body, exchange, "", learn=True)
        value = exchange.response.get("value")
        if exchange.collection == "secrets" and not exchange.path.endswith("/backup") and isinstance(value, str):
            if answer.body.get("value") != value:
                self.problems.append(f"{where}: secret value {answer.body.get('value')!r}, recording {value!r}")
        if exchange.path.endswith("/backup") and exchange.status == 200:
            self.backups[exchange.collection] = answer.body.get("value", "")
        if exchange.collection == "certificates" and isinstance(answer.body.get("csr"), str):
            self.csrs[exchange.path.split("/")[2].lower()] = answer.body["csr"]

    def _check_headers(self, exchange: Exchange, answer: Answer) -> None:
        where = exchange.label()
        missing = [
            name
            for name in REQUIRED_HEADERS + SIGNIFICANT_HEADERS
            if name in exchange.headers and name not in answer.headers
        ]
        # The Python recordings strip x-ms-request-id, but the service sends it on every answer (facts §14).
        if "x-ms-request-id" not in answer.headers:
            missing.append("x-ms-request-id")
        if missing:
            self.problems.append(f"{where}: headers missing: {', '.join(missing)}")
        extra = [name for name in SIGNIFICANT_HEADERS if name in answer.headers and name not in exchange.headers]
        if extra:
            self.problems.append(f"{where}: headers the recording lacks: {', '.join(extra)}")
        recorded_type = exchange.headers.get("content-type")
        content_type = answer.headers.get("content-type")
        if recorded_type is not None and (content_type or "").lower() != recorded_type.lower():
            self.problems.append(f"{where}: Content-Type {content_type!r}, recording {recorded_type!r}")
        if recorded_type is None and content_type is not None and answer.raw:
            self.problems.append(f"{where}: Content-Type {content_type!r} on an answer the recording has no body for")
        if "retry-after" in exchange.headers and "retry-after" in answer.headers:
            if answer.headers["retry-after"] != exchange.headers["retry-after"]:
                self.problems.append(
                    f"{where}: Retry-After {answer.headers['retry-after']}, recording {exchange.headers['retry-after']}"
                )
        recorded_location = exchange.headers.get("location", "")
        # The 2026 Python recorder writes every Location as https://example.com: then only its presence counts.
        if recorded_location.startswith(self.recording.origin + "/") and "location" in answer.headers:
            self._compare_url(recorded_location, answer.headers["location"], f"{where}: Location")

    def _shape(self, path: str) -> str:
        """A URL path with this recording's names and the 32-hex ids replaced by placeholders."""
        names = self.recording.names
        return "/".join(
            "{version}" if HEX32.match(segment) else "{name}" if segment.lower() in names else segment
            for segment in path.split("/")
        )

    def _compare_url(self, recorded: str, emulated: str, where: str) -> None:
        rec, emu = urlsplit(recorded), urlsplit(emulated)
        if f"{emu.scheme}://{emu.netloc}" != self.base_url:
            self.problems.append(f"{where}: {emulated!r} is not a URL of this vault ({self.base_url})")
        if self._shape(rec.path) != self._shape(emu.path):
            self.problems.append(f"{where}: path shape {self._shape(emu.path)}, recording {self._shape(rec.path)}")
        rec_query, emu_query = parse_qsl(rec.query), parse_qsl(emu.query)
        if [key for key, _ in rec_query] != [key for key, _ in emu_query]:
            self.problems.append(f"{where}: query {emu.query!r}, recording {rec.query!r}")
        for (key, rec_value), (_, emu_value) in zip(rec_query, emu_query, strict=False):
            if HEX32.match(rec_value) and not HEX32.match(emu_value):
                self.problems.append(f"{where}: {key}={emu_value!r} is not 32 hex digits like the recording's")

    def _learn(self, recorded: str, emulated: str, where: str) -> None:
        rec_last, emu_last = recorded.rsplit("/", 1)[-1], emulated.rsplit("/", 1)[-1]
        if HEX32.match(rec_last) and HEX32.match(emu_last):
            known = self.versions.setdefault(rec_last, emu_last)
            if known != emu_last:
                self.problems.append(
                    f"{where}: version {emu_last} where the same recorded version was {known} "
                    f"before (the recording keeps one id)"
                )

    def compare_value(self, recorded: Any, emulated: Any, exchange: Exchange, path: str, *, learn: bool) -> None:
        """Compare shapes recursively; report missing and unexpected members, kinds, id shapes and fixed values."""
        where = f"{exchange.label()}: {path or 'body'}"
        member = re.sub(r"\[[^\]]*\]$", "", path.rsplit(".", 1)[-1])
        if member in self.fixed and not self._same_value(recorded, emulated):
            self.problems.append(f"{where} is {json.dumps(emulated)}, recording {json.dumps(recorded)}")
            return
        if _kind(recorded) != _kind(emulated):
            self.problems.append(f"{where} is {_kind(emulated)}, recording {_kind(recorded)}")
            return
        if isinstance(recorded, dict):
            prefix = f"{path}." if path else ""
            missing = sorted(set(recorded) - set(emulated))
            extra = sorted(
                key
                for key in set(emulated) - set(recorded)
                if not any(_member_matches(prefix + key, allowed) for allowed in ALLOWED_EXTRA)
            )
            if missing:
                self.problems.append(f"{where}: members missing: {', '.join(missing)}")
            if extra:
                self.problems.append(f"{where}: members the recording lacks: {', '.join(extra)}")
            for key in recorded:
                if key in emulated and not _same_offset(recorded, emulated, key):
                    self.compare_value(recorded[key], emulated[key], exchange, prefix + key, learn=learn)
        elif isinstance(recorded, list):
            if bool(recorded) != bool(emulated):
                self.problems.append(f"{where} has {len(emulated)} items, recording {len(recorded)}")
            elif recorded:
                self.compare_value(recorded[0], emulated[0], exchange, f"{path}[]", learn=learn)
        elif isinstance(recorded, str):
            if recorded.startswith(self.recording.origin + "/"):
                self._compare_url(recorded, emulated, where)
                if learn:
                    self._learn(recorded, emulated, where)
            elif HEX32.match(recorded) and not HEX32.match(emulated):
                self.problems.append(f"{where} is {emulated!r}, recording has 32 hex digits")

    @staticmethod
    def _same_value(recorded: Any, emulated: Any) -> bool:
        if (
            isinstance(recorded, list)
            and isinstance(emulated, list)
            and all(isinstance(item, str) for item in recorded + emulated)
        ):
            return sorted(recorded) == sorted(emulated)
        return bool(recorded == emulated)


async def replay(recording: Recording, base_url: str, token: str, ca_file: Path) -> list[str]:
    """Replay ``recording`` against the vault at ``base_url``; return the differences found (empty: none)."""
    context = ssl.create_default_context(cafile=str(ca_file))
    async with aiohttp.ClientSession() as session:
        return await Replay(recording, base_url, token, context, session).run()


def issued_like(recorded: str, csr: str) -> str:
    """A certificate for the key of ``csr`` (base64 DER) in the form of the recorded ``x5c`` entry.

    The recorded entry is a certificate an outside CA issued for Azure's key; the emulator's CSR has another key, so
    the replay issues one like it (same issuer name, subject from the CSR, 30 days) from a throwaway CA, and encodes
    it as the recording did: base64 of DER, or base64 of PEM text. The JavaScript recording sends the latter, and its
    text is the PEM body on one line followed by ``-----END CERTIFICATE-----``, without the BEGIN line.
    """
    decoded = base64.b64decode(recorded)
    text_form = not decoded.startswith(b"\x30")
    text = decoded.decode("ascii") if text_form else ""
    body = re.sub(r"-----(?:BEGIN|END) [A-Z ]+-----|\s", "", text)
    original = x509.load_der_x509_certificate(base64.b64decode(body) if text_form else decoded)
    request = x509.load_der_x509_csr(base64.b64decode(csr))
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    start = datetime.now(UTC) - timedelta(minutes=5)
    issued = (
        x509.CertificateBuilder()
        .subject_name(request.subject)
        .issuer_name(original.issuer)
        .public_key(request.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=30))
        .sign(ca_key, hashes.SHA256())
    )
    der = issued.public_bytes(serialization.Encoding.DER)
    if not text_form:
        return base64.b64encode(der).decode("ascii")
    new_body = base64.b64encode(der).decode("ascii")
    if "\n" in text:
        new_body = "\n".join(new_body[i : i + 64] for i in range(0, len(new_body), 64))
    begin = "-----BEGIN CERTIFICATE-----\n" if text.lstrip().startswith("-----BEGIN") else ""
    end = ("\n" if "\n" in text else "") + "-----END CERTIFICATE-----" if "-----END" in text else ""
    return base64.b64encode((begin + new_body + end).encode("ascii")).decode("ascii")
