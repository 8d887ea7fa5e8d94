"""The visible key bar: every action on one key, in the guard's language.

Laid out here, row by row by each item's width in cells (a Chinese character takes two),
so a key never parts from its word at the end of a row; Chinese fits two rows at 80
columns, English three."""
from __future__ import annotations

from rich.cells import cell_len
from textual.widgets import Static

from tui.words import w

# (key, word) in the order a shift uses them; the main screen binds the same keys.
KEYS = (("c", "key_lookup"), ("d", "key_register"), ("t", "key_temperature"), ("w", "key_answers"),
        ("m", "key_mask"), ("o", "key_override"), ("r", "key_refused"), ("j", "key_emergency"),
        ("a", "key_ack"), ("s", "key_start_shift"), ("e", "key_end_shift"), ("x", "key_cancel"),
        ("f", "key_today"), ("b", "key_report"), ("^q", "key_quit"))


def rows(lang: str, width: int) -> list[list[tuple[str, str]]]:
    """The items (key, word) on each row of `width` cells, one space between items."""
    out: list[list[tuple[str, str]]] = [[]]
    used = 0
    for key, word_key in KEYS:
        word = w(word_key, lang)
        size = cell_len(f" {key} {word}")
        if out[-1] and used + 1 + size > width:
            out.append([])
            used = 0
        used += size + (1 if used else 0)
        out[-1].append((key, word))
    return out


class KeyBar(Static):
    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.lang = "zh"

    def show(self, lang: str) -> None:
        self.lang = lang
        self.redraw()

    def redraw(self) -> None:
        width = self.size.width or 80
        self.update("\n".join(" ".join(f"[reverse] {key} [/reverse]{word}" for key, word in row)
                              for row in rows(self.lang, width)))

    def on_resize(self) -> None:
        self.redraw()
