"""A strict local emulator of the Azure Key Vault data plane, for tests, benchmarks and rehearsals.

The product never imports this package and this package never imports the product: the emulator is a stand-in for
Azure that the official SDK clients talk to over real HTTPS.
"""

from kvmigrate.emulator.config import EmulatorConfig, VaultSettings
from kvmigrate.emulator.server import Emulator, RunningVault

__all__ = ["Emulator", "EmulatorConfig", "RunningVault", "VaultSettings"]
