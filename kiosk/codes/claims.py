"""The kinds of code and their claims: township health code, resident pass, EU DCC.

All three ride in the same HC1/CWT container. Ours carry a private-use CWT claim
(`GATE_CLAIM`, a map whose "k" names the kind); an EU certificate carries the EU
`hcert` claim (-260). Times are CWT NumericDates (seconds since the epoch, UTC).
See docs/codes.md for the formats.
"""
from __future__ import annotations

import base64
import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ..people import mask_name
from .hc1 import EXP, IAT, ISS, NBF

GATE_CLAIM = -70000   # private use (< -65536, RFC 8392): {"k": kind, "v": 1, ...}
HCERT_CLAIM = -260    # EU: {1: DCC}
FORMAT_VERSION = 1

HEALTH, PASS, DCC = "health", "pass", "dcc"
KINDS = (HEALTH, PASS, DCC)
COLOURS = ("green", "yellow", "red")
NAT_RESULTS = ("negative", "positive")
MAX_TEXT = 200


class ClaimsError(ValueError):
    """Signed or not, the payload is not a well-formed code of a kind we know."""


def to_numeric_date(when: dt.datetime) -> int:
    return int(when.timestamp())


def from_numeric_date(value: Any, name: str) -> dt.datetime:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ClaimsError(f"{name} must be a NumericDate")
    try:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    except (OverflowError, OSError, ValueError):
        raise ClaimsError(f"{name} is out of range") from None


def _optional_date(value: Any, name: str) -> dt.datetime | None:
    return None if value is None else from_numeric_date(value, name)


def _text(fields: dict, key: str, name: str) -> str:
    value = fields.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        raise ClaimsError(f"{name} must be non-empty text of at most {MAX_TEXT} characters")
    return value


def _iso(when: dt.datetime | None) -> str | None:
    return when.isoformat().replace("+00:00", "Z") if when else None


@dataclass(frozen=True)
class HealthCode:
    """A township health code: a short-lived, signed statement of a person's colour."""
    kind: ClassVar[str] = HEALTH
    person_ref: str
    name: str  # masked (张*三), never the full name
    colour: str
    issued_at: dt.datetime
    expires_at: dt.datetime | None = None
    nat_at: dt.datetime | None = None  # last nucleic-acid test
    nat_result: str | None = None
    issuer: str | None = None

    @property
    def not_before(self) -> dt.datetime:
        return self.issued_at

    def to_cwt(self) -> dict:
        fields: dict[str, Any] = {"k": HEALTH, "v": FORMAT_VERSION, "p": self.person_ref,
                                  "n": mask_name(self.name), "c": self.colour}
        if self.nat_at is not None:
            fields["nt"] = to_numeric_date(self.nat_at)
        if self.nat_result is not None:
            fields["nr"] = self.nat_result
        return _cwt(self.issuer, self.issued_at, None, self.expires_at, fields)

    @classmethod
    def from_cwt(cls, claims: dict) -> HealthCode:
        fields = claims[GATE_CLAIM]
        colour = fields.get("c")
        if colour not in COLOURS:
            raise ClaimsError(f"colour must be one of {', '.join(COLOURS)}")
        nat_result = fields.get("nr")
        if nat_result is not None and nat_result not in NAT_RESULTS:
            raise ClaimsError(f"nucleic-acid result must be one of {', '.join(NAT_RESULTS)}")
        if claims.get(IAT) is None:
            raise ClaimsError("a health code needs its issue time (iat)")
        return cls(person_ref=_text(fields, "p", "person reference"),
                   name=_text(fields, "n", "name"), colour=colour,
                   issued_at=from_numeric_date(claims[IAT], "iat"),
                   expires_at=_optional_date(claims.get(EXP), "exp"),
                   nat_at=_optional_date(fields.get("nt"), "nucleic-acid test time"),
                   nat_result=nat_result, issuer=claims.get(ISS))

    def to_json(self) -> dict:
        return {"person_ref": self.person_ref, "name": self.name, "colour": self.colour,
                "nat_at": _iso(self.nat_at), "nat_result": self.nat_result,
                "issued_at": _iso(self.issued_at), "expires_at": _iso(self.expires_at),
                "issuer": self.issuer}


