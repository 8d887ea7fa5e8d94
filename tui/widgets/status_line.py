"""The status line: guard and leader, risk level, devices, sync, lists, clock, connection."""
from __future__ import annotations

import datetime as dt

from textual.widgets import Static

from kiosk import reasons
from tui.words import w


def status_text(status: dict, lang: str, *, fps: float | None, connection: str) -> str:
    sep = "  "
    shift = status.get("shift")
    if shift:
        who = f"{w('on_duty', lang)} {shift.get('guard_name') or shift.get('guard_id')}"
        if shift.get("leader_name"):
            who += f" · {w('leader', lang)} {shift['leader_name']}"
    else:
        who = f"[yellow]{w('no_shift', lang)}[/]"
    risk = status.get("risk_level")
    risk_text = w(f"risk_{risk}", lang) if risk in ("low", "medium", "high") else ""
    risk_style = {"low": "green", "medium": "yellow", "high": "red"}.get(risk or "", "")
    thermo = status.get("thermometer") or {}
    t_status = thermo.get("status", "")
    t_text = reasons.thermometer_text(t_status, lang) if t_status else ""
    t_text = f"[green]{t_text}[/]" if t_status == "ok" else f"[red]{t_text}[/]"
    camera = status.get("camera") or {}
    c_status = str(camera.get("status", ""))
    c_text = w(f"camera_{c_status}", lang) if c_status else "—"  # no status yet: not connected
    cam = f"{w('camera', lang)} " + (c_text if c_status in ("ok", "") else f"[red]{c_text}[/]")
    if fps is not None:
        cam += f" {fps:.0f}{w('fps', lang)}" if lang == "zh" else f" {fps:.0f} {w('fps', lang)}"
    sync = status.get("sync") or {}
    if not sync.get("enrolled"):
        sync_text = f"[yellow]{w('sync_not_enrolled', lang)}[/]"
    else:
        sync_text = w("sync_online", lang) if sync.get("online") else f"[red]{w('sync_offline', lang)}[/]"
    sync_text += " " + w("backlog", lang, n=sync.get("backlog", 0))
    clock = w("clock_ok", lang) if status.get("clock_synchronised") else f"[red]{w('clock_bad', lang)}[/]"
    lists = lists_age_text(status.get("lists_fetched") or {}, status.get("utc"), lang)
    line1 = sep.join(x for x in (who, f"[{risk_style}]{risk_text}[/]" if risk_style else risk_text, connection) if x)
    line2 = sep.join((t_text, cam, sync_text, lists, clock))
    return f"{line1}\n{line2}"


def lists_age_text(fetched: dict, utc: str | None, lang: str) -> str:
    """The oldest person list's age; 'no lists' when one never came."""
    times = [v for k, v in fetched.items() if k in ("residents", "passes", "quarantine_orders")]
    if not times or any(v is None for v in times):
        return f"[yellow]{w('lists_none', lang)}[/]"
    try:
        now = dt.datetime.fromisoformat(str(utc).replace("Z", "+00:00"))
        oldest = min(dt.datetime.fromisoformat(str(v).replace("Z", "+00:00")) for v in times)
    except ValueError:
        return ""
    return w("lists_age", lang, h=max(0, int((now - oldest).total_seconds() // 3600)))


class StatusLine(Static):
    """Two lines at the top of the main screen."""
