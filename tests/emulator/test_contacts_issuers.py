"""Certificate contacts and issuers through the official async SDK against the emulator over HTTPS.

Both belong to the vault and no backup blob carries them (facts §17), so a migration copies them by their own API.
The issuer password is the one value that cannot be copied: it can be written but never read back.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.rest import HttpRequest
from azure.keyvault.certificates import (
    AdministratorContact,
    CertificateContact,
    CertificatePolicy,
    CertificatePolicyAction,
)

from kvmigrate.emulator import Emulator
from kvmigrate.vault.clients import VaultClients

API = "api-version=2025-07-01"
ADMIN = AdministratorContact(first_name="John", last_name="Doe", email="admin@contoso.com", phone="4255555555")


async def raw(clients: VaultClients, method: str, path: str) -> tuple[int, str]:
    """One request through the SDK's own pipeline (token, TLS): status and body text."""
    response = await clients.certificates.send_request(HttpRequest(method, f"{path}?{API}"))
    await response.read()
    return response.status_code, response.text()


async def test_contacts_set_get_delete_and_404(src: VaultClients) -> None:
    with pytest.raises(ResourceNotFoundError) as none:
        await src.certificates.get_contacts()
    assert none.value.error is not None and none.value.error.code == "ContactsNotFound"
    assert none.value.error.message == "Contacts not found"

    given = [CertificateContact(email="a@contoso.com", name="A", phone="111"), CertificateContact(email="b@c.com")]
    stored = await src.certificates.set_contacts(given)
    assert [(c.email, c.name, c.phone) for c in stored] == [("a@contoso.com", "A", "111"), ("b@c.com", None, None)]
    status, body = await raw(src, "GET", "/certificates/contacts")
    assert status == 200 and json.loads(body)["id"] == f"{src.url}/certificates/contacts"

    deleted = await src.certificates.delete_contacts()  # answers what it removed (recorded)
    assert [c.email for c in deleted] == ["a@contoso.com", "b@c.com"]
    with pytest.raises(ResourceNotFoundError):
        await src.certificates.get_contacts()
    with pytest.raises(ResourceNotFoundError):
        await src.certificates.delete_contacts()


async def test_contacts_are_validated(src: VaultClients) -> None:
    for contacts in ([], [CertificateContact(name="no mail")]):
        with pytest.raises(HttpResponseError) as refused:
            await src.certificates.set_contacts(contacts)
        assert refused.value.status_code == 400


async def test_deleting_contacts_never_deletes_a_certificate(src: VaultClients) -> None:
    """``/certificates/contacts`` is the vault's contacts, not a certificate named contacts."""
    await src.certificates.create_certificate("web", CertificatePolicy.get_default(), _polling_interval=0.05)
    await src.certificates.set_contacts([CertificateContact(email="a@contoso.com")])
    status, _ = await raw(src, "DELETE", "/certificates/contacts")
    assert status == 200
    assert (await src.certificates.get_certificate("web")).name == "web"
    assert [c.name async for c in src.certificates.list_deleted_certificates()] == []
    for method, path in (("POST", "/certificates/contacts/create"), ("GET", "/certificates/issuers/x/versions")):
        status, body = await raw(src, method, path)  # not an operation: no certificate is made or read
        assert status == 404 and "File or directory not found" in body
    assert [c.name async for c in src.certificates.list_properties_of_certificates()] == ["web"]


