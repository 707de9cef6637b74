"""Key generation, JSON Web Keys and PEM storage of the emulator's RSA and EC keys."""

from __future__ import annotations

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kvmigrate.emulator.material.base import (
    DEFAULT_CURVE,
    DEFAULT_PUBLIC_EXPONENT,
    DEFAULT_RSA_KEY_SIZE,
    EC_KTYS,
    RSA_KEY_SIZES,
    RSA_KTYS,
    MaterialError,
    PrivateKey,
    curve_for,
    curve_name,
    require_supported,
)
from kvmigrate.emulator.material.encoding import b64url_decode, int_to_b64url, jwk_int, jwk_opt_int


def generate_key(
    kty: str, *, size: int | None = None, crv: str | None = None, public_exponent: int | None = None
) -> PrivateKey:
    """Generate a new private key for a Key Vault create-key request.

    ``size``/``public_exponent`` apply to RSA and ``crv`` to EC; the irrelevant ones are ignored, as Key Vault does.
    """
    if kty in RSA_KTYS:
        key_size = DEFAULT_RSA_KEY_SIZE if size is None else size
        if key_size not in RSA_KEY_SIZES:
            allowed = ", ".join(str(s) for s in RSA_KEY_SIZES)
            raise MaterialError(f"The specified key size {key_size} is not valid for {kty} keys. Allowed: {allowed}.")
        exponent = DEFAULT_PUBLIC_EXPONENT if public_exponent is None else public_exponent
        try:
            return rsa.generate_private_key(public_exponent=exponent, key_size=key_size)
        except ValueError as exc:
            raise MaterialError(f"The specified public exponent {exponent} is not supported.") from exc
    if kty in EC_KTYS:
        curve, _ = curve_for(DEFAULT_CURVE if crv is None else crv)
        return ec.generate_private_key(curve)
    raise MaterialError(f"The specified key type '{kty}' is not supported. Supported: RSA, RSA-HSM, EC, EC-HSM.")


def public_jwk(key: PrivateKey, *, kid: str, kty: str, key_ops: list[str]) -> dict[str, object]:
    """Build the public JSON Web Key that Key Vault returns for a key.

    ``kty`` is echoed as given so "-HSM" variants survive; EC coordinates are padded to the curve length.
    """
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.public_key().public_numbers()
        return {
            "kid": kid,
            "kty": kty,
            "key_ops": list(key_ops),
            "n": int_to_b64url(numbers.n),
            "e": int_to_b64url(numbers.e),
        }
    crv = curve_name(key) or DEFAULT_CURVE  # never None for an EC key
    _, length = curve_for(crv)
    point = key.public_key().public_numbers()
    return {
        "kid": kid,
        "kty": kty,
        "key_ops": list(key_ops),
        "crv": crv,
        "x": int_to_b64url(point.x, length),
        "y": int_to_b64url(point.y, length),
    }


def _rsa_from_jwk(jwk: dict[str, object]) -> rsa.RSAPrivateKey:
    """Rebuild and validate an RSA private key from JWK members."""
    n = jwk_int(jwk, "n")
    e = jwk_int(jwk, "e")
    d = jwk_int(jwk, "d")
    p = jwk_int(jwk, "p")
    q = jwk_int(jwk, "q")
    if p < 2 or q < 2 or p * q != n:
        raise MaterialError("The RSA key is invalid: p * q does not equal n.")
    lam = (p - 1) * (q - 1) // _gcd(p - 1, q - 1)
    if e < 3 or e % 2 == 0 or d >= n or (d * e) % lam != 1:
        raise MaterialError("The RSA key is invalid: the private exponent does not match the public exponent.")
    expected = {"dp": d % (p - 1), "dq": d % (q - 1), "qi": pow(q, -1, p)}
    for member, value in expected.items():
        given = jwk_opt_int(jwk, member)
        if given is not None and given != value:
            raise MaterialError(f"The RSA key is invalid: member '{member}' is inconsistent with the other members.")
    numbers = rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=expected["dp"],
        dmq1=expected["dq"],
        iqmp=expected["qi"],
        public_numbers=rsa.RSAPublicNumbers(e=e, n=n),
    )
    try:
        return numbers.private_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise MaterialError("The RSA key is invalid.") from exc


