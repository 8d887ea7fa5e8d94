"""The verifier: scanned text in, a verdict with exactly one reason out. Offline.

Order of checks, first failure wins:
  not_a_code -> bad_encoding -> unknown_key -> bad_signature -> wrong_purpose
  -> revoked -> wrong_community -> not_yet_valid -> too_old -> expired
Claims are shown only once the signature is good: a forged code's name means nothing.
A valid health code says the token is genuine and fresh; its colour is for the rules.
"""
from __future__ import annotations

import base64
import datetime as dt
import enum
import logging
from dataclasses import dataclass, field
from typing import Any

from .. import reasons
from . import claims as kinds
from . import cose, hc1
from .revocation import RevocationList
from .trust import DEFAULT_MAX_AGE, TrustedKey, TrustList

log = logging.getLogger("gate.codes")


class Reason(str, enum.Enum):
    NOT_A_CODE = "not_a_code"
    BAD_ENCODING = "bad_encoding"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    WRONG_PURPOSE = "wrong_purpose"
    REVOKED = "revoked"
    WRONG_COMMUNITY = "wrong_community"
    NOT_YET_VALID = "not_yet_valid"
    TOO_OLD = "too_old"
    EXPIRED = "expired"


def reason_text(reason: Reason | str | None, lang: str | None = None) -> str:
    """The verdict in the guard's words (kiosk/reasons.py; language: `lang` or $GATE_LANG)."""
    return reasons.text(reasons.CODE_TEXT, Reason(reason).value if reason is not None else "valid", lang)


@dataclass(frozen=True)
class VerifyOptions:
    """How strict this gate's verifier is (the rules' policy is kiosk.rules.GatePolicy)."""
    max_age: dt.timedelta = dt.timedelta(minutes=5)  # a health code older than this: screenshot
    clock_skew: dt.timedelta = dt.timedelta(seconds=60)  # phones' and the Pi's clocks differ
    community: str | None = None  # this gate's community: passes for others are refused
    trust_max_age: dt.timedelta = DEFAULT_MAX_AGE
    # The colour a valid EU certificate counts as, only if the township's policy says so;
    # by default a DCC is verified as a foreign certificate and given no colour.
    dcc_colour: str | None = None


@dataclass(frozen=True)
class VerifyResult:
    valid: bool
    kind: str  # health, pass, dcc, or unknown
    reason: Reason | None
    claims: dict = field(default_factory=dict)
    detail: str = ""  # technical, English, for logs
    kid: str | None = None  # base64
    signer: str = ""
    trust_stale: bool = False
    token: Any = field(default=None, compare=False, repr=False)

    def message(self, lang: str | None = None) -> str:
        return reason_text(self.reason, lang)

    def to_json(self, lang: str | None = None) -> dict:
        return {"valid": self.valid, "kind": self.kind,
                "reason": self.reason.value if self.reason else None,
                "claims": self.claims, "message": self.message(lang), "detail": self.detail,
                "kid": self.kid, "signer": self.signer, "trust_stale": self.trust_stale}


