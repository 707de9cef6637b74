"""Certificates through the official async SDK against the emulator over HTTPS.

A certificate drags a managed key and a managed secret of the same name and version id along through create, import,
update, delete, recover, purge, backup and restore (facts §13). Issuance is shortened to 0.2 s except where the
pending state itself is under test.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.identity.aio import DefaultAzureCredential
from azure.keyvault.certificates import (
    CertificateContentType,
    CertificateOperation,
    CertificatePolicy,
    CertificatePolicyAction,
    KeyCurveName,
    KeyType,
    KeyUsageType,
    KeyVaultCertificate,
    WellKnownIssuerNames,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from kvmigrate.emulator import Emulator
from kvmigrate.vault.clients import VaultClients, build_clients
from tests.helpers import eventually

POLL = 0.05
SERVER_AND_CLIENT_AUTH = ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]


@pytest.fixture(autouse=True)
def quick_issuance(emulator: Emulator) -> None:
    for running in emulator.vaults.values():
        running.vault.settings.issuance_delay = 0.2


@pytest.fixture
async def src(emulator: Emulator, credential: DefaultAzureCredential, ca_bundle: Path) -> AsyncIterator[VaultClients]:
    async with build_clients(emulator.vaults["src"].url, credential, ca_bundle=ca_bundle) as clients:
        yield clients


@pytest.fixture
async def dst(emulator: Emulator, credential: DefaultAzureCredential, ca_bundle: Path) -> AsyncIterator[VaultClients]:
    async with build_clients(emulator.vaults["dst"].url, credential, ca_bundle=ca_bundle) as clients:
        yield clients


@pytest.fixture
async def far(emulator: Emulator, credential: DefaultAzureCredential, ca_bundle: Path) -> AsyncIterator[VaultClients]:
    async with build_clients(emulator.vaults["far"].url, credential, ca_bundle=ca_bundle) as clients:
        yield clients


async def create(clients: VaultClients, name: str, policy: CertificatePolicy | None = None) -> KeyVaultCertificate:
    result = await clients.certificates.create_certificate(
        name, policy or CertificatePolicy.get_default(), _polling_interval=POLL
    )
    assert isinstance(result, KeyVaultCertificate)
    return result


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def spki(key: object) -> bytes:
    assert isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def issue(
    subject: x509.Name,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    issuer: tuple[x509.Name, rsa.RSAPrivateKey] | None = None,
    public_key: object = None,
) -> x509.Certificate:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    signer_name, signer_key = issuer or (subject, key)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer_name)
        .public_key(public_key or key.public_key())  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(signer_key, hashes.SHA256())
    )


def widgits() -> x509.Name:
    """The subject openssl writes by default, as in the recorded import."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "AU"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Some-State"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Internet Widgits Pty Ltd"),
        ]
    )


