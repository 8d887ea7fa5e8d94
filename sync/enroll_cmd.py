"""Enroll this gate with the township server, once.

Makes an Ed25519 device key on the gate, presents the one-time enrollment token the
township office gave you (`gate township token` on their side) with the public key,
and writes the credentials file (mode 0600) that `gate sync` reads. The private key
never leaves the gate.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sync.sync_cmd import DEFAULT_CREDENTIALS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", required=True, help="township server URL, e.g. https://township.example")
    parser.add_argument("--token", default=os.environ.get("GATE_ENROLL_TOKEN"),
                        help="one-time enrollment token (or $GATE_ENROLL_TOKEN)")
    parser.add_argument("--credentials", default=DEFAULT_CREDENTIALS,
                        help="where to write the credentials (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="replace an existing credentials file")


def run(args) -> int:
    from sync.client import SyncError, enroll

    if not args.token:
        print("gate enroll: give --token or $GATE_ENROLL_TOKEN", file=sys.stderr)
        return 2
    if Path(args.credentials).exists() and not args.force:
        print(f"gate enroll: {args.credentials} exists; use --force to re-enroll", file=sys.stderr)
        return 2
    try:
        creds = enroll(args.server, args.token)
    except SyncError as exc:
        print(f"gate enroll: {exc}", file=sys.stderr)
        return 1
    creds.save(args.credentials)
    print(f"enrolled as {creds.device_id} ({creds.community} / {creds.gate}); "
          f"credentials in {args.credentials}")
    if creds.device_id:
        print(f"set [gate] device_id = \"{creds.device_id}\" in gate.toml so entries carry it")
    return 0
