"""The person being checked now, in large type: colour, decision, reason, temperature."""
from __future__ import annotations

import math

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Digits, Static

from kiosk import reasons
from tui.words import w

COLOURS = ("idle", "busy", "green", "yellow", "red")
ACTION_COLOUR = {"admit": "green", "retest": "yellow", "abandoned": "idle"}  # others refuse: red
PHASE_COLOUR = {"waiting": "idle", "measuring": "busy", "retest": "yellow", "asking": "yellow"}


def view(state: dict, lang: str) -> dict:
    """What the panel shows for the gate's state: colour, headline, reason, detail, temperatures."""
    phase, subject, last = state.get("phase") or "waiting", state.get("subject"), state.get("last")
    if phase == "decided" and last:
        action = last.get("action", "")
        headline = reasons.action_text(action, lang)
        if action in reasons.QUEUE_TEXT and action != "abandoned":
            headline += "  " + reasons.text(reasons.QUEUE_TEXT, action, lang)
        sep = "；" if lang == "zh" else "; "
        return {"colour": ACTION_COLOUR.get(action, "red"), "headline": headline,
                "reason": sep.join(reasons.reason_text(r, lang) for r in last.get("reasons") or []),
                "detail": _who(last.get("masked_name"), last.get("subject_kind"), last.get("code_colour"), lang),
                "readings": list(last.get("readings_c") or []), "retest": False, "waiting_s": None,
                "deadline_in_s": None}
    if subject is None:
        tail = ""
        if last:
            tail = (f"{w('last', lang)}：" if lang == "zh" else f"{w('last', lang)}: ") + \
                f"{last.get('masked_name') or '—'} {reasons.action_text(last.get('action', ''), lang)}"
        return {"colour": "idle", "headline": w("phase_waiting", lang),
                "reason": reasons.text(reasons.QUEUE_TEXT, "waiting", lang), "detail": tail,
                "readings": [], "retest": False, "waiting_s": None, "deadline_in_s": None}
    code = subject.get("code") or {}
    detail = _who(subject.get("masked_name"), subject.get("kind"), code.get("colour"), lang)
    source = {"lookup": w("subject_lookup", lang), "register": w("subject_register", lang)}.get(
        subject.get("source", ""), w("subject_code", lang))
    extras = [source]
    if not subject.get("known"):
        extras.append(w("unknown_person", lang))
    else:  # what the lists say of a resident: where they live, an order running, the pass
        if subject.get("household"):
            extras.append(f"{w('household', lang)} {subject['household']}")
        quarantine = subject.get("quarantine") or "none"
        if quarantine != "none":
            extras.append(f"[b red]{w('quarantine_' + quarantine, lang)}[/]")
        if subject.get("kind") == "resident":
            extras.append(w("pass_yes" if subject.get("has_pass") else "pass_no", lang))
    if subject.get("flags"):
        extras.append(f"{w('flags', lang)}：{'、'.join(subject['flags'])}" if lang == "zh"
                      else f"{w('flags', lang)}: {', '.join(subject['flags'])}")
    if subject.get("mask_confirmed"):
        extras.append(w("mask_yes", lang))
    reason = reasons.text(reasons.NEXT_STEP_TEXT, phase, lang)
    if phase == "retest":
        reason = reasons.reason_text("fever_retest", lang)
    return {"colour": PHASE_COLOUR.get(phase, "busy"), "headline": w(f"phase_{phase}", lang), "reason": reason,
            "detail": "  ".join([detail, *extras]), "readings": list(subject.get("readings_c") or []),
            "retest": phase == "retest", "waiting_s": subject.get("waiting_s"),
            "deadline_in_s": subject.get("deadline_in_s")}


def _who(masked_name: str | None, kind: str | None, colour: str | None, lang: str) -> str:
    parts = [masked_name or "—"]
    if kind:
        parts.append(reasons.text(reasons.LABEL_TEXT, kind, lang))
    if colour:
        parts.append(reasons.text(reasons.LABEL_TEXT, colour, lang))
    return "  ".join(parts)


class SubjectPanel(Vertical):
    """Large type for the one person at the gate."""

    def compose(self) -> ComposeResult:
        yield Static(id="headline")
        yield Static(id="reason")
        with Horizontal(id="measure"):
            yield Digits("", id="temp")
            yield Static(id="temp-note")
        yield Static(id="detail")

    def show(self, v: dict, lang: str, waited_s: float | None = None, left_s: float | None = None) -> None:
        """`left_s`: the step's countdown (the gate abandons the check at zero)."""
        for colour in COLOURS:
            self.set_class(v["colour"] == colour, f"-{colour}")
        self.query_one("#headline", Static).update(v["headline"])
        self.query_one("#reason", Static).update(v["reason"])
        readings = v["readings"]
        self.query_one("#temp", Digits).update(f"{readings[-1]:.1f}" if readings else "")
        note = ""
        if readings:
            note = f"{w('temperature', lang)} °C"
            if len(readings) > 1:
                note += "\n" + " → ".join(f"{r:.1f}" for r in readings) + f"（{w('retested', lang)}）"
        if v["retest"]:
            note += ("\n" if note else "") + w("retest_pending", lang)
        self.query_one("#temp-note", Static).update(note)
        detail = v["detail"]
        if left_s is not None:
            style = "b red" if left_s <= 10 else "b"
            detail += f"  [{style}]" + w("time_left", lang, s=max(0, math.ceil(left_s))) + "[/]"
        elif waited_s is not None:
            detail += "  " + w("waiting_for", lang, s=int(waited_s))
        self.query_one("#detail", Static).update(detail)
