"""The gate's sync client: entries up, policy and lists down.

`SyncClient(store, config)` runs in `gate sync` or as a thread of the gate daemon
(`run_forever(stop_event)`). Give it a Store of its own (`Store.open(path)` again:
one sqlite3 connection must not carry two threads' transactions); its transactions
are single short UPDATEs, so it never holds up the gate's writes.

Order of one round (`run_once`):
1. measure the clock offset against the server's /v1/time;
2. resume: mark synced everything the server says it holds (`acked_seq`);
3. recovery: if the store was rebuilt with unknown seqs, renumber above the server's;
4. upload: immediate reports first (a priority batch), then the rest in seq order,
   in batches of at most `batch_size`; a new immediate report jumps the queue
   between two batches;
5. pull the manifest; fetch changed policy/lists with If-None-Match; apply them in
   one transaction.
Any network or 5xx failure ends the round; `run_forever` retries with full-jitter
exponential back-off. Why acks work the way they do: docs/sync.md.
"""
from __future__ import annotations

import dataclasses
import gzip
import importlib.metadata
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from kiosk import clock
from kiosk.store import LISTS, Entry, Store, StoreError
from sync import auth
from sync.backoff import Backoff

log = logging.getLogger("gate.sync")

MANIFEST_ETAG = "township_manifest_etag"
DEFAULT_CREDENTIALS = "var/sync-credentials.json"
CLOCK_WARN_S = 2.0


class SyncError(Exception):
    """A round could not finish; `retry` says whether trying later can help."""

    def __init__(self, message: str, retry: bool = True, reason: str = ""):
        super().__init__(message)
        self.retry = retry
        self.reason = reason


