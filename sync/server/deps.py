"""The township server's dependencies: what a route needs, in one place.

`Server` holds what one app shares between requests (the database, the body and parse
slots, each gate's share: limits.py); routes reach it with `server(request)` or through
the `Depends` helpers below."""
from __future__ import annotations

import asyncio
import json
import threading
import zlib
from dataclasses import dataclass

from fastapi import Request
from pydantic import TypeAdapter, ValidationError

from sync import auth
from sync.server import limits, models
from sync.server.db import Database, Device
from sync.server.errors import Problem
from sync.server.gatekeeper import admin_refusal
from sync.server.settings import Settings

BATCH = TypeAdapter(models.Batch)
BODY_DEADLINE_S = 30.0      # a body must arrive within this (no slow-drip bodies)


@dataclass
class Server:
    settings: Settings
    db: Database
    nonces: auth.NonceCache | limits.DatabaseNonces
    bodies: asyncio.Semaphore
    parsing: threading.BoundedSemaphore
    budget: limits.ByteBudget | limits.DatabaseBudget
    lanes: limits.Lanes | limits.DatabaseLanes  # one upload per device at a time

    @classmethod
    def build(cls, settings: Settings, db: Database) -> Server:
        """Each gate's share (nonces and requests a minute, parsed bytes, the upload lane)
        in this process's memory, or in the database where every worker sees it."""
        shared = settings.shared_state if settings.shared_state is not None else db.dialect == "postgres"
        burst, rate = settings.device_burst_bytes, settings.device_bytes_per_s
        return cls(settings=settings, db=db,
                   nonces=(limits.DatabaseNonces(db, settings.device_requests_per_min) if shared
                           else auth.NonceCache(per_device=settings.device_requests_per_min)),
                   bodies=asyncio.Semaphore(settings.body_slots),
                   parsing=threading.BoundedSemaphore(settings.parse_slots),
                   budget=limits.DatabaseBudget(db, burst, rate) if shared else limits.ByteBudget(burst, rate),
                   # SQLite has no advisory locks; one process serves it (server_cmd refuses more)
                   lanes=limits.DatabaseLanes(db) if shared and db.dialect == "postgres" else limits.Lanes())


def server(request: Request) -> Server:
    return request.app.state.server


def database(request: Request) -> Database:
    return server(request).db


# -- township staff ------------------------------------------------------------------------

ROLES = ("admin", "readonly", "community")  # township administrator, township read-only, community staff


@dataclass(frozen=True)
class Actor:
    """Who is asking: the administrator token (scripts, first set-up) or a signed-in user."""
    name: str                       # the user's login, or "admin-token"
    role: str                       # one of ROLES
    community: str | None = None    # community staff: the one community they see and edit

    def may_read(self, community: str) -> bool:
        return self.role != "community" or self.community == community

    def may_change(self, community: str | None = None) -> bool:
        """A township administrator changes anything; community staff only their own community."""
        if self.role == "admin":
            return True
        return self.role == "community" and community is not None and self.community == community


TOKEN_ACTOR = Actor("admin-token", "admin")


def admin(request: Request) -> Actor:
    """Checked again here (the Gatekeeper checked it before any body): it also puts the
    bearer scheme in the OpenAPI document."""
    refusal = admin_refusal(server(request).settings, request.headers)
    if refusal is not None:
        said = json.loads(bytes(refusal.body))
        raise Problem(refusal.status_code, said["error"], said["detail"], {"WWW-Authenticate": "Bearer"})
    return TOKEN_ACTOR


# -- gates ----------------------------------------------------------------------------------

def known_device(request: Request) -> Device:
    """From the headers alone, before any body is read: signature headers present and
    bounded, timestamp fresh, device enrolled and active."""
    signed = auth.signed_headers(request.headers)
    device = database(request).device(signed.device_id)
    if device is None or not device.public_key:
        raise auth.AuthError("unknown_device", f"device {signed.device_id[:100]!r} is not enrolled")
    if device.status != "active":
        raise auth.AuthError("device_revoked", f"device {device.device_id!r} is revoked", 403)
    return device


def gate_device(request: Request, body: bytes, device: Device) -> Device:
    """The signature verifies over this body, and its nonce is new."""
    scope = request.scope
    target = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    if scope.get("query_string"):
        target += "?" + scope["query_string"].decode("latin-1")
    assert device.public_key is not None  # known_device checked it
    signed = auth.verify(request.headers, request.method, target, body, lambda _: device.public_key)
    if not server(request).nonces.add(signed.device_id, signed.nonce, signed.timestamp):
        raise Problem(409, "replayed_request",
                      "this signed request was already received (nonce reused); sign every request afresh")
    return device


def signed_get(request: Request) -> Device:
    return gate_device(request, b"", known_device(request))


async def read_body(request: Request) -> bytes:
    """The whole body, held to the route's limit (the Gatekeeper raises past it), within
    BODY_DEADLINE_S, at most `body_slots` bodies at once."""
    try:
        async with asyncio.timeout(BODY_DEADLINE_S):
            async with server(request).bodies:
                return await request.body()
    except TimeoutError:
        raise Problem(408, "body_too_slow", f"the body did not arrive within {BODY_DEADLINE_S:.0f} s; "
                      "the server is busy or the link too slow: retry later") from None


def inflate(request: Request, body: bytes) -> bytes:
    limit = server(request).settings.max_inflated_bytes
    encoding = request.headers.get("content-encoding", "identity").lower()
    if encoding == "identity":
        return body
    if encoding != "gzip":
        raise Problem(415, "unsupported_encoding", f"Content-Encoding {encoding!r}: use gzip")
    d = zlib.decompressobj(wbits=31)
    try:
        out = d.decompress(body, limit)
        if d.unconsumed_tail:
            raise Problem(413, "body_too_large", f"the body inflates past {limit} bytes")
        if not d.eof:
            raise Problem(400, "malformed_gzip", "the gzip stream is truncated")
        if d.unused_data:  # one text, one meaning: nothing may follow the stream
            raise Problem(400, "trailing_data", "bytes follow the end of the gzip stream "
                          "(a second member?); send one gzip member and nothing after it")
    except zlib.error as exc:
        raise Problem(400, "malformed_gzip", f"the body is not valid gzip ({exc})") from None
    return out


def parse_batch(raw: bytes) -> models.Batch:
    try:
        return BATCH.validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        if first["type"] == "json_invalid":
            raise Problem(400, "malformed_json", f"the body is not JSON ({first['msg']})") from None
        where = ".".join(str(p) for p in first["loc"])
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise Problem(422, "invalid_entry", f"{where}: {first['msg']}{more}") from None
