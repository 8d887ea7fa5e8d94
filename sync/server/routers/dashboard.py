"""The township office's pages: server-rendered HTML (Jinja2 templates beside this
router), one small script for the live feed, nothing from a CDN, so they work on an
offline township LAN. Chinese by default, English with `?lang=en` (kept in a cookie).

Who may do what is the same as on the JSON API: the page's `Actor` comes from the
session cookie (or the admin token), community staff see and change only their own
community, township read-only staff change nothing. Every form carries the session's
CSRF token. The guide for the office is docs/township.md."""
from __future__ import annotations

import datetime as dt
import json
import logging
import re
import urllib.parse
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from kiosk import clock, reasons, wire
from sync import auth
from sync.server import deps, models, overview
from sync.server.db import Database, Rejected, StorageError
from sync.server.deps import Actor
from sync.server.errors import Problem
from sync.server.office_words import DEFAULT_LANG, LANGS, word

log = logging.getLogger("gate.server")
HERE = Path(__file__).resolve().parents[1]
PREFIX = "/office"
LANG_COOKIE = "gate_lang"
MAX_FIELD = 500          # characters of any one form field
RISK_LEVELS = ("low", "medium", "high")
SLUG = re.compile(models.SLUG)

router = APIRouter(prefix=PREFIX, include_in_schema=False)
templates = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                               autoescape=True, undefined=jinja2.StrictUndefined)


class PageError(Exception):
    """A page that cannot be shown: rendered as a page in the reader's language."""

    def __init__(self, status: int, key: str, detail: str = ""):
        super().__init__(key)
        self.status, self.key, self.detail = status, key, detail


class SignIn(Exception):
    """Nobody signed in: go to the login page, then back."""


# -- who is asking ----------------------------------------------------------------------------

def _current_actor(request: Request) -> Actor:
    """office-auth's `deps.current_actor` (a session cookie or the admin token)."""
    find: Callable[[Request], Actor] = getattr(deps, "current_actor", deps.admin)
    return find(request)


def viewer(request: Request) -> Actor:
    try:
        return _current_actor(request)
    except Problem as exc:
        if exc.status in (401, 503):
            raise SignIn() from None
        raise


def csrf_token(request: Request) -> str:
    """The session's CSRF token for the forms (office-auth's helper)."""
    helper = getattr(deps, "csrf_token", None)
    return helper(request) if helper else ""


def check_csrf(request: Request, form: dict[str, str]) -> None:
    helper = getattr(deps, "check_csrf", None)
    if helper is None:
        return
    try:
        helper(request, form.get("csrf_token", ""))
    except Problem:
        raise PageError(403, "csrf_failed") from None


async def read_form(request: Request) -> dict[str, str]:
    """An url-encoded form (the Gatekeeper holds the body to 64 KiB); each field bounded."""
    body = await request.body()
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if body and kind != "application/x-www-form-urlencoded":
        raise PageError(415, "bad_form")
    try:
        pairs = urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=32,
                                       strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise PageError(400, "bad_form") from None
    form = {k: v for k, v in pairs}
    if any(len(v) > MAX_FIELD for v in form.values()):
        raise PageError(400, "bad_form")
    check_csrf(request, form)
    return form


def may_change(actor: Actor, community: str | None) -> None:
    if not actor.may_change(community):
        raise PageError(403, "forbidden")


def may_read(actor: Actor, community: str) -> None:
    if not actor.may_read(community):
        raise PageError(403, "forbidden")


# -- rendering --------------------------------------------------------------------------------

def lang_of(request: Request) -> str:
    asked = request.query_params.get("lang")
    if asked in LANGS:
        return asked
    held = request.cookies.get(LANG_COOKIE)
    return held if held in LANGS else DEFAULT_LANG


def _zone(request: Request) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(deps.server(request).settings.report_tz)


