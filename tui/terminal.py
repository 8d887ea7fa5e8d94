"""While the console owns the terminal, nothing else may write on it.

Textual draws on stderr (`sys.__stderr__`). Log lines, warnings, a thread's traceback or
a C library's complaint written to stderr would land in the middle of the screen. So,
for as long as the console runs, file descriptor 2 goes to a log file (0600) and Textual
is given the terminal on a descriptor of its own; afterwards both are put back. With
stderr not a terminal (a test, a pipe) nothing is moved.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("gate.console")


def default_log_path(name: str = "console") -> Path:
    """$XDG_STATE_HOME/gate/<name>.log (~/.local/state/gate/<name>.log)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "gate" / f"{name}.log"


@contextlib.contextmanager
def logs_to(path: Path) -> Iterator[Path | None]:
    """Send stderr (and so every log line) to `path` while the block runs; yields the path,
    or None when stderr is not a terminal and nothing was moved."""
    if not _is_tty(2):
        yield None
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    terminal_fd = os.dup(2)
    terminal = os.fdopen(terminal_fd, "w", encoding="utf-8", errors="replace", buffering=1)
    saved_stderr, saved_dunder, saved_hook = sys.stderr, sys.__stderr__, threading.excepthook
    sys.stderr.flush()
    os.dup2(log_fd, 2)
    os.close(log_fd)
    setattr(sys, "__stderr__", terminal)  # noqa: B010 - Textual draws on sys.__stderr__ (typed Final)
    logging.captureWarnings(True)
    threading.excepthook = _log_thread_crash
    try:
        yield path
    finally:
        threading.excepthook = saved_hook
        logging.captureWarnings(False)
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(terminal_fd, 2)
        setattr(sys, "__stderr__", saved_dunder)  # noqa: B010 - as above
        sys.stderr = saved_stderr
        terminal.close()


def _is_tty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def _log_thread_crash(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    log.error("thread %s failed", getattr(args.thread, "name", "?"),
              exc_info=(args.exc_type, args.exc_value, args.exc_traceback))  # type: ignore[arg-type]
