"""The gate's local API: what the console and the queue screen see and do.

FastAPI, served on a Unix socket by default (only local users in the socket's group
can reach it; nothing listens on the network) and optionally on a TCP address that
serves only the screen facing the queue (its page and its words: ScreenOnlyOverTcp).
It reads the checkpoint's state, streams its events as server-sent events, and passes
the guard's commands to it. It never decides anything itself: the checkpoint's thread
does, so nothing here can block the gate.
"""
from __future__ import annotations

import asyncio
import html
import json
import logging
import os
import socket
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from kiosk import reasons, today
from kiosk.checkpoint import COMMANDS, Checkpoint, CommandError
from kiosk.lookup import CHINA_STANDARD_TIME, BadLookup, Lookup
from kiosk.store import Store

log = logging.getLogger("gate.api")

PAGE = Path(__file__).with_name("queue_screen.html")
EVENT_BUFFER = 256  # events a slow client may fall behind by before it is dropped
SCREEN_ROUTES = ("/", "/v1/events")  # all that the TCP address serves


class CommandBody(BaseModel):
    """A guard's command: its arguments, each bounded."""
    model_config = ConfigDict(extra="forbid")
    person_ref: str | None = Field(None, max_length=80)
    id_number: str | None = Field(None, max_length=40)
    direction: str | None = Field(None, pattern="^(in|out)$")
    body_c: float | None = Field(None, ge=-50, le=150)
    symptoms: bool | None = None
    risk_area_travel: bool | None = None
    case_contact: bool | None = None
    confirmed: bool | None = None
    reason: str | None = Field(None, max_length=200)
    emergency: str | None = Field(None, max_length=20)
    form: str | None = Field(None, max_length=20)
    fields: dict[str, str | int | bool | None] | None = Field(None, max_length=20)
    approved: bool | None = None
    guard_id: str | None = Field(None, max_length=64)
    pin: str | None = Field(None, max_length=12)
    fever: bool | None = None
    cough: bool | None = None
    leader_id: str | None = Field(None, max_length=64)
    alarm_id: int | None = Field(None, ge=1, le=2**62)


class TodayFigures(BaseModel):
    """GET /v1/today: counts for the local calendar day so far."""
    day: str
    entries: int
    by_action: dict[str, int]
    by_reason: dict[str, int]
    by_kind: dict[str, int]
    fevers: int
    immediate_reports: int
    open_alarms: int
    last_entry_utc: str | None


class ReportLine(BaseModel):
    key: str
    count: int
    text: str


class RefusalLine(BaseModel):
    reason: str
    count: int
    text: str


class ReportPreview(BaseModel):
    """GET /v1/today/report: today's daily report as it will read."""
    day: str
    lang: str
    entries: int
    by_action: dict[str, int]
    outcomes_text: str
    lines: list[ReportLine]
    refusals_by_reason: list[RefusalLine]


