"""People's data: the minimum the gate keeps about a person.

An ID number is never stored: a person is `person_ref`, a keyed hash (HMAC-SHA256)
of the normalised ID number under the township's salt, so the same person has the
same reference on every gate and in every code the township signs, and a leaked
database cannot be reversed by hashing every possible ID number without the salt.
Names are shown masked (张*三).
"""
from __future__ import annotations

import hashlib
import hmac
import unicodedata

REF_PREFIX = "p1:"  # versioned, so the scheme can change without ambiguity


def normalise_id(id_number: str) -> str:
    """Upper-case, no spaces or dashes: '11010519491231002x' == '110105 19491231 002X'."""
    text = unicodedata.normalize("NFKC", id_number)
    return "".join(ch for ch in text if ch.isalnum()).upper()


def person_ref(id_number: str, salt: bytes | str) -> str:
    """The stable, non-reversible reference for an ID number."""
    key = salt.encode() if isinstance(salt, str) else salt
    if not key:
        raise ValueError("person_ref needs a non-empty salt")
    digest = hmac.new(key, normalise_id(id_number).encode(), hashlib.sha256).hexdigest()
    return REF_PREFIX + digest[:32]


def mask_name(name: str) -> str:
    """张三丰 -> 张*丰, 张三 -> 张*, John Smith -> J*** S****: enough for a guard to recognise."""
    name = name.strip()
    if not name:
        return ""
    if " " in name:
        return " ".join(w[0] + "*" * (len(w) - 1) for w in name.split())
    if len(name) == 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_id(id_number: str) -> str:
    """110105********002X: for the rare screen that must show an ID number at all."""
    n = normalise_id(id_number)
    if len(n) <= 8:
        return "*" * len(n)
    return n[:6] + "*" * (len(n) - 10) + n[-4:]
