"""The township server's dependencies: what a route needs, in one place.

`Server` holds what one app shares between requests (the database, the body and parse
slots, each gate's share: limits.py); routes reach it with `server(request)` or through
the `Depends` helpers below."""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request, Response
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from sync import auth
from sync.server import accounts, limits, models
from sync.server.accounts import ROLES, TOKEN_ACTOR, Actor
from sync.server.audit import audit
from sync.server.db import Database, Device
from sync.server.errors import Problem
from sync.server.gatekeeper import admin_refusal
from sync.server.settings import Settings

__all__ = ["ROLES", "TOKEN_ACTOR", "Actor"]  # and the dependencies below

log = logging.getLogger("gate.server")
BATCH = TypeAdapter(models.Batch)
BODY_DEADLINE_S = 30.0      # a body must arrive within this (no slow-drip bodies)
T = TypeVar("T")


@dataclass
class Server:
    settings: Settings
    db: Database
    nonces: auth.NonceCache | limits.DatabaseNonces
    bodies: asyncio.Semaphore
    parsing: threading.BoundedSemaphore
    budget: limits.ByteBudget | limits.DatabaseBudget
    lanes: limits.Lanes | limits.FileLanes | limits.DatabaseLanes  # one upload per device at a time
    # The gates' signed requests run on a few threads of their own (Settings.upload_threads)
    uploads: ThreadPoolExecutor
    shares: Database | None = None  # SQLite with several workers: the gates' shares, beside db

    async def uploading(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.uploads, fn, *args)

    def close(self) -> None:
        """At the app's end (its requests are done): what the server opened for itself."""
        self.uploads.shutdown()
        if self.shares is not None:
            self.shares.close()
        if isinstance(self.lanes, limits.FileLanes):
            self.lanes.close()

    @classmethod
    def build(cls, settings: Settings, db: Database) -> Server:
        """Each gate's share (nonces and requests a minute, parsed bytes, the upload lane)
        in this process's memory, or in the database where every worker sees it."""
        shared = settings.shared_state if settings.shared_state is not None else db.dialect == "postgres"
        burst, rate = settings.device_burst_bytes, settings.device_bytes_per_s
        nonces: auth.NonceCache | limits.DatabaseNonces
        budget: limits.ByteBudget | limits.DatabaseBudget
        lanes: limits.Lanes | limits.FileLanes | limits.DatabaseLanes
        shares: Database | None = None
        if not shared:
            nonces = auth.NonceCache(per_device=settings.device_requests_per_min)
            budget, lanes = limits.ByteBudget(burst, rate), limits.Lanes()
        else:
            if db.dialect == "postgres":
                lanes = limits.DatabaseLanes(db)
            else:  # SQLite: a file of their own beside the database, the lanes on a lock file
                shares = Database.open(f"{db.path}-shares", shares_only=True, busy_timeout_ms=db.busy_timeout_ms)
                lanes = limits.FileLanes(f"{db.path}-lanes")
                db.turn = threading.Lock()  # the writer and large parses take turns (parse_upload)
            nonces = limits.DatabaseNonces(shares or db, settings.device_requests_per_min)
            budget = limits.DatabaseBudget(shares or db, burst, rate)
        return cls(settings=settings, db=db, nonces=nonces, budget=budget, lanes=lanes, shares=shares,
                   bodies=asyncio.Semaphore(settings.body_slots),
                   parsing=threading.BoundedSemaphore(settings.parse_slots),
                   uploads=ThreadPoolExecutor(settings.upload_threads, thread_name_prefix="upload"))


def server(request: Request) -> Server:
    return request.app.state.server


def database(request: Request) -> Database:
    return server(request).db


# -- township staff ------------------------------------------------------------------------
# Who is asking: `current_actor` (the session cookie or the admin token), then what they
# may do: `reader` (reads; a {community} in the path must be theirs), `township` (township
# roles only), `changer` (changes: not read-only, CSRF checked for cookie requests, a
# {community} in the path must be theirs), `township_admin` (the administrator only).
# Inside a route, `allow_read` / `allow_change` check a community found in the body or
# the database. Actor, ROLES and TOKEN_ACTOR live in accounts.py and are re-exported here.

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def admin(request: Request) -> Actor:
    """The administrator token only (checked again here after the Gatekeeper)."""
    refusal = admin_refusal(server(request).settings, request.headers)
    if refusal is not None:
        said = json.loads(bytes(refusal.body))
        raise Problem(refusal.status_code, said["error"], said["detail"], {"WWW-Authenticate": "Bearer"})
    return TOKEN_ACTOR


