"""The local store: check it, purge by retention, list and acknowledge alarms.

  gate db check            integrity check (a corrupt file is moved aside, with an alarm)
  gate db purge [--days N] delete acknowledged entries older than N days (default: config)
  gate db alarms [--ack ID]
  gate db stats            entries, unsynced entries, last seq
"""
from __future__ import annotations

import argparse
import json

from kiosk import config as gate_config
from kiosk.store import Store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="database file (default: [store] path in the config)")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("check", help="open the store, run the integrity check and migrations")
    purge = sub.add_parser("purge", help="delete acknowledged entries older than the retention period")
    purge.add_argument("--days", type=float, help="retention in days (default: config)")
    alarms = sub.add_parser("alarms", help="list open alarms")
    alarms.add_argument("--ack", type=int, metavar="ID", help="acknowledge alarm ID")
    sub.add_parser("stats", help="entry counts and the last seq per device")


def run(args: argparse.Namespace) -> int:
    cfg = gate_config.load()
    with Store.open(args.db or cfg["store"]["path"]) as store:
        if args.action == "check":
            print(json.dumps({"path": str(store.path), "schema_version": store.schema_version(),
                              "alarms": len(store.alarms())}, ensure_ascii=False))
        elif args.action == "purge":
            days = args.days if args.days is not None else cfg["store"]["retention_days"]
            print(json.dumps({"purged": store.purge(days), "retention_days": days}))
        elif args.action == "alarms":
            if args.ack is not None:
                store.acknowledge_alarm(args.ack)
            for alarm in store.alarms():
                print(json.dumps(alarm, ensure_ascii=False))
        elif args.action == "stats":
            print(json.dumps(store.stats(), ensure_ascii=False))
    return 0
