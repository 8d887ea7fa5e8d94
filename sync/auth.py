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


@dataclass(frozen=True)
class SignedRequest:
    device_id: str
    timestamp: float
    nonce: str


def verify(headers, method: str, target: str, body: bytes, public_key_for, now: float | None = None
           ) -> SignedRequest:
    """Check a gate's signature. `public_key_for(device_id)` returns the key text or
    raises AuthError (unknown 401, revoked 403). Raises AuthError on any failure."""
    missing = [h for h in (DEVICE, TIMESTAMP, NONCE, SIGNATURE) if not headers.get(h)]
    if missing:
        raise AuthError("unsigned", f"missing signature headers: {', '.join(missing)}")
    device_id, stamp, nonce = headers[DEVICE], headers[TIMESTAMP], headers[NONCE]
    try:
        ts = float(stamp)
    except ValueError:
        raise AuthError("bad_timestamp", f"{TIMESTAMP} is not a number") from None
    now = time.time() if now is None else now
    if abs(now - ts) > SKEW_S:
        raise AuthError("stale_timestamp",
                        f"request time is {now - ts:+.0f} s from the server's; "
                        "fetch /v1/time and correct the clock offset")
    key = public_key_from_text(public_key_for(device_id))
    try:
        key.verify(unb64(headers[SIGNATURE]),
                   signed_message(method, target, device_id, stamp, nonce, body))
    except (InvalidSignature, ValueError):
        raise AuthError("bad_signature", "the request signature does not verify") from None
    return SignedRequest(device_id, ts, nonce)


class NonceCache:
    """Nonces seen within the time window: a signed request is accepted once.
    In memory, per process: a replay can at worst repeat an idempotent request."""

    def __init__(self, window_s: float = 2 * SKEW_S, max_size: int = 200_000):
        self.window_s = window_s
        self.max_size = max_size
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def add(self, device_id: str, nonce: str, now: float | None = None) -> bool:
        """False when this nonce was already used by this device."""
        now = time.monotonic() if now is None else now
        key = (device_id, nonce)
        with self._lock:  # check-and-set: two copies of one request may race
            if len(self._seen) >= self.max_size:
                cutoff = now - self.window_s
                self._seen = {k: t for k, t in self._seen.items() if t > cutoff}
            if key in self._seen:
                return False
            self._seen[key] = now
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