def create_app(checkpoint: Checkpoint, status: Callable[[], dict] | None = None,
               lang: str | None = None, people: Lookup | None = None, reader: Store | None = None) -> FastAPI:
    """`people` and `reader` are read-only views of the store on their own connection."""
    tz = people.tz if people is not None else CHINA_STANDARD_TIME  # the gate's calendar day
    # No /docs or /redoc: their pages load scripts from a CDN, and a gate is offline.
    # /openapi.json stays (docs/api.md).
    app = FastAPI(title="gate local API", version="1", docs_url=None, redoc_url=None,
                  description="The gate's state, events and the guard's commands. See docs/api.md.")
    app.state.closing = threading.Event()  # set by ApiServer.stop: open event streams end first

    app.add_middleware(ScreenOnlyOverTcp)

    @app.exception_handler(CommandError)
    async def _refused(request: Request, exc: CommandError) -> JSONResponse:
        body: dict = {"error": exc.code, "detail": str(exc)}
        if exc.fields:
            body["fields"] = exc.fields
        return JSONResponse(body, status_code=409)

    @app.get("/v1/state", tags=["gate"])
    def state() -> dict:
        """The current subject and phase, the last decision and the devices' status."""
        out = checkpoint.state()
        out["status"] = status() if status else {}
        out["words"] = words_for(out, lang)
        return out

    @app.get("/v1/events", tags=["gate"])
    async def events(request: Request) -> StreamingResponse:
        """Server-sent events: state, code, reading, decision, alarm, device. One JSON object each."""
        return StreamingResponse(_stream(request, checkpoint, lang, words_only=over_tcp(request.scope)),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})

    @app.post("/v1/commands/{name}", tags=["guard"])
    async def command(name: str, body: CommandBody) -> dict:
        """Look a person up, a manual temperature, the answers, the mask, an override, cancel."""
        if name not in COMMANDS:
            return JSONResponse({"error": "unknown_command", "detail": f"known: {', '.join(COMMANDS)}"},
                                status_code=404)  # type: ignore[return-value]
        args = {k: v for k, v in body.model_dump().items() if v is not None}
        future = checkpoint.command(name, **args)
        try:
            return await asyncio.wrap_future(future)
        except TypeError as exc:  # arguments that do not fit the command
            raise CommandError("bad_command", f"{name}: {exc}") from None

    @app.get("/v1/alarms", tags=["guard"])
    def alarms() -> dict:
        """Open alarms (immediate reports, device faults) until a guard acknowledges them."""
        return {"alarms": reader.alarms() if reader is not None else []}

    @app.get("/v1/people", tags=["guard"])
    def find_people(name: str = Query(..., min_length=1, max_length=32),
                    household: str | None = Query(None, max_length=64),
                    address: str | None = Query(None, max_length=64)) -> dict:
        """A resident without a phone, by name within a household or an address: masked names
        and person references to look up, never ID numbers."""
        if people is None:
            raise CommandError("no_lists", "no lists on this gate")
        try:
            found = people.find_by_name(name, household_id=household, address=address)
        except BadLookup as exc:
            raise CommandError("invalid_form", str(exc), fields={exc.field: exc.code}) from None
        return {"people": [{"person_ref": p.person_ref, "masked_name": p.masked_name,
                            "household_id": p.household_id} for p in found]}

    @app.get("/v1/today", tags=["guard"], response_model=TodayFigures)
    def today_figures() -> dict:
        """Today's figures at this gate (the local calendar day), from its store."""
        if reader is None:
            raise CommandError("no_store", "no store on this gate")
        return today.figures(reader, checkpoint.clock.now(), tz)

    @app.get("/v1/today/report", tags=["guard"], response_model=ReportPreview)
    def today_report(lang_: str | None = Query(None, alias="lang", pattern="^(zh|en)$")) -> dict:
        """A preview of today's daily report, every line with its zero, in `lang` (default: the gate's)."""
        if reader is None:
            raise CommandError("no_store", "no store on this gate")
        return today.report_preview(reader, checkpoint.clock.now(), tz, lang_ or lang)

    @app.get("/", response_class=HTMLResponse, tags=["queue screen"])
    def queue_screen() -> str:
        """The full-screen page for the screen facing the queue."""
        return queue_page(lang)

    return app


def words_for(state: dict, lang: str | None) -> dict:
    """What the queue screen says for this state, in the resident's words. Never a name or an
    ID number: the screen faces the whole queue, and the guard's console has the name."""
    last, phase = state.get("last"), state.get("phase") or "waiting"
    if phase == "decided" and last:
        return outcome_words(last, lang)
    words = {"headline": reasons.text(reasons.QUEUE_TEXT, phase, lang),
             "colour": {"measuring": "busy", "asking": "busy", "retest": "yellow"}.get(phase, "idle"),
             "reason": "", "next": reasons.text(reasons.NEXT_STEP_TEXT, phase, lang),
             "temperature": None, "temperature_text": ""}
    if phase == "retest":  # the first reading was high: show it, and why a second one is needed
        readings = (state.get("subject") or {}).get("readings_c") or []
        words.update(reason=reasons.text(reasons.QUEUE_REASON_TEXT, "fever_retest", lang),
                     **_temperature(readings[-1] if readings else None, lang))
    return words


def outcome_words(decision: dict, lang: str | None) -> dict:
    """A decision on the queue screen: colour, headline, why (an admit's first reason; a refusal's
    first two), the temperature and the next step."""
    action = decision.get("action", "")
    codes = [c for c in decision.get("reasons") or [] if isinstance(c, str)]
    codes = codes[:1] if action == "admit" else codes[:2]  # an admit's notes (lists_stale) are the guard's
    if action == "abandoned":  # the person left: the screen simply asks the next one for a code
        return words_for({"phase": "waiting"}, lang)
    next_step = next((reasons.text(reasons.QUEUE_NEXT_BY_REASON, c, lang) for c in codes
                      if c in reasons.QUEUE_NEXT_BY_REASON and action != "admit"),
                     reasons.text(reasons.NEXT_STEP_TEXT, action, lang))
    separator = "；" if (lang or reasons.default_lang()) == "zh" else "; "
    readings = decision.get("readings_c") or []
    return {"headline": reasons.text(reasons.QUEUE_TEXT, action, lang),
            "colour": {"admit": "green", "retest": "yellow"}.get(action, "red"),
            "reason": separator.join(reasons.text(reasons.QUEUE_REASON_TEXT, c, lang) for c in codes),
            "next": next_step, **_temperature(readings[-1] if readings else None, lang)}


def _temperature(body_c: float | None, lang: str | None) -> dict:
    if not isinstance(body_c, int | float):
        return {"temperature": None, "temperature_text": ""}
    return {"temperature": body_c,
            "temperature_text": f"{reasons.text(reasons.QUEUE_LABEL_TEXT, 'temperature', lang)} {body_c:.1f}"
                                f"{reasons.text(reasons.QUEUE_LABEL_TEXT, 'celsius', lang)}"}


