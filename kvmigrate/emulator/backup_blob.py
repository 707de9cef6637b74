"""Backup blobs shaped like Key Vault's: a length-prefixed ASCII tag, then a compact JWE.

The real blob is ``0x29 'AzureKeyVaultSecretBackupV1.microsoft.com'`` (or the 38-character key tag, which certificates
share) followed by a five-part JWE encrypted to a key of the Azure security world (facts §8). Here the key-encryption
key is derived from the vault's subscription and geography, so a blob restores into any emulated vault of the same
subscription and geography - across emulator restarts too - and nowhere else. AES key wrap plus AES-GCM make the blob
opaque and integrity-protected: any changed byte fails to decrypt.
"""

from __future__ import annotations

import functools
import json
import os
import uuid
import zlib
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from kvmigrate.emulator.errors import KeyVaultError
from kvmigrate.emulator.material import b64url_decode, b64url_encode

SECRET_TAG = "AzureKeyVaultSecretBackupV1.microsoft.com"
KEY_TAG = "AzureKeyVaultKeyBackupV1.microsoft.com"  # certificates use the key tag too (facts §8)
TAG_FOR = {"secret": SECRET_TAG, "key": KEY_TAG, "certificate": KEY_TAG}
# A fixed emulator-wide root: blobs are bound by subscription and geography, not by process.
_ROOT = b"kvmigrate-emulator-security-world-root-v1"


# Pure functions of the subscription and geography: derive each pair's values once, not once per backup and restore.
@functools.lru_cache(maxsize=64)
def world_key_id(subscription: str, geography: str) -> str:
    """The JWE ``kid`` of a subscription and geography: the same in every vault of that pair."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"kvmigrate-emulator:{subscription.lower()}:{geography.lower()}"))


@functools.lru_cache(maxsize=64)
def _kek(subscription: str, geography: str) -> bytes:
    info = f"{subscription.lower()}|{geography.lower()}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=_ROOT, info=info).derive(_ROOT)


@functools.lru_cache(maxsize=64)
def _protected_header(subscription: str, geography: str) -> str:
    """The JWE protected header of a blob sealed for ``subscription``/``geography`` (the same for every blob)."""
    header = {"kid": world_key_id(subscription, geography), "alg": "A256KW", "enc": "A256GCM", "zip": "DEF"}
    return b64url_encode(json.dumps(header, separators=(",", ":")).encode())


def malformed() -> KeyVaultError:
    """What Key Vault answers to a corrupt or tampered blob (facts §10, 2019 recording)."""
    return KeyVaultError(400, "Malformed backup blob", "Backup blob contains invalid or corrupt version.")


def seal(kind: str, payload: dict[str, Any], *, subscription: str, geography: str) -> bytes:
    """Encrypt one object's backup (every version) into a blob bound to ``subscription`` and ``geography``."""
    protected = _protected_header(subscription, geography)
    cek = AESGCM.generate_key(bit_length=256)
    iv = os.urandom(12)
    plaintext = zlib.compress(json.dumps({"kind": kind, **payload}, separators=(",", ":")).encode())
    sealed = AESGCM(cek).encrypt(iv, plaintext, protected.encode("ascii"))
    ciphertext, tag = sealed[:-16], sealed[-16:]
    jwe = ".".join(
        [
            protected,
            b64url_encode(aes_key_wrap(_kek(subscription, geography), cek)),
            b64url_encode(iv),
            b64url_encode(ciphertext),
            b64url_encode(tag),
        ]
    )
    label = TAG_FOR[kind].encode("ascii")
    return bytes([len(label)]) + label + jwe.encode("ascii")


def open_blob(blob: bytes, *, expected_tag: str, subscription: str, geography: str) -> dict[str, Any]:
    """Decrypt a blob restored into a vault of ``subscription``/``geography``; refuse it as Key Vault would."""
    try:
        length = blob[0]
        label = blob[1 : 1 + length].decode("ascii")
        protected, wrapped, iv, ciphertext, tag = blob[1 + length :].decode("ascii").split(".")
        header = json.loads(b64url_decode(protected))
    except (IndexError, UnicodeDecodeError, ValueError) as exc:
        raise malformed() from exc
    if label != expected_tag or not isinstance(header, dict):
        raise malformed()
    if header.get("kid") != world_key_id(subscription, geography):
        # Guess: the facts sheet has the message ("Cannot decrypt backup blob", azure-cli#8767) but not the status.
        raise KeyVaultError(
            400,
            "BadParameter",
            "Cannot decrypt backup blob: backups can only be restored into a vault in the same Azure subscription "
            "and the same Azure geography as the vault they were taken from.",
            inner="BackupBlobWrongSecurityDomain",
        )
    try:
        cek = aes_key_unwrap(_kek(subscription, geography), b64url_decode(wrapped))
        plaintext = AESGCM(cek).decrypt(
            b64url_decode(iv), b64url_decode(ciphertext) + b64url_decode(tag), protected.encode("ascii")
        )
        payload = json.loads(zlib.decompress(plaintext))
    except (InvalidUnwrap, InvalidTag, ValueError, zlib.error) as exc:
        raise malformed() from exc
    if not isinstance(payload, dict):
        raise malformed()
    return payload
