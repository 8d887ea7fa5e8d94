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
from pathlib import Path as FilePath
from typing import Any

import jinja2
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from kiosk import clock, reasons
from sync import auth
from sync.server import accounts, alarms, deps, models, overview, reports
from sync.server import audit as audit_log
from sync.server.db import Rejected
from sync.server.deps import Actor
from sync.server.errors import Problem
from sync.server.office_words import AUDIT_KEYS, DEFAULT_LANG, LANGS, WORDS, audit_word, word

log = logging.getLogger("gate.server")
HERE = FilePath(__file__).resolve().parents[1]
PREFIX = "/office"
LANG_COOKIE = "gate_lang"
MAX_FIELD = 500          # characters of any one form field
RISK_LEVELS = ("low", "medium", "high")
MAX_ALARMS_SHOWN = 500   # open immediate reports listed on the page (the rest: acknowledge these first)
AUDIT_PAGE = 100
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

def viewer(request: Request) -> Actor:
    """The signed-in user (session cookie) or the admin token's actor; else to the login page."""
    try:
        return deps.current_actor(request)
    except Problem as exc:
        if exc.status in (401, 503):
            raise SignIn() from None
        raise


async def read_form(request: Request, actor: Actor | None) -> dict[str, str]:
    """An url-encoded form (the Gatekeeper holds the body to 64 KiB), each field bounded,
    whose csrf_token is the session's (a signed-in user; the admin token needs none)."""
    body = await request.body()
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if body and kind != "application/x-www-form-urlencoded":
        raise PageError(415, "bad_form")
    try:
        pairs = urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=32)
    except (UnicodeDecodeError, ValueError):
        raise PageError(400, "bad_form") from None
    form = dict(pairs)
    if any(len(v) > MAX_FIELD for v in form.values()):
        raise PageError(400, "bad_form")
    if actor is not None and actor.csrf is not None and not accounts.csrf_matches(actor, form.get(accounts.CSRF_FIELD)):
        raise PageError(403, "csrf_failed")
    return form


def may_change(actor: Actor, community: str | None) -> None:
    """deps.allow_change's rule (read-only changes nothing; community staff their own), as a page."""
    try:
        deps.allow_change(actor, community)
    except Problem:
        raise PageError(403, "forbidden") from None


def may_read(actor: Actor, community: str) -> None:
    if not actor.may_read(community):
        raise PageError(403, "forbidden")


def scope(actor: Actor) -> str | None:
    """The one community community staff see; None: township roles see all."""
    return None if actor.township else (actor.community or "")


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
        csrf=(actor.csrf or "") if actor else "", switch_lang=switch_lang(), path=request.url.path,
        reason=lambda code: reasons.reason_text(code, lang), action=lambda code: reasons.action_text(code, lang),
        risk=lambda level: word(f"risk_{level}" if level in RISK_LEVELS else "risk_none", lang),
        said=lambda value: said(value, lang),
        **context)
    response = HTMLResponse(html, status_code=status, headers={
        "Cache-Control": "no-store", "X-Frame-Options": "DENY",
        "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                   "script-src 'self'; frame-ancestors 'none'; form-action 'self'"})
    if request.query_params.get("lang") in LANGS:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, httponly=True, samesite="strict")
    return response


def said(value: Any, lang: str) -> str:
    """An audit row's action, or its detail (an object of keys and values), in words: risk
    levels, yes and no, the known keys; names and ids as they are."""
    if isinstance(value, dict):
        colon, sep = ("：", "；") if lang == "zh" else (": ", "; ")
        inner = sep.join(f"{audit_word(str(k), lang, AUDIT_KEYS)}{colon}{said(v, lang)}" for k, v in value.items())
        return inner
    if isinstance(value, bool):
        return audit_word(str(value).lower(), lang)
    if value in RISK_LEVELS:
        return word(f"risk_{value}", lang)
    if value is None:
        return "—"
    return audit_word(value, lang) if isinstance(value, str) else str(value)


def refused(exc: Rejected, fallback: str) -> PageError:
    """A refusal of the database as a page: its reason in the office's words when we have
    them (the English detail is shown on English pages only)."""
    return PageError(exc.status, exc.reason if exc.reason in WORDS else fallback, exc.detail)


def back_to(path: str) -> RedirectResponse:
    """After a POST: 303 to the page to show (a reload never re-posts the form)."""
    return RedirectResponse(PREFIX + path, status_code=303)


def install(app: FastAPI) -> None:
    """The pages, their static files, and their errors as pages rather than JSON."""
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="office-static")  # before
    app.include_router(router)  # the pages' catch-all

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


