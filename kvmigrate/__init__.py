"""kvmigrate: copy a whole Azure Key Vault into another."""

__version__ = "0.1.0"