async def test_self_signed_create_makes_managed_key_and_secret(src: VaultClients) -> None:
    cert = await create(src, "web")
    version = cert.properties.version
    assert version and len(version) == 32 and cert.cer
    parsed = x509.load_der_x509_certificate(bytes(cert.cer))
    assert parsed.subject.rfc4514_string() == "CN=DefaultPolicy" and parsed.issuer == parsed.subject
    assert cert.properties.x509_thumbprint == hashlib.sha1(bytes(cert.cer)).digest()
    ekus = parsed.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert [oid.dotted_string for oid in ekus] == SERVER_AND_CLIENT_AUTH
    usage = parsed.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment and not usage.key_cert_sign
    assert cert.properties.not_before == parsed.not_valid_before_utc
    assert cert.properties.expires_on == parsed.not_valid_after_utc
    assert cert.key_id == f"{src.url}/keys/web/{version}" and cert.secret_id == f"{src.url}/secrets/web/{version}"
    policy = cert.policy
    assert policy is not None and policy.issuer_name == "Self" and policy.subject == "CN=DefaultPolicy"
    assert policy.key_type == KeyType.rsa and policy.key_size == 2048 and policy.exportable and not policy.reuse_key
    assert policy.content_type == CertificateContentType.pkcs12 and policy.validity_in_months == 12
    assert policy.enhanced_key_usage == SERVER_AND_CLIENT_AUTH
    assert policy.key_usage == [KeyUsageType.digital_signature, KeyUsageType.key_encipherment]
    assert policy.lifetime_actions and policy.lifetime_actions[0].action == CertificatePolicyAction.auto_renew
    assert policy.lifetime_actions[0].lifetime_percentage == 80

    operation = await src.certificates.get_certificate_operation("web")
    assert operation.status == "completed" and operation.target == f"{src.url}/certificates/web"
    assert operation.csr and x509.load_der_x509_csr(operation.csr).subject == parsed.subject
    listed = [c async for c in src.certificates.list_properties_of_certificates()]
    assert [(c.name, c.x509_thumbprint) for c in listed] == [("web", cert.properties.x509_thumbprint)]

    secrets = {s.name: s async for s in src.secrets.list_properties_of_secrets()}
    assert secrets["web"].managed and secrets["web"].content_type == "application/x-pkcs12"
    assert secrets["web"].expires_on == parsed.not_valid_after_utc
    secret = await src.secrets.get_secret("web")
    assert secret.properties.managed and secret.properties.version == version
    assert secret.properties.key_id == cert.key_id
    assert secret.value is not None
    key, bundled, _ = pkcs12.load_key_and_certificates(base64.b64decode(secret.value), None)
    assert bundled == parsed and key is not None and spki(key.public_key()) == spki(parsed.public_key())

    keys = {k.name: k async for k in src.keys.list_properties_of_keys()}
    assert keys["web"].managed
    managed_key = await src.keys.get_key("web")
    assert managed_key.properties.managed and managed_key.properties.version == version
    assert managed_key.key.n is not None
    public = parsed.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    assert int.from_bytes(managed_key.key.n, "big") == public.public_numbers().n


async def test_ec_policy_and_key_reuse(src: VaultClients) -> None:
    policy = CertificatePolicy(
        issuer_name=WellKnownIssuerNames.self,
        subject="CN=ec.example",
        key_type=KeyType.ec,
        key_curve_name=KeyCurveName.p_384,
        reuse_key=True,
        san_dns_names=["ec.example"],
    )
    first = await create(src, "ec", policy)
    second = await create(src, "ec", policy)
    assert first.policy and first.policy.key_type == KeyType.ec and first.policy.key_curve_name == KeyCurveName.p_384
    assert first.cer and second.cer and first.properties.version != second.properties.version
    old, new = (x509.load_der_x509_certificate(bytes(c.cer)) for c in (first, second))
    assert spki(old.public_key()) == spki(new.public_key())  # reuse_key keeps the key pair across versions
    names = new.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["ec.example"]
    ec_key = await src.keys.get_key("ec")
    assert ec_key.key.kty == "EC" and ec_key.key.crv == "P-384" and ec_key.key.key_ops == ["sign", "verify"]
    with pytest.raises(HttpResponseError) as bad:
        await src.certificates.create_certificate(
            "bad", CertificatePolicy(issuer_name="Self", subject="CN=x", key_size=1024), _polling_interval=POLL
        )
    assert bad.value.status_code == 400


async def test_issuance_is_pending_until_the_delay(src: VaultClients, emulator: Emulator) -> None:
    emulator.vaults["src"].vault.settings.issuance_delay = 1.0
    creating = asyncio.create_task(
        src.certificates.create_certificate("slow", CertificatePolicy.get_default(), _polling_interval=POLL)
    )
    operation = await eventually(lambda: src.certificates.get_certificate_operation("slow"))
    assert operation.status == "inProgress" and operation.issuer_name == "Self"
    assert operation.status_details and operation.status_details.startswith("Pending certificate created")
    assert operation.csr
    request = x509.load_der_x509_csr(operation.csr)
    pending = await src.certificates.get_certificate("slow")
    assert pending.cer is None and pending.properties.enabled is False and pending.policy is not None
    with pytest.raises(HttpResponseError) as disabled:
        await src.secrets.get_secret("slow")
    assert disabled.value.status_code == 403 and "disabled" in str(disabled.value.message)
    assert [s.enabled async for s in src.secrets.list_properties_of_secrets()] == [False]
    with pytest.raises(ResourceExistsError):  # one operation at a time
        await src.certificates.create_certificate("slow", CertificatePolicy.get_default(), _polling_interval=POLL)

    done = await creating
    assert isinstance(done, KeyVaultCertificate) and done.cer and done.properties.enabled
    assert spki(request.public_key()) == spki(x509.load_der_x509_certificate(bytes(done.cer)).public_key())
    assert (await src.secrets.get_secret("slow")).properties.enabled


