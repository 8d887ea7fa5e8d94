"""The gate's configuration file.

  gate config example        an annotated gate.toml with every key and its default
  gate config show           the configuration in force (file plus GATE_* overrides), as TOML-like lines
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from kiosk import config as gate_config

EXAMPLE = Path(__file__).with_name("gate.example.toml")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="gate.toml (default: $GATE_CONFIG, else ./gate.toml if present)")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("example", help="print an annotated gate.toml")
    sub.add_parser("show", help="print the configuration in force")


def run(args: argparse.Namespace) -> int:
    if args.action == "example":
        print(EXAMPLE.read_text(encoding="utf-8"), end="")
        return 0
    for section, values in gate_config.load(args.config).items():
        print(f"[{section}]")
        for key, value in values.items():
            print(f"{key} = {json.dumps(value, ensure_ascii=False)}")
        print()
    return 0
