"""The only package that imports the Azure Key Vault SDKs and azure-core's pipeline."""
