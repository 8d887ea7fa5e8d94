"""`gate console`: the guard's screen, a client of the gate's local API only.

The app keeps what the gate last said (its state, open alarms, recent decisions) and
redraws the main screen from it. The event stream runs in a worker that reconnects by
itself; the state is also polled every two seconds for the status line. Nothing here
waits on the gate for long: every call is bounded (tui/client.py), and the console
exiting or crashing leaves the gate deciding.
"""
from __future__ import annotations

import logging
import queue
import time
from typing import Any

from textual.app import App
from textual.binding import Binding
from textual.css.query import NoMatches

from tui.client import GateClient, Refused, Unreachable
from tui.screens.answers import AnswersScreen
from tui.screens.emergency import EmergencyScreen
from tui.screens.lookup import LookupScreen
from tui.screens.main import MainScreen
from tui.screens.override import OverrideScreen
from tui.screens.refused import RefusedScreen
from tui.screens.register import RegisterChoiceScreen, RegisterScreen
from tui.screens.report import ReportScreen
from tui.screens.shift import EndShiftScreen, HandoverScreen, StartShiftScreen
from tui.screens.temperature import TemperatureScreen
from tui.screens.today import TodayScreen
from tui.widgets.alarm_banner import AlarmBanner
from tui.widgets.narration import Narration
from tui.widgets.recent import RecentEntries
from tui.widgets.status_line import StatusLine, status_text
from tui.widgets.subject import SubjectPanel, view
from tui.words import refusal, w

log = logging.getLogger("gate.console")

POLL_S = 2.0


