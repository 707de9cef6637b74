"""The credential kvmigrate uses: azure-identity's DefaultAzureCredential, never anything emulator-specific."""

from __future__ import annotations

from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import DefaultAzureCredential

#: The credential type the rest of kvmigrate passes around (azure-core's async token protocol).
Credential = AsyncTokenCredential


def default_credential(tenant_id: str | None = None) -> AsyncTokenCredential:
    """Environment, workload identity, managed identity, Azure CLI... in azure-identity's usual order."""
    if tenant_id:
        return DefaultAzureCredential(
            exclude_interactive_browser_credential=True,
            workload_identity_tenant_id=tenant_id,
            shared_cache_tenant_id=tenant_id,
            visual_studio_code_tenant_id=tenant_id,
            additionally_allowed_tenants=[tenant_id],
        )
    return DefaultAzureCredential(exclude_interactive_browser_credential=True)
