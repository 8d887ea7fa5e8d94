"""The trust list: the public keys whose signatures the gate accepts, and for what.

JSON: `{"keys": [entry, ...], "fetched_at": ISO-time?}`, each entry with either
`certificate` (base64 DER X.509) or `public_key` (PEM), `purposes` (a non-empty list of
health, pass, dcc: a key signs only what it is listed for, so an entry without them is
refused), and optional `kid` (base64; computed when absent), `not_before`, `not_after`
(ISO times), `label`. One bad entry is reported in `problems` and skipped:
the rest of the list still protects the gate. The list knows its age and is flagged
stale beyond a limit, but still used: an offline gate keeps working on what it has.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from . import cose
from .claims import KINDS

DEFAULT_MAX_AGE = dt.timedelta(days=7)


class TrustListError(ValueError):
    """The trust list as a whole cannot be read."""


def kid_of(der: bytes) -> bytes:
    """Key id: the first 8 bytes of the SHA-256 of a certificate or SubjectPublicKeyInfo (DER)."""
    return hashlib.sha256(der).digest()[:8]


def spki_der(public_key: Any) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def kid_of_public_key(public_key: Any) -> bytes:
    return kid_of(spki_der(public_key))


def parse_time(value: str) -> dt.datetime:
    """ISO 8601; a time without zone is UTC (the gate stores UTC)."""
    when = dt.datetime.fromisoformat(value.strip())
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class TrustedKey:
    kid: bytes
    public_key: Any
    purposes: frozenset[str] = frozenset()  # least privilege: nothing unless listed
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None
    label: str = ""

    def allows(self, purpose: str) -> bool:
        return purpose in self.purposes

    def in_force(self, at: dt.datetime) -> bool:
        return ((self.not_before is None or at >= self.not_before)
                and (self.not_after is None or at <= self.not_after))

    @property
    def alg_name(self) -> str:
        return cose.ALG_NAMES.get(cose.alg_for_key(self.public_key), "?")


def entry_for(public_key: Any, purposes: list[str], label: str = "",
              not_before: dt.datetime | None = None,
              not_after: dt.datetime | None = None) -> dict:
    """A trust-list entry (JSON) for a bare public key, trusted for `purposes` only."""
    pem = public_key.public_bytes(serialization.Encoding.PEM,
                                  serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    entry: dict[str, Any] = {"kid": base64.b64encode(kid_of_public_key(public_key)).decode(),
                             "public_key": pem, "purposes": list(purposes)}
    if label:
        entry["label"] = label
    if not_before:
        entry["not_before"] = not_before.isoformat()
    if not_after:
        entry["not_after"] = not_after.isoformat()
    return entry


def key_from_entry(entry: Any) -> TrustedKey:
    """One JSON entry -> TrustedKey. Raises ValueError with what is wrong."""
    if not isinstance(entry, dict):
        raise ValueError("entry must be an object")
    public_key: Any
    if "certificate" in entry:
        try:
            der = base64.b64decode(entry["certificate"], validate=True)
            public_key = x509.load_der_x509_certificate(der).public_key()
        except (TypeError, ValueError, binascii.Error) as exc:
            raise ValueError(f"certificate is not base64 DER X.509: {exc}") from None
        computed_kid = kid_of(der)
    elif "public_key" in entry:
        try:
            public_key = serialization.load_pem_public_key(str(entry["public_key"]).encode())
        except (TypeError, ValueError) as exc:
            raise ValueError(f"public_key is not a PEM public key: {exc}") from None
        computed_kid = kid_of_public_key(public_key)
    else:
        raise ValueError("entry needs a certificate or a public_key")
    try:
        cose.alg_for_key(public_key)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    kid = computed_kid
    if entry.get("kid") is not None:
        try:
            kid = base64.b64decode(entry["kid"], validate=True)
        except (TypeError, ValueError, binascii.Error):
            raise ValueError("kid is not base64") from None
        if not kid:
            raise ValueError("kid is empty")
    purposes = entry.get("purposes")
    if purposes is None:
        raise ValueError(f"no purposes: a key signs only what it is listed for ({', '.join(KINDS)})")
    if not isinstance(purposes, list) or not purposes or any(p not in KINDS for p in purposes):
        raise ValueError(f"purposes must be a non-empty list of {', '.join(KINDS)}")
    times = {}
    for name in ("not_before", "not_after"):
        if entry.get(name) is not None:
            try:
                times[name] = parse_time(str(entry[name]))
            except ValueError:
                raise ValueError(f"{name} is not an ISO time") from None
    return TrustedKey(kid=kid, public_key=public_key, purposes=frozenset(purposes),
                      label=str(entry.get("label") or ""), **times)


@dataclass
class TrustList:
    keys: list[TrustedKey] = field(default_factory=list)
    fetched_at: dt.datetime | None = None  # None: age unknown, counted as stale
    problems: list[str] = field(default_factory=list)
    source: str = ""

    def __post_init__(self) -> None:
        self._by_kid: dict[bytes, list[TrustedKey]] = {}
        for key in self.keys:
            self._by_kid.setdefault(key.kid, []).append(key)

    def by_kid(self, kid: bytes | None) -> list[TrustedKey]:
        """Every key with this kid: kids are 8 bytes, so two signers may share one."""
        return list(self._by_kid.get(kid, [])) if kid else []

    def age(self, now: dt.datetime) -> dt.timedelta | None:
        return None if self.fetched_at is None else now - self.fetched_at

    def is_stale(self, now: dt.datetime, max_age: dt.timedelta = DEFAULT_MAX_AGE) -> bool:
        age = self.age(now)
        return age is None or age > max_age

    @classmethod
    def from_json(cls, obj: Any, fetched_at: dt.datetime | None = None,
                  source: str = "") -> TrustList:
        """From parsed JSON (a file, or the township server's answer via sync)."""
        if not isinstance(obj, dict) or not isinstance(obj.get("keys"), list):
            raise TrustListError('a trust list is a JSON object {"keys": [...]}')
        if fetched_at is None and obj.get("fetched_at"):
            try:
                fetched_at = parse_time(str(obj["fetched_at"]))
            except ValueError:
                raise TrustListError("fetched_at is not an ISO time") from None
        keys, problems = [], []
        for index, entry in enumerate(obj["keys"]):
            try:
                keys.append(key_from_entry(entry))
            except ValueError as exc:
                label = entry.get("label") if isinstance(entry, dict) else None
                problems.append(f"entry {index}{f' ({label})' if label else ''}: {exc}")
        return cls(keys=keys, fetched_at=fetched_at, problems=problems, source=source)

    @classmethod
    def load(cls, path: str | Path) -> TrustList:
        """From a file; its age is the file's modification time unless it says fetched_at."""
        path = Path(path)
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
            mtime = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
        except OSError as exc:
            raise TrustListError(f"cannot read trust list {path}: {exc.strerror}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise TrustListError(f"trust list {path} is not JSON: {exc}") from None
        fetched = None if isinstance(obj, dict) and obj.get("fetched_at") else mtime
        return cls.from_json(obj, fetched_at=fetched, source=str(path))
