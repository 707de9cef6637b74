"""Build the three async SDK clients of one vault with shared, safe pipeline settings.

A vault is given as a name (``contoso`` → ``https://contoso.vault.azure.net``) or an https URL. TLS verification is
always on; ``ca_bundle`` adds trust (the emulator's CA), it never removes checks. The SDK's challenge-resource check
stays on for every real host and is turned off only for loopback addresses, where the emulator runs and no Azure AD
resource can match.
"""

from __future__ import annotations

import ipaddress
import re
import ssl
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.pipeline.transport import AioHttpTransport
from azure.keyvault.certificates.aio import CertificateClient
from azure.keyvault.keys.aio import KeyClient
from azure.keyvault.secrets.aio import SecretClient
from yarl import URL

from kvmigrate.errors import UsageError, VaultAddressError
from kvmigrate.ratelimit import AdaptiveRateLimiter, RateLimitPolicy

_VAULT_NAME = re.compile(r"^(?!.*--)[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$")


def vault_url(reference: str) -> str:
    """Turn a vault name or URL into the vault's base URL (``https://host[:port]``), or say what is wrong."""
    text = reference.strip()
    if any(c.isspace() or not c.isprintable() for c in text):
        raise VaultAddressError(
            f"{reference!r} contains whitespace or control characters; pass a vault name or an https URL such as "
            "https://contoso.vault.azure.net",
            address=reference,
        )
    if "://" not in text:
        if not _VAULT_NAME.match(text):
            raise VaultAddressError(
                f"{reference!r} is not a vault name (3-24 letters, digits and '-', starting with a letter) or an "
                "https URL; pass e.g. contoso or https://contoso.vault.azure.net",
                address=reference,
            )
        return f"https://{text.lower()}.vault.azure.net"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise VaultAddressError(
            f"{reference!r} is not a valid URL (its host or port); pass e.g. https://contoso.vault.azure.net",
            address=reference,
        ) from exc
    if not parts.hostname or "\\" in parts.netloc or parts.query or parts.fragment or parts.username:
        raise VaultAddressError(
            f"{reference!r} is not a vault URL; pass e.g. https://contoso.vault.azure.net", address=reference
        )
    if parts.path not in ("", "/"):
        raise VaultAddressError(
            f"{reference!r} has a path; pass only the vault's base URL, e.g. https://contoso.vault.azure.net",
            address=reference,
        )
    if parts.scheme != "https":
        raise VaultAddressError(f"{reference!r} is not https; Key Vault and kvmigrate require TLS", address=reference)
    host = parts.hostname.lower()
    if not _is_host(host):
        raise VaultAddressError(
            f"{reference!r} has an invalid host name {host!r}; pass e.g. https://contoso.vault.azure.net",
            address=reference,
        )
    netloc = f"[{host}]" if ":" in host else host
    return f"https://{netloc}" + (f":{port}" if port and port != 443 else "")


_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _is_host(host: str) -> bool:
    """A DNS name of letters, digits and hyphens (at most 253 characters), or an IP address."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host.removesuffix(".").split(".")
    return len(host) <= 253 and all(_LABEL.match(label) for label in labels) and not labels[-1].isdigit()


def is_loopback(url: str) -> bool:
    """True for ``localhost`` and loopback IPs: the only hosts where the challenge-resource check is relaxed."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_ca_bundle(ca_bundle: Path | None) -> str | bool:
    """The ``connection_verify`` value: a readable CA file, or True for the system store. Never False."""
    if ca_bundle is None:
        return True
    if not ca_bundle.is_file():
        raise UsageError(f"CA bundle {ca_bundle} does not exist or is not a file; pass --ca-bundle with a PEM file")
    try:
        text = ca_bundle.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise UsageError(f"cannot read CA bundle {ca_bundle}: {exc.strerror}") from exc
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise UsageError(f"CA bundle {ca_bundle} holds no PEM certificate; pass --ca-bundle with a PEM file")
    return str(ca_bundle)