def _gcd(a: int, b: int) -> int:
    """Return the greatest common divisor (kept local so the RSA checks read plainly)."""
    while b:
        a, b = b, a % b
    return a


def _ec_from_jwk(jwk: dict[str, object]) -> ec.EllipticCurvePrivateKey:
    """Rebuild and validate an EC private key from JWK members."""
    crv = jwk.get("crv")
    if not isinstance(crv, str):
        raise MaterialError("The JSON Web Key is missing the required member 'crv'.")
    curve, length = curve_for(crv)
    for member in ("x", "y", "d"):
        raw = jwk.get(member)
        if isinstance(raw, str) and len(b64url_decode(raw)) > length:
            raise MaterialError(f"The JSON Web Key member '{member}' is too long for curve {crv}.")
    x = jwk_int(jwk, "x")
    y = jwk_int(jwk, "y")
    d = jwk_int(jwk, "d")
    public_numbers = ec.EllipticCurvePublicNumbers(x=x, y=y, curve=curve)
    try:
        key = ec.EllipticCurvePrivateNumbers(private_value=d, public_numbers=public_numbers).private_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise MaterialError("The EC key is invalid.") from exc
    derived = key.public_key().public_numbers()
    if (derived.x, derived.y) != (x, y):
        raise MaterialError("The EC key is invalid: the private value does not match the public point.")
    return key


def private_key_from_jwk(jwk: dict[str, object]) -> PrivateKey:
    """Build a private key from an import-key JWK, validating that all members are consistent.

    RSA needs n, e, d, p and q (dp, dq, qi are derived when absent and checked when present); EC needs crv, x, y, d.
    """
    kty = jwk.get("kty")
    if kty in RSA_KTYS:
        return _rsa_from_jwk(jwk)
    if kty in EC_KTYS:
        return _ec_from_jwk(jwk)
    raise MaterialError(
        f"The JSON Web Key type '{kty}' is not supported for import. Supported: RSA, RSA-HSM, EC, EC-HSM."
    )


def private_key_to_pem(key: PrivateKey) -> bytes:
    """Serialize a private key as unencrypted PKCS#8 PEM (only for the emulator's own storage)."""
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def private_key_from_pem(data: bytes) -> PrivateKey:
    """Load an unencrypted PEM private key (PKCS#8 or traditional) produced by private_key_to_pem.

    Only the emulator's own stored keys come through here, so the full RSA consistency check (about 0.3 s for a
    4096-bit key, on every request that renders one) is skipped; keys from outside go through private_key_from_jwk
    or load_certificate_import, which validate.
    """
    try:
        key = serialization.load_pem_private_key(data, password=None, unsafe_skip_rsa_key_validation=True)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise MaterialError("The private key PEM could not be read.") from exc
    return require_supported(key, "Only RSA and EC private keys are supported.")


def public_jwk_matches(key: PrivateKey, jwk: dict[str, object]) -> bool:
    """Tell whether a (public) JWK describes the public half of ``key``; never raises."""
    try:
        kty = jwk.get("kty")
        if isinstance(key, rsa.RSAPrivateKey):
            numbers = key.public_key().public_numbers()
            return kty in RSA_KTYS and (jwk_int(jwk, "n"), jwk_int(jwk, "e")) == (numbers.n, numbers.e)
        point = key.public_key().public_numbers()
        return (
            kty in EC_KTYS
            and jwk.get("crv") == curve_name(key)
            and (jwk_int(jwk, "x"), jwk_int(jwk, "y")) == (point.x, point.y)
        )
    except MaterialError:
        return False
