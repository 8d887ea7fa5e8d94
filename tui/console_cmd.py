"""`gate console`: the guard's screen on the Pi's console or over SSH.

A client of the gate's local API only (the Unix socket `gate run` serves): it shows
the person being checked, recent entries, open alarms and the gate's status, and sends
the guard's commands. Quitting it (ctrl+q) or losing it leaves the gate deciding.
Keys, screens and the Linux console: docs/console.md.
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path

from kiosk import config, reasons


class ConsoleError(Exception):
    """The console cannot start as asked; the message says what to fix."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--socket", metavar="PATH",
                        help="the gate's API socket (default: [api] socket of gate.toml, var/gate-api.sock)")
    parser.add_argument("--lang", choices=reasons.LANGS, default=None,
                        help="zh (default, or $GATE_LANG; en on the bare Linux VT, TERM=linux) or en")
    parser.add_argument("--log", metavar="FILE", type=Path, default=None,
                        help="where log lines go while the console owns the terminal "
                             "(default: $XDG_STATE_HOME/gate/console.log)")


def run(args: argparse.Namespace) -> int:
    path = args.socket
    if not path:
        try:
            path = config.load()["api"]["socket"]
        except config.ConfigError as exc:
            raise ConsoleError(str(exc)) from None
    if not path:
        raise ConsoleError("no API socket: pass --socket PATH or set [api] socket in gate.toml")
    if len(os.fsencode(path)) > 100:
        raise ConsoleError(f"socket path too long for a Unix socket: {path[:40]}…")
    from tui.app import GateConsole  # Textual only when the console runs
    from tui.terminal import default_log_path, logs_to
    with logs_to(args.log or default_log_path()):  # no log line may draw over the screen
        GateConsole(path, choose_lang(args.lang, os.environ)).run()
    return 0


def choose_lang(asked: str | None, env: Mapping[str, str]) -> str:
    """--lang, else $GATE_LANG, else Chinese; but English on the bare Linux VT (TERM=linux),
    whose font has no Chinese glyphs: run it under fbterm, or pass --lang zh (docs/console.md)."""
    if asked:
        return asked
    if env.get("GATE_LANG") in reasons.LANGS:
        return env["GATE_LANG"]
    return "en" if env.get("TERM") == "linux" else "zh"
