"""The township server: a FastAPI app over `Database`. Build it with `create_app()`.

Gate endpoints (`/v1/...`) are signed by the device key (sync/auth.py); administrator
endpoints (`/v1/admin/...`) take `Authorization: Bearer <admin token>`. Every refusal
is JSON `{"error": <reason>, "detail": <sentence>}`.

Nobody makes the server work before it knows who they are: the outermost layer
(`Gatekeeper`) refuses an administrator request without the token, and any body over
its route's limit, before a byte of the body is read; a gate's signature headers
(device, time) are checked before its body is read. Bounds: docs/sync.md.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import logging
import threading
import time
import zlib
import zoneinfo
from dataclasses import dataclass

from fastapi import Depends, FastAPI, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kiosk import clock, wire
from kiosk.wire import LISTS
from sync import auth
from sync.server import models
from sync.server.db import Database, Device, Rejected, StorageError

log = logging.getLogger("gate.server")

BATCH = TypeAdapter(models.Batch)
SMALL_BODY = 64 * 1024      # every route but uploads of entries and lists
BODY_DEADLINE_S = 30.0      # a body must arrive within this (no slow-drip bodies)
MAX_QUERY_INT = 2**63 - 1   # the database's BIGINT


@dataclass
class Settings:
    db_url: str
    admin_token: str | None
    max_body_bytes: int = 4 * 1024 * 1024          # entries and lists, compressed, as sent
    max_inflated_bytes: int = wire.MAX_BATCH_BYTES  # after gunzip: no zip bombs
    report_tz: str = "Asia/Shanghai"
    busy_timeout_ms: int = 5000
    max_db_mb: float | None = None
    # Nonces in the database (shared between workers) or in this process's memory;
    # None: in the database on PostgreSQL, in memory on SQLite (one worker).
    shared_nonces: bool | None = None
    body_slots: int = 16  # bodies being read at once (memory: slots x max_body_bytes)
    parse_slots: int = 2  # batches gunzipped and parsed at once (CPU-bound under the GIL anyway)
    # Bytes of batch JSON one device may have parsed: a burst, then a steady rate. A real
    # gate stays far below (a week's backlog, ~35 MB, drains in about a minute); a
    # misbehaving one gets 429.
    device_burst_bytes: int = 8 * 1024 * 1024
    device_bytes_per_s: float = 512 * 1024


class Problem(Exception):
    def __init__(self, status: int, reason: str, detail: str, headers: dict | None = None):
        super().__init__(detail)
        self.status, self.reason, self.detail, self.headers = status, reason, detail, headers


class BodyTooLarge(StarletteHTTPException):
    """Raised from the body stream itself, so it passes FastAPI's body parsing untouched."""

    def __init__(self, limit: int):
        super().__init__(413, f"the body is over {limit} bytes; send smaller batches")


def _problem(status: int, reason: str, detail: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": reason, "detail": detail}, status_code=status, headers=headers)


HTTP_REASONS = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}


def body_limit(settings: Settings, method: str, path: str) -> int:
    """The largest body a route takes: batches of entries and whole lists are large,
    everything else is a small JSON object."""
    if (method == "POST" and path == "/v1/entries") or (
            method == "PUT" and path.startswith("/v1/admin/communities/") and "/lists/" in path):
        return settings.max_body_bytes
    return SMALL_BODY


class Gatekeeper:
    """The outermost layer: administrator requests are authenticated from their headers,
    and every body is held to its route's limit, before the application reads any of it."""

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, headers = scope["path"], Headers(scope=scope)
        if path == "/v1/admin" or path.startswith("/v1/admin/"):
            refusal = admin_refusal(self.settings, headers)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        limit = body_limit(self.settings, scope["method"], path)
        declared = headers.get("content-length")
        if declared is not None and (not declared.isascii() or not declared.isdigit()
                                     or len(declared) > 18 or int(declared) > limit):
            await _problem(413, "body_too_large", f"the body is over {limit} bytes")(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited, send)


def admin_refusal(settings: Settings, headers: Headers) -> JSONResponse | None:
    """None when the request carries the administrator token, else the answer to send."""
    header = headers.get("authorization", "")
    token = header[7:] if header[:7].lower() == "bearer " else None
    if not settings.admin_token:
        return _problem(503, "no_admin_credential", "the server was started without an admin token")
    if not auth.same_secret(token, settings.admin_token):
        return _problem(401, "admin_required", "administrator endpoints need "
                        "'Authorization: Bearer <admin token>'", {"WWW-Authenticate": "Bearer"})
    return None


