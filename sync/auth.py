"""Who may talk to the township server, and how a request proves it.

Gates sign every request with their Ed25519 device key (made on the gate at
enrollment; the private half never leaves it). The signature covers the method,
the path with its query, the device id, a timestamp, a random nonce and the
SHA-256 of the exact body bytes, so a captured request cannot be altered, moved to
another path, or replayed after the time window; inside the window the server
refuses a nonce it has already seen. Administrators use a bearer token compared
in constant time. Threat model and TLS: docs/sync.md.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

DEVICE = "X-Gate-Device"
TIMESTAMP = "X-Gate-Time"
NONCE = "X-Gate-Nonce"
SIGNATURE = "X-Gate-Signature"
SKEW_S = 300.0  # how far a signed timestamp may be from the server's clock


class AuthError(Exception):
    """A request failed authentication; `reason` is a short machine-readable name."""

    def __init__(self, reason: str, message: str, status: int = 401):
        super().__init__(message)
        self.reason = reason
        self.status = status


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_device_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_text(key: Ed25519PrivateKey) -> str:
    return b64(key.private_bytes_raw())


def private_key_from_text(text: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(unb64(text))


def public_key_text(key: Ed25519PrivateKey) -> str:
    return b64(key.public_key().public_bytes_raw())


def public_key_from_text(text: str) -> Ed25519PublicKey:
    raw = unb64(text)
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def signed_message(method: str, target: str, device_id: str, timestamp: str, nonce: str,
                   body: bytes) -> bytes:
    """The canonical text a gate signs: one field a line, the body as its hash."""
    return "\n".join((method.upper(), target, device_id, timestamp, nonce,
                      hashlib.sha256(body).hexdigest())).encode()


def sign_headers(key: Ed25519PrivateKey, device_id: str, method: str, target: str,
                 body: bytes, now: float | None = None) -> dict[str, str]:
    """Headers for one request; `now` is the gate's best estimate of the server's time."""
    timestamp = f"{(time.time() if now is None else now):.3f}"
    nonce = secrets.token_urlsafe(16)
    sig = key.sign(signed_message(method, target, device_id, timestamp, nonce, body))
    return {DEVICE: device_id, TIMESTAMP: timestamp, NONCE: nonce, SIGNATURE: b64(sig)}


MAX_DEVICE_ID = 100
MAX_NONCE = 64
MAX_SIGNATURE = 100


@dataclass(frozen=True)
class SignedRequest:
    device_id: str
    timestamp: float
    nonce: str


def parse_timestamp(stamp: str) -> float:
    """Seconds since the epoch as the gate wrote them: ASCII digits with an optional
    fraction (`1764057600.123`). Nothing else: `nan`, `inf`, `1e9`, `+5` or `١٢` are
    refused, so the freshness check always compares two real numbers."""
    whole, dot, frac = stamp.partition(".")
    ok = (0 < len(whole) <= 11 and whole.isascii() and whole.isdigit()
          and (not dot or (0 < len(frac) <= 9 and frac.isascii() and frac.isdigit())))
    if not ok:
        raise AuthError("bad_timestamp", f"{TIMESTAMP} must be seconds since 1970 in decimal digits "
                        "(e.g. 1764057600.123)")
    return float(stamp)


def signed_headers(headers, now: float | None = None) -> SignedRequest:
    """The signature headers, present, bounded and fresh, checked before any body is read
    (and before the nonce store is touched). Raises AuthError."""
    missing = [h for h in (DEVICE, TIMESTAMP, NONCE, SIGNATURE) if not headers.get(h)]
    if missing:
        raise AuthError("unsigned", f"missing signature headers: {', '.join(missing)}")
    device_id, nonce = headers[DEVICE], headers[NONCE]
    if len(device_id) > MAX_DEVICE_ID or len(nonce) > MAX_NONCE or len(headers[SIGNATURE]) > MAX_SIGNATURE:
        raise AuthError("bad_signature", f"{DEVICE}, {NONCE} or {SIGNATURE} is too long")
    ts = parse_timestamp(headers[TIMESTAMP])
    now = time.time() if now is None else now
    if abs(now - ts) > SKEW_S:
        raise AuthError("stale_timestamp",
                        f"request time is {now - ts:+.0f} s from the server's; "
                        "fetch /v1/time and correct the clock offset")
    return SignedRequest(device_id, ts, nonce)


def verify(headers, method: str, target: str, body: bytes, public_key_for, now: float | None = None
           ) -> SignedRequest:
    """Check a gate's signature. `public_key_for(device_id)` returns the key text or
    raises AuthError (unknown 401, revoked 403). Raises AuthError on any failure."""
    signed = signed_headers(headers, now)
    try:
        key = public_key_from_text(public_key_for(signed.device_id))
        key.verify(unb64(headers[SIGNATURE]), signed_message(
            method, target, signed.device_id, headers[TIMESTAMP], signed.nonce, body))
    except (InvalidSignature, ValueError):
        raise AuthError("bad_signature", "the request signature does not verify") from None
    return signed


class NonceCache:
    """Nonces seen within the time window, in memory: a signed request is accepted once.

    A nonce is filed under its request's signed timestamp, in buckets of `bucket_s`
    seconds. A replay carries the same timestamp (it is signed), so one set lookup
    finds it; a bucket whose timestamps are all outside the window is dropped whole.
    Constant time per request, and bounded: at most `per_device` nonces per device per
    bucket (a faster gate is told to slow down, 429) and `max_size` in all (503, retry)
    rather than forgetting a nonce inside the window. One process only: with several
    workers, or on PostgreSQL, the server keeps nonces in its database instead
    (sync/server/db.py `Database.add_nonce`)."""

    def __init__(self, window_s: float = SKEW_S, bucket_s: float = 60.0, per_device: int = 600,
                 max_size: int = 200_000):
        self.window_s, self.bucket_s = window_s, bucket_s
        self.per_device, self.max_size = per_device, max_size
        self._buckets: dict[int, dict[str, set[str]]] = {}
        self._size = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._size

    def add(self, device_id: str, nonce: str, timestamp: float, now: float | None = None) -> bool:
        """False when this device already used this nonce. Raises AuthError (429/503)
        when the device or the whole store is over its bound."""
        now = time.time() if now is None else now
        oldest = int((now - self.window_s) // self.bucket_s)
        bucket = int(timestamp // self.bucket_s)
        with self._lock:  # check-and-set: two copies of one request may race
            for b in [b for b in self._buckets if b < oldest]:
                self._size -= sum(len(n) for n in self._buckets.pop(b).values())
            seen = self._buckets.setdefault(bucket, {}).setdefault(device_id, set())
            if nonce in seen:
                return False
            if len(seen) >= self.per_device:
                raise AuthError("too_many_requests", f"more than {self.per_device} requests from this "
                                f"device in {self.bucket_s:.0f} s; slow down", 429)
            if self._size >= self.max_size:
                raise AuthError("server_busy", "the server is taking too many requests; retry later", 503)
            seen.add(nonce)
            self._size += 1
            return True


# -- administrators and enrollment tokens ------------------------------------------------
def new_token(prefix: str = "gt_") -> str:
    """A random token; the prefix keeps it from starting with '-' on a command line."""
    return prefix + secrets.token_urlsafe(24)


def token_hash(token: str) -> str:
    """Tokens are stored only as hashes: a copy of the database enrolls nothing."""
    return hashlib.sha256(token.encode()).hexdigest()


def same_secret(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def load_admin_token(path: str | os.PathLike | None = None) -> str | None:
    """The administrator token: $GATE_ADMIN_TOKEN, else the first line of a file."""
    token = os.environ.get("GATE_ADMIN_TOKEN")
    if token:
        return token.strip()
    path = path or os.environ.get("GATE_ADMIN_TOKEN_FILE")
    if path and os.path.exists(path):
        with open(path) as f:
            return f.readline().strip() or None
    return None
