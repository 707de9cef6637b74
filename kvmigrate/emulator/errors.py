"""Key Vault's error envelope, raised by handlers and turned into responses by the app."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


class KeyVaultError(Exception):
    """One Key Vault error answer: status, ``error.code``, message and optional ``innererror.code``."""

    def __init__(
        self, status: int, code: str, message: str, *, inner: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.inner = inner
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.inner:
            error["innererror"] = {"code": self.inner}
        return {"error": error}

    def response(self) -> web.Response:
        headers = {"x-ms-error-code": self.code, **self.headers}
        return web.Response(
            status=self.status,
            text=json.dumps(self.body(), separators=(",", ":")),
            content_type="application/json",
            charset="utf-8",
            headers=headers,
        )


def bad_parameter(message: str) -> KeyVaultError:
    return KeyVaultError(400, "BadParameter", message)


def not_found(kind: str, name: str, *, deleted: bool = False) -> KeyVaultError:
    """404 with the message the real service uses on active and on deleted routes (facts §9, §10)."""
    code = f"{kind.capitalize()}NotFound"
    if deleted:
        return KeyVaultError(404, code, f"Deleted {kind.capitalize()} not found: {name}")
    return KeyVaultError(
        404,
        code,
        f"A {kind} with (name/id) {name} was not found in this key vault. If you recently deleted this {kind} you may "
        f"be able to recover it using the correct recovery command. For help resolving this issue, please see "
        f"https://go.microsoft.com/fwlink/?linkid=2125182",
    )