def _day(text: str | None, tz: str) -> dt.date:
    if not text:
        return reports.today(tz)
    try:
        day = dt.date.fromisoformat(text[:10])
        reports.bounds(day, tz)  # within the years the report takes
    except (ValueError, Rejected):
        raise PageError(422, "bad_form") from None
    return day


# -- signing in and out ---------------------------------------------------------------------------

def _next(text: str | None) -> str:
    """Back to a page of ours only (never an open redirect)."""
    return text if text and text.startswith(PREFIX + "/") and "//" not in text and "\\" not in text else PREFIX + "/"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = Query(None, max_length=500)):
    return page(request, "login.html", None, next=_next(next), failed=None, username="")


@router.post("/login")
async def login(request: Request):
    """The form posts here; office-auth's deps.sign_in checks the password (Argon2id, failed
    attempts limited in the database, a cross-site post refused), sets the cookie and audits."""
    form = await read_form(request, None)
    username = form.get("username", "")[:64]
    response = RedirectResponse(_next(form.get("next")), status_code=303)
    try:
        await deps.sign_in(request, response, username, form.get("password", ""))
    except Problem as exc:
        failed = {429: "login_throttled", 403: "account_disabled"}.get(exc.status, "login_failed")
        if exc.reason == "cross_site_login":
            failed = "csrf_failed"
        return page(request, "login.html", None, status=exc.status, next=_next(form.get("next")),
                    failed=failed, username=username)
    return response


@router.post("/logout")
async def logout(request: Request, actor: Actor = Depends(viewer)):
    await read_form(request, actor)  # the session's CSRF token
    response = RedirectResponse(PREFIX + "/login", status_code=303)
    deps.sign_out(request, response, actor)
    return response


# -- communities ------------------------------------------------------------------------------

@router.get("/", response_class=HTMLResponse)
def communities_page(request: Request, actor: Actor = Depends(viewer)):
    db = deps.database(request)
    tz = deps.server(request).settings.report_tz
    yesterday = reports.today(tz) - dt.timedelta(days=1)
    rows = overview.communities(db, scope(actor))
    return page(request, "communities.html", actor, communities=rows, report_day=yesterday.isoformat(),
                query=urllib.parse.urlencode, lang_now=lang_of(request),
                states=reports.statuses(db, yesterday, tz, scope(actor)),
                open_alarms=overview.open_alarms(db, scope(actor)))


@router.get("/communities/{community}", response_class=HTMLResponse)
def community_page(request: Request, community: str = Path(max_length=64), day: str | None = Query(None, max_length=10),
                   actor: Actor = Depends(viewer)):
    may_read(actor, community)
    db = deps.database(request)
    rows = overview.communities(db, community)
    if not rows or not SLUG.match(community):
        raise PageError(404, "not_found")
    tz = deps.server(request).settings.report_tz
    the_day = _day(day, tz)
    report = reports.daily(db, the_day, tz, community)
    found = next((c for c in report.communities if c.community == community), None)
    lang = lang_of(request)
    return page(request, "community.html", actor, c=rows[0], day=the_day.isoformat(), report=found,
                figures=[(k, reports.FIGURES[k][0 if lang == "zh" else 1],
                          reports.UNITS[reports.FIGURES[k][2]][0 if lang == "zh" else 1]) for k in reports.FIGURES],
                headcount_words={k: v[0 if lang == "zh" else 1] for k, v in reports.HEADCOUNTS.items()},
                status_text=reports.STATUS_TEXT, query=urllib.parse.urlencode,
                notice=request.query_params.get("done"), may_set_risk=actor.role == "admin" and actor.township,
                may_submit=actor.may_change(community) and actor.role != "readonly", risk_levels=RISK_LEVELS)


