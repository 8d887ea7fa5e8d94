"""The one console command, `gate`, and its subcommands.

Subcommand modules are imported only when their command runs, so `gate decide`
never pays for OpenCV and a broken camera stack never breaks `gate sync`.
Each module provides `add_arguments(parser)` and `run(args) -> int`.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# name: (module, one-line help). Keep docs/cli.md in step (a test checks it).
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("kiosk.run_cmd", "run the gate: camera, thermometer, checkpoint, relay, local API, uploader"),
    "config": ("kiosk.config_cmd", "the configuration file: an annotated example, the settings in force"),
    "decide": ("kiosk.decide_cmd", "decide JSON cases from stdin, one JSON decision per line"),
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
}


def build_parser(name: str) -> tuple[argparse.ArgumentParser, object]:
    module_name, help_text = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"gate {name}", description=module.__doc__ or help_text,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)
    return parser, module


def top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gate", description="Community gate checkpoint (查、测、问、记、报).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n" + "\n".join(f"  {n:<12} {h}" for n, (_, h) in COMMANDS.items())
        + "\n\nRun `gate COMMAND --help` for a command's options.")
    parser.add_argument("command", nargs="?", help="one of the commands below")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        parser = top_parser()
        if argv and not argv[0].startswith("-"):
            parser.print_usage(sys.stderr)
            print(f"gate: unknown command {argv[0]!r}", file=sys.stderr)
            return 2
        parser.print_help()
        return 0 if argv else 2
    parser, module = build_parser(argv[0])
    args = parser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
