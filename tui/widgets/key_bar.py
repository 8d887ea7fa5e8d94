"""The visible key bar: every action on one key, in the guard's language."""
from __future__ import annotations

from textual.widgets import Static

from tui.words import w

# (key, word) in the order a shift uses them; the main screen binds the same keys.
KEYS = (("c", "key_lookup"), ("d", "key_register"), ("t", "key_temperature"), ("w", "key_answers"),
        ("m", "key_mask"), ("o", "key_override"), ("a", "key_ack"), ("s", "key_start_shift"),
        ("e", "key_end_shift"), ("x", "key_cancel"), ("ctrl+q", "key_quit"))


class KeyBar(Static):
    def show(self, lang: str) -> None:
        self.update("  ".join(f"[reverse] {key} [/reverse]{w(word, lang)}" for key, word in KEYS))
