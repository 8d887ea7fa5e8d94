"""The administrator API (a signed-in township user, or `Authorization: Bearer <admin
token>` for scripts): enrollment tokens, devices, each community's policy and lists,
entries (the daily report and alarms: routers/reports.py). Who may do what:
docs/township.md, "Accounts and roles"; every change is written to the audit log."""
from __future__ import annotations

import datetime as dt
import logging

from fastapi import APIRouter, Depends, Path, Query

from kiosk import clock, wire
from kiosk.wire import LISTS
from sync import auth
from sync.server import models
from sync.server.audit import step
from sync.server.db import Database
from sync.server.deps import (
    Actor,
    allow_change,
    changer,
    current_actor,
    database,
    reader,
    township,
    township_admin,
)
from sync.server.errors import Problem

log = logging.getLogger("gate.server")
router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(current_actor)])
MAX_QUERY_INT = 2**63 - 1   # the database's BIGINT


@router.post("/enrollments", response_model=models.EnrollmentToken, status_code=201)
def create_enrollment(req: models.EnrollmentRequest, db: Database = Depends(database),
                      actor: Actor = Depends(changer)):
    """A one-time token that enrolls one gate of one community."""
    allow_change(actor, req.community)
    token = auth.new_token()
    device_id = req.device_id or f"{req.community}.{req.gate}"
    expires = clock.utc_now() + dt.timedelta(hours=req.ttl_hours)
    db.create_enrollment(auth.token_hash(token), device_id, req.community, req.gate, expires,
                         step(actor, "enrollment_token", req.community,
                              {"device_id": device_id, "gate": req.gate, "expires_utc": clock.iso(expires)}))
    return {"token": token, "device_id": device_id, "community": req.community,
            "gate": req.gate, "expires_utc": clock.iso(expires)}


@router.get("/devices", response_model=models.Devices)
def devices(db: Database = Depends(database), actor: Actor = Depends(reader)):
    """Community staff see their own community's gates."""
    return {"devices": [d for d in db.devices() if actor.may_read(d["community"])]}


@router.post("/devices/{device_id}/revoke", response_model=models.Revoked)
def revoke(device_id: str = Path(max_length=100), db: Database = Depends(database),
           actor: Actor = Depends(changer)):
    device = db.device(device_id)
    if device is not None:
        allow_change(actor, device.community)
    if device is None or not db.revoke(device_id, step(actor, "device_revoked", device.community,
                                                       {"device_id": device_id, "gate": device.gate})):
        raise Problem(404, "unknown_device", f"device {device_id!r} is not enrolled")
    log.info("revoked device %s (by %s)", device_id, actor.name)
    return {"device_id": device_id, "status": "revoked"}


@router.put("/communities/{community}/policy", response_model=models.Published)
def put_policy(document: models.PolicyDocument, community: str = Path(pattern=models.SLUG),
               db: Database = Depends(database), actor: Actor = Depends(township_admin)):
    """Set a community's risk level (low / medium / high) and thresholds (the township
    administrator only)."""
    body = document.model_dump(exclude_none=True)
    return db.publish(community, "policy", body, step(actor, "risk_level", community, lambda published: {
        "risk_level": body.get("risk_level"), "version": published["version"], "policy": body}))


@router.put("/communities/{community}/lists/{name}", response_model=models.Published)
def put_list(upload: models.ListUpload, community: str = Path(pattern=models.SLUG),
             name: str = Path(max_length=64), db: Database = Depends(database),
             actor: Actor = Depends(changer)):
    """Replace one list for a community; rows are checked with the list's schema
    (kiosk/wire.py), which the gate applies too."""
    if name not in LISTS:
        raise Problem(404, "unknown_list", f"unknown list {name!r}; known: {', '.join(LISTS)}")
    try:
        rows = wire.check_rows(name, upload.rows)
    except wire.WireError as exc:
        raise Problem(422, "invalid_list", str(exc)) from None
    return db.publish(community, name, rows, step(actor, "list_upload", community, lambda published: {
        "list": name, "rows": len(rows), "version": published["version"]}))


@router.get("/entries", response_model=models.Entries)
def entries(device_id: str | None = Query(None, max_length=100),
            after_seq: int = Query(0, ge=0, le=wire.MAX_SEQ), limit: int = Query(1000, ge=1, le=10000),
            db: Database = Depends(database), actor: Actor = Depends(township)):
    """Export entries in (device, seq) order (township roles only)."""
    return {"entries": db.entries(device_id, after_seq, limit)}