@router.post("/communities/{community}/risk")
async def set_risk(request: Request, community: str = Path(max_length=64), actor: Actor = Depends(viewer)):
    """The township sets a community's risk level (its administrators only); the other
    policy keys stay as they were. The gates pick it up at their next sync."""
    form = await read_form(request, actor)
    may_change(actor, None)  # the township administrator only
    level = form.get("risk_level", "")
    if level not in RISK_LEVELS or not SLUG.match(community):
        raise PageError(422, "bad_form")
    db = deps.database(request)
    held = db.document(community, "policy")
    current: dict[str, Any] = json.loads(held["body"]) if held else {}
    try:
        document = models.PolicyDocument.model_validate({**current, "risk_level": level})
    except ValidationError:
        raise PageError(422, "bad_form") from None
    db.publish(community, "policy", document.model_dump(exclude_none=True), audit_log.step(
        actor, "risk_level", community, lambda published: {
            "from": current.get("risk_level"), "to": level, "version": published["version"], "via": "office"}))
    return back_to(f"/communities/{community}?done=risk_changed")


@router.post("/communities/{community}/submit")
async def submit_report(request: Request, community: str = Path(max_length=64), actor: Actor = Depends(viewer)):
    """The community's staff submit a day's report, zero or not, signed by the shift leader."""
    form = await read_form(request, actor)
    may_change(actor, community)
    tz = deps.server(request).settings.report_tz
    day = _day(form.get("day"), tz)
    db = deps.database(request)
    try:
        reports.submit(db, community, day, tz, actor.name, form.get("leader", ""), form.get("note") or None,
                       audit=audit_log.step(actor, "report_submitted", community, lambda done: {
                           "day": done.day, "leader": done.leader, "late": done.late, "via": "office"}))
    except Rejected as exc:
        raise refused(exc, "not_submitted") from None
    return back_to(f"/communities/{community}?day={day.isoformat()}&done=report_sent")


# -- immediate reports (alarms) ------------------------------------------------------------------

@router.get("/alarms", response_class=HTMLResponse)
def alarms_page(request: Request, community: str | None = Query(None, max_length=64), actor: Actor = Depends(viewer)):
    """The open immediate reports, newest first; new ones arrive live (office.js)."""
    db = deps.database(request)
    mine = scope(actor)
    communities = frozenset({mine}) if mine is not None else None
    if community is not None:
        may_read(actor, community)
        communities = frozenset({community})
    newest = alarms.newest(db)
    found = alarms.since(db, 0, MAX_ALARMS_SHOWN, open_only=True, communities=communities)
    return page(request, "alarms.html", actor, alarms=list(reversed(found)), after=newest,
                stream="/v1/admin/alarms/stream", more=len(found) >= MAX_ALARMS_SHOWN)


@router.get("/alarms/row/{alarm_id}", response_class=HTMLResponse)
def alarm_row(request: Request, alarm_id: int = Path(ge=1, le=2**63 - 1), actor: Actor = Depends(viewer)):
    """One alarm's row, for the live list: the words stay on the server."""
    db = deps.database(request)
    mine = scope(actor)
    found = alarms.since(db, alarm_id - 1, 1, communities=frozenset({mine}) if mine is not None else None)
    if not found or found[0]["id"] != alarm_id:
        raise PageError(404, "not_found")
    return page(request, "alarm_row.html", actor, a=found[0])


@router.post("/alarms/{alarm_id}/acknowledge")
async def acknowledge(request: Request, alarm_id: int = Path(ge=1, le=2**63 - 1), actor: Actor = Depends(viewer)):
    form = await read_form(request, actor)
    db = deps.database(request)
    community = alarms.community_of(db, alarm_id)
    if community is None:
        raise PageError(404, "not_found")
    may_change(actor, community)
    alarms.acknowledge(db, alarm_id, actor.name, form.get("note") or None,
                       audit_log.step(actor, "alarm_acknowledged", community, {"alarm": alarm_id, "via": "office"}))
    return back_to("/alarms")


