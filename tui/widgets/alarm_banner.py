"""Open immediate reports (立即上报) and device faults, until a guard acknowledges them."""
from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui.words import alarm_text, w


class AlarmBanner(Static):
    """Hidden with no open alarm; otherwise the oldest one, the count, and the key."""

    def show(self, alarms: list[dict], lang: str) -> None:
        self.display = bool(alarms)
        if not alarms:
            self.update("")
            return
        first = alarms[0]
        sep = "：" if lang == "zh" else ": "
        hint = f"（{w('alarm_hint', lang)}）" if lang == "zh" else f" ({w('alarm_hint', lang)})"
        # the count and the key first: a long reason is cut, never the way to acknowledge it
        self.update(Text.assemble((w("alarms", lang, n=len(alarms)) + hint, "bold underline"),
                                  sep + alarm_text(first, lang), overflow="ellipsis"))
