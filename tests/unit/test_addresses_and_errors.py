"""Vault addresses, filters and the Azure → kvmigrate error mapping (no sockets)."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError

from kvmigrate.errors import (
    BlobRefusedError,
    PermissionDeniedError,
    TlsVerificationError,
    TooManyVersionsError,
    UsageError,
    VaultAddressError,
    from_azure,
)
from kvmigrate.inventory import is_selected
from kvmigrate.statedir import default_journal
from kvmigrate.vault.clients import check_ca_bundle, is_loopback, vault_url


@pytest.mark.parametrize(
    ("reference", "url"),
    [
        ("contoso", "https://contoso.vault.azure.net"),
        ("Contoso-Prod", "https://contoso-prod.vault.azure.net"),
        ("https://contoso.vault.azure.net/", "https://contoso.vault.azure.net"),
        ("https://contoso.vault.azure.net:443", "https://contoso.vault.azure.net"),
        ("https://127.0.0.1:8443", "https://127.0.0.1:8443"),
    ],
)
def test_vault_url_accepts_names_and_https_urls(reference: str, url: str) -> None:
    assert vault_url(reference) == url


@pytest.mark.parametrize(
    ("reference", "words"),
    [
        ("ab", "not a vault name"),
        ("bad--name", "not a vault name"),
        ("http://contoso.vault.azure.net", "not https"),
        ("https://contoso.vault.azure.net/secrets/x", "has a path"),
        ("https://contoso.vault.azure.net:99999", "not a valid URL"),
        ("https://exa mple", "whitespace"),
        ("https://127.0.0.1 :8444", "whitespace"),
        ("https://exa_mple.vault.azure.net", "invalid host name"),
        ("https://-bad.vault.azure.net", "invalid host name"),
        ("https://[::1", "not a valid URL"),
        ("https://vault.azure.net\x1b[2J", "control characters"),
        ("https://", "not a vault URL"),
    ],
)
def test_vault_url_rejects_bad_input_with_a_clear_message(reference: str, words: str) -> None:
    with pytest.raises(VaultAddressError, match=words) as err:
        vault_url(reference)
    assert err.value.exit_code == 2


def test_loopback_detection_limits_the_relaxed_challenge_check() -> None:
    assert is_loopback("https://127.0.0.2:8443") and is_loopback("https://localhost") and is_loopback("https://[::1]")
    assert not is_loopback("https://contoso.vault.azure.net") and not is_loopback("https://10.0.0.1")


def test_ca_bundle_must_be_a_pem_file(tmp_path: Path) -> None:
    assert check_ca_bundle(None) is True
    with pytest.raises(UsageError, match="does not exist"):
        check_ca_bundle(tmp_path / "missing.pem")
    junk = tmp_path / "junk.pem"
    junk.write_text("hello")
    with pytest.raises(UsageError, match="no PEM certificate"):
        check_ca_bundle(junk)


def test_filters_are_case_insensitive_globs() -> None:
    assert is_selected("App-Secret", ("app-*",), ())
    assert not is_selected("db-secret", ("app-*",), ())
    assert not is_selected("app-old", ("app-*",), ("*-OLD",))
    assert is_selected("anything", (), ())


def test_default_state_path_names_the_vault_pair(tmp_path: Path) -> None:
    import os

    path = default_journal("https://a.vault.azure.net", "https://127.0.0.1:8443")
    state = Path(os.environ["KVMIGRATE_STATE_DIR"])  # per test (conftest): the per-user state folder
    assert path == state / "journals" / "a.vault.azure.net__127.0.0.1_8443.db"


class FakeResponse:
    """The least azure-core needs to build an HttpResponseError with Key Vault's error body."""

    def __init__(self, status: int, body: str) -> None:
        self.status_code = status
        self.headers = {"content-type": "application/json"}
        self.reason = "reason"
        self._body = body.encode()
        self.request = None

    def text(self, encoding: str | None = None) -> str:
        return self._body.decode()

    def body(self) -> bytes:
        return self._body


def http_error(status: int, code: str, message: str) -> HttpResponseError:
    body = json.dumps({"error": {"code": code, "message": message}})
    return HttpResponseError(response=FakeResponse(status, body))  # type: ignore[arg-type]


def test_403_names_the_permission_and_vault() -> None:
    exc = http_error(
        403,
        "Forbidden",
        "The user, group or application 'x' does not have secrets backup permission on key vault 'src;location=local'.",
    )
    error = from_azure(exc, vault="https://src", operation="backup", subject="secret a")
    # Fails its object; the engine stops the run when the first objects of a kind are all refused.
    assert isinstance(error, PermissionDeniedError) and not error.is_fatal
    assert "'backup' permission on secrets" in str(error) and "https://src" in str(error)


def test_cross_subscription_blob_says_why() -> None:
    exc = http_error(400, "BadParameter", "Cannot decrypt backup blob: wrong subscription")
    error = from_azure(exc, vault="https://dst", operation="restore", subject="secret a")
    assert isinstance(error, BlobRefusedError) and "same Azure subscription and geography" in str(error)


def test_too_many_versions_is_its_own_error() -> None:
    exc = http_error(400, "BadParameter", "Backup is not supported for a secret with more than 500 versions")
    assert isinstance(from_azure(exc, vault="v", operation="backup", subject="secret a"), TooManyVersionsError)


def test_tls_failure_points_to_ca_bundle() -> None:
    inner = ssl.SSLCertVerificationError("certificate verify failed")
    exc = ServiceRequestError("cannot connect", error=inner)
    error = from_azure(exc, vault="https://v", operation="list", subject="secrets")
    assert isinstance(error, TlsVerificationError) and "--ca-bundle" in str(error)
