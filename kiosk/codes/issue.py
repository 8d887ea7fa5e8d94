"""Issuing codes: the township side, the tests and the demo."""
from __future__ import annotations

import datetime as dt
from typing import Any

import cbor2

from . import cose, hc1
from .claims import HealthCode, ResidentPass
from .trust import kid_of_public_key

DEFAULT_HEALTH_VALIDITY = dt.timedelta(minutes=5)


def sign_claims(claims: dict, private_key: Any, kid: bytes | None = None,
                kid_protected: bool = True) -> str:
    """Any CWT claims -> HC1 text. The kid defaults to that of the key's public half."""
    kid = kid if kid is not None else kid_of_public_key(private_key.public_key())
    return hc1.encode(cose.sign(cbor2.dumps(claims), private_key, kid,
                                kid_protected=kid_protected))


def health_code(private_key: Any, *, person_ref: str, name: str, colour: str,
                issued_at: dt.datetime | None = None,
                valid_for: dt.timedelta | None = DEFAULT_HEALTH_VALIDITY,
                nat_at: dt.datetime | None = None, nat_result: str | None = None,
                issuer: str | None = None) -> str:
    """A signed health code. The name is stored masked (张*三), never in full."""
    issued_at = issued_at or dt.datetime.now(dt.UTC)
    code = HealthCode(person_ref=person_ref, name=name, colour=colour, issued_at=issued_at,
                      expires_at=issued_at + valid_for if valid_for else None, nat_at=nat_at,
                      nat_result=nat_result, issuer=issuer)
    claims = code.to_cwt()
    HealthCode.from_cwt(claims)  # refuse to sign what no gate would accept
    return sign_claims(claims, private_key)


def resident_pass(private_key: Any, *, community: str, household: str, person_ref: str,
                  serial: str, valid_from: dt.datetime, valid_until: dt.datetime,
                  issued_at: dt.datetime | None = None, issuer: str | None = None) -> str:
    if valid_until <= valid_from:
        raise ValueError("valid_until must be after valid_from")
    code = ResidentPass(community=community, household=household, person_ref=person_ref,
                        serial=serial, valid_from=valid_from, valid_until=valid_until,
                        issued_at=issued_at or dt.datetime.now(dt.UTC), issuer=issuer)
    claims = code.to_cwt()
    ResidentPass.from_cwt(claims)
    return sign_claims(claims, private_key)
