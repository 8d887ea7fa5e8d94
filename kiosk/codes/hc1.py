"""The HC1 container, as in the EU Digital COVID Certificate.

    "HC1:" + base45( zlib( COSE_Sign1( CWT claims ) ) )

Each layer fails with a `ContainerError` naming its step, so a refusal can say where
the text stopped being a code. Sizes are bounded: a QR code holds at most 4,296
alphanumeric characters, and a tiny deflate stream must not inflate into megabytes.
"""
from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import base45, cose

PREFIX = "HC1:"
MAX_TEXT = 8_000
MAX_INFLATED = 64 * 1024

# CBOR web token claim keys (RFC 8392)
ISS, EXP, NBF, IAT = 1, 4, 5, 6

UNPREFIX, BASE45, COMPRESSION, DECODE = "unprefix", "base45", "compression", "decode"


class ContainerError(ValueError):
    def __init__(self, step: str, message: str):
        super().__init__(message)
        self.step = step


@dataclass(frozen=True)
class Container:
    """A decoded code, not yet trusted: the COSE message and its CWT claims."""
    message: cose.Sign1
    claims: dict[int | str, Any]


def unprefix(text: str) -> str:
    if not isinstance(text, str):
        raise ContainerError(UNPREFIX, "not text")
    text = text.strip()
    if len(text) > MAX_TEXT:
        raise ContainerError(UNPREFIX, f"{len(text)} characters is longer than any QR code")
    if not text.startswith(PREFIX):
        raise ContainerError(UNPREFIX, f"does not start with {PREFIX!r}")
    return text[len(PREFIX):]


def inflate(data: bytes) -> bytes:
    """zlib is required (the EU spec and its test cases refuse uncompressed payloads), and
    it must be the whole text: bytes after the stream would make two texts one code."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_INFLATED)
    except zlib.error as exc:
        raise ContainerError(COMPRESSION, f"not zlib data: {exc}") from None
    if inflater.unconsumed_tail:
        raise ContainerError(COMPRESSION, f"inflates to more than {MAX_INFLATED} bytes")
    if not inflater.eof:
        raise ContainerError(COMPRESSION, "zlib stream is truncated")
    if inflater.unused_data:  # one text, one meaning: nothing may ride along unverified
        raise ContainerError(COMPRESSION, f"{len(inflater.unused_data)} bytes after the zlib stream")
    return out


def parse_claims(payload: bytes) -> dict[int | str, Any]:
    try:
        claims = cose.loads_strict(payload)
    except cose.CoseError as exc:
        raise ContainerError(DECODE, f"CWT payload: {exc}") from None
    if not isinstance(claims, Mapping):
        raise ContainerError(DECODE, "CWT payload must be a map of claims")
    for key, kind in ((ISS, str), (EXP, (int, float)), (NBF, (int, float)), (IAT, (int, float))):
        value = claims.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise ContainerError(DECODE, f"CWT claim {key} has the wrong type")
    return dict(claims)


def decode(text: str) -> Container:
    """Text as scanned -> COSE message and claims. Raises ContainerError, nothing else."""
    body = unprefix(text)
    try:
        compressed = base45.decode(body)
    except base45.Base45Error as exc:
        raise ContainerError(BASE45, str(exc)) from None
    raw = inflate(compressed)
    try:
        message = cose.parse(raw)
    except cose.CoseError as exc:
        raise ContainerError(DECODE, str(exc)) from None
    return Container(message, parse_claims(message.payload))


def encode(message: cose.Sign1) -> str:
    return PREFIX + base45.encode(zlib.compress(message.encode(), 9))
