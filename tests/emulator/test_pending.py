"""Pending certificates through the official async SDK: listings with includePending, cancel, and PEM merges.

A certificate whose request never completed (an outside CA's, a cancelled one) is an object a migration must see
only when it asks for it: ``list_properties_of_certificates(include_pending=True)``. The emulator keeps that flag
across pages, since the SDK follows nextLinks as given and the service's nextLink carries no parameter.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from azure.keyvault.certificates import CertificateOperation, CertificatePolicy, WellKnownIssuerNames
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from kvmigrate.emulator import Emulator
from kvmigrate.vault.clients import VaultClients

POLL = 0.05


def outside(subject: str = "CN=outside.example") -> CertificatePolicy:
    return CertificatePolicy(issuer_name=WellKnownIssuerNames.unknown, subject=subject)


async def pending_only(clients: VaultClients, name: str) -> None:
    """An ``Unknown``-issuer request: it waits for a merge, so the certificate has no issued version."""
    operation = await clients.certificates.create_certificate(name, outside(), _polling_interval=POLL)
    assert isinstance(operation, CertificateOperation) and operation.status == "inProgress"


async def pages_of(clients: VaultClients, *, include_pending: bool | None) -> list[list[tuple[str, bool]]]:
    """(name, has x5t) per page, as the SDK pages through the listing."""
    listing = clients.certificates.list_properties_of_certificates(include_pending=include_pending)
    return [[(c.name or "", c.x509_thumbprint is not None) async for c in page] async for page in listing.by_page()]


async def test_include_pending_lists_pending_certificates_on_every_page(src: VaultClients, emulator: Emulator) -> None:
    settings = emulator.vaults["src"].vault.settings
    settings.max_page_size, settings.issuance_delay = 2, 0.05
    for name in ("done-a", "done-c"):
        await src.certificates.create_certificate(name, CertificatePolicy.get_default(), _polling_interval=POLL)
    first = await src.certificates.get_certificate("done-c")
    for name in ("pend-b", "pend-d", "pend-e"):
        await pending_only(src, name)
    settings.issuance_delay = 600  # a second request on done-c stays pending
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(
            src.certificates.create_certificate("done-c", CertificatePolicy.get_default(), _polling_interval=POLL), 1
        )
    assert (await src.certificates.get_certificate_operation("done-c")).status == "inProgress"

    without = await pages_of(src, include_pending=None)
    assert [entry for page in without for entry in page] == [("done-a", True), ("done-c", True)]
    listed = {c.name: c async for c in src.certificates.list_properties_of_certificates()}
    assert listed["done-c"].x509_thumbprint == first.properties.x509_thumbprint  # the issued version shows

    pages = await pages_of(src, include_pending=True)
    assert pages == [
        [("done-a", True), ("done-c", True)],
        [("pend-b", False), ("pend-d", False)],
        [("pend-e", False)],  # only on the third page: the flag travelled in the nextLinks
    ]


async def test_deleted_listing_honours_include_pending(src: VaultClients, emulator: Emulator) -> None:
    emulator.vaults["src"].vault.settings.issuance_delay = 0.05
    await src.certificates.create_certificate("issued", CertificatePolicy.get_default(), _polling_interval=POLL)
    await pending_only(src, "waiting")
    for name in ("issued", "waiting"):
        await src.certificates.delete_certificate(name, _polling_interval=POLL)
    plain = [c.name async for c in src.certificates.list_deleted_certificates()]
    everything = [c.name async for c in src.certificates.list_deleted_certificates(include_pending=True)]
    assert plain == ["issued"] and everything == ["issued", "waiting"]


async def test_a_cancelled_request_reads_cancelled_on_the_next_poll(src: VaultClients) -> None:
    """The PATCH answer still says inProgress; the next read says cancelled (recordings-2025)."""
    await pending_only(src, "stopped")
    answer = await src.certificates.cancel_certificate_operation("stopped")
    assert answer.cancellation_requested is True and answer.status == "inProgress"
    assert (await src.certificates.get_certificate_operation("stopped")).status == "cancelled"
    assert [c.name async for c in src.certificates.list_properties_of_certificates()] == []


def signed_for(csr: bytes) -> x509.Certificate:
    request = x509.load_der_x509_csr(csr)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    return (
        x509.CertificateBuilder()
        .subject_name(request.subject)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Internet Widgits Pty Ltd")]))
        .public_key(request.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=30))
        .sign(ca_key, hashes.SHA256())
    )


@pytest.mark.parametrize("form", ["pem", "js-body"])
async def test_merge_accepts_base64_of_pem_text(src: VaultClients, form: str) -> None:
    """The JavaScript SDK documents x5c as base64 of the PEM text; its recorded request (accepted with 201) sends the
    PEM body with the END line and no BEGIN line. The Python SDK base64-encodes whatever bytes it is given."""
    await pending_only(src, f"merged-{form}")
    operation = await src.certificates.get_certificate_operation(f"merged-{form}")
    assert operation.csr is not None
    leaf = signed_for(operation.csr)
    pem = leaf.public_bytes(serialization.Encoding.PEM)
    given = pem if form == "pem" else b"".join(pem.splitlines()[1:-1]) + b"-----END CERTIFICATE-----"
    merged = await src.certificates.merge_certificate(f"merged-{form}", [given])
    assert merged.cer is not None and bytes(merged.cer) == leaf.public_bytes(serialization.Encoding.DER)
    assert merged.properties.enabled and (await src.certificates.get_certificate_operation(f"merged-{form}")).target