class ByteBudget:
    """A token bucket of parsed bytes per device: the server's parsing time (which holds
    the GIL) is shared between gates, so one gate cannot crowd out the others."""

    def __init__(self, burst: int, per_s: float):
        self.burst, self.per_s = burst, per_s
        self._left: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def charge(self, device_id: str, nbytes: int, *, refuse: bool = True) -> None:
        """Take `nbytes` from the device's bucket; with `refuse`, raise 429 (taking
        nothing) when the bucket does not hold them."""
        now = time.monotonic()
        with self._lock:
            left, then = self._left.get(device_id, (float(self.burst), now))
            left = min(float(self.burst), left + (now - then) * self.per_s)
            if refuse and nbytes > left:
                self._left[device_id] = (left, now)
                wait = max(1, int((nbytes - left) / self.per_s + 0.999))
                raise Problem(429, "too_many_bytes", f"this device sent more than the server parses for one "
                              f"gate; retry in {wait} s", {"Retry-After": str(wait)})
            self._left[device_id] = (left - nbytes, now)


class DatabaseNonces:
    """The nonce store in the township database, shared by every worker (PostgreSQL,
    or `shared_nonces=True`): a row per nonce until its timestamp leaves the window."""

    def __init__(self, db: Database):
        self.db = db

    def add(self, device_id: str, nonce: str, timestamp: float, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return self.db.add_nonce(device_id, nonce, timestamp + auth.SKEW_S, now)


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def create_app(settings: Settings, db: Database | None = None) -> FastAPI:
    db = db or Database.open(settings.db_url, busy_timeout_ms=settings.busy_timeout_ms,
                             max_db_mb=settings.max_db_mb)
    shared = settings.shared_nonces if settings.shared_nonces is not None else db.dialect == "postgres"
    nonces: auth.NonceCache | DatabaseNonces = DatabaseNonces(db) if shared else auth.NonceCache()
    bodies = asyncio.Semaphore(settings.body_slots)
    parsing = threading.BoundedSemaphore(settings.parse_slots)
    budget = ByteBudget(settings.device_burst_bytes, settings.device_bytes_per_s)
    in_flight: set[str] = set()
    in_flight_lock = threading.Lock()
    app = FastAPI(title="gate township server", version="1",
                  description="Entries up from the gates, policy and lists down. See docs/sync.md.")
    app.state.db = db
    app.state.settings = settings
    app.state.nonces = nonces
    app.add_middleware(Gatekeeper, settings=settings)

    # -- errors -------------------------------------------------------------------
    @app.exception_handler(Problem)
    async def _on_problem(request: Request, exc: Problem):
        return _problem(exc.status, exc.reason, exc.detail, exc.headers)

    @app.exception_handler(Rejected)
    async def _on_rejected(request: Request, exc: Rejected):
        return _problem(exc.status, exc.reason, exc.detail)

    @app.exception_handler(auth.AuthError)
    async def _on_auth(request: Request, exc: auth.AuthError):
        return _problem(exc.status, exc.reason, str(exc))

    @app.exception_handler(StorageError)
    async def _on_storage(request: Request, exc: StorageError):
        log.warning("storage: %s on %s", exc, request.url.path)
        return _problem(503, exc.reason, f"{exc}; try again later", {"Retry-After": "5"})

    @app.exception_handler(BodyTooLarge)
    async def _on_too_large(request: Request, exc: BodyTooLarge):
        return _problem(413, "body_too_large", str(exc.detail))

    @app.exception_handler(StarletteHTTPException)
    async def _on_http(request: Request, exc: StarletteHTTPException):
        reason = HTTP_REASONS.get(exc.status_code, "refused")
        return _problem(exc.status_code, reason, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _on_invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _problem(422, "invalid_request", f"{where}: {first.get('msg', 'invalid')}")

    # -- authentication ---------------------------------------------------------------
    def known_device(request: Request) -> Device:
        """From the headers alone, before any body is read: signature headers present and
        bounded, timestamp fresh, device enrolled and active."""
        signed = auth.signed_headers(request.headers)
        device = db.device(signed.device_id)
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
        if not nonces.add(signed.device_id, signed.nonce, signed.timestamp):
            raise Problem(409, "replayed_request",
                          "this signed request was already received (nonce reused); "
                          "sign every request afresh")
        return device

    def signed_get(request: Request) -> Device:
        return gate_device(request, b"", known_device(request))

    def admin(request: Request) -> None:
        """Checked again here (the Gatekeeper checked it before any body): it also puts
        the bearer scheme in the OpenAPI document."""
        refusal = admin_refusal(settings, request.headers)
        if refusal is not None:
            said = json.loads(bytes(refusal.body))
            raise Problem(refusal.status_code, said["error"], said["detail"], {"WWW-Authenticate": "Bearer"})

    async def read_body(request: Request) -> bytes:
        """The whole body, held to the route's limit (the Gatekeeper raises past it),
        within BODY_DEADLINE_S, at most `body_slots` bodies at once."""
        try:
            async with asyncio.timeout(BODY_DEADLINE_S):
                async with bodies:
                    return await request.body()
        except TimeoutError:
            raise Problem(408, "body_too_slow", f"the body did not arrive within {BODY_DEADLINE_S:.0f} s; "
                          "the server is busy or the link too slow: retry later") from None

    async def signed_body(request: Request) -> tuple[Device, bytes]:
        device = await run_in_threadpool(known_device, request)
        return device, await read_body(request)

    def inflate(request: Request, body: bytes) -> bytes:
        encoding = request.headers.get("content-encoding", "identity").lower()
        if encoding == "identity":
            return body
        if encoding != "gzip":
            raise Problem(415, "unsupported_encoding", f"Content-Encoding {encoding!r}: use gzip")
        d = zlib.decompressobj(wbits=31)
        try:
            out = d.decompress(body, settings.max_inflated_bytes)
            if d.unconsumed_tail:
                raise Problem(413, "body_too_large",
                              f"the body inflates past {settings.max_inflated_bytes} bytes")
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

    # -- gate endpoints -------------------------------------------------------------------
    @app.get("/v1/time", response_model=models.ServerTime, tags=["gate"])
    def server_time():
        """The server's clock, for the gate to measure its offset (no authentication)."""
        now = time.time()
        return {"utc": clock.iso(dt.datetime.fromtimestamp(now, dt.UTC)), "epoch": now}

    @app.post("/v1/enroll", response_model=models.Enrolled, status_code=201, tags=["gate"])
    async def enroll(request: Request):
        """Present an enrollment token once, with the device's public key. The request is
        also signed with that key (X-Gate-Device: the word `enroll`), proving possession."""
        auth.signed_headers(request.headers)
        body = await read_body(request)
        try:
            req = models.Enroll.model_validate_json(body)
            auth.public_key_from_text(req.public_key)
        except (ValidationError, ValueError) as exc:
            raise Problem(422, "invalid_enrollment", f"expected {{token, public_key}}: {exc}"[:300]) from None
        target = request.scope.get("raw_path", b"/v1/enroll").decode("latin-1")
        auth.verify(request.headers, "POST", target, body, lambda _: req.public_key)
        device = await run_in_threadpool(db.enroll, auth.token_hash(req.token), req.public_key)
        log.info("enrolled device %s (%s/%s)", device.device_id, device.community, device.gate)
        return {"device_id": device.device_id, "community": device.community, "gate": device.gate}

    @app.post("/v1/entries", response_model=models.Ack, tags=["gate"], responses={
        400: {"description": "malformed gzip or JSON"}, 401: {"description": "not signed"},
        403: {"description": "revoked, or another device's entries"},
        409: {"description": "seq gap, seq conflict or replayed request"},
        413: {"description": "body over the size limit"}, 422: {"description": "wrong types"},
        503: {"description": "database busy or full: retry later"}},
        openapi_extra={"requestBody": {"required": True, "description": (
            "models.Batch as JSON, normally with Content-Encoding: gzip"), "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Batch"}}}}})
    async def post_entries(request: Request):
        """Store a batch of entries, all or nothing, idempotent on (device_id, seq)."""
        device, body = await signed_body(request)
        now = clock.utc_now()

        def work():
            gate_device(request, body, device)
            with in_flight_lock:  # one upload per device at a time: one gate, one lane
                if device.device_id in in_flight:
                    raise Problem(429, "upload_in_progress", "this device already has an upload "
                                  "in progress; wait for its answer", {"Retry-After": "1"})
                in_flight.add(device.device_id)
            try:
                if not parsing.acquire(timeout=settings.busy_timeout_ms / 1000):
                    raise StorageError("the server is busy parsing other uploads")
                try:
                    try:
                        raw = inflate(request, body)
                    except Problem as exc:  # a bomb costs its gate the bytes it inflated
                        if exc.status == 413:
                            budget.charge(device.device_id, settings.max_inflated_bytes, refuse=False)
                        raise
                    budget.charge(device.device_id, len(raw))
                    batch = parse_batch(raw)
                finally:
                    parsing.release()
                return db.ingest(device, batch, now, raw)
            finally:
                with in_flight_lock:
                    in_flight.discard(device.device_id)

        return await run_in_threadpool(work)

    @app.get("/v1/device", response_model=models.DeviceState, tags=["gate"])
    def device_state(device: Device = Depends(signed_get)):
        """What the server holds for this device: resume from `acked_seq` after a crash."""
        d = db.device(device.device_id) or device
        return {"device_id": d.device_id, "community": d.community, "gate": d.gate,
                "acked_seq": d.acked_seq, "max_seq": d.max_seq}

    @app.post("/v1/device/lost", tags=["gate"], openapi_extra={"requestBody": {
        "required": True, "content": {"application/json": {"schema": {
            "$ref": "#/components/schemas/LostSeqs"}}}}})
    async def declare_lost(request: Request):
        """After a corrupt store could not be salvaged: seqs up to `upto` are lost for good."""
        device, body = await signed_body(request)

        def work():
            gate_device(request, body, device)
            try:
                req = models.LostSeqs.model_validate_json(body)
            except ValidationError as exc:
                raise Problem(422, "invalid_request", str(exc.errors()[0]["msg"])) from None
            return db.declare_lost(device, req.upto)

        return await run_in_threadpool(work)

    def conditional(request: Request, etag: str, content: dict) -> Response:
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        return JSONResponse(content, headers={"ETag": etag})

    @app.get("/v1/manifest", tags=["gate"])
    def manifest(request: Request, device: Device = Depends(signed_get)):
        """Versions and ETags of the policy and every list published for this device's
        community; 304 when nothing changed since the ETag the gate holds."""
        m = db.manifest(device.community)
        return conditional(request, m["etag"], m)

    def document(request: Request, device: Device, name: str, key: str):
        doc = db.document(device.community, name)
        if doc is None:
            raise Problem(404, "not_published", f"no {name} published for community {device.community!r}")
        if request.headers.get("if-none-match") == doc["etag"]:
            return Response(status_code=304, headers={"ETag": doc["etag"]})
        # The stored document is already JSON: splice it in rather than parse and re-dump.
        text = (f'{{"name":"{name}","community":{_json(device.community)},"version":{doc["version"]},'
                f'"updated_utc":"{doc["updated_utc"]}","{key}":{doc["body"]}}}')
        return Response(text, media_type="application/json", headers={"ETag": doc["etag"]})

    @app.get("/v1/policy", tags=["gate"])
    def policy(request: Request, device: Device = Depends(signed_get)):
        """The community's risk level and thresholds, with ETag / If-None-Match."""
        return document(request, device, "policy", "policy")

    @app.get("/v1/lists/{name}", tags=["gate"])
    def list_rows(request: Request, name: str = Path(max_length=64), device: Device = Depends(signed_get)):
        """One list for this device's community (households, residents, passes, ...)."""
        if name not in LISTS:
            raise Problem(404, "unknown_list", f"unknown list {name!r}; known: {', '.join(LISTS)}")
        return document(request, device, name, "rows")

    # -- administrator endpoints -------------------------------------------------------------
    adm = [Depends(admin)]

    @app.post("/v1/admin/enrollments", response_model=models.EnrollmentToken, status_code=201,
              dependencies=adm, tags=["admin"])
    def create_enrollment(req: models.EnrollmentRequest):
        """A one-time token that enrolls one gate of one community."""
        token = auth.new_token()
        device_id = req.device_id or f"{req.community}.{req.gate}"
        expires = clock.utc_now() + dt.timedelta(hours=req.ttl_hours)
        db.create_enrollment(auth.token_hash(token), device_id, req.community, req.gate, expires)
        return {"token": token, "device_id": device_id, "community": req.community,
                "gate": req.gate, "expires_utc": clock.iso(expires)}

    @app.get("/v1/admin/devices", dependencies=adm, tags=["admin"])
    def devices():
        return {"devices": db.devices()}

    @app.post("/v1/admin/devices/{device_id}/revoke", dependencies=adm, tags=["admin"])
    def revoke(device_id: str = Path(max_length=100)):
        if not db.revoke(device_id):
            raise Problem(404, "unknown_device", f"device {device_id!r} is not enrolled")
        log.info("revoked device %s", device_id)
        return {"device_id": device_id, "status": "revoked"}

    @app.put("/v1/admin/communities/{community}/policy", response_model=models.Published,
             dependencies=adm, tags=["admin"])
    def put_policy(document: models.PolicyDocument, community: str = Path(pattern=models.SLUG)):
        """Set a community's risk level (low / medium / high) and thresholds."""
        return db.publish(community, "policy", document.model_dump(exclude_none=True))

    @app.put("/v1/admin/communities/{community}/lists/{name}", response_model=models.Published,
             dependencies=adm, tags=["admin"])
    def put_list(upload: models.ListUpload, community: str = Path(pattern=models.SLUG),
                 name: str = Path(max_length=64)):
        """Replace one list for a community; rows are checked with the list's schema
        (kiosk/wire.py), which the gate applies too."""
        if name not in LISTS:
            raise Problem(404, "unknown_list", f"unknown list {name!r}; known: {', '.join(LISTS)}")
        try:
            rows = wire.check_rows(name, upload.rows)
        except wire.WireError as exc:
            raise Problem(422, "invalid_list", str(exc)) from None
        return db.publish(community, name, rows)

    @app.get("/v1/admin/reports/daily", dependencies=adm, tags=["admin"])
    def daily_report(day: dt.date | None = None, tz: str = Query(settings.report_tz, max_length=64)):
        """One row per community for a local day, zeros included (日报告、零报告)."""
        if tz not in _zones():  # the IANA names only: never a path, a folder or a long name
            raise Problem(422, "unknown_timezone", f"unknown time zone {tz[:64]!r}")
        zone = zoneinfo.ZoneInfo(tz)
        if day is not None and not wire.EARLIEST.year <= day.year < wire.LATEST.year:
            raise Problem(422, "invalid_request", f"day: {day} is outside "
                          f"{wire.EARLIEST.year}-{wire.LATEST.year - 1}")
        day = day or dt.datetime.now(zone).date()
        start = dt.datetime.combine(day, dt.time(), zone)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone)
        rows = db.daily_report(start, end)
        return {"day": day.isoformat(), "tz": tz, "communities": list(rows.values())}

    @app.get("/v1/admin/alarms", dependencies=adm, tags=["admin"])
    def alarms(after: int = Query(0, ge=0, le=MAX_QUERY_INT), limit: int = Query(100, ge=1, le=1000)):
        """Immediate reports (fever, red code, quarantine breach...) as they arrive;
        poll with `after` = the last id seen."""
        items = db.alarms(after, limit)
        return {"alarms": items, "next_after": items[-1]["id"] if items else after}

    @app.get("/v1/admin/entries", dependencies=adm, tags=["admin"])
    def entries(device_id: str | None = Query(None, max_length=100),
                after_seq: int = Query(0, ge=0, le=wire.MAX_SEQ), limit: int = Query(1000, ge=1, le=10000)):
        """Export entries in (device, seq) order."""
        return {"entries": db.entries(device_id, after_seq, limit)}

    base_openapi = app.openapi

    def openapi() -> dict:
        """The batch body is read raw (gzip, size limits), so add its schema by hand."""
        if app.openapi_schema is None:
            schema = base_openapi()
            batch = models.Batch.model_json_schema(ref_template="#/components/schemas/{model}")
            comps = schema.setdefault("components", {}).setdefault("schemas", {})
            comps.update(batch.pop("$defs", {}))
            comps["Batch"] = batch
            comps["LostSeqs"] = models.LostSeqs.model_json_schema()
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend it
    return app


def _json(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)