async def test_issuer_crud_never_answers_the_password(src: VaultClients) -> None:
    created = await src.certificates.create_issuer(
        "digi", "Test", account_id="keyvaultuser", password="s3cret!", organization_id="org-1", admin_contacts=[ADMIN]
    )
    assert created.id == f"{src.url}/certificates/issuers/digi" and created.provider == "Test"
    assert created.account_id == "keyvaultuser" and created.password is None and created.enabled is True
    assert created.organization_id == "org-1" and created.admin_contacts is not None
    assert [(a.first_name, a.email) for a in created.admin_contacts] == [("John", "admin@contoso.com")]
    status, body = await raw(src, "GET", "/certificates/issuers/digi")
    answer = json.loads(body)
    assert status == 200 and "s3cret!" not in body and "pwd" not in answer["credentials"]
    assert answer["org_details"]["zip"] == 0  # the service adds it (recorded)

    updated = await src.certificates.update_issuer("digi", enabled=False, admin_contacts=[AdministratorContact("Jane")])
    assert updated.enabled is False and updated.account_id == "keyvaultuser"  # PATCH merges
    assert updated.organization_id == "org-1" and [a.first_name for a in updated.admin_contacts or []] == ["Jane"]
    assert updated.created_on == created.created_on and updated.password is None
    assert (await src.certificates.get_issuer("digi")).enabled is False

    deleted = await src.certificates.delete_issuer("digi")
    assert deleted.name == "digi" and deleted.password is None
    with pytest.raises(ResourceNotFoundError) as gone:
        await src.certificates.get_issuer("digi")
    assert gone.value.error is not None and gone.value.error.code == "CertificateIssuerNotFound"


async def test_the_emulator_keeps_the_password_it_never_returns(src: VaultClients, emulator: Emulator) -> None:
    await src.certificates.create_issuer("kept", "Test", account_id="acct", password="first")
    await src.certificates.update_issuer("kept", account_id="acct2")
    stored = emulator.vaults["src"].vault.issuers["kept"]
    assert stored["credentials"] == {"account_id": "acct2", "pwd": "first"}


async def test_issuers_list_in_pages(src: VaultClients, emulator: Emulator) -> None:
    emulator.vaults["src"].vault.settings.max_page_size = 2
    names = ["b-issuer", "A-issuer", "c-issuer", "d-issuer", "E-issuer"]
    for name in names:
        await src.certificates.create_issuer(name, "Test", password="never")
    pages = [[i.name async for i in page] async for page in src.certificates.list_properties_of_issuers().by_page()]
    assert pages == [["A-issuer", "b-issuer"], ["c-issuer", "d-issuer"], ["E-issuer"]]
    status, body = await raw(src, "GET", "/certificates/issuers")
    first = json.loads(body)
    assert status == 200 and first["value"][0] == {"id": f"{src.url}/certificates/issuers/A-issuer", "provider": "Test"}
    assert "never" not in body and ":" in first["nextLink"].split("/")[2]  # absolute, with the port


async def test_missing_issuers_answer_issuer_not_found(src: VaultClients) -> None:
    for call in (src.certificates.get_issuer("nope"), src.certificates.delete_issuer("nope")):
        with pytest.raises(ResourceNotFoundError) as missing:
            await call
        assert missing.value.error is not None and missing.value.error.code == "CertificateIssuerNotFound"
    with pytest.raises(ResourceNotFoundError):
        await src.certificates.update_issuer("nope", enabled=False)


async def test_a_policy_may_name_a_registered_issuer_and_then_stays_pending(src: VaultClients) -> None:
    """An offline vault reaches no CA: the request stays inProgress, as the recorded Test-issuer certificate did."""
    policy = CertificatePolicy(issuer_name="ca", subject="CN=ordered.example")
    with pytest.raises(HttpResponseError) as unknown:
        await src.certificates.create_certificate("ordered", policy, _polling_interval=0.05)
    assert unknown.value.status_code == 400 and "Issuer not found: ca" in str(unknown.value.message)

    await src.certificates.create_issuer("ca", "Test", account_id="acct")
    with pytest.raises(TimeoutError):  # the SDK polls while inProgress: this create never finishes
        await asyncio.wait_for(src.certificates.create_certificate("ordered", policy, _polling_interval=0.05), 2)
    operation = await src.certificates.get_certificate_operation("ordered")
    assert operation.status == "inProgress" and operation.issuer_name == "ca" and operation.csr
    certificate = await src.certificates.get_certificate("ordered")
    assert certificate.cer is None and certificate.properties.enabled is False
    assert certificate.policy is not None and certificate.policy.issuer_name == "ca"
    assert certificate.policy.lifetime_actions is not None
    assert certificate.policy.lifetime_actions[0].action == CertificatePolicyAction.auto_renew  # recorded default
