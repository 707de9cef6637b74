"""Name two vaults for a run, refusing one vault named twice."""

from __future__ import annotations

from kvmigrate.errors import SameVaultError
from kvmigrate.vault.clients import vault_url


def vault_pair_urls(source: str, target: str) -> tuple[str, str]:
    """Normalise both references and refuse one vault named twice."""
    source_url, target_url = vault_url(source), vault_url(target)
    if source_url == target_url:
        raise SameVaultError(f"source and target are the same vault ({source_url}); pass two different vaults")
    return source_url, target_url
