"""Unit tests for kvmigrate.emulator.material: key generation, JWKs, certificates, import and export."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kvmigrate.emulator import material
from kvmigrate.emulator.material import MaterialError, PrivateKey

CURVES = {"P-256": (ec.SECP256R1, 32), "P-384": (ec.SECP384R1, 48), "P-521": (ec.SECP521R1, 66)}
SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH.dotted_string
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    key = material.generate_key("RSA")
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    key = material.generate_key("EC", crv="P-256")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def _unb64url(value: object) -> int:
    assert isinstance(value, str)
    assert "=" not in value
    return int.from_bytes(material.b64url_decode(value), "big")


def _b64url_int(value: int, length: int | None = None) -> str:
    size = (value.bit_length() + 7) // 8 if length is None else length
    return material.b64url_encode(value.to_bytes(size, "big"))


def _rsa_private_jwk(key: rsa.RSAPrivateKey, *, kty: str = "RSA", with_crt: bool = True) -> dict[str, object]:
    priv = key.private_numbers()
    pub = priv.public_numbers
    jwk: dict[str, object] = {
        "kty": kty,
        "n": _b64url_int(pub.n),
        "e": _b64url_int(pub.e),
        "d": _b64url_int(priv.d),
        "p": _b64url_int(priv.p),
        "q": _b64url_int(priv.q),
    }
    if with_crt:
        jwk.update(dp=_b64url_int(priv.dmp1), dq=_b64url_int(priv.dmq1), qi=_b64url_int(priv.iqmp))
    return jwk


def _ec_private_jwk(key: ec.EllipticCurvePrivateKey, crv: str, length: int) -> dict[str, object]:
    priv = key.private_numbers()
    return {
        "kty": "EC",
        "crv": crv,
        "x": _b64url_int(priv.public_numbers.x, length),
        "y": _b64url_int(priv.public_numbers.y, length),
        "d": _b64url_int(priv.private_value, length),
    }


def _assert_rsa_jwk_round_trip(key: PrivateKey, kty: str = "RSA") -> None:
    assert isinstance(key, rsa.RSAPrivateKey)
    jwk = material.public_jwk(key, kid="https://v.vault.azure.net/keys/k/1", kty=kty, key_ops=["sign", "verify"])
    assert set(jwk) == {"kid", "kty", "key_ops", "n", "e"}
    assert jwk["kty"] == kty
    assert jwk["key_ops"] == ["sign", "verify"]
    rebuilt = rsa.RSAPublicNumbers(e=_unb64url(jwk["e"]), n=_unb64url(jwk["n"])).public_key()
    assert rebuilt.public_numbers() == key.public_key().public_numbers()
    assert material.public_jwk_matches(key, jwk)


# ---------------------------------------------------------------------------------------------------------------------
# base64url


def test_b64url_round_trip_without_padding() -> None:
    for data in (b"", b"\x00", b"\xff\xfe", b"abc", b"\xfb\xff\xbf" * 7 + b"x"):
        text = material.b64url_encode(data)
        assert "=" not in text and "+" not in text and "/" not in text
        assert material.b64url_decode(text) == data


def test_b64url_decode_accepts_padding() -> None:
    assert material.b64url_decode("YQ==") == b"a"
    assert material.b64url_decode("YQ") == b"a"


@pytest.mark.parametrize("garbage", ["a", "ab$c", "no spaces", "+/+/", "YQ=x"])
def test_b64url_decode_rejects_garbage(garbage: str) -> None:
    with pytest.raises(MaterialError):
        material.b64url_decode(garbage)


# ---------------------------------------------------------------------------------------------------------------------
# key generation and public JWKs


def test_generate_rsa_default_2048_round_trips_public_jwk(rsa_key: rsa.RSAPrivateKey) -> None:
    assert rsa_key.key_size == 2048
    assert rsa_key.public_key().public_numbers().e == 65537
    assert material.key_type_of(rsa_key) == "RSA"
    assert material.curve_name(rsa_key) is None
    _assert_rsa_jwk_round_trip(rsa_key)


def test_generate_rsa_hsm_is_rsa_and_kty_is_echoed() -> None:
    key = material.generate_key("RSA-HSM", size=2048, public_exponent=65537)
    assert material.key_type_of(key) == "RSA"
    _assert_rsa_jwk_round_trip(key, kty="RSA-HSM")


def test_generate_rsa_3072() -> None:
    key = material.generate_key("RSA", size=3072)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 3072
    _assert_rsa_jwk_round_trip(key)


def test_generate_rsa_4096() -> None:
    key = material.generate_key("RSA-HSM", size=4096)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 4096
    _assert_rsa_jwk_round_trip(key, kty="RSA-HSM")


@pytest.mark.parametrize("crv", [*CURVES, "P-256K"])
@pytest.mark.parametrize("kty", ["EC", "EC-HSM"])
def test_generate_ec_round_trips_public_jwk(kty: str, crv: str) -> None:
    key = material.generate_key(kty, crv=crv)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert material.key_type_of(key) == "EC"
    assert material.curve_name(key) == crv
    curve_cls, length = {**CURVES, "P-256K": (ec.SECP256K1, 32)}[crv]
    assert isinstance(key.curve, curve_cls)

    jwk = material.public_jwk(key, kid="kid", kty=kty, key_ops=["sign"])
    assert set(jwk) == {"kid", "kty", "key_ops", "crv", "x", "y"}
    assert jwk["kty"] == kty and jwk["crv"] == crv
    for member in ("x", "y"):
        value = jwk[member]
        assert isinstance(value, str)
        assert len(material.b64url_decode(value)) == length  # padded to the curve length
    rebuilt = ec.EllipticCurvePublicNumbers(x=_unb64url(jwk["x"]), y=_unb64url(jwk["y"]), curve=curve_cls())
    assert rebuilt.public_key().public_numbers() == key.public_key().public_numbers()
    assert material.public_jwk_matches(key, jwk)


def test_generate_ec_defaults_to_p256() -> None:
    assert material.curve_name(material.generate_key("EC")) == "P-256"


@pytest.mark.parametrize(
    ("kty", "kwargs"),
    [
        ("oct", {}),
        ("oct-HSM", {}),
        ("rsa", {}),
        ("", {}),
        ("RSA", {"size": 1024}),
        ("RSA", {"size": 2047}),
        ("RSA-HSM", {"size": 8192}),
        ("RSA", {"public_exponent": 4}),
        ("EC", {"crv": "P-999"}),
        ("EC-HSM", {"crv": "p-256"}),
        ("EC", {"crv": "secp256r1"}),
    ],
)
def test_generate_key_rejects_bad_parameters(kty: str, kwargs: dict[str, object]) -> None:
    with pytest.raises(MaterialError):
        material.generate_key(kty, **kwargs)  # type: ignore[arg-type]


def test_public_jwk_matches_rejects_other_keys(rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey) -> None:
    rsa_jwk = material.public_jwk(rsa_key, kid="k", kty="RSA", key_ops=[])
    ec_jwk = material.public_jwk(ec_key, kid="k", kty="EC", key_ops=[])
    assert not material.public_jwk_matches(ec_key, rsa_jwk)
    assert not material.public_jwk_matches(rsa_key, ec_jwk)
    assert not material.public_jwk_matches(ec_key, {**ec_jwk, "crv": "P-384"})
    assert not material.public_jwk_matches(rsa_key, {**rsa_jwk, "n": "!!"})
    assert not material.public_jwk_matches(rsa_key, {"kty": "RSA"})


# ---------------------------------------------------------------------------------------------------------------------
# private JWK import


@pytest.mark.parametrize("with_crt", [True, False])
def test_private_key_from_jwk_round_trips_rsa(rsa_key: rsa.RSAPrivateKey, with_crt: bool) -> None:
    imported = material.private_key_from_jwk(_rsa_private_jwk(rsa_key, kty="RSA-HSM", with_crt=with_crt))
    assert isinstance(imported, rsa.RSAPrivateKey)
    assert imported.private_numbers() == rsa_key.private_numbers()


@pytest.mark.parametrize("crv", list(CURVES))
def test_private_key_from_jwk_round_trips_ec(crv: str) -> None:
    key = material.generate_key("EC", crv=crv)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    imported = material.private_key_from_jwk(_ec_private_jwk(key, crv, CURVES[crv][1]))
    assert isinstance(imported, ec.EllipticCurvePrivateKey)
    assert imported.private_numbers() == key.private_numbers()
    assert material.curve_name(imported) == crv


def test_private_key_from_jwk_rejects_rsa_with_wrong_d(rsa_key: rsa.RSAPrivateKey) -> None:
    jwk = _rsa_private_jwk(rsa_key, with_crt=False)
    jwk["d"] = _b64url_int(rsa_key.private_numbers().d + 2)
    with pytest.raises(MaterialError):
        material.private_key_from_jwk(jwk)


def test_private_key_from_jwk_rejects_ec_with_wrong_d(ec_key: ec.EllipticCurvePrivateKey) -> None:
    jwk = _ec_private_jwk(ec_key, "P-256", 32)
    jwk["d"] = _b64url_int(ec_key.private_numbers().private_value ^ 1, 32)
    with pytest.raises(MaterialError):
        material.private_key_from_jwk(jwk)


def test_private_key_from_jwk_rejects_inconsistent_crt_member(rsa_key: rsa.RSAPrivateKey) -> None:
    jwk = _rsa_private_jwk(rsa_key)
    jwk["qi"] = _b64url_int(rsa_key.private_numbers().iqmp + 1)
    with pytest.raises(MaterialError):
        material.private_key_from_jwk(jwk)


def test_private_key_from_jwk_rejects_mismatched_public_numbers(
    rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    other = material.generate_key("EC", crv="P-256")
    assert isinstance(other, ec.EllipticCurvePrivateKey)
    jwk = _ec_private_jwk(ec_key, "P-256", 32)
    jwk["x"] = _b64url_int(other.public_key().public_numbers().x, 32)
    with pytest.raises(MaterialError):
        material.private_key_from_jwk(jwk)

    rsa_jwk = _rsa_private_jwk(rsa_key)
    rsa_jwk["n"] = _b64url_int(rsa_key.public_key().public_numbers().n + 2)
    with pytest.raises(MaterialError):
        material.private_key_from_jwk(rsa_jwk)


@pytest.mark.parametrize("missing", ["n", "e", "d", "p", "q"])
def test_private_key_from_jwk_rejects_missing_rsa_member(rsa_key: rsa.RSAPrivateKey, missing: str) -> None:
    jwk = _rsa_private_jwk(rsa_key)
    del jwk[missing]
    with pytest.raises(MaterialError, match=missing):
        material.private_key_from_jwk(jwk)


@pytest.mark.parametrize("missing", ["crv", "x", "y", "d"])
def test_private_key_from_jwk_rejects_missing_ec_member(ec_key: ec.EllipticCurvePrivateKey, missing: str) -> None:
    jwk = _ec_private_jwk(ec_key, "P-256", 32)
    del jwk[missing]
    with pytest.raises(MaterialError):
        material.private_key_from_jwk(jwk)


@pytest.mark.parametrize(
    "jwk",
    [
        {},
        {"kty": "oct", "k": "AAAA"},
        {"kty": "RSA", "n": 5, "e": "AQAB", "d": "AQ", "p": "AQ", "q": "AQ"},
        {"kty": "EC", "crv": "P-1", "x": "AA", "y": "AA", "d": "AA"},
        {"kty": "EC", "crv": "P-256", "x": "!!", "y": "AA", "d": "AA"},
    ],
)
def test_private_key_from_jwk_rejects_garbage(jwk: dict[str, object]) -> None:
    with pytest.raises(MaterialError):
        material.private_key_from_jwk(jwk)


# ---------------------------------------------------------------------------------------------------------------------
# PEM storage


def test_private_key_pem_round_trip(rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey) -> None:
    for key in (rsa_key, ec_key):
        pem = material.private_key_to_pem(key)
        assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
        loaded = material.private_key_from_pem(pem)
        assert loaded.private_numbers() == key.private_numbers()


def test_private_key_from_pem_rejects_garbage_and_unsupported_keys() -> None:
    with pytest.raises(MaterialError):
        material.private_key_from_pem(b"not a pem")
    ed = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(MaterialError):
        material.private_key_from_pem(ed)


# ---------------------------------------------------------------------------------------------------------------------
# certificates


def test_self_signed_certificate_contents(rsa_key: rsa.RSAPrivateKey) -> None:
    not_before = datetime(2024, 1, 31, 12, 30, 45, 123456, tzinfo=UTC)
    cert = material.self_signed_certificate(
        rsa_key,
        subject="CN=example.com, O=Contoso, OU=IT, L=Redmond, ST=WA, C=US, E=admin@example.com",
        dns_names=["example.com", "www.example.com"],
        validity_months=13,
        ekus=[SERVER_AUTH, CLIENT_AUTH],
        key_usage=["digitalSignature", "keyEncipherment"],
        not_before=not_before,
    )
    assert cert.subject == cert.issuer
    assert cert.subject.rfc4514_string() == (
        "CN=example.com,O=Contoso,OU=IT,L=Redmond,ST=WA,C=US,1.2.840.113549.1.9.1=admin@example.com"
    )
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "example.com"
    assert cert.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)[0].value == "admin@example.com"

    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["example.com", "www.example.com"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert [oid.dotted_string for oid in eku] == [SERVER_AUTH, CLIENT_AUTH]
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.key_encipherment
    assert not (ku.content_commitment or ku.data_encipherment or ku.key_agreement or ku.key_cert_sign or ku.crl_sign)
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca is False

    assert cert.not_valid_before_utc == datetime(2024, 1, 31, 12, 30, 45, tzinfo=UTC)
    assert cert.not_valid_after_utc == datetime(2025, 2, 28, 12, 30, 45, tzinfo=UTC)  # clamped to month end
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    assert cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == rsa_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    cert.verify_directly_issued_by(cert)


def test_self_signed_certificate_ec_defaults(ec_key: ec.EllipticCurvePrivateKey) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    cert = material.self_signed_certificate(ec_key, subject="CN=ec.example")
    assert cert.subject.rfc4514_string() == "CN=ec.example"
    assert before <= cert.not_valid_before_utc <= datetime.now(UTC)
    assert cert.not_valid_after_utc.year == cert.not_valid_before_utc.year + 1
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert public.public_numbers() == ec_key.public_key().public_numbers()
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    cert.verify_directly_issued_by(cert)


def test_self_signed_certificate_serials_are_random(ec_key: ec.EllipticCurvePrivateKey) -> None:
    first = material.self_signed_certificate(ec_key, subject="CN=a")
    second = material.self_signed_certificate(ec_key, subject="CN=a")
    assert first.serial_number != second.serial_number


def test_subject_parsing_handles_escapes_quotes_and_multivalued_rdns(ec_key: ec.EllipticCurvePrivateKey) -> None:
    cert = material.self_signed_certificate(
        ec_key, subject='cn=Smith\\, John + ou=Dev; o="Acme, Inc."; emailAddress=j@a.b'
    )
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Smith, John"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "Dev"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Acme, Inc."
    assert cert.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)[0].value == "j@a.b"
    assert len(cert.subject.rdns) == 3


@pytest.mark.parametrize(
    "subject",
    ["", "   ", "example.com", "CN=", "XX=foo", "CN=a,, O=b", "C=USA", 'CN="unterminated', "CN=trailing\\"],
)
def test_self_signed_certificate_rejects_bad_subject(ec_key: ec.EllipticCurvePrivateKey, subject: str) -> None:
    with pytest.raises(MaterialError):
        material.self_signed_certificate(ec_key, subject=subject)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ekus": ["serverAuth"]},
        {"key_usage": ["digitalsignature"]},
        {"validity_months": 0},
        {"dns_names": ["bücher.example"]},
    ],
)
def test_self_signed_certificate_rejects_bad_options(
    ec_key: ec.EllipticCurvePrivateKey, kwargs: dict[str, object]
) -> None:
    with pytest.raises(MaterialError):
        material.self_signed_certificate(ec_key, subject="CN=a", **kwargs)  # type: ignore[arg-type]


def test_decipher_only_alone_is_issued_as_the_service_does(ec_key: ec.EllipticCurvePrivateKey) -> None:
    """The service accepts key_usage ["decipherOnly"] alone; its certificate's KeyUsage is that one bit, critical
    (recordings-2025 test_policy: 03 03 07 00 80), although cryptography refuses to build such a KeyUsage."""
    cert = material.self_signed_certificate(ec_key, subject="CN=a", key_usage=["decipherOnly"])
    der = cert.public_bytes(serialization.Encoding.DER)
    assert bytes.fromhex("0603551d0f0101ff0405030307008030") in der


def test_san_only_certificate_has_an_empty_subject(ec_key: ec.EllipticCurvePrivateKey) -> None:
    """A policy with only IP-address SANs gets a certificate with an empty subject, as the service issued one."""
    cert = material.self_signed_certificate(ec_key, subject="", sans={"ipAddresses": ["10.0.0.1"], "uris": ["urn:a"]})
    assert cert.subject == x509.Name([])
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.1"]
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["urn:a"]


@pytest.mark.parametrize("key_name", ["rsa_key", "ec_key"])
def test_certificate_signing_request_verifies(key_name: str, request: pytest.FixtureRequest) -> None:
    key: PrivateKey = request.getfixturevalue(key_name)
    der = material.certificate_signing_request(key, subject="CN=csr.example, O=Contoso")
    csr = x509.load_der_x509_csr(der)
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == "CN=csr.example,O=Contoso"
    assert csr.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_x5t_and_cer(ec_key: ec.EllipticCurvePrivateKey) -> None:
    cert = material.self_signed_certificate(ec_key, subject="CN=thumb")
    der = cert.public_bytes(serialization.Encoding.DER)
    thumbprint = material.x5t(cert)
    assert "=" not in thumbprint
    assert thumbprint == base64.urlsafe_b64encode(hashlib.sha1(der).digest()).decode().rstrip("=")
    assert material.b64url_decode(thumbprint) == hashlib.sha1(der).digest()
    assert base64.b64decode(material.cer(cert), validate=True) == der
    assert len(material.cer(cert)) % 4 == 0  # standard base64 keeps its padding


# ---------------------------------------------------------------------------------------------------------------------
# certificate import / export


@pytest.fixture(scope="module")
def chain_material(
    rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> tuple[PrivateKey, x509.Certificate, list[x509.Certificate]]:
    """A leaf (ec_key) plus two unrelated 'chain' certificates (issued by rsa_key and another EC key)."""
    leaf = material.self_signed_certificate(ec_key, subject="CN=leaf.example", dns_names=["leaf.example"])
    ca1 = material.self_signed_certificate(rsa_key, subject="CN=Intermediate CA")
    ca2 = material.self_signed_certificate(material.generate_key("EC", crv="P-384"), subject="CN=Root CA")
    return ec_key, leaf, [ca1, ca2]


def _pem(*items: bytes) -> str:
    return base64.b64encode(b"".join(items)).decode()


def test_pfx_import_without_password(
    chain_material: tuple[PrivateKey, x509.Certificate, list[x509.Certificate]],
) -> None:
    key, leaf, chain = chain_material
    pfx = pkcs12.serialize_key_and_certificates(b"f", key, leaf, chain, serialization.NoEncryption())
    got_key, got_cert, got_chain = material.load_certificate_import(
        base64.b64encode(pfx).decode(), password=None, content_type="application/x-pkcs12"
    )
    assert got_key.private_numbers() == key.private_numbers()
    assert got_cert == leaf
    assert got_chain == chain


def test_pfx_import_with_password_and_wrong_password(
    chain_material: tuple[PrivateKey, x509.Certificate, list[x509.Certificate]],
) -> None:
    key, leaf, _ = chain_material
    pfx = pkcs12.serialize_key_and_certificates(
        None, key, leaf, None, serialization.BestAvailableEncryption(b"s3cret!")
    )
    value = base64.b64encode(pfx).decode().rstrip("=")  # missing padding is tolerated
    got_key, got_cert, got_chain = material.load_certificate_import(value, password="s3cret!", content_type=None)
    assert got_key.private_numbers() == key.private_numbers()
    assert got_cert == leaf
    assert got_chain == []

    with pytest.raises(MaterialError, match="PKCS#12"):
        material.load_certificate_import(value, password="wrong", content_type="application/x-pkcs12")
    with pytest.raises(MaterialError):
        material.load_certificate_import(value, password=None, content_type="application/x-pkcs12")


def test_pfx_import_without_private_key_is_rejected(
    chain_material: tuple[PrivateKey, x509.Certificate, list[x509.Certificate]],
) -> None:
    _, leaf, _ = chain_material
    pfx = pkcs12.serialize_key_and_certificates(None, None, leaf, None, serialization.NoEncryption())
    with pytest.raises(MaterialError, match="[Pp]rivate key"):
        material.load_certificate_import(base64.b64encode(pfx).decode(), password=None, content_type=None)


def test_pem_import_picks_leaf_matching_key_and_returns_chain(
    chain_material: tuple[PrivateKey, x509.Certificate, list[x509.Certificate]],
) -> None:
    key, leaf, chain = chain_material
    ca1, ca2 = chain
    pem = _pem(
        ca1.public_bytes(serialization.Encoding.PEM),
        material.private_key_to_pem(key),
        leaf.public_bytes(serialization.Encoding.PEM),
        ca2.public_bytes(serialization.Encoding.PEM),
    )
    for content_type in ("application/x-pem-file", None):  # explicit or sniffed
        got_key, got_cert, got_chain = material.load_certificate_import(pem, password=None, content_type=content_type)
        assert got_key.private_numbers() == key.private_numbers()
        assert got_cert == leaf
        assert got_chain == [ca1, ca2]


def test_pem_import_with_encrypted_key(rsa_key: rsa.RSAPrivateKey) -> None:
    cert = material.self_signed_certificate(rsa_key, subject="CN=enc")
    key_pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    value = _pem(key_pem, cert.public_bytes(serialization.Encoding.PEM))
    got_key, got_cert, _ = material.load_certificate_import(value, password="pw", content_type="application/x-pem-file")
    assert got_key.private_numbers() == rsa_key.private_numbers()
    assert got_cert == cert
    with pytest.raises(MaterialError):
        material.load_certificate_import(value, password=None, content_type="application/x-pem-file")
    with pytest.raises(MaterialError, match="password"):
        material.load_certificate_import(value, password="nope", content_type="application/x-pem-file")


def test_pem_import_rejections(
    chain_material: tuple[PrivateKey, x509.Certificate, list[x509.Certificate]], rsa_key: rsa.RSAPrivateKey
) -> None:
    key, leaf, chain = chain_material
    leaf_pem = leaf.public_bytes(serialization.Encoding.PEM)
    with pytest.raises(MaterialError, match="Private key is not specified"):
        material.load_certificate_import(_pem(leaf_pem), password=None, content_type="application/x-pem-file")
    with pytest.raises(MaterialError, match="No certificate"):
        material.load_certificate_import(
            _pem(material.private_key_to_pem(key)), password=None, content_type="application/x-pem-file"
        )
    with pytest.raises(MaterialError, match="matches the private key"):
        material.load_certificate_import(
            _pem(material.private_key_to_pem(key), chain[0].public_bytes(serialization.Encoding.PEM)),
            password=None,
            content_type=None,
        )
    with pytest.raises(MaterialError, match="more than one private key"):
        material.load_certificate_import(
            _pem(material.private_key_to_pem(key), material.private_key_to_pem(rsa_key), leaf_pem),
            password=None,
            content_type=None,
        )
    with pytest.raises(MaterialError, match="unexpected format"):
        material.load_certificate_import(
            _pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            password=None,
            content_type="application/x-pem-file",
        )
    with pytest.raises(MaterialError, match="unexpected format"):
        material.load_certificate_import(_pem(b"hello"), password=None, content_type="application/x-pem-file")


@pytest.mark.parametrize("value", ["", "   ", "not base64 at all!", "QUJD", "a"])
def test_import_rejects_garbage(value: str) -> None:
    with pytest.raises(MaterialError):
        material.load_certificate_import(value, password=None, content_type="application/x-pkcs12")


@pytest.mark.parametrize("content_type", ["application/x-pkcs12", "application/x-pem-file"])
def test_export_then_reimport_round_trip(
    chain_material: tuple[PrivateKey, x509.Certificate, list[x509.Certificate]], content_type: str
) -> None:
    key, leaf, chain = chain_material
    secret = material.export_secret_value(key, leaf, chain, content_type=content_type)
    if content_type == "application/x-pem-file":
        assert secret.startswith("-----BEGIN PRIVATE KEY-----")
        assert secret.count("-----BEGIN CERTIFICATE-----") == 3
        assert secret.index(leaf.public_bytes(serialization.Encoding.PEM).decode()) < secret.index(
            chain[0].public_bytes(serialization.Encoding.PEM).decode()
        )
        value = base64.b64encode(secret.encode()).decode()
        # Raw PEM text is tolerated as well as base64 of it.
        raw = material.load_certificate_import(secret, password=None, content_type=content_type)
        assert material.x5t(raw[1]) == material.x5t(leaf)
    else:
        value = secret
        opened = pkcs12.load_key_and_certificates(base64.b64decode(secret, validate=True), None)
        assert opened[1] == leaf
    got_key, got_cert, got_chain = material.load_certificate_import(value, password=None, content_type=content_type)
    assert material.x5t(got_cert) == material.x5t(leaf)
    assert got_key.private_numbers() == key.private_numbers()
    assert [material.x5t(c) for c in got_chain] == [material.x5t(c) for c in chain]


def test_export_rejects_unknown_content_type(
    chain_material: tuple[PrivateKey, x509.Certificate, list[x509.Certificate]],
) -> None:
    key, leaf, chain = chain_material
    with pytest.raises(MaterialError):
        material.export_secret_value(key, leaf, chain, content_type="application/json")
