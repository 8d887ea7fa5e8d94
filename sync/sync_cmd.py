"""Upload this gate's entries to the township server and pull policy and lists.

Without --once it runs until interrupted: a round every few seconds, exponential
back-off with full jitter while the server is unreachable. With --once it does one
round and exits 0 when everything was uploaded, 1 otherwise. The credentials file
comes from `gate enroll`; the store path and settings from gate.toml ([store] path,
[sync] section) or the options below.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from sync.client import DEFAULT_CREDENTIALS

DAEMON = True  # kiosk/cli.py: logs at info with times unless --log-level says otherwise


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--once", action="store_true", help="one round, then exit (0 = all uploaded)")
    parser.add_argument("--store", default=None, help="the gate's SQLite file (default: [store] path)")
    parser.add_argument("--credentials", default=None,
                        help=f"file written by `gate enroll` (default: [sync] credentials or {DEFAULT_CREDENTIALS})")
    parser.add_argument("--batch-size", type=int, default=None, help="entries per upload (default 500)")
    parser.add_argument("--interval", type=float, default=None, help="seconds between rounds when idle (default 2)")
    parser.add_argument("--pull-interval", type=float, default=None,
                        help="seconds between policy/list checks (default 60)")
    parser.add_argument("--backoff-cap", type=float, default=None, help="longest wait after failures (default 60 s)")
    parser.add_argument("--no-pull", action="store_true", help="upload only")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")


def build(args):
    from kiosk import config as gate_config
    from kiosk.store import Store
    from sync.client import SyncClient, SyncConfig

    cfg = gate_config.load()
    conf = SyncConfig.from_gate_config(cfg, credentials=args.credentials, batch_size=args.batch_size,
                                       interval_s=args.interval, pull_interval_s=args.pull_interval,
                                       backoff_cap_s=args.backoff_cap)
    creds = conf.credentials
    if not 1 <= conf.batch_size <= 1000:
        raise SystemExit("gate sync: --batch-size must be 1..1000")
    store = Store.open(args.store or cfg["store"]["path"])
    configured = cfg.get("gate", {}).get("device_id")
    others = store.conn.execute("SELECT COUNT(*) FROM entries WHERE device_id != ? AND synced_at IS NULL",
                                (creds.device_id,)).fetchone()[0]
    if others:
        logging.getLogger("gate.sync").warning(
            "%d unsent entries belong to another device id than %s (gate.toml [gate] device_id = %r): "
            "they are not uploaded; set device_id to the enrolled one", others, creds.device_id, configured)

    def progress(done: int, total: int) -> None:
        if not args.quiet:
            print(f"uploaded {done}/{total} ({100 * done // max(total, 1)}%)", file=sys.stderr, flush=True)

    return store, SyncClient(store, conf, progress=progress)


def run(args) -> int:
    from sync.client import SyncError

    if args.quiet:
        logging.getLogger("gate").setLevel(max(logging.WARNING, logging.getLogger("gate").level))
    try:
        store, client = build(args)
    except SyncError as exc:
        print(f"gate sync: {exc}", file=sys.stderr)
        return 2
    try:
        if args.once:
            try:
                r = client.run_once(pull=not args.no_pull)
            except SyncError as exc:
                print(f"gate sync: {exc}", file=sys.stderr)
                return 1
            print(f"uploaded {r.uploaded}, acked seq {r.acked_seq}, backlog {r.backlog}, "
                  f"pulled {', '.join(r.pulled) or 'nothing'}, clock offset {r.clock_offset_s:+.3f} s")
            return 0 if r.backlog == 0 else 1
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        if args.no_pull:
            client.config.pull_interval_s = float("inf")
        try:
            client.run_forever(stop)
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        client.close()
        store.close()