class GateConsole(App):
    TITLE = "gate console"
    CSS_PATH = "app.tcss"
    ENABLE_COMMAND_PALETTE = False  # a guard's keys only; ctrl+p would open an English palette
    # ctrl+c quits too (Textual would only hint at ctrl+q): the gate goes on either way
    BINDINGS = [Binding("ctrl+q", "quit", show=False), Binding("ctrl+c", "quit", show=False, priority=True)]

    def __init__(self, socket_path: str, lang: str = "zh", *, show_clock: bool = True, follow: bool = True,
                 notes: queue.Queue[str] | None = None) -> None:
        """`notes`: lines to show on the narration line (the demo tells its story there)."""
        super().__init__()
        self.notes = notes
        self.lang = lang
        self.client = GateClient(socket_path)
        self.state: dict[str, Any] = {}
        self.alarms: list[dict] = []
        # alarms the gate could not store (the store itself failing): this console's to acknowledge
        self.local_alarms: list[dict] = []
        self.connection = w("connecting", lang)
        self.connected = False
        self.fps: float | None = None
        self._frames: tuple[float, int] | None = None
        self._state_at = time.monotonic()
        self.show_clock = show_clock  # off in snapshot tests: the clock is not deterministic
        self.follow = follow  # off in snapshot tests: a state set by the test, no gate
        self.main = MainScreen()

    # -- life --------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.push_screen(self.main)
        if self.notes is not None:
            self.set_interval(0.2, self.take_notes)
        if not self.follow:
            return
        self.run_worker(self.follow_events(), name="events", group="events", exclusive=True)
        self.set_interval(POLL_S, self.poll)
        self.set_interval(0.5, self.redraw_subject)  # the countdown ticks

    async def on_unmount(self) -> None:
        await self.client.close()

    async def follow_events(self) -> None:
        async for event in self.client.events():
            kind = event["type"]
            if kind == "_connected":
                self.connected = True
                self.connection = ""
                self.redraw()
                await self.refresh_all()
            elif kind == "_disconnected":
                self.connected = False
                self.connection = w("reconnecting", self.lang, s=event["retry_in"])
                self.redraw()
            else:
                try:
                    await self.on_gate_event(event)
                except Exception:  # logged: one odd event must not end the stream
                    log.exception("event %s", kind)

    async def on_gate_event(self, event: dict) -> None:
        kind = event["type"]
        if kind == "decision":
            self.main.query_one(RecentEntries).add(event)
        if kind == "alarm" and event.get("id") is None:
            self.local_alarms = [*self.local_alarms, event][-20:]
        if kind in ("alarm", "alarm_acknowledged"):
            await self.refresh_alarms()
        if kind == "shift" and event.get("handover"):
            if isinstance(self.screen, EndShiftScreen):
                self.screen.dismiss(None)  # the event can come before the command's answer
            self.push_screen(HandoverScreen(event["handover"]))
        if kind != "hello":
            await self.refresh_state()
        else:
            self.take_state(event)
        self.redraw()

    async def poll(self) -> None:
        if self.connected:
            await self.refresh_state()
            self.redraw()

    async def refresh_all(self) -> None:
        await self.refresh_state()
        await self.refresh_alarms()
        self.redraw()

    async def refresh_state(self) -> None:
        try:
            self.take_state(await self.client.state())
        except (Unreachable, Refused):
            return  # the event stream says when the gate is gone

    def take_state(self, state: dict) -> None:
        status = state.get("status") or self.state.get("status") or {}
        self.state = {**state, "status": status}
        self._state_at = time.monotonic()
        frames = (status.get("camera") or {}).get("frames")
        if isinstance(frames, int):
            now = time.monotonic()
            if self._frames is not None and now - self._frames[0] >= 0.5:
                self.fps = max(0.0, (frames - self._frames[1]) / (now - self._frames[0]))
            if self._frames is None or now - self._frames[0] >= 0.5:
                self._frames = (now, frames)

    async def refresh_alarms(self) -> None:
        try:
            self.alarms = await self.client.alarms()
        except (Unreachable, Refused):
            return

    # -- drawing -------------------------------------------------------------------------
    def redraw(self) -> None:
        try:
            self._redraw()
        except NoMatches:  # not yet composed, or closing: a timer may fire as the widgets go
            return

    def _redraw(self) -> None:
        if not self.main.is_mounted or not self.main.query(StatusLine):
            return
        connection = "" if self.connected else f"[b red]{self.connection}[/]"
        self.main.query_one(StatusLine).update(
            status_text(self.state.get("status") or {}, self.lang, fps=self.fps, connection=connection))
        self.main.query_one(AlarmBanner).show(self.alarms + self.local_alarms, self.lang)
        self.redraw_subject()

    def redraw_subject(self) -> None:
        try:
            self._redraw_subject()
        except NoMatches:  # as in redraw
            return

    def _redraw_subject(self) -> None:
        if not self.main.is_mounted or not self.main.query(SubjectPanel):
            return
        v = view(self.state, self.lang)
        waited = left = None
        since = time.monotonic() - self._state_at  # the state's times tick on between polls
        if v["waiting_s"] is not None and self.show_clock:
            waited = v["waiting_s"] + since
        if v["deadline_in_s"] is not None:
            left = v["deadline_in_s"] - (since if self.show_clock else 0.0)
        self.main.query_one(SubjectPanel).show(v, self.lang, waited, left)

    def take_notes(self) -> None:
        if self.notes is None or not self.main.is_mounted or not self.main.query(Narration):
            return  # the lines wait in the queue until the line is there
        text = None
        while not self.notes.empty():
            text = self.notes.get_nowait()  # the newest: the story has moved on from the others
        if text is not None:
            self.main.query_one(Narration).show(text)

    def tell(self, text: str, ok: bool = True) -> None:
        self.notify(text, severity="information" if ok else "error", timeout=4)

    # -- the guard's keys -------------------------------------------------------------------
    def action_look_up(self) -> None:
        self.push_screen(LookupScreen(), self.after_form)

    def action_register(self) -> None:
        def chosen(form: str | None) -> None:
            if form:
                self.push_screen(RegisterScreen(form), self.after_form)
        self.push_screen(RegisterChoiceScreen(), chosen)

    def action_temperature(self) -> None:
        self.push_screen(TemperatureScreen(), self.after_form)

    def action_answers(self) -> None:
        self.push_screen(AnswersScreen(), self.after_form)

    def action_override(self) -> None:
        self.push_screen(OverrideScreen(), self.after_form)

    def action_start_shift(self) -> None:
        self.push_screen(StartShiftScreen(), self.after_form)

    def action_end_shift(self) -> None:
        self.push_screen(EndShiftScreen(), self.after_form)

    def action_refused(self) -> None:
        self.push_screen(RefusedScreen(), self.after_form)

    def action_emergency(self) -> None:
        self.push_screen(EmergencyScreen(), self.after_form)

    def action_today(self) -> None:
        self.push_screen(TodayScreen())

    def action_report(self) -> None:
        self.push_screen(ReportScreen())

    async def action_mask(self) -> None:
        await self.send("mask", confirmed=True)

    async def action_cancel(self) -> None:
        await self.send("cancel")

    async def action_acknowledge(self) -> None:
        if not self.alarms and self.local_alarms:  # never stored: seen here is acknowledged
            self.local_alarms = self.local_alarms[1:]
            self.tell(w("acknowledged", self.lang))
            self.redraw()
            return
        if not self.alarms:
            self.tell(w("nothing_to_ack", self.lang), ok=False)
            return
        if await self.send("acknowledge_alarm", alarm_id=self.alarms[0]["id"]):
            await self.refresh_alarms()
            self.redraw()

    async def send(self, name: str, **body: Any) -> bool:
        try:
            state = await self.client.command(name, **body)
        except Refused as exc:
            self.tell(refusal(exc, self.lang), ok=False)
            return False
        except Unreachable:
            self.tell(w("reconnecting", self.lang, s="…"), ok=False)
            return False
        self.take_state({**state, "status": self.state.get("status")})
        self.tell(w("sent", self.lang))
        self.redraw()
        return True

    def after_form(self, result: Any) -> None:
        if isinstance(result, dict) and "phase" in result:
            self.take_state({**result, "status": self.state.get("status")})
            self.tell(w("sent", self.lang))
            self.redraw()