async def test_unknown_issuer_waits_for_a_merge(src: VaultClients) -> None:
    policy = CertificatePolicy(
        issuer_name=WellKnownIssuerNames.unknown, subject="CN=outside.example", san_dns_names=["outside.example"]
    )
    operation = await src.certificates.create_certificate("outside", policy, _polling_interval=POLL)
    assert isinstance(operation, CertificateOperation) and operation.status == "inProgress" and operation.csr
    request = x509.load_der_x509_csr(operation.csr)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca_cert = issue(ca_name, ca_key, ca=True)
    leaf = issue(request.subject, ca_key, issuer=(ca_name, ca_key), public_key=request.public_key())
    with pytest.raises(HttpResponseError) as mismatch:
        await src.certificates.merge_certificate("outside", [der(ca_cert)])
    assert mismatch.value.status_code == 400

    merged = await src.certificates.merge_certificate("outside", [der(leaf), der(ca_cert)])
    assert merged.cer is not None and bytes(merged.cer) == der(leaf) and merged.properties.enabled
    assert merged.policy and merged.policy.issuer_name == "Unknown" and merged.policy.lifetime_actions
    assert merged.policy.lifetime_actions[0].action == CertificatePolicyAction.email_contacts
    assert (await src.certificates.get_certificate_operation("outside")).status == "completed"
    secret = await src.secrets.get_secret("outside")
    assert secret.value is not None
    key, bundled, chain = pkcs12.load_key_and_certificates(base64.b64decode(secret.value), None)
    assert bundled == leaf and chain == [ca_cert] and key is not None


async def test_a_pending_operation_can_be_cancelled_and_deleted(src: VaultClients) -> None:
    policy = CertificatePolicy(issuer_name=WellKnownIssuerNames.unknown, subject="CN=abandoned")
    await src.certificates.create_certificate("abandoned", policy, _polling_interval=POLL)
    cancelled = await src.certificates.cancel_certificate_operation("abandoned")
    assert cancelled.cancellation_requested is True
    removed = await src.certificates.delete_certificate_operation("abandoned")
    assert removed.id == f"{src.url}/certificates/abandoned/pending"
    with pytest.raises(ResourceNotFoundError):
        await src.certificates.get_certificate_operation("abandoned")
    left = await src.certificates.get_certificate("abandoned")
    assert left.cer is None and left.properties.enabled is False