def queue_page(lang: str | None) -> str:
    """The queue screen's page with its fixed words filled in (no script fetches them)."""
    lang = lang or reasons.default_lang()
    page = PAGE.read_text(encoding="utf-8").replace("{{lang}}", "zh-CN" if lang == "zh" else lang)
    for key in reasons.QUEUE_LABEL_TEXT:
        page = page.replace("{{" + key + "}}", html.escape(reasons.text(reasons.QUEUE_LABEL_TEXT, key, lang)))
    return page.replace("{{waiting}}", html.escape(reasons.text(reasons.QUEUE_TEXT, "waiting", lang)))


def over_tcp(scope: Scope) -> bool:
    """uvicorn names a TCP listener (host, port) and a Unix socket (path, None)."""
    server = scope.get("server")
    return server is not None and server[1] is not None


class ScreenOnlyOverTcp:
    """The TCP address is for the screen facing the queue: it serves that page and the words
    on it, nothing else. Commands (an override opens the gate), names and alarms stay on the
    Unix socket, where only the gate's group can connect; there is no login on either."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and over_tcp(scope) and not (
                scope["method"] in ("GET", "HEAD") and scope["path"] in SCREEN_ROUTES):
            # closed after the answer: the body was never read (and a stranger resetting such
            # connections would otherwise leave uvicorn holding each one's buffers for a while)
            response = JSONResponse({"error": "screen_only", "detail": "this address serves the queue screen only; "
                                     "the API is on the gate's Unix socket"}, status_code=403,
                                    headers={"Connection": "close"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _stream(request: Request, checkpoint: Checkpoint, lang: str | None,
                  words_only: bool = False) -> AsyncIterator[bytes]:
    """`words_only` (the queue screen over TCP): the screen's words and nothing about anyone."""
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[dict] = asyncio.Queue(maxsize=EVENT_BUFFER)

    def deliver(event: dict) -> None:  # on the checkpoint's thread: never wait for this client
        def put() -> None:
            if inbox.full():
                inbox.get_nowait()  # a slow client misses the oldest, never holds up the others
            inbox.put_nowait(event)
        loop.call_soon_threadsafe(put)

    unsubscribe = checkpoint.subscribe(deliver)
    try:
        first = checkpoint.state()
        first["words"] = words_for(first, lang)
        yield b"retry: 1000\n\n"  # a browser that lost the gate tries again every second
        yield _sse({"type": "hello", "words": first["words"]} if words_only else {"type": "hello", **first})
        closing, quiet = request.app.state.closing, 0.0
        while not await request.is_disconnected() and not closing.is_set():
            try:
                event = await asyncio.wait_for(inbox.get(), timeout=0.5)
            except TimeoutError:
                quiet += 0.5
                if quiet >= 15:
                    quiet = 0.0
                    yield b": keep-alive\n\n"
                continue
            quiet = 0.0
            if event["type"] == "decision":
                event = {**event, "words": outcome_words(event, lang)}
            elif event["type"] == "state":
                event = {**event, "words": words_for(checkpoint.state(), lang)}
            elif words_only:
                continue
            yield _sse({"type": event["type"], "at": event["at"], "words": event["words"]} if words_only else event)
    finally:
        unsubscribe()


def _sse(event: dict) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n".encode()


class ApiServer:
    """uvicorn in a thread, on a Unix socket (mode 0660) and/or a TCP address."""

    def __init__(self, app: FastAPI, *, uds: str | None = None, tcp: tuple[str, int] | None = None) -> None:
        import uvicorn
        self.sockets: list[socket.socket] = []
        if uds:
            path = Path(uds)
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_socket():
                path.unlink()  # left by a crashed daemon; a live one holds the pid lock first
            s = socket.socket(socket.AF_UNIX)
            old = os.umask(0o117)
            try:
                s.bind(str(path))
            finally:
                os.umask(old)
            self.sockets.append(s)
        if tcp:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(tcp)
            self.sockets.append(s)
        self.uds, self.tcp = uds, (self.sockets[-1].getsockname() if tcp else None)
        self.app = app
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                                    timeout_graceful_shutdown=1))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": self.sockets},
                                       name="api", daemon=True)

    @property
    def url(self) -> str | None:
        return f"http://{self.tcp[0]}:{self.tcp[1]}" if self.tcp else None

    def start(self) -> ApiServer:
        self.thread.start()
        for _ in range(400):  # up to 10 s: uvicorn sets `started` once it serves
            if self.server.started:
                break
            threading.Event().wait(0.025)
        return self

    def stop(self) -> None:
        # End the event streams first: uvicorn would otherwise cancel them after its grace
        # period and log each cancelled stream as an error.
        self.app.state.closing.set()
        self.server.should_exit = True
        self.thread.join(5)
        if self.uds and Path(self.uds).is_socket():
            Path(self.uds).unlink()
