"""Certificate routes: create (self-signed or CSR for an outside CA), import, merge, get, update, policy, pending.

Every certificate version V also makes a managed key version and a managed secret version of the same name and id
(facts §13): the key holds the private key (``kty``, ``key_ops``, ``pem``, ``exportable``), the secret holds the PFX
or PEM export. All three exist from the create call on. While the issuance is pending the certificate version has no
``cer`` and all three are disabled, which is what the service shows: GET on the certificate answers a disabled bundle
with ``policy`` and ``pending`` (azure-sdk-for-js recording), the secret answers 403 SecretDisabled (facts §13).

Issuer ``Self`` signs at once but reports ``inProgress`` for the vault's ``issuance_delay`` seconds: a timer
completes the operation, and every certificate read completes it too if the timer has not run yet. Issuer
``Unknown`` stays pending until ``POST …/pending/merge`` brings the signed certificate. Delete, recover, purge,
backup and restore of a certificate carry its key and secret along (the hooks of ``KIND``).

Modules: ``policy`` (policy validation and defaults), ``managed`` (the key and secret of each version),
``lifecycle`` (completing an issuance), ``render`` (wire bodies), ``handlers`` (create, import, get, update, policy),
``pending`` (the operation and merge) and ``hooks`` (the shared routes' cascade, backup and restore); the vault-level
``contacts`` and ``issuers`` live beside them.

**A policy that names a registered issuer** (``PUT /certificates/issuers/{name}``, any provider) is accepted, and
its issuance stays ``inProgress``, as the recorded certificate of a ``Test``-provider issuer did (recordings-js
``recording_can_create_read_and_delete_a_certificate_issuer.json``): a vault without internet reaches no CA. It
ends only when cancelled (``cancelled``), when its operation is deleted, or when a merge brings a signed
certificate. Its default lifetime action is ``AutoRenew`` at 80 % (recorded). A name that is neither ``Self``,
``Unknown`` nor a registered issuer is refused with 400 BadParameter (guess: nothing recorded).

**Listings.** ``GET /certificates`` and ``GET /deletedcertificates`` leave out a certificate whose versions are all
pending unless ``includePending=true`` (the flag travels in the nextLink's token, see ``paging.py``); such an
entry has no ``x5t``. A certificate with an issued version and a pending newer one is listed without the flag,
rendered from its newest issued version.
"""

from __future__ import annotations

from kvmigrate.emulator.app import Route, route
from kvmigrate.emulator.certificates import contacts, issuers
from kvmigrate.emulator.certificates.handlers import (
    create_certificate,
    get_certificate,
    get_policy,
    import_certificate,
    update_certificate,
    update_policy,
)
from kvmigrate.emulator.certificates.hooks import KIND
from kvmigrate.emulator.certificates.pending import delete_pending, get_pending, merge_certificate, update_pending
from kvmigrate.emulator.objects import name_checked, shared_routes

__all__ = ["KIND", "routes"]


def routes() -> list[Route]:
    return [
        *contacts.routes(),
        *issuers.routes(),
        *shared_routes(KIND),
        route("POST", "/certificates/{name}/create", "certificates.create", "create", name_checked(create_certificate)),
        route(
            "POST",
            "/certificates/{name}/import",
            "certificates.import",
            "import",
            name_checked(import_certificate),
            is_create=True,
        ),
        route("GET", "/certificates/{name}/policy", "certificates.get_policy", "get", name_checked(get_policy)),
        route(
            "PATCH", "/certificates/{name}/policy", "certificates.update_policy", "update", name_checked(update_policy)
        ),
        route("GET", "/certificates/{name}/pending", "certificates.get_pending", "get", name_checked(get_pending)),
        route(
            "PATCH",
            "/certificates/{name}/pending",
            "certificates.update_pending",
            "update",
            name_checked(update_pending),
        ),
        route(
            "DELETE",
            "/certificates/{name}/pending",
            "certificates.delete_pending",
            "delete",
            name_checked(delete_pending),
        ),
        route(
            "POST",
            "/certificates/{name}/pending/merge",
            "certificates.merge",
            "create",
            name_checked(merge_certificate),
        ),
        route("GET", "/certificates/{name}", "certificates.get", "get", name_checked(get_certificate)),
        route("GET", "/certificates/{name}/{version}", "certificates.get", "get", name_checked(get_certificate)),
        route(
            "PATCH", "/certificates/{name}/{version}", "certificates.update", "update", name_checked(update_certificate)
        ),
    ]