@dataclass(frozen=True)
class ResidentPass:
    """A resident pass (出入证) for one person of one household, revocable by serial."""
    kind: ClassVar[str] = PASS
    community: str
    household: str
    person_ref: str
    serial: str
    valid_from: dt.datetime
    valid_until: dt.datetime
    issued_at: dt.datetime | None = None
    issuer: str | None = None

    @property
    def not_before(self) -> dt.datetime:
        return self.valid_from

    @property
    def expires_at(self) -> dt.datetime:
        return self.valid_until

    def to_cwt(self) -> dict:
        fields = {"k": PASS, "v": FORMAT_VERSION, "cm": self.community, "hh": self.household,
                  "p": self.person_ref, "sn": self.serial}
        return _cwt(self.issuer, self.issued_at, self.valid_from, self.valid_until, fields)

    @classmethod
    def from_cwt(cls, claims: dict) -> ResidentPass:
        fields = claims[GATE_CLAIM]
        if claims.get(NBF) is None or claims.get(EXP) is None:
            raise ClaimsError("a pass needs valid-from (nbf) and valid-until (exp)")
        return cls(community=_text(fields, "cm", "community"),
                   household=_text(fields, "hh", "household"),
                   person_ref=_text(fields, "p", "person reference"),
                   serial=_text(fields, "sn", "serial"),
                   valid_from=from_numeric_date(claims[NBF], "nbf"),
                   valid_until=from_numeric_date(claims[EXP], "exp"),
                   issued_at=_optional_date(claims.get(IAT), "iat"), issuer=claims.get(ISS))

    def to_json(self) -> dict:
        return {"community": self.community, "household": self.household,
                "person_ref": self.person_ref, "serial": self.serial,
                "valid_from": _iso(self.valid_from), "valid_until": _iso(self.valid_until),
                "issued_at": _iso(self.issued_at), "issuer": self.issuer}


@dataclass(frozen=True)
class ForeignCertificate:
    """An EU Digital COVID Certificate: verified as signed, never turned into a colour here."""
    kind: ClassVar[str] = DCC
    certificate: dict  # the DCC as JSON-able data
    issuer: str | None = None  # country
    issued_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    not_before: dt.datetime | None = None

    @classmethod
    def from_cwt(cls, claims: dict) -> ForeignCertificate:
        hcert = claims[HCERT_CLAIM]
        if not isinstance(hcert, Mapping) or not isinstance(hcert.get(1), Mapping):
            raise ClaimsError("EU hcert claim must be a map holding the certificate at key 1")
        return cls(certificate=jsonable(hcert[1]), issuer=claims.get(ISS),
                   issued_at=_optional_date(claims.get(IAT), "iat"),
                   expires_at=_optional_date(claims.get(EXP), "exp"),
                   not_before=_optional_date(claims.get(NBF), "nbf"))

    @property
    def entry_type(self) -> str | None:
        for key, name in (("v", "vaccination"), ("t", "test"), ("r", "recovery")):
            if self.certificate.get(key):
                return name
        return None

    def to_json(self) -> dict:
        """What the guard needs: the type, who (masked) and when; not the whole record."""
        nam = self.certificate.get("nam")
        names: dict = nam if isinstance(nam, dict) else {}
        full = " ".join(str(names[k]) for k in ("gn", "fn") if names.get(k))
        return {"type": self.entry_type, "name": mask_name(full) if full else None,
                "dob": self.certificate.get("dob"), "issuer": self.issuer,
                "issued_at": _iso(self.issued_at), "expires_at": _iso(self.expires_at)}


Token = HealthCode | ResidentPass | ForeignCertificate


def parse(claims: dict) -> Token:
    """CWT claims -> the code they describe. Raises ClaimsError."""
    if GATE_CLAIM in claims:
        fields = claims[GATE_CLAIM]
        if not isinstance(fields, Mapping):
            raise ClaimsError("gate claim must be a map")
        if fields.get("v") != FORMAT_VERSION:
            raise ClaimsError(f"unsupported gate code format version {fields.get('v')!r}")
        kind = fields.get("k")
        if kind == HEALTH:
            return HealthCode.from_cwt(claims)
        if kind == PASS:
            return ResidentPass.from_cwt(claims)
        raise ClaimsError(f"unknown kind {kind!r}")
    if HCERT_CLAIM in claims:
        return ForeignCertificate.from_cwt(claims)
    raise ClaimsError("no kind claim: neither a gate code nor an EU certificate")


def _cwt(issuer: str | None, iat: dt.datetime | None, nbf: dt.datetime | None,
         exp: dt.datetime | None, fields: dict) -> dict:
    claims: dict[int, Any] = {}
    if issuer:
        claims[ISS] = issuer
    for key, when in ((IAT, iat), (NBF, nbf), (EXP, exp)):
        if when is not None:
            claims[key] = to_numeric_date(when)
    claims[GATE_CLAIM] = fields
    return claims


def jsonable(value: Any, depth: int = 0) -> Any:
    """CBOR data -> JSON data (dates as ISO text, bytes as base64), bounded in depth."""
    if depth > 40:
        raise ClaimsError("claims nest too deeply")
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v, depth + 1) for v in value]
    return str(value)
