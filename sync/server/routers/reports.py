"""The township office's reports: the daily report (JSON, CSV, XLSX from one route) and
its submission, the chart, contact tracing, and alarms (list, acknowledge, live feed).

Who may do what (deps.py): township roles read every community, community staff their
own; submitting a day's report and acknowledging an alarm need the right to change that
community (and the CSRF token with a session cookie); contact tracing is for township
roles only. Submissions, acknowledgements and every trace go to the audit log."""
from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from kiosk import wire
from sync.server import alarms, exports, models, reports, tracing
from sync.server.audit import audit, step
from sync.server.db import Database, StorageError
from sync.server.deps import Actor, allow_change, allow_read, changer, database, reader, server, township
from sync.server.errors import Problem

log = logging.getLogger("gate.server")
router = APIRouter(prefix="/v1/admin", tags=["reports"])
MAX_ID = 2**63 - 1          # the database's BIGINT
KEEP_ALIVE_S = 15.0         # a comment line on a quiet stream, so proxies keep it open
Lang = Literal["zh", "en"]
TZ = Query(None, max_length=64, description="IANA time zone of the day (default: the server's report_tz)")


# -- who may do what ------------------------------------------------------------------------------
def _readable(actor: Actor) -> frozenset[str] | None:
    """The communities this actor reads; None: all of them."""
    if actor.role != "community":
        return None
    return frozenset({actor.community}) if actor.community else frozenset()


def _tz(request: Request, tz: str | None) -> str:
    return tz or server(request).settings.report_tz


# -- the daily report -----------------------------------------------------------------------------
@router.get("/reports/daily", response_model=models.DailyReport, response_model_by_alias=True, responses={
    200: {"content": {"text/csv": {}, exports.MEDIA["xlsx"]: {}},
          "description": "the report as JSON, or as CSV / XLSX with `format`"}})
def daily_report(request: Request, day: dt.date | None = None, tz: str | None = TZ,
                 community: str | None = Query(None, pattern=models.SLUG),
                 format: Literal["json", "csv", "xlsx"] = Query("json", description="json, csv or xlsx"),
                 lang: Lang = "zh", actor: Actor = Depends(reader), db: Database = Depends(database)):
    """One local day, per community and per gate, zeros included (日报告、零报告): in and out,
    refusals by reason, fevers, codes, arrivals held, first returns, visitors, couriers,
    vehicles, quarantine breaches, overrides, headcounts from the quarantine list; and
    each community's status (submitted, late, missing, pending)."""
    tz = _tz(request, tz)
    day = day or reports.today(tz)
    if community is not None:
        allow_read(actor, community)
    report = reports.daily(db, day, tz, community)
    scope = _readable(actor)
    if scope is not None:
        report.communities = [c for c in report.communities if c.community in scope]
    if format == "json":
        return report.as_json(lang)
    body = exports.to_csv(report, lang) if format == "csv" else exports.to_xlsx(report, lang)
    return Response(body, media_type=exports.MEDIA[format], headers={
        "Content-Disposition": f'attachment; filename="{exports.filename(report, format)}"'})


@router.post("/reports/daily/{community}/submission", response_model=models.Submission, status_code=201)
def submit_report(request: Request, req: models.SubmitReport, community: str = Path(pattern=models.SLUG),
                  tz: str | None = TZ, actor: Actor = Depends(changer), db: Database = Depends(database)):
    """The community's staff submit the day's report (zero or not), signed with the shift
    leader's name. Refused (409) while the day is not over or a gate has not synced past it."""
    return reports.submit(db, community, req.day, _tz(request, tz), actor.name, req.leader, req.note,
                          audit=step(actor, "report_submitted", community, lambda done: {
                              "day": done.day, "leader": done.leader, "late": done.late}))


@router.get("/reports/chart/{community}", response_class=Response, responses={
    200: {"content": {"image/svg+xml": {}}, "description": "entries, refusals and fevers a day, as SVG"}})
def chart(request: Request, community: str = Path(pattern=models.SLUG), day: dt.date | None = None,
          days: int = Query(28, ge=1, le=reports.MAX_CHART_DAYS), tz: str | None = TZ, lang: Lang = "zh",
          actor: Actor = Depends(reader), db: Database = Depends(database)):
    """A community's daily entries, refusals and fevers over the `days` days up to `day`."""
    tz = _tz(request, tz)
    points = reports.history(db, community, day or reports.today(tz), days, tz)
    return Response(reports.chart_svg(points, community, lang), media_type="image/svg+xml",
                    headers={"Cache-Control": "no-store"})


