"""COSE_Sign1 (RFC 9052): one signer, one signature over a CBOR payload.

Three algorithms: ES256 and PS256 (what EU certificates use) and EdDSA with Ed25519
(our own keys: small signatures, fast on a Raspberry Pi). ES256 signatures in COSE are
raw r||s, not the DER that `cryptography` speaks, so they are converted here.
"""
from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

ES256, EDDSA, PS256 = -7, -8, -37
ALG_NAMES = {ES256: "ES256", EDDSA: "EdDSA", PS256: "PS256"}
HEADER_ALG, HEADER_KID = 1, 4
TAG_SIGN1, TAG_CWT = 18, 61
MAX_DEPTH = 32  # a real certificate nests 5 deep; garbage may nest thousands


class CoseError(ValueError):
    """The bytes are not a COSE_Sign1 structure we can read."""


def _no_sharing(*_: Any) -> Any:
    # CBOR value sharing (tags 28/29) can build cyclic objects; no token needs it.
    raise cbor2.CBORDecodeError("shared CBOR values are not allowed")


def loads_strict(data: bytes) -> Any:
    """Exactly one CBOR item, no trailing bytes, no duplicate keys, bounded depth."""
    fp = io.BytesIO(data)
    try:
        decoder = cbor2.CBORDecoder(fp, max_depth=MAX_DEPTH, allow_duplicate_keys=False,
                                    semantic_decoders={28: _no_sharing, 29: _no_sharing})
        item = decoder.decode()
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError,
            MemoryError, LookupError) as exc:
        raise CoseError(f"not valid CBOR: {exc}") from None
    if fp.tell() != len(data):
        raise CoseError(f"{len(data) - fp.tell()} bytes after the CBOR item")
    return item


@dataclass(frozen=True)
class Sign1:
    protected_raw: bytes  # signed as these exact bytes, never re-encoded
    protected: dict
    unprotected: dict
    payload: bytes
    signature: bytes
    tags: tuple[int, ...] = field(default=(TAG_SIGN1,))

    @property
    def alg(self) -> int | None:
        """Protected first; an unprotected alg is accepted (EU test case CO20) because the
        trusted key's type fixes the algorithm anyway: swapping the label gains nothing."""
        for header in (self.protected, self.unprotected):
            alg = header.get(HEADER_ALG)
            if isinstance(alg, int) and not isinstance(alg, bool):
                return alg
        return None

    @property
    def kid(self) -> bytes | None:
        """The protected kid wins; the unprotected one is only a fallback (as in the EU spec)."""
        for header in (self.protected, self.unprotected):
            kid = header.get(HEADER_KID)
            if isinstance(kid, bytes) and kid:
                return kid
        return None

    def to_be_signed(self) -> bytes:
        return cbor2.dumps(["Signature1", self.protected_raw, b"", self.payload])

    def encode(self) -> bytes:
        item: Any = [self.protected_raw, self.unprotected, self.payload, self.signature]
        for tag in reversed(self.tags):
            item = cbor2.CBORTag(tag, item)
        return cbor2.dumps(item)


def parse(data: bytes) -> Sign1:
    item = loads_strict(data)
    tags: list[int] = []
    while isinstance(item, cbor2.CBORTag) and item.tag in (TAG_CWT, TAG_SIGN1) and len(tags) < 2:
        tags.append(item.tag)
        item = item.value
    if isinstance(item, cbor2.CBORTag):
        raise CoseError(f"unexpected CBOR tag {item.tag}")
    if not isinstance(item, (list, tuple)) or len(item) != 4:
        raise CoseError("COSE_Sign1 must be an array of four items")
    protected_raw, unprotected, payload, signature = item
    if not isinstance(protected_raw, bytes):
        raise CoseError("protected header must be a byte string")
    if not isinstance(unprotected, Mapping):
        raise CoseError("unprotected header must be a map")
    if not isinstance(payload, bytes):
        raise CoseError("payload must be a byte string (detached payloads are not supported)")
    if not isinstance(signature, bytes):
        raise CoseError("signature must be a byte string")
    protected = loads_strict(protected_raw) if protected_raw else {}
    if not isinstance(protected, Mapping):
        raise CoseError("protected header must encode a map")
    return Sign1(protected_raw, dict(protected), dict(unprotected), payload, signature,
                 tuple(tags))


def alg_for_key(key: Any) -> int:
    """The COSE algorithm a key signs with; raises ValueError for keys we do not use."""
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        # ES256 is P-256, but some EU issuers sign "ES256" (SHA-256) with P-384 keys
        # (test cases ES/401-403); we verify those, and only ever sign with P-256.
        if isinstance(key.curve, (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)):
            return ES256
        raise ValueError(f"EC curve {key.curve.name} is not supported")
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return PS256
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return EDDSA
    raise ValueError(f"unsupported key type {type(key).__name__}")


def _pss() -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


def sign(payload: bytes, private_key: Any, kid: bytes, *, kid_protected: bool = True) -> Sign1:
    alg = alg_for_key(private_key)
    if alg == ES256 and not isinstance(private_key.curve, ec.SECP256R1):
        raise ValueError("sign ES256 with a P-256 key")
    protected = {HEADER_ALG: alg, **({HEADER_KID: kid} if kid_protected else {})}
    unprotected = {} if kid_protected else {HEADER_KID: kid}
    protected_raw = cbor2.dumps(protected)
    tbs = Sign1(protected_raw, protected, unprotected, payload, b"").to_be_signed()
    if alg == ES256:
        r, s = decode_dss_signature(private_key.sign(tbs, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif alg == PS256:
        signature = private_key.sign(tbs, _pss(), hashes.SHA256())
    else:
        signature = private_key.sign(tbs)
    return Sign1(protected_raw, protected, unprotected, payload, signature)


def verify_signature(msg: Sign1, public_key: Any) -> bool:
    """True only if the key's algorithm is the message's alg and the signature checks."""
    try:
        if msg.alg is None or alg_for_key(public_key) != msg.alg:
            return False
        tbs = msg.to_be_signed()
        if msg.alg == ES256:
            size = (public_key.curve.key_size + 7) // 8
            if len(msg.signature) != 2 * size:
                return False
            der = encode_dss_signature(int.from_bytes(msg.signature[:size], "big"),
                                       int.from_bytes(msg.signature[size:], "big"))
            public_key.verify(der, tbs, ec.ECDSA(hashes.SHA256()))
        elif msg.alg == PS256:
            public_key.verify(msg.signature, tbs, _pss(), hashes.SHA256())
        else:
            public_key.verify(msg.signature, tbs)
        return True
    except (InvalidSignature, ValueError):
        return False
