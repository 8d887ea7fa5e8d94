"""Run the township server (FastAPI on uvicorn).

The database is a SQLite file by default (no set-up); give a postgresql:// URL for
a city-sized deployment. The administrator token comes from $GATE_ADMIN_TOKEN or
--admin-token-file; when neither exists a new token is written to that file (mode
0600) and only the file's path is logged. Serve TLS with --ssl-certfile/--ssl-keyfile
or behind a reverse proxy (docs/sync.md). `--workers N` runs N processes on one port
(sync/server/workers.py); every gate's share of the server is then kept in the database.
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import logging
import os
import sys
from pathlib import Path

DAEMON = True  # kiosk/cli.py: logs at info with times unless --log-level says otherwise


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535, got {value}")
    return value


def workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of workers: {text!r}") from None
    if not 1 <= value <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"workers are 1..{MAX_WORKERS}, got {value}")
    return value


MAX_WORKERS = 64
WORKER_ENV = "GATE_SERVER_WORKER"  # the settings a worker builds its app from (not the admin token)


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=os.environ.get("GATE_SERVER_DB", "var/township.db"),
                        help="SQLite file or postgresql:// URL (default: %(default)s)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=port, default=8470, help="port (default: %(default)s; 0 = any free)")
    parser.add_argument("--admin-token-file", default=None,
                        help="file holding the administrator token (default: admin-token next to "
                             "a SQLite file, else ./township-admin-token)")
    parser.add_argument("--max-body-mb", type=float, default=4.0,
                        help="largest request body accepted, compressed (default: %(default)s)")
    parser.add_argument("--max-db-mb", type=float, default=None,
                        help="SQLite only: refuse writes (503 storage_full) past this size")
    parser.add_argument("--busy-timeout-ms", type=int, default=5000,
                        help="wait this long for a database lock before answering 503")
    parser.add_argument("--report-tz", default="Asia/Shanghai",
                        help="time zone of the daily report's day (default: %(default)s)")
    parser.add_argument("--workers", type=workers, default=1,
                        help="worker processes on one port (default: %(default)s; about one per "
                             "core; on SQLite they take turns to write)")
    parser.add_argument("--ssl-certfile", default=None, help="serve HTTPS with this certificate")
    parser.add_argument("--ssl-keyfile", default=None, help="private key for --ssl-certfile")


def admin_token_path(args) -> Path:
    if args.admin_token_file:
        return Path(args.admin_token_file)
    if is_postgres(args.db):
        return Path("township-admin-token")
    return Path(args.db.removeprefix("sqlite:///")).with_name("admin-token")


def ensure_admin_token(path: Path) -> str:
    from sync import auth
    token = auth.load_admin_token(path)
    if token:
        return token
    token = auth.new_token()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    logging.getLogger("gate.server").warning("new administrator token written to %s", path)
    return token


def worker_app():
    """The app of one worker process (`--workers N`): uvicorn starts each worker afresh and
    calls this. The settings come from the parent through WORKER_ENV; the admin token
    from $GATE_ADMIN_TOKEN or its file, as in the parent, never through the environment."""
    from sync import auth
    from sync.server import Settings, create_app

    fields = json.loads(os.environ[WORKER_ENV])
    token_file = fields.pop("admin_token_file")
    return settled(create_app(Settings(**fields, admin_token=auth.load_admin_token(token_file))))


def settled(app):
    """The app, built, with what it is made of moved out of the garbage collector's way
    (a full collection walked those ~65,000 objects for 25 ms). Uploads make objects fast
    (a 500-entry batch, tens of thousands): collect the young ones every 20,000 new
    objects rather than 700. The batch's contract is built now, not by the first upload
    (kiosk/wire.py defers it: tens of milliseconds under load)."""
    from sync.server.deps import BATCH
    BATCH.rebuild()
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)
    return app


def run(args) -> int:
    import uvicorn

    from sync.server import Settings, create_app

    token_path = admin_token_path(args)
    token = ensure_admin_token(token_path)
    settings = Settings(db_url=args.db, admin_token=token,
                        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
                        report_tz=args.report_tz, busy_timeout_ms=args.busy_timeout_ms,
                        max_db_mb=args.max_db_mb,
                        # several workers: each gate's share where they all see it (limits.py)
                        shared_state=True if args.workers > 1 else None)
    from sync.server.db import Database, StorageError
    try:
        if args.workers > 1:  # tables made once, here, before the workers race to make them
            Database.open(args.db, busy_timeout_ms=args.busy_timeout_ms).close()
            app = None
        else:
            app = settled(create_app(settings))
    except StorageError as exc:
        print(f"gate server: cannot open the database {args.db.split('@')[-1]}: {exc}", file=sys.stderr)
        return 1
    common = dict(host=args.host, port=args.port, log_level=args.log_level,
                  ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile,
                  access_log=args.log_level == "debug")
    if app is not None:
        uvicorn.run(app, **common)
        return 0
    fields = {k: v for k, v in dataclasses.asdict(settings).items() if k != "admin_token"}
    os.environ[WORKER_ENV] = json.dumps({**fields, "admin_token_file": str(token_path)})
    from sync.server import workers
    options = {k: v for k, v in common.items() if k not in ("host", "port")}
    try:
        return workers.serve("sync.server_cmd:worker_app", args.workers, args.host, args.port, options)
    except OSError as exc:
        print(f"gate server: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