# -- contact tracing ------------------------------------------------------------------------------
@router.get("/trace", response_model=models.Trace)
def trace(community: str = Query(pattern=models.SLUG), gate: str | None = Query(None, max_length=wire.MAX_WORD),
          start: dt.datetime = Query(description="ISO-8601 with its zone"), end: dt.datetime = Query(),
          after: int = Query(0, ge=0, le=MAX_ID), limit: int = Query(1000, ge=1, le=tracing.MAX_ROWS),
          actor: Actor = Depends(township), db: Database = Depends(database)):
    """Who passed this gate, or any gate of this community, between start and end: masked
    names and person references for the health office. Township roles only; audited."""
    start, end = (t if t.tzinfo else t.replace(tzinfo=dt.UTC) for t in (start, end))
    rows = tracing.trace(db, start, end, community, gate, after, limit)
    audit(db, actor, "contact_trace", community,
           {"gate": gate, "start": start.isoformat(), "end": end.isoformat(), "rows": len(rows)})
    return {"community": community, "gate": gate, "start_utc": start.astimezone(dt.UTC).isoformat(),
            "end_utc": end.astimezone(dt.UTC).isoformat(), "passages": rows,
            "next_after": rows[-1]["id"] if rows else after}


# -- alarms ---------------------------------------------------------------------------------------
@router.get("/alarms", response_model=models.Alarms)
def list_alarms(after: int = Query(0, ge=0, le=MAX_ID), limit: int = Query(100, ge=1, le=1000),
                open: bool = Query(False, description="only those nobody has acknowledged yet"),
                actor: Actor = Depends(reader), db: Database = Depends(database)):
    """Immediate reports (fever, red code, quarantine breach...) in arrival order, with
    who acknowledged each; poll with `after` = the last id seen, or open the stream."""
    items = alarms.since(db, after, limit, open_only=open, communities=_readable(actor))
    return {"alarms": items, "next_after": items[-1]["id"] if items else after}


@router.post("/alarms/{alarm_id}/acknowledge", response_model=models.Acknowledged)
def acknowledge(alarm_id: int = Path(ge=1, le=MAX_ID), req: models.Acknowledge | None = None,
                actor: Actor = Depends(changer), db: Database = Depends(database)):
    """Who acknowledged the alarm, and when; it leaves the open list."""
    community = alarms.community_of(db, alarm_id)
    if community is None:
        raise Problem(404, "unknown_alarm", f"no alarm #{alarm_id}")
    allow_change(actor, community)
    return alarms.acknowledge(db, alarm_id, actor.name, req.note if req else None,
                              step(actor, "alarm_acknowledged", community, {"alarm": alarm_id}))


@router.get("/alarms/stream", response_class=StreamingResponse, responses={
    200: {"content": {"text/event-stream": {}},
          "description": "server-sent events: `event: alarm`, `id:` the alarm's id, `data:` the Alarm as JSON"}})
async def alarm_stream(request: Request, after: int | None = Query(None, ge=0, le=MAX_ID),
                       actor: Actor = Depends(reader)):
    """Alarms as they arrive (server-sent events), from `after` (or the Last-Event-ID the
    browser resends on reconnecting; by default from now). The commit of an immediate report
    wakes the open streams of every worker (on PostgreSQL through LISTEN/NOTIFY), and each
    looks every 0.5 s in any case, so an alarm posted to any worker arrives within a second."""
    s = server(request)
    s.db.listen_for_alarms()
    open_now = getattr(request.app.state, "alarm_streams", 0)
    if open_now >= alarms.MAX_STREAMS:
        raise Problem(503, "too_many_streams", "too many open alarm streams on this worker; retry later",
                      {"Retry-After": "5"})
    last = after if after is not None else _last_event_id(request)
    if last is None:
        last = await run_in_threadpool(alarms.newest, s.db)
    return StreamingResponse(_events(request, s.db, last, _readable(actor)), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def _last_event_id(request: Request) -> int | None:
    text = request.headers.get("last-event-id", "")
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


async def _events(request: Request, db: Database, last: int, scope: frozenset[str] | None) -> AsyncIterator[str]:
    # counted from the first line on: a stream whose client left before it began never runs
    request.app.state.alarm_streams = getattr(request.app.state, "alarm_streams", 0) + 1
    try:
        yield "retry: 2000\n\n"
        said = time.monotonic()
        while True:  # StreamingResponse cancels this when the client leaves
            rung = db.alarm_bell.rung
            try:
                items = await run_in_threadpool(alarms.since, db, last, 100, communities=scope)
            except StorageError as exc:  # the database is back soon: keep the stream, try again
                log.warning("alarm stream: %s", exc)
                items = []
            for a in items:
                last = a["id"]
                yield f"id: {last}\nevent: alarm\ndata: {json.dumps(a, ensure_ascii=False)}\n\n"
                said = time.monotonic()
            if time.monotonic() - said >= KEEP_ALIVE_S:
                yield ": keep-alive\n\n"
                said = time.monotonic()
            await db.alarm_bell.wait(alarms.POLL_S, rung)
    finally:
        request.app.state.alarm_streams -= 1
