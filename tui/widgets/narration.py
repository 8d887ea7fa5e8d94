"""One line above the key bar for what is happening around the gate, told by whoever runs
the console (the demo narrates its scripted people there); hidden until there is a line."""
from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class Narration(Static):
    def on_mount(self) -> None:
        self.display = False

    def show(self, text: str) -> None:
        self.display = True
        self.update(Text(text, no_wrap=True, overflow="ellipsis"))  # plain text: no markup in it
