"""The township server: a FastAPI app over `Database`. Build it with `create_app()`.

Gate endpoints (`/v1/...`) are signed by the device key (sync/auth.py); administrator
endpoints (`/v1/admin/...`) take `Authorization: Bearer <admin token>`. Every refusal
is JSON `{"error": <reason>, "detail": <sentence>}`.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
import time
import zlib
import zoneinfo
from dataclasses import dataclass

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError

from kiosk import clock
from kiosk.store import LISTS, Store, StoreError
from sync import auth
from sync.server import models
from sync.server.db import Database, Device, Rejected, StorageError

log = logging.getLogger("gate.server")

BATCH = TypeAdapter(models.Batch)


@dataclass
class Settings:
    db_url: str
    admin_token: str | None
    max_body_bytes: int = 4 * 1024 * 1024        # compressed, as sent
    max_inflated_bytes: int = 16 * 1024 * 1024   # after gunzip: no zip bombs
    report_tz: str = "Asia/Shanghai"
    busy_timeout_ms: int = 5000
    max_db_mb: float | None = None


class Problem(Exception):
    def __init__(self, status: int, reason: str, detail: str, headers: dict | None = None):
        super().__init__(detail)
        self.status, self.reason, self.detail, self.headers = status, reason, detail, headers


def _problem(status: int, reason: str, detail: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": reason, "detail": detail}, status_code=status, headers=headers)


def create_app(settings: Settings, db: Database | None = None) -> FastAPI:
    db = db or Database.open(settings.db_url, busy_timeout_ms=settings.busy_timeout_ms,
                             max_db_mb=settings.max_db_mb)
    nonces = auth.NonceCache()
    app = FastAPI(title="gate township server", version="1",
                  description="Entries up from the gates, policy and lists down. See docs/sync.md.")
    app.state.db = db
    app.state.settings = settings

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

    @app.exception_handler(RequestValidationError)
    async def _on_invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _problem(422, "invalid_request", f"{where}: {first.get('msg', 'invalid')}")

    # -- authentication ---------------------------------------------------------------
    def gate_device(request: Request, body: bytes) -> Device:
        """The device that signed this request, active, with a fresh nonce."""
        scope = request.scope
        target = (scope.get("raw_path") or scope["path"].encode()).decode()
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode()
        found: dict[str, Device] = {}

        def key_for(device_id: str) -> str:
            device = db.device(device_id)
            if device is None or not device.public_key:
                raise auth.AuthError("unknown_device", f"device {device_id!r} is not enrolled")
            if device.status != "active":
                raise auth.AuthError("device_revoked", f"device {device_id!r} is revoked", 403)
            found["device"] = device
            return device.public_key

        signed = auth.verify(request.headers, request.method, target, body, key_for)
        if not nonces.add(signed.device_id, signed.nonce):
            raise Problem(409, "replayed_request",
                          "this signed request was already received (nonce reused); "
                          "sign every request afresh")
        return found["device"]

    def signed_get(request: Request) -> Device:
        return gate_device(request, b"")

    def admin(request: Request) -> None:
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else None
        if not settings.admin_token:
            raise Problem(503, "no_admin_credential", "the server was started without an admin token")
        if not auth.same_secret(token, settings.admin_token):
            raise Problem(401, "admin_required", "administrator endpoints need "
                          "'Authorization: Bearer <admin token>'", {"WWW-Authenticate": "Bearer"})

    async def read_body(request: Request) -> bytes:
        limit = settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise Problem(413, "body_too_large", f"the body is over {limit} bytes; send smaller batches")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise Problem(413, "body_too_large",
                              f"the body is over {limit} bytes; send smaller batches")
            chunks.append(chunk)
        return b"".join(chunks)

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
        body = await read_body(request)
        try:
            req = models.Enroll.model_validate_json(body)
            auth.public_key_from_text(req.public_key)
        except (ValidationError, ValueError) as exc:
            raise Problem(422, "invalid_enrollment", f"expected {{token, public_key}}: {exc}"[:300]) from None
        target = request.scope.get("raw_path", b"/v1/enroll").decode()
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
        body = await read_body(request)
        now = clock.utc_now()

        def work():
            device = gate_device(request, body)
            raw = inflate(request, body)
            return db.ingest(device, parse_batch(raw), now, raw)

        return await run_in_threadpool(work)

    @app.get("/v1/device", response_model=models.DeviceState, tags=["gate"])
    def device_state(device: Device = Depends(signed_get)):
        """What the server holds for this device: resume from `acked_seq` after a crash."""
        d = db.device(device.device_id)
        return {"device_id": d.device_id, "community": d.community, "gate": d.gate,
                "acked_seq": d.acked_seq, "max_seq": d.max_seq}

    @app.post("/v1/device/lost", tags=["gate"])
    async def declare_lost(request: Request):
        """After a corrupt store could not be salvaged: seqs up to `upto` are lost for good."""
        body = await read_body(request)

        def work():
            device = gate_device(request, body)
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
    def list_rows(name: str, request: Request, device: Device = Depends(signed_get)):
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
    def revoke(device_id: str):
        if not db.revoke(device_id):
            raise Problem(404, "unknown_device", f"device {device_id!r} is not enrolled")
        log.info("revoked device %s", device_id)
        return {"device_id": device_id, "status": "revoked"}

    @app.put("/v1/admin/communities/{community}/policy", response_model=models.Published,
             dependencies=adm, tags=["admin"])
    def put_policy(community: str, policy: models.Policy):
        """Set a community's risk level (low / medium / high) and thresholds."""
        return db.publish(community, "policy", policy.model_dump(exclude_none=True))

    @app.put("/v1/admin/communities/{community}/lists/{name}", response_model=models.Published,
             dependencies=adm, tags=["admin"])
    def put_list(community: str, name: str, upload: models.ListUpload):
        """Replace one list for a community; rows are checked against the gate's schema."""
        if name not in LISTS:
            raise Problem(404, "unknown_list", f"unknown list {name!r}; known: {', '.join(LISTS)}")
        _check_rows(name, upload.rows)
        return db.publish(community, name, upload.rows)

    @app.get("/v1/admin/reports/daily", dependencies=adm, tags=["admin"])
    def daily_report(day: dt.date | None = None, tz: str = Query(settings.report_tz)):
        """One row per community for a local day, zeros included (日报告、零报告)."""
        try:
            zone = zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise Problem(422, "unknown_timezone", f"unknown time zone {tz!r}") from None
        day = day or dt.datetime.now(zone).date()
        start = dt.datetime.combine(day, dt.time(), zone)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone)
        rows = db.daily_report(start, end)
        return {"day": day.isoformat(), "tz": tz, "communities": list(rows.values())}

    @app.get("/v1/admin/alarms", dependencies=adm, tags=["admin"])
    def alarms(after: int = Query(0, ge=0), limit: int = Query(100, ge=1, le=1000)):
        """Immediate reports (fever, red code, quarantine breach...) as they arrive;
        poll with `after` = the last id seen."""
        items = db.alarms(after, limit)
        return {"alarms": items, "next_after": items[-1]["id"] if items else after}

    @app.get("/v1/admin/entries", dependencies=adm, tags=["admin"])
    def entries(device_id: str | None = None, after_seq: int = Query(0, ge=0),
                limit: int = Query(1000, ge=1, le=10000)):
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
        return app.openapi_schema

    app.openapi = openapi
    return app


def _json(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _check_rows(name: str, rows: list[dict]) -> None:
    """Load the rows into an empty gate store in memory: a list the gate would refuse
    is refused here, at upload, with the same reason."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        store = Store(None, conn)  # type: ignore[arg-type] - in memory, no file
        store.migrate()
        store.replace_list(name, rows)
    except (StoreError, sqlite3.Error, ValueError, TypeError) as exc:
        raise Problem(422, "invalid_list", f"{name}: {exc}") from None
    finally:
        conn.close()