def tls_context(ca_bundle: Path | None) -> ssl.SSLContext:
    """One verifying TLS context for a run: the system store, plus ``ca_bundle`` when given.

    Why not ``connection_verify=<path>``: azure-core's aiohttp transport then builds a new SSLContext for every
    request, so aiohttp's pool (keyed by the context) reuses no connection and every request pays a TLS handshake.
    """
    check_ca_bundle(ca_bundle)
    context = ssl.create_default_context()
    if ca_bundle is not None:
        context.load_verify_locations(cafile=str(ca_bundle))
    return context


def env_proxy(url: str) -> tuple[URL | None, aiohttp.BasicAuth | None]:
    """The proxy ``HTTPS_PROXY``/``NO_PROXY`` choose for the vault at ``url``, and its credentials, if any.

    Read once per vault, because the shared session cannot have aiohttp's ``trust_env``: that re-reads the
    environment (and ``.netrc``) in a worker thread for every request.
    """
    host = urlsplit(url).hostname or ""
    if urllib.request.proxy_bypass(host):
        return None, None
    proxy = urllib.request.getproxies().get("https")
    if not proxy:
        return None, None
    if "://" not in proxy:  # HTTPS_PROXY=host:port, as curl accepts it
        proxy = f"http://{proxy}"
    parsed = URL(proxy)
    return parsed.with_user(None), aiohttp.BasicAuth.from_url(parsed)


@dataclass
class VaultClients:
    """The secret, key and certificate clients of one vault; an async context manager that closes all three.

    The three share one aiohttp session (one connection pool, one TLS context) per vault.
    """

    url: str
    secrets: SecretClient
    keys: KeyClient
    certificates: CertificateClient
    session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> VaultClients:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self.secrets.close()
        await self.keys.close()
        await self.certificates.close()
        if self.session is not None:
            await self.session.close()


def build_clients(
    url: str,
    credential: AsyncTokenCredential,
    *,
    ca_bundle: Path | None = None,
    limiter: AdaptiveRateLimiter | None = None,
    retry_total: int = 10,
) -> VaultClients:
    """Create the three clients of the vault at ``url`` (already normalised by :func:`vault_url`).

    The limiter goes in the ``custom_hook_policy`` slot. Key Vault clients build their own policy list, and azure-core
    splices ``per_retry_policies`` right after the RetryPolicy, i.e. *before* the challenge-auth policy, whose
    401-probe and re-send would then pass the limiter once. The custom-hook slot sits after the auth policy, so the
    limiter sees every HTTP attempt: retries, auth probes and pages. Each client gets its own policy instance (a
    policy's ``next`` belongs to one pipeline); the three share the vault's limiter.
    """
    proxy, proxy_auth = env_proxy(url)
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=tls_context(ca_bundle), limit=512, enable_cleanup_closed=True),
        proxy=proxy,
        proxy_auth=proxy_auth,
    )
    # aiohttp re-sends a PUT or DELETE once when a connection drops after the request went out; Key Vault's PUT
    # secret creates a version each time, so a lost answer would become a duplicate. Writes are settled by looking
    # at the target instead (routes/values.py). tests/unit/test_clients.py checks the attribute still exists.
    session._retry_connection = False
    transport = AioHttpTransport(session=session, session_owner=False)

    def options() -> dict[str, Any]:
        settings: dict[str, Any] = {
            "transport": transport,
            "connection_verify": True,  # verification stays on; trust comes from the session's TLS context
            "verify_challenge_resource": not is_loopback(url),
            # GETs (listings, version lists) ride out a throttled 10-second window: 0.8 s doubling, capped at 16 s.
            "retry_total": retry_total,
            "retry_backoff_max": 16,
            "retry_status": retry_total,
        }
        if limiter is not None:
            settings["custom_hook_policy"] = RateLimitPolicy(limiter)
        return settings

    return VaultClients(
        url=url,
        secrets=SecretClient(url, credential, **options()),
        keys=KeyClient(url, credential, **options()),
        certificates=CertificateClient(url, credential, **options()),
        session=session,
    )
