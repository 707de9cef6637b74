"""Key routes (placeholder until written)."""

from kvmigrate.emulator.app import Route


def routes() -> list[Route]:
    return []
