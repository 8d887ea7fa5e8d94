"""上岗 and 交班: a guard signs in with a PIN and a health check, and hands over at the end."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from kiosk import reasons
from tui.client import Refused, Unreachable
from tui.screens.form import Field, FormScreen
from tui.widgets.recent import local_time
from tui.words import refusal, w

if TYPE_CHECKING:
    from tui.app import GateConsole

YES_NO = {"": False, "否": False, "no": False, "n": False, "是": True, "yes": True, "y": True}


class StartShiftScreen(FormScreen):
    TITLE_KEY = "shift_title"

    def fields(self) -> list[Field]:
        lang = self.lang
        return [Field("guard_id", w("guard_id", lang)),
                Field("pin", w("pin", lang), self.check_pin, password=True, max_length=12),
                Field("leader_id", w("leader_id", lang)),
                Field("fever", w("q_fever", lang), self.check_yes_no, placeholder=w("no", lang), max_length=3),
                Field("cough", w("q_cough", lang), self.check_yes_no, placeholder=w("no", lang), max_length=3)]

    def check_pin(self, value: str) -> str | None:
        return None if value.isdigit() and 4 <= len(value) <= 12 else w("pin_bad", self.lang)

    def check_yes_no(self, value: str) -> str | None:
        return None if value.lower() in YES_NO else w("yes_no_bad", self.lang)

    async def send(self, values: dict[str, str]) -> Any:
        if not values.get("guard_id") or not values.get("pin"):
            self.say(w("pin_bad", self.lang) if values.get("guard_id") else w("guard_id", self.lang) + "？")
            return None
        body: dict[str, Any] = {"guard_id": values["guard_id"], "pin": values["pin"],
                                "fever": YES_NO[values.get("fever", "").lower()],
                                "cough": YES_NO[values.get("cough", "").lower()]}
        if values.get("leader_id"):
            body["leader_id"] = values["leader_id"]
        return await self.gate.client.command("start_shift", **body)


class EndShiftScreen(ModalScreen[dict | None]):
    """A confirmation: the handover summary comes with the gate's shift event."""
    CSS_PATH = "form.tcss"
    BINDINGS = [Binding("y", "confirm", show=False), Binding("escape", "back", show=False)]

    def compose(self) -> ComposeResult:
        lang = self.app.lang  # type: ignore[attr-defined]
        with Vertical(id="form"):
            yield Static(w("end_shift_confirm", lang), id="title")
            yield Static("", id="message")

    async def action_confirm(self) -> None:
        gate: GateConsole = self.app  # type: ignore[assignment]
        try:
            result = await gate.client.command("end_shift")
        except Refused as exc:
            self.query_one("#message", Static).update(f"[red]{refusal(exc, gate.lang)}[/]")
            return
        except Unreachable:
            self.query_one("#message", Static).update(f"[red]{w('reconnecting', gate.lang, s='…')}[/]")
            return
        if self.is_current:  # not already closed by the handover that came first
            self.dismiss(result)

    def action_back(self) -> None:
        self.dismiss(None)


def handover_text(h: dict, lang: str) -> str:
    sep = "：" if lang == "zh" else ": "
    lines = [f"{w('handover_guard', lang)}{sep}{h.get('guard') or '—'}"
             + (f"  {w('leader', lang)} {h['leader']}" if h.get("leader") else ""),
             f"{w('handover_period', lang)}{sep}{local_time(h.get('start'), '%m-%d %H:%M')} – "
             f"{local_time(h.get('end'), '%m-%d %H:%M')}",
             w("handover_entries", lang, n=h.get("entries", 0))]
    by_action = h.get("by_action") or {}
    counts = [w("count", lang, action=reasons.action_text(a, lang), n=n) for a, n in sorted(by_action.items())]
    if counts:
        lines.append(("，" if lang == "zh" else ", ").join(counts))
    lines.append(w("handover_immediate", lang, n=h.get("immediate_reports", 0)))
    lines.append(w("handover_open", lang, n=h.get("open_alarms", 0)))
    return "\n".join(lines)


class HandoverScreen(ModalScreen[None]):
    """What the next guard needs to know: shown after a shift ends."""
    CSS_PATH = "form.tcss"
    BINDINGS = [Binding("enter", "close", show=False), Binding("escape", "close", show=False)]

    def __init__(self, handover: dict) -> None:
        super().__init__()
        self.handover = handover

    def compose(self) -> ComposeResult:
        lang = self.app.lang  # type: ignore[attr-defined]
        with Vertical(id="form"):
            yield Static(w("handover_title", lang), id="title")
            yield Static(handover_text(self.handover, lang), id="handover")
            yield Static(w("handover_hint", lang), id="hint")

    def action_close(self) -> None:
        self.dismiss(None)