async def test_import_pfx_with_and_without_password_and_pem(src: VaultClients) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = issue(widgits(), key, ca=True)
    plain = pkcs12.serialize_key_and_certificates(None, key, cert, None, serialization.NoEncryption())
    locked = pkcs12.serialize_key_and_certificates(
        None, key, cert, None, serialization.BestAvailableEncryption(b"1234")
    )
    first = await src.certificates.import_certificate("imported", plain, tags={"from": "pfx"})
    assert first.cer is not None and bytes(first.cer) == der(cert) and first.properties.tags == {"from": "pfx"}
    assert first.policy is not None and first.policy.issuer_name == "Unknown"
    assert first.policy.subject == "O=Internet Widgits Pty Ltd, S=Some-State, C=AU"
    assert first.policy.lifetime_actions
    assert first.policy.lifetime_actions[0].action == CertificatePolicyAction.email_contacts
    assert first.policy.enhanced_key_usage == [] and first.policy.validity_in_months == 12

    ignored_x509 = CertificatePolicy(
        issuer_name=WellKnownIssuerNames.self,
        subject="CN=ignored",
        validity_in_months=3,
        key_type=KeyType.rsa,
        exportable=False,
    )
    second = await src.certificates.import_certificate("imported", locked, password="1234", policy=ignored_x509)
    assert second.properties.version != first.properties.version
    assert second.properties.x509_thumbprint == first.properties.x509_thumbprint
    assert second.policy and second.policy.subject == first.policy.subject and second.policy.issuer_name == "Self"
    assert second.policy.validity_in_months == 12 and second.policy.exportable is False
    versions = [v async for v in src.certificates.list_properties_of_certificate_versions("imported")]
    assert sorted(v.version or "" for v in versions) == sorted(
        [first.properties.version or "", second.properties.version or ""]
    )
    assert {v.x509_thumbprint for v in versions} == {first.properties.x509_thumbprint}
    secret_versions = [v.version async for v in src.secrets.list_properties_of_secret_versions("imported")]
    assert sorted(secret_versions) == sorted(v.version for v in versions)
    with pytest.raises(HttpResponseError) as wrong_password:
        await src.certificates.import_certificate("imported", locked, password="nope")
    assert wrong_password.value.status_code == 400
    with pytest.raises(HttpResponseError) as garbage:
        await src.certificates.import_certificate("garbage", b"not a certificate")
    assert garbage.value.status_code == 400

    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_cert = issue(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pem.example")]), ec_key)
    pem = ec_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ) + ec_cert.public_bytes(serialization.Encoding.PEM)
    from_pem = await src.certificates.import_certificate(
        "pem", pem, policy=CertificatePolicy(content_type=CertificateContentType.pem)
    )
    assert from_pem.policy and from_pem.policy.key_type == KeyType.ec and from_pem.policy.subject == "CN=pem.example"
    pem_secret = await src.secrets.get_secret("pem")
    assert pem_secret.properties.content_type == "application/x-pem-file" and pem_secret.value
    assert pem_secret.value.startswith("-----BEGIN PRIVATE KEY-----") and "BEGIN CERTIFICATE" in pem_secret.value
    assert (await src.keys.get_key("pem")).key.kty == "EC"

    await src.secrets.set_secret("taken", "plain secret")
    with pytest.raises(ResourceExistsError):  # the certificate's secret would collide
        await src.certificates.import_certificate("taken", plain)


async def test_update_properties_and_policy(src: VaultClients) -> None:
    cert = await create(src, "upd")
    version = cert.properties.version
    updated = await src.certificates.update_certificate_properties("upd", tags={"team": "a"}, enabled=False)
    assert updated.properties.tags == {"team": "a"} and updated.properties.enabled is False and updated.policy
    with pytest.raises(HttpResponseError) as disabled:  # the secret follows the certificate
        await src.secrets.get_secret("upd")
    assert disabled.value.status_code == 403
    assert [k.enabled async for k in src.keys.list_properties_of_key_versions("upd")] == [False]
    by_version = await src.certificates.get_certificate_version("upd", version or "")
    assert by_version.policy is None and by_version.properties.tags == {"team": "a"}
    await src.certificates.update_certificate_properties("upd", version, enabled=True)
    assert (await src.secrets.get_secret("upd")).properties.enabled

    changed = await src.certificates.update_certificate_policy(
        "upd", CertificatePolicy(issuer_name=WellKnownIssuerNames.self, subject="CN=renamed", validity_in_months=24)
    )
    assert changed.subject == "CN=renamed" and changed.validity_in_months == 24
    policy = await src.certificates.get_certificate_policy("upd")
    assert policy.validity_in_months == 24 and policy.enhanced_key_usage == SERVER_AND_CLIENT_AUTH