@dataclass
class Credentials:
    """What `gate enroll` leaves on the gate (file mode 0600)."""
    server: str
    device_id: str
    community: str
    gate: str
    private_key: str  # base64url raw Ed25519; never logged

    def key(self):
        return auth.private_key_from_text(self.private_key)

    def save(self, path: str | os.PathLike) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(dataclasses.asdict(self), f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Credentials:
        try:
            return cls(**json.loads(Path(path).read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise SyncError(f"cannot read credentials {path}: {exc}; run `gate enroll` first",
                            retry=False, reason="no_credentials") from None

    def __repr__(self) -> str:  # keep the key out of logs and tracebacks
        return f"Credentials(server={self.server!r}, device_id={self.device_id!r})"


@dataclass
class SyncConfig:
    credentials: Credentials
    batch_size: int = 500
    timeout_s: float = 15.0
    interval_s: float = 2.0        # look for new entries this often when idle
    pull_interval_s: float = 60.0  # ask for new policy/lists this often
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 60.0
    gzip_level: int = 1            # the Pi's CPU matters more than a few bytes

    @classmethod
    def from_gate_config(cls, cfg: dict, **overrides) -> SyncConfig:
        """From the gate's config (kiosk.config.load()): the optional [sync] table holds
        `credentials` (path) and any field above; `overrides` win over both."""
        section = dict(cfg.get("sync", {}))
        in_file = section.pop("credentials", DEFAULT_CREDENTIALS)  # always: it is no SyncConfig field
        creds = Credentials.load(overrides.pop("credentials", None) or in_file)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "credentials"}
        unknown = sorted(set(section) - set(fields))
        if unknown:
            raise SyncError(f"unknown [sync] setting {unknown[0]!r}; known: credentials, "
                            f"{', '.join(fields)}", retry=False, reason="bad_config")
        merged = {**section, **{k: v for k, v in overrides.items() if v is not None}}
        values = {k: _like(fields[k].default, v, k) for k, v in merged.items()}
        return cls(credentials=creds, **values)


def _like(default: Any, value: Any, key: str) -> Any:
    """A [sync] setting as the type of its default: "200" -> 200, or a named error."""
    try:
        return type(default)(value)
    except (TypeError, ValueError):
        raise SyncError(f"[sync] {key} = {value!r} is not a {type(default).__name__}", retry=False,
                        reason="bad_config") from None


@dataclass
class RoundResult:
    uploaded: int = 0
    acked_seq: int = 0
    backlog: int = 0
    pulled: list[str] = field(default_factory=list)
    clock_offset_s: float | None = None


def software_version() -> str:
    try:
        return importlib.metadata.version("gate")
    except importlib.metadata.PackageNotFoundError:  # a checkout that was never installed
        return "unknown"


class DeviceAuth(httpx.Auth):
    """Signs every request with the device key, timestamped on the server's clock."""

    def __init__(self, device_id: str, key, offset: Callable[[], float]):
        self.device_id, self.key, self.offset = device_id, key, offset

    def auth_flow(self, request: httpx.Request):
        request.headers.update(auth.sign_headers(
            self.key, self.device_id, request.method, request.url.raw_path.decode(),
            request.content, now=time.time() + self.offset()))
        yield request


def enroll(server: str, token: str, *, timeout_s: float = 15.0) -> Credentials:
    """Make a device key and present the enrollment token once."""
    key = auth.new_device_key()
    body = json.dumps({"token": token, "public_key": auth.public_key_text(key)}).encode()
    headers = auth.sign_headers(key, "enroll", "POST", "/v1/enroll", body)
    try:
        r = httpx.post(server.rstrip("/") + "/v1/enroll", content=body, timeout=timeout_s,
                       headers={**headers, "Content-Type": "application/json"})
    except httpx.HTTPError as exc:
        raise SyncError(f"cannot reach {server}: {exc}") from None
    if r.status_code != 201:
        raise SyncError(f"enrollment refused: {_why(r)}", retry=False, reason=_reason(r))
    d = r.json()
    return Credentials(server=server.rstrip("/"), device_id=d["device_id"],
                       community=d["community"], gate=d["gate"],
                       private_key=auth.private_key_text(key))


def _reason(r: httpx.Response) -> str:
    try:
        return r.json().get("error", "")
    except ValueError:
        return ""


def _why(r: httpx.Response) -> str:
    try:
        d = r.json()
        return f"{r.status_code} {d.get('error')}: {d.get('detail')}"
    except ValueError:
        return f"{r.status_code} {r.text[:200]}"


def wire(entry: Entry) -> dict:
    row = dataclasses.asdict(entry)
    row.pop("synced_at", None)
    return row


class SyncClient:
    def __init__(self, store: Store, config: SyncConfig, *,
                 progress: Callable[[int, int], None] | None = None,
                 transport: httpx.BaseTransport | None = None):
        self.store = store
        self.config = config
        self.creds = config.credentials
        self.device_id = self.creds.device_id
        self.offset_s = 0.0
        self.progress = progress or self._log_progress
        self.backoff = Backoff(config.backoff_base_s, config.backoff_cap_s)
        self.acked_seq = 0
        self._synchronised = False
        self._resumed = False
        self._last_pull = 0.0
        self.http = httpx.Client(
            base_url=self.creds.server, timeout=config.timeout_s, transport=transport,
            auth=DeviceAuth(self.device_id, self.creds.key(), lambda: self.offset_s),
            headers={"User-Agent": f"gate/{software_version()}"})  # the office's gates page shows it

    def close(self) -> None:
        self.http.close()

    @staticmethod
    def _log_progress(done: int, total: int) -> None:
        log.info("backlog: uploaded %d/%d (%d%%)", done, total, 100 * done // max(total, 1))

    # -- one round ------------------------------------------------------------------
    def run_once(self, pull: bool = True) -> RoundResult:
        """One full round; raises SyncError when it could not finish."""
        result = RoundResult()
        self._synchronised = clock.clock_synchronised()
        result.clock_offset_s = self.measure_clock()
        if not self._resumed or self.store.meta("seq_floor_unknown") == "1":
            self.resume()
        result.uploaded = self.push()
        result.acked_seq = self.acked_seq
        result.backlog = self.store.unsynced_count(self.device_id)
        if pull:
            result.pulled = self.pull()
            self._last_pull = time.monotonic()
        return result

    def run_forever(self, stop: threading.Event) -> None:
        """Until `stop` is set: rounds every interval, back-off after failures. Never raises."""
        while not stop.is_set():
            try:
                due = time.monotonic() - self._last_pull >= self.config.pull_interval_s
                r = self.run_once(pull=due)
                self.backoff.reset()
                if r.uploaded or r.pulled:
                    log.info("synced: %d uploaded, acked seq %d, backlog %d, pulled %s",
                             r.uploaded, r.acked_seq, r.backlog, ", ".join(r.pulled) or "nothing")
                wait = self.config.interval_s
            except SyncError as exc:
                wait = self.backoff.next_delay()
                if not exc.retry:  # a refusal: keep trying, slowly, and say so
                    wait = max(wait, self.backoff.ceiling() / 2)
                log.warning("sync failed (%s); next try in %.1f s", exc, wait)
            except Exception:
                wait = self.backoff.next_delay()
                log.exception("sync round crashed; next try in %.1f s", wait)
            stop.wait(wait)

    def start_thread(self, stop: threading.Event) -> threading.Thread:
        t = threading.Thread(target=self.run_forever, args=(stop,), name="gate-sync", daemon=True)
        t.start()
        return t

    # -- http -----------------------------------------------------------------------
    def _request(self, method: str, path: str, **kw) -> httpx.Response:
        try:
            r = self.http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise SyncError(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        if r.status_code == 409 and _reason(r) == "seq_gap" and path == "/v1/entries":
            self._resend_lost(r)
        if r.status_code >= 500 or r.status_code == 429:
            raise SyncError(f"{method} {path}: server says {_why(r)}", reason=_reason(r))
        if r.status_code == 401 and _reason(r) == "stale_timestamp":
            self.offset_s = 0.0  # re-measured next round
            raise SyncError(f"{method} {path}: {_why(r)}", reason="stale_timestamp")
        if r.status_code >= 400 and r.status_code != 404:
            raise SyncError(f"{method} {path}: refused: {_why(r)}", retry=False, reason=_reason(r))
        return r

    def _resend_lost(self, r: httpx.Response) -> None:
        """The server misses seqs the gate had marked synced: it lost data (restored from
        a backup). Unmark everything above its ack so the next round sends it again."""
        acked = self._request("GET", "/v1/device").json()["acked_seq"]
        again = self.store.mark_unsynced_above(self.device_id, acked)
        if not again:
            raise SyncError(f"POST /v1/entries: {_why(r)}; the entries it misses are no longer on "
                            "the gate", retry=False, reason="seq_gap")
        log.warning("the server holds only up to seq %d (restored from a backup?): resending %d "
                    "entries", acked, again)
        raise SyncError(f"server lost entries above seq {acked}; resending {again}", reason="seq_gap")

    def measure_clock(self) -> float:
        """Offset of the server's clock from ours (NTP-style midpoint)."""
        t0 = time.time()
        r = self._request("GET", "/v1/time")
        t1 = time.time()
        self.offset_s = float(r.json()["epoch"]) - (t0 + t1) / 2
        if abs(self.offset_s) > CLOCK_WARN_S:
            log.warning("gate clock is %+.1f s off the server's (synchronised=%s); entries are "
                        "sent with monotonic times so the server can re-date them",
                        -self.offset_s, self._synchronised)
        return self.offset_s

    # -- entries up -----------------------------------------------------------------
    def resume(self) -> dict:
        """Trust the server's record of what it holds: after a crash, skip straight to it."""
        state = self._request("GET", "/v1/device").json()
        if state["device_id"] != self.device_id:
            raise SyncError("server answered for another device", retry=False)
        if self.store.meta("seq_floor_unknown") == "1":
            self.recover_seq_floor(state)
        elif state["acked_seq"]:
            self.store.mark_synced(self.device_id, state["acked_seq"])
        self.acked_seq = state["acked_seq"]
        self._resumed = True
        return state

    def recover_seq_floor(self, state: dict) -> None:
        """The store was rebuilt and its old seqs are gone: whatever the server holds
        above its ack is lost on the gate. Declare that (idempotent), then renumber our
        entries above the server's highest seq and clear the flag (one transaction)."""
        top = state["max_seq"]
        if top > state["acked_seq"]:
            self._request("POST", "/v1/device/lost", json={"upto": top})
        moved = self.store.renumber_above(self.device_id, top)
        log.warning("store was rebuilt: renumbered %d entries above the server's seq %d", moved, top)

    def push(self) -> int:
        """Upload until nothing is unsent. Returns how many entries were uploaded."""
        uploaded = 0
        total = self.store.unsynced_count(self.device_id)
        while True:
            urgent = self.store.entries(
                "device_id = ? AND synced_at IS NULL AND report = 'immediate'",
                (self.device_id,), order="seq", limit=self.config.batch_size)
            if urgent:
                self._send(urgent, priority=True)
                uploaded += len(urgent)
            batch = self.store.unsynced(self.device_id, limit=self.config.batch_size)
            if not batch:
                return uploaded
            self._send(batch, priority=False)
            uploaded += len(batch)
            if total > self.config.batch_size:
                self.progress(min(uploaded, total), total)

    def _send(self, entries: list[Entry], priority: bool) -> int:
        body = {"entries": [wire(e) for e in entries], "priority": priority,
                "clock": {"boot_id": clock.boot_id(), "monotonic_ns": clock.monotonic_ns(),
                          "wall_utc": clock.iso(clock.utc_now()),
                          "synchronised": self._synchronised}}
        data = gzip.compress(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
                             self.config.gzip_level)
        r = self._request("POST", "/v1/entries", content=data, headers={
            "Content-Type": "application/json", "Content-Encoding": "gzip"})
        if r.status_code != 200:
            raise SyncError(f"POST /v1/entries: {_why(r)}", retry=False, reason=_reason(r))
        acked = self.acked_seq = r.json()["acked_seq"]
        now = clock.utc_now()
        try:
            # 200 means the server holds every entry of the batch and every seq <= acked.
            self.store.mark_synced(self.device_id, acked, now)
            above = [e.seq for e in entries if e.seq is not None and e.seq > acked]
            if above:
                self.store.mark_synced_seqs(self.device_id, above, now)
        except StoreError as exc:  # the gate is busy: harmless, resent and deduplicated later
            raise SyncError(f"could not mark entries synced: {exc}") from None
        return acked

    # -- policy and lists down ---------------------------------------------------------
    def pull(self) -> list[str]:
        """Fetch what changed and apply it in one transaction. Returns the names applied."""
        etag = self.store.meta(MANIFEST_ETAG)
        r = self._request("GET", "/v1/manifest", headers={"If-None-Match": etag} if etag else {})
        if r.status_code == 304:
            return []
        manifest = r.json()
        policy = policy_version = None
        lists: dict[str, tuple[list[dict], str | None, str | None]] = {}
        for name, doc in manifest["documents"].items():
            if name != "policy" and name not in LISTS:
                continue
            local = self.store.list_version(name)
            if local and local.get("etag") == doc["etag"]:
                continue
            path = "/v1/policy" if name == "policy" else f"/v1/lists/{name}"
            got = self._request("GET", path, headers={"If-None-Match": local["etag"]}
                                if local and local.get("etag") else {})
            if got.status_code != 200:
                continue  # 304: unchanged after all; 404: withdrawn meanwhile
            data, tag = got.json(), got.headers.get("etag")
            if name == "policy":
                policy, policy_version = data["policy"], (str(data["version"]), tag)
            else:
                lists[name] = (data["rows"], str(data["version"]), tag)
        try:
            self.store.apply_township(policy=policy, policy_version=policy_version, lists=lists,
                                      meta={MANIFEST_ETAG: manifest["etag"]})
        except Exception as exc:  # noqa: BLE001 - bad lists must not stop uploads
            raise SyncError(f"could not apply township lists: {exc}", retry=False,
                            reason="apply_failed") from None
        applied = (["policy"] if policy is not None else []) + sorted(lists)
        if applied:
            log.info("applied from the township: %s", ", ".join(applied))
        return applied
