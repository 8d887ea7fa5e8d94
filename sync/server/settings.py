"""What `gate server` is started with."""
from __future__ import annotations

from dataclasses import dataclass

from kiosk import wire


@dataclass
class Settings:
    db_url: str
    admin_token: str | None
    max_body_bytes: int = 4 * 1024 * 1024          # entries and lists, compressed, as sent
    max_inflated_bytes: int = wire.MAX_BATCH_BYTES  # after gunzip: no zip bombs
    report_tz: str = "Asia/Shanghai"
    busy_timeout_ms: int = 5000
    max_db_mb: float | None = None
    # Each gate's share (nonces and requests a minute, parsed bytes; on PostgreSQL the
    # upload lane) in the database, where every worker sees it, or in this process's
    # memory; None: in the database on PostgreSQL, in memory on SQLite (one worker).
    shared_state: bool | None = None
    device_requests_per_min: int = 600  # signed requests per device and minute (429 past it)
    body_slots: int = 16  # bodies being read at once (memory: slots x max_body_bytes)
    parse_slots: int = 2  # batches gunzipped and parsed at once (CPU-bound under the GIL anyway)
    # Threads for the gates' signed requests: a few are enough to fill a group commit, and
    # fewer threads hand the GIL around less (anyio's shared pool has 40).
    upload_threads: int = 8
    # Bytes of batch JSON one device may have parsed: a burst, then a steady rate. A real
    # gate stays far below (a week's backlog, ~35 MB, drains in about a minute); a
    # misbehaving one gets 429.
    device_burst_bytes: int = 8 * 1024 * 1024
    device_bytes_per_s: float = 512 * 1024
    # Township staff (sync/server/accounts.py): a session ends after this long unused, and
    # after this long in any case; failed sign-ins in a window, per login and per address.
    session_idle_s: float = 30 * 60
    session_max_s: float = 12 * 3600
    login_window_s: float = 15 * 60
    login_failures_per_user: int = 5
    login_failures_per_address: int = 30