def page(request: Request, template: str, actor: Actor | None, status: int = 200, **context: Any) -> HTMLResponse:
    lang = lang_of(request)
    zone = _zone(request)

    def local(utc_text: str | None, seconds: bool = False) -> str:
        """An ISO UTC time as the office's local time, or 从未 / Never."""
        if not utc_text:
            return word("never", lang)
        try:
            at = clock.parse_iso(utc_text).astimezone(zone)
        except ValueError:
            return word("unknown", lang)
        return at.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")

    def switch_lang() -> str:
        query = dict(request.query_params)
        query["lang"] = "en" if lang == "zh" else "zh"
        return f"{request.url.path}?{urllib.parse.urlencode(query)}"

    html = templates.get_template(template).render(
        t=lambda key: word(key, lang), lang=lang, local=local, actor=actor, prefix=PREFIX,
        csrf=csrf_token(request) if actor else "", switch_lang=switch_lang(), path=request.url.path,
        reason=lambda code: reasons.reason_text(code, lang), action=lambda code: reasons.action_text(code, lang),
        risk=lambda level: word(f"risk_{level}" if level in RISK_LEVELS else "risk_none", lang),
        **context)
    response = HTMLResponse(html, status_code=status, headers={
        "Cache-Control": "no-store", "X-Frame-Options": "DENY",
        "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                   "script-src 'self'; frame-ancestors 'none'; form-action 'self'"})
    if request.query_params.get("lang") in LANGS:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, httponly=True, samesite="strict")
    return response


def back_to(path: str) -> RedirectResponse:
    """After a POST: 303 to the page to show (a reload never re-posts the form)."""
    return RedirectResponse(PREFIX + path, status_code=303)


def install(app: FastAPI) -> None:
    """The pages, their static files, and their errors as pages rather than JSON."""
    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="office-static")

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse(PREFIX + "/", status_code=303)

    @app.exception_handler(SignIn)
    async def _sign_in(request: Request, exc: SignIn) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{PREFIX}/login?next={urllib.parse.quote(target, safe='')}", status_code=303)

    @app.exception_handler(PageError)
    async def _page_error(request: Request, exc: PageError) -> Response:
        return page(request, "error.html", None, status=exc.status, key=exc.key, detail=exc.detail)


def _bounded_day(text: str | None, zone: zoneinfo.ZoneInfo) -> dt.date:
    if not text:
        return dt.datetime.now(zone).date()
    try:
        day = dt.date.fromisoformat(text[:10])
    except ValueError:
        raise PageError(422, "bad_form") from None
    if not wire.EARLIEST.year <= day.year < wire.LATEST.year:
        raise PageError(422, "bad_form")
    return day


# -- communities ------------------------------------------------------------------------------

@router.get("/", response_class=HTMLResponse)
def communities_page(request: Request, actor: Actor = Depends(viewer)):
    db = deps.database(request)
    only = actor.community if actor.role == "community" else None
    rows = overview.communities(db, only)
    return page(request, "communities.html", actor, communities=rows, states=report_states(request, rows),
                open_alarms=open_alarm_counts(db, only))


def report_states(request: Request, rows: list[overview.CommunityRow]) -> dict[str, str]:
    """Yesterday's report state per community (submitted / late / missing): office-reports'."""
    return {}


def open_alarm_counts(db: Database, only: str | None) -> dict[str, int]:
    """Immediate reports not yet acknowledged, per community: office-reports'."""
    return {}


@router.get("/communities/{community}", response_class=HTMLResponse)
def community_page(request: Request, community: str, day: str | None = None,
                   actor: Actor = Depends(viewer)):
    may_read(actor, community)
    db = deps.database(request)
    rows = overview.communities(db, community)
    if not rows:
        raise PageError(404, "not_found")
    the_day = _bounded_day(day, _zone(request))
    return page(request, "community.html", actor, c=rows[0], day=the_day.isoformat(),
                changed=request.query_params.get("changed") == "1",
                may_set_risk=actor.role == "admin", risk_levels=RISK_LEVELS)