async def test_backup_restore_brings_key_and_secret_along(
    src: VaultClients, dst: VaultClients, far: VaultClients
) -> None:
    first = await create(src, "moved")
    second = await create(src, "moved")
    blob = await src.certificates.backup_certificate("moved")
    assert blob[0] == 0x26 and blob[1:39] == b"AzureKeyVaultKeyBackupV1.microsoft.com"
    restored = await dst.certificates.restore_certificate_backup(blob)
    assert restored.properties.version == second.properties.version and restored.cer == second.cer
    assert restored.id and restored.id.startswith(dst.url) and restored.policy
    versions = sorted([first.properties.version or "", second.properties.version or ""])
    assert (
        sorted([v.version or "" async for v in dst.certificates.list_properties_of_certificate_versions("moved")])
        == versions
    )
    assert sorted([v.version or "" async for v in dst.secrets.list_properties_of_secret_versions("moved")]) == versions
    assert sorted([v.version or "" async for v in dst.keys.list_properties_of_key_versions("moved")]) == versions
    moved_secret = await dst.secrets.get_secret("moved")
    assert moved_secret.properties.managed and moved_secret.value == (await src.secrets.get_secret("moved")).value
    assert (await dst.keys.get_key("moved")).properties.version == second.properties.version

    with pytest.raises(ResourceExistsError):
        await dst.certificates.restore_certificate_backup(blob)
    with pytest.raises(HttpResponseError) as other_world:
        await far.certificates.restore_certificate_backup(blob)
    assert other_world.value.status_code == 400

    await create(src, "clash")
    clash = await src.certificates.backup_certificate("clash")
    await dst.keys.create_rsa_key("clash")
    with pytest.raises(ResourceExistsError):  # the certificate's key name is taken by a plain key
        await dst.certificates.restore_certificate_backup(clash)
    with pytest.raises(ResourceNotFoundError):  # nothing is left half-restored
        await dst.certificates.get_certificate("clash")
    with pytest.raises(ResourceNotFoundError):
        await dst.secrets.get_secret("clash")


async def test_managed_key_and_secret_refuse_direct_writes(src: VaultClients) -> None:
    await create(src, "guarded")
    attempts: list[Callable[[], Awaitable[object]]] = [
        lambda: src.keys.backup_key("guarded"),
        lambda: src.secrets.backup_secret("guarded"),
        lambda: src.secrets.delete_secret("guarded"),
        lambda: src.secrets.set_secret("guarded", "overwrite"),
    ]
    for attempt in attempts:
        with pytest.raises(HttpResponseError) as refused:
            await attempt()
        assert refused.value.status_code == 403 and "certificate" in str(refused.value.message)


async def test_delete_recover_and_purge_carry_key_and_secret(src: VaultClients) -> None:
    cert = await create(src, "cycle")
    deleted = await src.certificates.delete_certificate("cycle", _polling_interval=POLL)
    assert deleted.recovery_id and deleted.properties.version == cert.properties.version
    for get in (src.keys.get_key, src.secrets.get_secret):
        with pytest.raises(ResourceNotFoundError):
            await get("cycle")
    deleted_secret = await eventually(lambda: src.secrets.get_deleted_secret("cycle"))
    assert deleted_secret.properties.managed
    await eventually(lambda: src.keys.get_deleted_key("cycle"))

    recovered = await src.certificates.recover_deleted_certificate("cycle", _polling_interval=POLL)
    assert recovered.properties.version == cert.properties.version
    secret = await eventually(lambda: src.secrets.get_secret("cycle"))
    assert secret.properties.version == cert.properties.version
    key = await eventually(lambda: src.keys.get_key("cycle"))
    assert key.properties.version == cert.properties.version

    await src.certificates.delete_certificate("cycle", _polling_interval=POLL)
    await eventually(lambda: src.secrets.get_deleted_secret("cycle"))
    await src.certificates.purge_deleted_certificate("cycle")
    with pytest.raises(ResourceNotFoundError):
        await src.secrets.get_deleted_secret("cycle")
    again = await eventually(lambda: create(src, "cycle"))  # all three names free once the purge settles
    assert again.properties.version != cert.properties.version
