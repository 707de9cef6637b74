"""The emulator's certificate authority and per-process server certificates, so clients verify TLS for real.

The CA (``ca.pem`` and ``ca-key.pem``) lives in the state directory and is reused by every emulator process started
with that directory, so one CA file trusts all of them; each process then issues its own server certificate for the
addresses and names it serves (they differ between processes), loads it and deletes the files, so no process can
pick up another's certificate. Callers hold ``statefiles.locked`` while the CA is loaded or created.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kvmigrate.emulator import statefiles

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
CA_LIFETIME = dt.timedelta(days=365)
SERVER_LIFETIME = dt.timedelta(days=30)
RENEW_BEFORE = dt.timedelta(days=2)  # a CA this close to expiry is replaced rather than used


@dataclass(frozen=True)
class CertificateAuthority:
    """The CA of a state directory: clients trust ``ca_file``; the key signs this process's server certificate."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    ca_file: Path

    def server_context(self, *, ip_addresses: list[str], dns_names: list[str]) -> ssl.SSLContext:
        """A TLS server context whose certificate covers ``localhost`` and every given address and name."""
        now = dt.datetime.now(dt.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = [x509.DNSName("localhost")]
        names += [x509.DNSName(name) for name in sorted(set(dns_names) - {"localhost"})]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in sorted(set(ip_addresses))]
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name("localhost"))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(min(now + SERVER_LIFETIME, self.certificate.not_valid_after_utc))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # load_cert_chain reads files only: write them in a private directory and delete them once loaded.
        with tempfile.TemporaryDirectory(dir=self.ca_file.parent, prefix=".server-") as scratch:
            chain, private = Path(scratch) / "server.pem", Path(scratch) / "server-key.pem"
            statefiles.create_private(chain, certificate.public_bytes(pem) + self.certificate.public_bytes(pem))
            statefiles.create_private(
                private, key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            )
            context.load_cert_chain(chain, private)
        return context


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kvmigrate emulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _new_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name("kvmigrate emulator CA"))
        .issuer_name(_name("kvmigrate emulator CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def _load(directory: Path) -> CertificateAuthority | None:
    """The stored CA if it is complete, consistent and not about to expire; None means make a new one."""
    key_pem, cert_pem = statefiles.read_private(directory / CA_KEY_FILE), statefiles.read_private(directory / CA_FILE)
    if key_pem is None or cert_pem is None:
        return None
    key = serialization.load_pem_private_key(key_pem, password=None)
    certificate = x509.load_pem_x509_certificate(cert_pem)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != certificate.public_key():
        raise statefiles.StateDirError(f"{directory / CA_KEY_FILE} does not belong to {directory / CA_FILE}")
    if certificate.not_valid_after_utc - dt.datetime.now(dt.UTC) < RENEW_BEFORE:
        return None
    return CertificateAuthority(certificate, key, directory / CA_FILE)


def load_or_create_ca(directory: Path) -> CertificateAuthority:
    """Reuse the state directory's CA, or create one (key first, with O_EXCL; then the certificate clients trust).

    The caller holds the directory lock, so a concurrent process waits and then reuses what this one wrote.
    """
    found = _load(directory)
    if found is not None:
        return found
    certificate, key = _new_ca()
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    if (directory / CA_FILE).exists() or (directory / CA_KEY_FILE).exists():
        # A CA near expiry, or a state directory from before the CA key was kept: replace both, loudly.
        print(f"# emulator: replacing the CA in {directory}; clients must trust the new {CA_FILE}", file=sys.stderr)
        statefiles.replace_private(directory / CA_KEY_FILE, key_pem)
    elif not statefiles.create_private(directory / CA_KEY_FILE, key_pem):
        raise statefiles.StateDirError(f"{directory / CA_KEY_FILE} appeared while the directory was locked")
    statefiles.replace_private(directory / CA_FILE, certificate.public_bytes(pem))
    return CertificateAuthority(certificate, key, directory / CA_FILE)