@router.post("/communities/{community}/risk")
async def set_risk(request: Request, community: str, actor: Actor = Depends(viewer)):
    """The township sets a community's risk level (administrators only); the other policy
    keys stay as they were. The gates pick it up at their next sync."""
    form = await read_form(request)
    if actor.role != "admin":
        raise PageError(403, "forbidden")
    level = form.get("risk_level", "")
    if level not in RISK_LEVELS:
        raise PageError(422, "bad_form")
    if not SLUG.match(community):
        raise PageError(404, "not_found")
    db = deps.database(request)
    held = db.document(community, "policy")
    current: dict[str, Any] = json.loads(held["body"]) if held else {}
    try:
        document = models.PolicyDocument.model_validate({**current, "risk_level": level})
    except ValidationError:
        raise PageError(422, "bad_form") from None
    published = db.publish(community, "policy", document.model_dump(exclude_none=True))
    audit(db, actor, "risk_level", community, f"{current.get('risk_level')} -> {level} (v{published['version']})")
    return back_to(f"/communities/{community}?changed=1")


def audit(db: Database, actor: Actor, action: str, community: str | None, detail: str) -> None:
    """office-auth's audit log."""
    try:
        from sync.server import audit as audit_log  # type: ignore[attr-defined]
    except ImportError:
        log.info("%s by %s on %s: %s", action, actor.name, community, detail)
        return
    audit_log.audit(db, actor, action, community, detail)


# -- gates ----------------------------------------------------------------------------------------

@router.get("/gates", response_class=HTMLResponse)
def gates_page(request: Request, actor: Actor = Depends(viewer)):
    only = actor.community if actor.role == "community" else None
    rows = overview.gates(deps.database(request), only)
    return page(request, "gates.html", actor, gates=rows,
                revoked=request.query_params.get("revoked"))


@router.post("/gates/{device_id}/revoke")
async def revoke(request: Request, device_id: str, actor: Actor = Depends(viewer)):
    form = await read_form(request)
    db = deps.database(request)
    device = db.device(device_id[:100])
    if device is None:
        raise PageError(404, "not_found")
    may_change(actor, device.community)
    db.revoke(device.device_id)
    audit(db, actor, "device_revoked", device.community, device.device_id)
    log.info("revoked device %s from the office's pages", device.device_id)
    del form
    return back_to(f"/gates?revoked={urllib.parse.quote(device.device_id)}")


# -- enrollment tokens --------------------------------------------------------------------------

@router.get("/enrollments", response_class=HTMLResponse)
def enrollments_page(request: Request, actor: Actor = Depends(viewer)):
    only = actor.community if actor.role == "community" else None
    return page(request, "enrollments.html", actor, tokens=overview.enrollments(deps.database(request), only),
                made=None, form={}, may_make=actor.role in ("admin", "community"))


@router.post("/enrollments", response_class=HTMLResponse)
async def make_enrollment(request: Request, actor: Actor = Depends(viewer)):
    form = await read_form(request)
    try:
        req = models.EnrollmentRequest.model_validate({
            "community": form.get("community", ""), "gate": form.get("gate", ""),
            "device_id": form.get("device_id") or None, "ttl_hours": float(form.get("ttl_hours") or 24)})
    except (ValidationError, ValueError):
        raise PageError(422, "bad_form") from None
    may_change(actor, req.community)
    db = deps.database(request)
    token = auth.new_token()
    device_id = req.device_id or f"{req.community}.{req.gate}"
    expires = clock.utc_now() + dt.timedelta(hours=req.ttl_hours)
    try:
        db.create_enrollment(auth.token_hash(token), device_id, req.community, req.gate, expires)
    except Rejected as exc:
        raise PageError(exc.status, "bad_form", exc.detail) from None
    audit(db, actor, "enrollment_token", req.community, f"{device_id} ({req.gate})")
    only = actor.community if actor.role == "community" else None
    # The token is shown once, in this answer, and never stored (only its hash is).
    return page(request, "enrollments.html", actor, tokens=overview.enrollments(db, only),
                made={"token": token, "device_id": device_id, "expires_utc": clock.iso(expires)},
                form={}, may_make=True)


__all__ = ["PageError", "StorageError", "install", "router"]