class Refused(Exception):
    def __init__(self, reason: Reason, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Verifier:
    def __init__(self, trust: TrustList, revoked: RevocationList | None = None,
                 options: VerifyOptions | None = None):
        self.trust = trust
        self.revoked = revoked or RevocationList()
        self.options = options or VerifyOptions()

    def verify(self, text: str | bytes, at: dt.datetime | None = None) -> VerifyResult:
        """Never raises: whatever the camera read, the answer is a verdict with a reason."""
        at = at or now_utc()
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
        stale = self.trust.is_stale(at, self.options.trust_max_age)
        try:
            return self._verify(text, at, stale)
        except Exception as exc:  # a bug here must not stop the queue at the gate
            log.exception("verifier failed on a %s input", type(text).__name__)
            return VerifyResult(False, "unknown", Reason.BAD_ENCODING,
                                detail=f"internal error: {type(exc).__name__}",
                                trust_stale=stale)

    def _verify(self, text: str | bytes, at: dt.datetime, stale: bool) -> VerifyResult:
        kind, kid_text, signer, token = "unknown", None, "", None
        try:
            container = hc1.decode(_as_text(text))
            kid = container.message.kid
            kid_text = base64.b64encode(kid).decode() if kid else None
            try:
                token = kinds.parse(container.claims)
            except kinds.ClaimsError as exc:
                raise Refused(Reason.BAD_ENCODING, f"claims: {exc}") from None
            kind = token.kind
            key = self.authenticate(container.message, kind, at)
            signer = key.label or key.alg_name
            self.check(token, at)
        except hc1.ContainerError as exc:
            reason = Reason.NOT_A_CODE if exc.step == hc1.UNPREFIX else Reason.BAD_ENCODING
            return VerifyResult(False, kind, reason, detail=f"{exc.step}: {exc}",
                                trust_stale=stale)
        except Refused as refusal:
            # The claims of a genuine code help the guard (whose pass was revoked);
            # those of an unauthenticated one are not shown.
            shown = token.to_json() if token is not None and signer else {}
            return VerifyResult(False, kind, refusal.reason, shown, refusal.detail, kid_text,
                                signer, stale, token if signer else None)
        shown = token.to_json()
        if kind == kinds.DCC and self.options.dcc_colour:
            shown["colour"] = self.options.dcc_colour
        return VerifyResult(True, kind, None, shown, "", kid_text, signer, stale, token)

    def authenticate(self, message: cose.Sign1, kind: str, at: dt.datetime) -> TrustedKey:
        """The trusted key that signed this message for this kind of code, or Refused."""
        if message.kid is None:
            raise Refused(Reason.UNKNOWN_KEY, "the code names no key id (kid)")
        kid = message.kid.hex()[:32]  # a forged kid may be long: keep the log line short
        candidates = self.trust.by_kid(message.kid)
        if not candidates:
            raise Refused(Reason.UNKNOWN_KEY,
                          f"kid {kid} is not in the trust list")
        in_force = [key for key in candidates if key.in_force(at)]
        if not in_force:
            raise Refused(Reason.UNKNOWN_KEY,
                          f"kid {kid}: key outside its not_before/not_after")
        if message.alg not in cose.ALG_NAMES:
            raise Refused(Reason.BAD_SIGNATURE, f"unsupported algorithm {message.alg!r}")
        signers = [key for key in in_force if cose.verify_signature(message, key.public_key)]
        if not signers:
            raise Refused(Reason.BAD_SIGNATURE,
                          f"signature does not verify with the {len(in_force)} key(s) "
                          f"of kid {kid}")
        for key in signers:
            if key.allows(kind):
                return key
        raise Refused(Reason.WRONG_PURPOSE,
                      f"key is trusted for {', '.join(sorted(signers[0].purposes))}, not {kind}")

    def check(self, token: kinds.Token, at: dt.datetime) -> None:
        """The checks that need a genuine token: revocation, community, time."""
        options = self.options
        if isinstance(token, kinds.ResidentPass):
            if token.serial in self.revoked:
                raise Refused(Reason.REVOKED, f"pass serial {token.serial} is revoked")
            if options.community is not None and token.community != options.community:
                raise Refused(Reason.WRONG_COMMUNITY,
                              f"pass for {token.community}, this gate is {options.community}")
        skew = options.clock_skew
        starts = max((t for t in (token.not_before, token.issued_at) if t is not None),
                     default=None)
        if starts is not None and at + skew < starts:
            raise Refused(Reason.NOT_YET_VALID, f"valid from {starts.isoformat()}")
        if isinstance(token, kinds.HealthCode) and at - token.issued_at > options.max_age + skew:
            age = int((at - token.issued_at).total_seconds())
            raise Refused(Reason.TOO_OLD, f"issued {age} s ago, "
                          f"limit {int(options.max_age.total_seconds())} s")
        if token.expires_at is not None and at - skew > token.expires_at:
            raise Refused(Reason.EXPIRED, f"expired at {token.expires_at.isoformat()}")


def _as_text(text: str | bytes) -> str:
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            return bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise hc1.ContainerError(hc1.UNPREFIX, "binary data, not text") from None
    if not isinstance(text, str):
        raise hc1.ContainerError(hc1.UNPREFIX, f"not text but {type(text).__name__}")
    return text


def verify(text: str | bytes, trust: TrustList, at: dt.datetime | None = None,
           revoked: RevocationList | None = None, options: VerifyOptions | None = None) -> VerifyResult:
    return Verifier(trust, revoked, options).verify(text, at)
