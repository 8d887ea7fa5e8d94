"""A community's daily entries, refusals and fevers over the last weeks, as SVG.

Drawn with matplotlib's SVG backend (no display, no PNG), text kept as <text> elements
(`svg.fonttype = none`) so the browser draws the Chinese with its own fonts: the server
needs no CJK font file. Layout measures text with the first font matplotlib finds of
CJK_FONTS (DejaVu Sans when none is installed; the labels are then slightly misplaced,
never missing). Each series is a group with a stable id (`entries`, `refused`,
`fevers`) so a test or a script can find it. Imported only when a chart is asked for.
"""
from __future__ import annotations

import io
import threading
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sync.server.reports import DayPoint

CJK_FONTS = ["Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "Droid Sans Fallback",
             "DejaVu Sans"]
# rc settings are global to matplotlib: one chart at a time per process.
_lock = threading.Lock()


def _fonts() -> list[str]:
    """CJK_FONTS that are installed (asking for a missing one logs a line per glyph)."""
    from matplotlib import font_manager
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return [f for f in CJK_FONTS if f in installed] or ["DejaVu Sans"]


def draw(points: list[DayPoint], community: str, lang: str = "zh") -> str:
    import matplotlib
    matplotlib.use("svg", force=True)
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from sync.server.reports import CHART_TEXT

    days = [p.day[5:] for p in points]  # MM-DD
    x = list(range(len(points)))
    with _lock, warnings.catch_warnings(), matplotlib.rc_context({
            "svg.fonttype": "none", "svg.hashsalt": "gate", "font.family": _fonts(),
            "font.size": 9, "axes.spines.top": False, "axes.spines.right": False}):
        warnings.simplefilter("ignore")  # "Glyph missing" when no CJK font: the browser has one
        fig = Figure(figsize=(8, 3), layout="constrained")
        ax = fig.subplots()
        series = (("entries", "#2f6db5", [p.entries for p in points]),
                  ("refused", "#d08c1f", [p.refused for p in points]),
                  ("fevers", "#c0392b", [p.fevers for p in points]))
        for key, colour, values in series:
            (line,) = ax.plot(x, values, marker="o", markersize=2.5, linewidth=1.5, color=colour,
                              label=CHART_TEXT[key][lang])
            line.set_gid(key)
        step = max(1, len(points) // 10)
        ax.set_xticks(x[::step], days[::step])
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # people are whole
        ax.grid(axis="y", linewidth=0.3)
        ax.legend(loc="upper left", frameon=False, ncols=3)
        ax.set_title(CHART_TEXT["title"][lang].format(community=community, days=len(points)))
        out = io.StringIO()
        fig.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
    return out.getvalue()
