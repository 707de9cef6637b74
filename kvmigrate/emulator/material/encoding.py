"""The base64 forms Key Vault puts on the wire: base64url without padding (JWK members, backup blobs, paging
tokens) and standard base64 (``cer``, PFX values). The one set of helpers every emulator module uses."""

from __future__ import annotations

import base64
import binascii
import re

from kvmigrate.emulator.material.base import MaterialError

_B64URL_RE = re.compile(r"^[A-Za-z0-9_-]*$")


def b64url_encode(data: bytes) -> str:
    """Encode bytes as base64url without padding, as JWK members are sent."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url, tolerating missing padding.

    Clients differ on whether they pad, so both forms are accepted; anything outside the url-safe alphabet
    (or an impossible length) raises MaterialError rather than silently decoding garbage.
    """
    if not isinstance(text, str):
        raise MaterialError("Expected a base64url-encoded string.")
    stripped = text.rstrip("=")
    if not _B64URL_RE.match(stripped) or len(stripped) % 4 == 1:
        raise MaterialError("Value is not valid base64url.")
    try:
        return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MaterialError("Value is not valid base64url.") from exc


def b64_std_decode(text: str) -> bytes:
    """Decode standard base64, tolerating whitespace and missing padding."""
    compact = "".join(text.split()).rstrip("=")
    if len(compact) % 4 == 1:
        raise binascii.Error("impossible base64 length")
    return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)


def int_to_b64url(value: int, length: int | None = None) -> str:
    """Encode a non-negative integer big-endian, minimal or left-padded to ``length`` bytes."""
    size = max(1, (value.bit_length() + 7) // 8) if length is None else length
    return b64url_encode(value.to_bytes(size, "big"))


def jwk_opt_int(jwk: dict[str, object], member: str) -> int | None:
    """Read an optional base64url big-endian unsigned integer member from a JWK."""
    raw = jwk.get(member)
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise MaterialError(f"The JSON Web Key member '{member}' must be a base64url string.")
    data = b64url_decode(raw)
    if not data:
        raise MaterialError(f"The JSON Web Key member '{member}' is empty.")
    return int.from_bytes(data, "big")


def jwk_int(jwk: dict[str, object], member: str) -> int:
    """Read a required base64url big-endian unsigned integer member from a JWK."""
    value = jwk_opt_int(jwk, member)
    if value is None:
        raise MaterialError(f"The JSON Web Key is missing the required member '{member}'.")
    return value
