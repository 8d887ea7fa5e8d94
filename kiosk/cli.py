"""The one console command, `gate`, and its subcommands.

Subcommand modules are imported only when their command runs, so `gate decide`
never pays for OpenCV and a broken camera stack never breaks `gate sync`.
Each module provides `add_arguments(parser)` and `run(args) -> int`; a long-running
one sets `DAEMON = True` (logs at info, with times, by default).

Options for every command: `--log-level` (or $GATE_LOG_LEVEL), before the command or
after it. Errors reach the user as one line, `gate: ...`, and exit 2: argparse's usage
errors, a bad gate.toml, and the project's own named errors (any exception class
defined in kiosk, devices, sync or tui). Anything else is a bug: one line and exit 1,
and the traceback with `--log-level debug`.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from types import ModuleType
from typing import NoReturn

# name: (module, one-line help). Keep docs/cli.md in step (a test checks it).
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("kiosk.run_cmd", "run the gate: camera, thermometer, checkpoint, relay, local API, uploader"),
    "config": ("kiosk.config_cmd", "the configuration file: an annotated example, the settings in force"),
    "decide": ("kiosk.decide_cmd", "decide JSON cases from stdin, one JSON decision per line"),
    "console": ("tui.console_cmd", "the guard's console: the gate's screen and keys, over its local API"),
    "demo": ("kiosk.demo", "run the gate on simulated devices"),
    "db": ("kiosk.store_cmd", "local store: check, purge by retention, show alarms"),
    "scan": ("devices.scan_cmd", "read QR codes from a folder, image, video file or camera"),
    "server": ("sync.server_cmd", "run the township server (FastAPI; SQLite or PostgreSQL)"),
    "sync": ("sync.sync_cmd", "upload entries to the township, pull policy and lists"),
    "enroll": ("sync.enroll_cmd", "enroll this gate with the township server (once)"),
    "township": ("sync.township_cmd", "township office: tokens, policy, lists, reports, alarms"),
    "keys": ("kiosk.codes.keys_cmd", "make a signing key pair and its trust-list entry"),
    "codes": ("kiosk.codes.codes_cmd", "health codes and passes: issue, verify offline, EU test vectors"),
    "thermometer": ("devices.thermometer.thermometer_cmd",
                    "read a serial thermometer; fit its body-temperature calibration"),
    "sim": ("devices.sim_cmd", "simulated devices on pseudo-terminals (thermometer)"),
    "install": ("kiosk.install_cmd", "install on a Raspberry Pi: user, /etc/gate, /var/lib/gate, systemd units"),
    "doctor": ("kiosk.doctor_cmd", "versions, devices, store, sync and clock, with no personal data"),
}
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_LEVEL_ENV = "GATE_LOG_LEVEL"
# Packages whose exception classes are the project's named errors: their message is for the user.
OWN_PACKAGES = ("kiosk", "devices", "sync", "tui")


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (and exit 2), naming --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed
    try:
        return installed("gate")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def log_level(text: str) -> str:
    level = text.strip().lower()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(LOG_LEVELS)}, got {text!r}")
    return level


def add_everywhere(parser: argparse.ArgumentParser, *flags: str, **kw) -> None:
    """Add an option to a parser and every nested subcommand parser, so it works in any
    position. Only the parser that sees it sets it (default SUPPRESS below the top)."""
    parser.add_argument(*flags, **kw)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                add_everywhere(sub, *flags, **{**kw, "default": argparse.SUPPRESS})


def build_parser(name: str) -> tuple[argparse.ArgumentParser, ModuleType]:
    module_name, help_text = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = Parser(prog=f"gate {name}", description=module.__doc__ or help_text,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)
    add_everywhere(parser, "--log-level", type=log_level, default=argparse.SUPPRESS, metavar="LEVEL",
                   help=f"{', '.join(LOG_LEVELS)} (the same as `gate --log-level LEVEL {name}`)")
    return parser, module


def top_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="gate", description="Community gate checkpoint (查、测、问、记、报).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n" + "\n".join(f"  {n:<12} {h}" for n, (_, h) in COMMANDS.items())
        + "\n\nRun `gate COMMAND --help` for a command's options.")
    parser.add_argument("--version", action="version", version=f"gate {version()}")
    parser.add_argument("--log-level", type=log_level, default=None, metavar="LEVEL",
                        help=f"{', '.join(LOG_LEVELS)}: what goes to stderr (default: warning, "
                             f"info for the servers; or ${LOG_LEVEL_ENV})")
    parser.add_argument("command", nargs="?", help="one of the commands below")
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def setup_logging(name: str, level: str, daemon: bool) -> None:
    """One tree, `gate.*`, to stderr. Daemons' lines carry the time; a command's just its name."""
    timed = daemon or level == "debug"
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s" if timed
                        else f"gate {name}: %(message)s")
    logging.getLogger("gate").setLevel(level.upper())
    if level == "debug":
        logging.getLogger().setLevel(logging.DEBUG)


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C while a command's modules load: no traceback either
        return 130


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    top = top_parser()
    try:
        env_level = os.environ.get(LOG_LEVEL_ENV)
        top_args = top.parse_args(argv)
        if env_level and top_args.log_level is None:
            top_args.log_level = log_level(env_level)
    except argparse.ArgumentTypeError as exc:
        print(f"gate: {LOG_LEVEL_ENV} {exc}", file=sys.stderr)
        return 2
    name = top_args.command
    if name is None:
        top.print_help()
        return 2
    if name not in COMMANDS:
        print(f"gate: unknown command {name!r} (commands: {', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    parser, module = build_parser(name)
    args = parser.parse_args(top_args.args)
    daemon = bool(getattr(module, "DAEMON", False))
    args.log_level = getattr(args, "log_level", None) or top_args.log_level or ("info" if daemon else "warning")
    setup_logging(name, args.log_level, daemon)
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - the one place that turns errors into one line
        return report(exc, name, args.log_level == "debug")


def report(exc: Exception, name: str, debug: bool) -> int:
    """One line on stderr for an error that escaped a command; the exit status."""
    ours = type(exc).__module__.split(".")[0] in OWN_PACKAGES
    if ours or isinstance(exc, OSError):
        if debug:
            logging.getLogger("gate").exception("gate %s failed", name)
        print(f"gate {name}: {one_line(exc)}", file=sys.stderr)
        return 2
    if debug:
        logging.getLogger("gate").exception("gate %s: internal error", name)
    print(f"gate {name}: internal error: {type(exc).__name__}: {one_line(exc)} "
          f"(the traceback: gate --log-level debug {name} ...)", file=sys.stderr)
    return 1


def one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
