"""Import directions: product and emulator never import each other; only vault/ imports the Key Vault SDKs."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "kvmigrate"


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules(under: Path) -> list[Path]:
    return sorted(p for p in under.rglob("*.py"))


def test_product_never_imports_the_emulator() -> None:
    for path in modules(PACKAGE):
        if "emulator" in path.relative_to(PACKAGE).parts:
            continue
        bad = {name for name in imports_of(path) if name.startswith("kvmigrate.emulator")}
        if path.relative_to(PACKAGE).as_posix() == "cli/serve.py":  # `kvmigrate emulator`, inside its function
            bad -= {"kvmigrate.emulator.config", "kvmigrate.emulator.runner"}
        assert not bad, f"{path.relative_to(PACKAGE)} imports the emulator: {bad}"


def test_emulator_never_imports_the_product() -> None:
    for path in modules(PACKAGE / "emulator"):
        bad = {
            name
            for name in imports_of(path)
            if name.startswith("kvmigrate") and not name.startswith("kvmigrate.emulator")
        }
        assert not bad, f"emulator/{path.name} imports the product: {bad}"


def test_only_vault_package_imports_the_key_vault_sdks() -> None:
    for path in modules(PACKAGE):
        parts = path.relative_to(PACKAGE).parts
        if parts[0] in ("vault", "emulator"):
            continue
        bad = {name for name in imports_of(path) if name.startswith(("azure.keyvault", "azure.identity"))}
        assert not bad, f"{'/'.join(parts)} imports {bad}; only kvmigrate/vault/ may"


def test_emulator_does_not_use_the_sdk() -> None:
    for path in modules(PACKAGE / "emulator"):
        bad = {name for name in imports_of(path) if name.startswith("azure")}
        assert not bad, f"emulator/{path.name} imports {bad}: it must stand in for Azure, not use its SDK"


#: The product modules that meet azure-core itself: the error boundary, the retry decisions, the rate policy.
AZURE_CORE_BOUNDARY = {
    "errors.py": "azure.core.exceptions",
    "retry.py": "azure.core.exceptions",
    "ratelimit.py": "azure.core.pipeline",
}


def test_only_vault_and_the_boundary_modules_import_azure_core() -> None:
    for path in modules(PACKAGE):
        parts = path.relative_to(PACKAGE).parts
        if parts[0] in ("vault", "emulator"):
            continue
        allowed = AZURE_CORE_BOUNDARY.get("/".join(parts), "\0")
        bad = {name for name in imports_of(path) if name.startswith("azure") and not name.startswith(allowed)}
        assert not bad, (
            f"{'/'.join(parts)} imports {bad}; only kvmigrate/vault/ (and {sorted(AZURE_CORE_BOUNDARY)}) may"
        )
