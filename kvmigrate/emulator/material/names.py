"""X.500 subjects: parsing the text of a certificate policy, and writing a name back as Key Vault does."""

from __future__ import annotations

import re
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from kvmigrate.emulator.material.base import MaterialError

# X.500 attribute short names accepted in subjects (matched case-insensitively).
_NAME_ATTRIBUTES: dict[str, x509.ObjectIdentifier] = {
    "CN": NameOID.COMMON_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "L": NameOID.LOCALITY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "S": NameOID.STATE_OR_PROVINCE_NAME,
    "C": NameOID.COUNTRY_NAME,
    "E": NameOID.EMAIL_ADDRESS,
    "EMAIL": NameOID.EMAIL_ADDRESS,
    "EMAILADDRESS": NameOID.EMAIL_ADDRESS,
    "STREET": NameOID.STREET_ADDRESS,
    "DC": NameOID.DOMAIN_COMPONENT,
    "UID": NameOID.USER_ID,
    "SERIALNUMBER": NameOID.SERIAL_NUMBER,
    "T": NameOID.TITLE,
    "TITLE": NameOID.TITLE,
    "G": NameOID.GIVEN_NAME,
    "GN": NameOID.GIVEN_NAME,
    "GIVENNAME": NameOID.GIVEN_NAME,
    "SN": NameOID.SURNAME,
}
DOTTED_OID_RE = re.compile(r"^(0|[1-9]\d*)(\.(0|[1-9]\d*))+$")


def _split_unescaped(text: str, separators: str) -> list[str]:
    """Split on separators that are neither backslash-escaped nor inside double quotes (escapes are kept)."""
    parts: list[str] = []
    current: list[str] = []
    in_quotes = False
    escaped = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == '"':
            current.append(char)
            in_quotes = not in_quotes
        elif char in separators and not in_quotes:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if in_quotes or escaped:
        raise MaterialError("unbalanced quote or dangling escape")
    parts.append("".join(current))
    return parts


def _unescape_value(raw: str) -> str:
    """Turn an RFC 4514-style attribute value (optionally quoted, with \\X or \\HH escapes) into text."""
    value = raw.strip()
    if value.endswith("\\") and raw.rstrip() != raw:
        value += " "  # an escaped trailing space was cut by strip()
    if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
        value = value[1:-1]
    out = bytearray()
    i = 0
    while i < len(value):
        char = value[i]
        if char == "\\":
            if i + 1 >= len(value):
                raise MaterialError("dangling escape")
            pair = value[i + 1 : i + 3]
            if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
                out.append(int(pair, 16))
                i += 3
                continue
            out.extend(value[i + 1].encode("utf-8"))
            i += 2
            continue
        if char == '"':
            raise MaterialError("unexpected quote")
        out.extend(char.encode("utf-8"))
        i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MaterialError("invalid UTF-8 in escaped value") from exc


def parse_subject(subject: str) -> x509.Name:
    """Parse an X.500 subject such as "CN=a, O=b" into an x509.Name.

    RDNs are separated by ',' or ';' and multi-valued RDNs by '+'. As in RFC 4514 the first RDN written is the
    most specific, i.e. the last one encoded, so ``Name.rfc4514_string()`` reads back in the order given.
    """
    if not isinstance(subject, str) or not subject.strip():
        raise MaterialError("The certificate subject must not be empty.")
    try:
        rdns: list[x509.RelativeDistinguishedName] = []
        for rdn_text in _split_unescaped(subject, ",;"):
            attributes: list[x509.NameAttribute[str]] = []
            for ava in _split_unescaped(rdn_text, "+"):
                name, sep, raw_value = ava.partition("=")
                name = name.strip()
                if not sep or not name:
                    raise MaterialError(f"'{ava.strip()}' is not of the form NAME=value")
                oid = _NAME_ATTRIBUTES.get(name.upper())
                if oid is None:
                    if not DOTTED_OID_RE.match(name):
                        raise MaterialError(f"unknown attribute '{name}'")
                    oid = x509.ObjectIdentifier(name)
                value = _unescape_value(raw_value)
                if not value:
                    raise MaterialError(f"attribute '{name}' has an empty value")
                attributes.append(x509.NameAttribute(oid, value))
            rdns.append(x509.RelativeDistinguishedName(attributes))
        return x509.Name(list(reversed(rdns)))
    except (MaterialError, ValueError) as exc:
        raise MaterialError(
            f"The certificate subject '{subject}' is not a valid X.500 distinguished name: {exc}"
        ) from exc


# Subject attribute names as Key Vault writes them (.NET style: "S" for the state, "E" for e-mail).
_LABELS = {
    NameOID.COMMON_NAME: "CN",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.LOCALITY_NAME: "L",
    NameOID.STATE_OR_PROVINCE_NAME: "S",
    NameOID.COUNTRY_NAME: "C",
    NameOID.EMAIL_ADDRESS: "E",
    NameOID.STREET_ADDRESS: "STREET",
    NameOID.DOMAIN_COMPONENT: "DC",
    NameOID.SERIAL_NUMBER: "SERIALNUMBER",
    NameOID.TITLE: "T",
    NameOID.GIVEN_NAME: "G",
    NameOID.SURNAME: "SN",
}


def subject_text(name: x509.Name) -> str:
    """Write a subject as Key Vault does: most specific RDN first, ``", "`` between RDNs (recording: O=…, S=…, C=…)."""

    def label(attribute: x509.NameAttribute[Any]) -> str:
        value = attribute.value if isinstance(attribute.value, str) else attribute.value.decode("latin-1")
        if any(char in value for char in ',+="<>#;\n') or value != value.strip():
            value = '"' + value.replace('"', '""') + '"'
        return f"{_LABELS.get(attribute.oid, 'OID.' + attribute.oid.dotted_string)}={value}"

    return ", ".join(" + ".join(label(a) for a in rdn) for rdn in reversed(list(name.rdns)))