# -- gates ----------------------------------------------------------------------------------------

@router.get("/gates", response_class=HTMLResponse)
def gates_page(request: Request, actor: Actor = Depends(viewer)):
    rows = overview.gates(deps.database(request), scope(actor))
    return page(request, "gates.html", actor, gates=rows, revoked=request.query_params.get("revoked"))


@router.post("/gates/{device_id}/revoke")
async def revoke(request: Request, device_id: str = Path(max_length=100), actor: Actor = Depends(viewer)):
    await read_form(request, actor)
    db = deps.database(request)
    device = db.device(device_id)
    if device is None or not actor.may_read(device.community):
        raise PageError(404, "not_found")
    may_change(actor, device.community)
    db.revoke(device.device_id, audit_log.step(actor, "device_revoked", device.community,
                                               {"device_id": device.device_id, "via": "office"}))
    log.info("revoked device %s from the office's pages (%s)", device.device_id, actor.name)
    return back_to(f"/gates?revoked={urllib.parse.quote(device.device_id)}")


# -- enrollment tokens --------------------------------------------------------------------------

@router.get("/enrollments", response_class=HTMLResponse)
def enrollments_page(request: Request, actor: Actor = Depends(viewer)):
    return page(request, "enrollments.html", actor, tokens=overview.enrollments(deps.database(request), scope(actor)),
                made=None, may_make=actor.role != "readonly")


@router.post("/enrollments", response_class=HTMLResponse)
async def make_enrollment(request: Request, actor: Actor = Depends(viewer)):
    form = await read_form(request, actor)
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
        db.create_enrollment(auth.token_hash(token), device_id, req.community, req.gate, expires,
                             audit_log.step(actor, "enrollment_token", req.community, {
                                 "device_id": device_id, "gate": req.gate, "ttl_hours": req.ttl_hours,
                                 "via": "office"}))
    except Rejected as exc:
        raise refused(exc, "bad_form") from None
    # The token is shown once, in this answer, and never stored (only its hash is).
    return page(request, "enrollments.html", actor, tokens=overview.enrollments(db, scope(actor)),
                made={"token": token, "device_id": device_id, "expires_utc": clock.iso(expires)}, may_make=True)


# -- accounts and the audit log (office-auth's) ---------------------------------------------------

@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, actor: Actor = Depends(viewer)):
    if not (actor.role == "admin" and actor.township):
        raise PageError(403, "forbidden")
    return page(request, "users.html", actor, users=accounts.users(deps.database(request)))


@router.post("/users/{username}/{change}")
async def change_user(request: Request, username: str = Path(max_length=64),
                      change: str = Path(pattern="^(disable|enable)$"), actor: Actor = Depends(viewer)):
    """Disable (its sessions end at once) or enable an account: the township administrator."""
    await read_form(request, actor)
    if not (actor.role == "admin" and actor.township):
        raise PageError(403, "forbidden")
    if username == actor.name and change == "disable":
        raise PageError(422, "not_yourself")
    db = deps.database(request)
    done = (accounts.disable_user if change == "disable" else accounts.enable_user)(
        db, username, audit_log.step(actor, f"user_{change}d", None, {"username": username, "via": "office"}))
    if not done:
        raise PageError(404, "not_found")
    return back_to("/users")


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, before: int | None = Query(None, ge=1, le=2**63 - 1), actor: Actor = Depends(viewer)):
    """Every change, newest first; community staff see their own community's."""
    found = audit_log.records(deps.database(request), before=before, limit=AUDIT_PAGE, community=scope(actor))
    return page(request, "audit.html", actor, entries=found,
                older=found[-1]["id"] if len(found) == AUDIT_PAGE else None)


@router.get("/{anything:path}", response_class=HTMLResponse)
def no_such_page(anything: str, actor: Actor = Depends(viewer)):
    """Any other address under the pages: a page saying so, in the reader's language."""
    raise PageError(404, "not_found")
