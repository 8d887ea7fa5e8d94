"""`gate demo` on a terminal: the guard's console (tui/) on the demo's gate, with the
scripted people passing and each step told on its narration line.

The console runs in the main thread and owns the terminal; the story (kiosk/demo.py:
the township server, the gate, the people) runs in a thread beside it and talks to the
gate through its API exactly as in the printed demo. Every log line and stderr go to a
file meanwhile (tui/terminal.py). Ctrl-C (or ctrl+q) quits the console; the story stops
where it is, the gate and the township server are stopped, the terminal is given back,
and the story so far is printed.
"""
from __future__ import annotations

import argparse
import logging
import queue
import sys
import tempfile
import threading
from multiprocessing import resource_tracker
from pathlib import Path

from kiosk import demo, reasons

log = logging.getLogger("gate.demo")

OUTCOME_S = 2.0  # the outcome stays on the console this long (the printed demo: 0.1 s)
PACE_S = 2.5     # between two people, time to read what the console shows
STOP_WAIT_S = 60.0  # the gate, the uploader and the township server stop within this


class ConsoleNarration(demo.Narration):
    """The story's lines go to the console's narration line (the first line of each) and are
    kept to be printed once the console has given the terminal back."""

    def __init__(self, lang: str | None) -> None:
        super().__init__()
        self.lang = lang
        self.notes: queue.Queue[str] = queue.Queue()
        self.lines: list[str] = []

    def out(self, text: str) -> None:
        self.lines.append(text)
        first = text.strip().splitlines()
        if first:
            self.notes.put(first[0])

    def pause(self) -> None:
        self.stop.wait(PACE_S)
        self.check()

    def finished(self) -> None:
        self.notes.put(demo.say("finished", self.lang))
        self.stop.wait()  # the gate stays up until the viewer quits


def run(args: argparse.Namespace) -> int:
    from tui.app import GateConsole
    from tui.terminal import default_log_path, logs_to

    lang = args.lang or reasons.default_lang()
    narration = ConsoleNarration(args.lang)
    outcome: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="gate-demo-") as tmp_text:
        tmp = Path(tmp_text)

        def story() -> None:
            try:
                outcome["rc"] = demo.run_gate(args, narration, tmp_dir=tmp, outcome_s=OUTCOME_S)
            except demo.Stopped:
                outcome["rc"] = 130
            except Exception as exc:  # said on the console and after it, never a traceback
                log.exception("the demo failed")
                outcome["error"] = exc
                narration.notes.put(demo.say("failed", args.lang, error=str(exc)[:120]))

        app = GateConsole(str(tmp / "api.sock"), lang, notes=narration.notes)
        worker = threading.Thread(target=story, name="demo-story", daemon=True)
        narration.notes.put(demo.say("starting", args.lang))
        with logs_to(default_log_path("demo")) as log_path:
            # Textual swaps sys.stderr for an object without a file descriptor while it runs, and
            # multiprocessing's resource tracker (the camera's decoder worker) passes stderr's
            # descriptor to its child: start it now, on the real one.
            resource_tracker.ensure_running()
            worker.start()
            try:
                app.run()
            finally:
                narration.stop.set()  # the story ends where it is; run_gate stops the gate and the township
                worker.join(STOP_WAIT_S)
    for line in narration.lines:
        print(line)
    if "error" in outcome:
        where = f" (log: {log_path})" if log_path else ""
        print(f"gate demo: {outcome['error']}{where}", file=sys.stderr)
        return 1
    if outcome.get("rc") != 0:
        print(demo.say("interrupted", args.lang), file=sys.stderr)
        return 130
    return 0