def current_actor(request: Request) -> Actor:
    """The session cookie's user, or the admin token's actor; else 401. The Gatekeeper
    has already resolved /v1/admin/* requests (request.state.actor)."""
    known = getattr(request.state, "actor", None)
    if isinstance(known, Actor):
        return known
    if "authorization" in request.headers:
        actor = admin(request)
    elif accounts.SESSION_COOKIE in request.cookies:
        s = server(request)
        actor = accounts.session_actor(s.db, s.settings, request.cookies[accounts.SESSION_COOKIE])
    else:
        raise Problem(401, "not_signed_in", "sign in, or send 'Authorization: Bearer <admin token>'")
    request.state.actor = actor
    return actor


async def check_csrf(request: Request, actor: Actor) -> None:
    """A change made with the session cookie carries the session's CSRF token, in the
    X-CSRF-Token header (JSON) or the csrf_token form field (the dashboard's forms).
    Token-authenticated scripts need none: a browser never sends the admin token by itself."""
    if request.method not in UNSAFE_METHODS or actor.csrf is None:
        return
    given = request.headers.get(accounts.CSRF_HEADER)
    if given is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(accounts.CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not accounts.csrf_matches(actor, given):
        raise Problem(403, "csrf_failed", f"a change made with the session cookie needs the session's "
                      f"{accounts.CSRF_HEADER} header (or {accounts.CSRF_FIELD} form field); reload the page")


def allow_read(actor: Actor, community: str | None) -> None:
    if community is None and not actor.township:
        raise Problem(403, "township_only", "only township staff see every community")
    if community is not None and not actor.may_read(community):
        raise Problem(403, "other_community", f"{actor.name} sees community {actor.community!r} only")


def allow_change(actor: Actor, community: str | None) -> None:
    if actor.role == "readonly":
        raise Problem(403, "read_only", f"{actor.name} has a read-only account")
    if not actor.may_change(community):
        raise Problem(403, "other_community" if community else "township_admin_only",
                      f"{actor.name} changes community {actor.community!r} only" if community
                      else "only the township administrator does this")


def reader(request: Request) -> Actor:
    actor = current_actor(request)
    community = request.path_params.get("community")
    if community is not None:
        allow_read(actor, community)
    return actor


def township(request: Request) -> Actor:
    actor = current_actor(request)
    allow_read(actor, None)
    return actor


async def changer(request: Request) -> Actor:
    actor = current_actor(request)
    if actor.role == "readonly":
        raise Problem(403, "read_only", f"{actor.name} has a read-only account")
    await check_csrf(request, actor)
    community = request.path_params.get("community")
    if community is not None:
        allow_change(actor, community)
    return actor


async def township_admin(request: Request) -> Actor:
    actor = await changer(request)
    allow_change(actor, None)
    return actor


async def sign_in(request: Request, response: Response, username: str, password: str) -> accounts.Session:
    """Check the password (in a worker thread), set the session cookie and write the audit
    row: the one way in, for the JSON route and the dashboard's login form alike. A
    browser's cross-site post is refused (login CSRF: signing someone into another account)."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise Problem(403, "cross_site_login", "sign in from the township server's own page")
    s = server(request)
    address = request.client.host if request.client else ""
    session = await run_in_threadpool(accounts.login, s.db, s.settings, username, password, address)
    set_session_cookie(request, response, session)
    audit(s.db, session.actor, "signed_in", session.actor.community, {"address": address})
    log.info("signed in: %s (%s)", session.actor.name, session.actor.role)
    return session


def sign_out(request: Request, response: Response, actor: Actor) -> None:
    """End this request's session on the server (CSRF already checked by `changer`) and
    clear the cookie."""
    token = request.cookies.get(accounts.SESSION_COOKIE)
    if token and actor.csrf is not None:
        accounts.logout(server(request).db, token)
        audit(server(request).db, actor, "signed_out", actor.community)
    clear_session_cookie(request, response)


def secure_cookie(request: Request) -> bool:
    """Secure, except on plain http to this machine's loopback (tests, a local trial)."""
    return not (request.url.scheme == "http" and (request.url.hostname or "") in LOOPBACK)


def set_session_cookie(request: Request, response: Response, session: accounts.Session) -> None:
    response.set_cookie(accounts.SESSION_COOKIE, session.token, httponly=True, samesite="strict",
                        secure=secure_cookie(request), path="/",
                        max_age=int(server(request).settings.session_max_s))


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(accounts.SESSION_COOKIE, httponly=True, samesite="strict",
                           secure=secure_cookie(request), path="/")


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


LONG_PARSE_BYTES = 64 * 1024  # a batch this large holds the interpreter lock for milliseconds


def parse_upload(db: Database, raw: bytes) -> models.Batch:
    """`parse_batch`; a large batch takes its turn with the database's writer
    (`Database.turn`: SQLite with several workers)."""
    with db.turn if len(raw) > LONG_PARSE_BYTES else nullcontext():
        return parse_batch(raw)


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
