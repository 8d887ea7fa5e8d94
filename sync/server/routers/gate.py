"""What the gates call: enroll, upload entries, pull the policy and lists. Every request
but the clock and enrollment is signed with the device's key (sync/auth.py)."""
from __future__ import annotations

import datetime as dt
import json
import logging
import time

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from kiosk import clock
from kiosk.wire import LISTS
from sync import auth
from sync.server import models, overview
from sync.server.db import Device, StorageError
from sync.server.deps import (
    gate_device,
    inflate,
    known_device,
    parse_upload,
    read_body,
    server,
    signed_get,
)
from sync.server.errors import Problem

log = logging.getLogger("gate.server")
router = APIRouter(prefix="/v1", tags=["gate"])


async def signed_body(request: Request) -> tuple[Device, bytes]:
    s = server(request)
    # SQLite: the device's row is a local read that never waits for a writer (WAL), quicker
    # here than a trip to a thread and back; PostgreSQL's is a round trip, kept off the loop.
    device = known_device(request) if s.db.dialect == "sqlite" else await s.uploading(known_device, request)
    return device, await read_body(request)


@router.get("/time", response_model=models.ServerTime)
def server_time():
    """The server's clock, for the gate to measure its offset (no authentication)."""
    now = time.time()
    return {"utc": clock.iso(dt.datetime.fromtimestamp(now, dt.UTC)), "epoch": now}


@router.post("/enroll", response_model=models.Enrolled, status_code=201)
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
    device = await run_in_threadpool(server(request).db.enroll, auth.token_hash(req.token), req.public_key)
    log.info("enrolled device %s (%s/%s)", device.device_id, device.community, device.gate)
    return {"device_id": device.device_id, "community": device.community, "gate": device.gate}


@router.post("/entries", response_model=models.Ack, responses={
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
    s = server(request)

    def work():
        gate_device(request, body, device)
        with s.lanes.hold(device.device_id):  # one upload per device at a time: one gate, one lane
            if not s.parsing.acquire(timeout=s.settings.busy_timeout_ms / 1000):
                raise StorageError("the server is busy parsing other uploads")
            try:
                try:
                    raw = inflate(request, body)
                except Problem as exc:  # a bomb costs its gate the bytes it inflated
                    if exc.status == 413:
                        s.budget.charge(device.device_id, s.settings.max_inflated_bytes, refuse=False)
                    raise
                s.budget.charge(device.device_id, len(raw))
                batch = parse_upload(s.db, raw)
            finally:
                s.parsing.release()
            # kept as the gate sent it: gzip is about a sixteenth of the JSON to write
            return s.db.ingest(device, batch, now, raw, gz=body if raw is not body else None)

    return await s.uploading(work)


@router.get("/device", response_model=models.DeviceState)
def device_state(request: Request, device: Device = Depends(signed_get)):
    """What the server holds for this device: resume from `acked_seq` after a crash."""
    d = server(request).db.device(device.device_id) or device
    return {"device_id": d.device_id, "community": d.community, "gate": d.gate,
            "acked_seq": d.acked_seq, "max_seq": d.max_seq}


@router.post("/device/lost", response_model=models.LostAck, openapi_extra={"requestBody": {
    "required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LostSeqs"}}}}})
async def declare_lost(request: Request):
    """After a corrupt store could not be salvaged: seqs up to `upto` are lost for good."""
    device, body = await signed_body(request)

    def work():
        gate_device(request, body, device)
        try:
            req = models.LostSeqs.model_validate_json(body)
        except ValidationError as exc:
            raise Problem(422, "invalid_request", str(exc.errors()[0]["msg"])) from None
        return server(request).db.declare_lost(device, req.upto)

    return await run_in_threadpool(work)


def _conditional(request: Request, etag: str, content: dict) -> Response:
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    return JSONResponse(content, headers={"ETag": etag})


@router.get("/manifest")
def manifest(request: Request, device: Device = Depends(signed_get)):
    """Versions and ETags of the policy and every list published for this device's
    community; 304 when nothing changed since the ETag the gate holds."""
    m = server(request).db.manifest(device.community)
    overview.note_software(server(request).db, device.device_id, request.headers.get("user-agent"))
    return _conditional(request, m["etag"], m)


def _document(request: Request, device: Device, name: str, key: str) -> Response:
    doc = server(request).db.document(device.community, name)
    if doc is None:
        raise Problem(404, "not_published", f"no {name} published for community {device.community!r}")
    if name == "policy":  # 200 or 304, the gate now holds this version (the office sees it)
        overview.note_policy_fetch(server(request).db, device.device_id, doc["version"])
    if request.headers.get("if-none-match") == doc["etag"]:
        return Response(status_code=304, headers={"ETag": doc["etag"]})
    # The stored document is already JSON: splice it in rather than parse and re-dump.
    community = json.dumps(device.community, ensure_ascii=False)
    text = (f'{{"name":"{name}","community":{community},"version":{doc["version"]},'
            f'"updated_utc":"{doc["updated_utc"]}","{key}":{doc["body"]}}}')
    return Response(text, media_type="application/json", headers={"ETag": doc["etag"]})


@router.get("/policy")
def policy(request: Request, device: Device = Depends(signed_get)):
    """The community's risk level and thresholds, with ETag / If-None-Match."""
    return _document(request, device, "policy", "policy")


@router.get("/lists/{name}")
def list_rows(request: Request, name: str = Path(max_length=64), device: Device = Depends(signed_get)):
    """One list for this device's community (households, residents, passes, ...)."""
    if name not in LISTS:
        raise Problem(404, "unknown_list", f"unknown list {name!r}; known: {', '.join(LISTS)}")
    return _document(request, device, name, "rows")
