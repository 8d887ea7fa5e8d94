"""Real parts for tests and benchmarks only (nothing in the product imports this): a
township server on 127.0.0.1 in a thread (sync.server.thread) or a process, a throwaway
PostgreSQL cluster, and gate entries to sync."""
from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import httpx

from kiosk.store import Entry, Store
from sync.server.thread import ServerThread, wait_http

__all__ = ["ROOT", "ChaosProxy", "PostgresCluster", "ServerProcess", "ServerThread", "batch_body", "fill",
           "free_port", "sample_entry", "signed_request", "wait_http"]


def pg_bindir() -> Path | None:
    """Where PostgreSQL's server programs are, as `pg_config --bindir` says (Debian's
    postgresql-common points it at the newest installed version); None without pg_config."""
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    try:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out.stdout.strip())

_BOOT = __import__("kiosk.clock").clock.boot_id()
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`gate server` as a child process (for SIGKILL)."""

    def __init__(self, db_url: str, admin_token: str, port: int | None = None, *extra: str,
                 log: Path | None = None):
        self.db_url, self.admin_token, self.extra = db_url, admin_token, extra
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self, *extra: str, timeout_s: float = 20.0) -> ServerProcess:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "GATE_ADMIN_TOKEN": self.admin_token}
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kiosk.cli", "server", "--db", self.db_url, "--port", str(self.port),
             "--log-level", "warning", *self.extra, *extra], env=env, stdout=out, stderr=out, cwd=ROOT)
        try:
            wait_http(self.url, timeout_s)
        except TimeoutError:
            self.kill()
            raise
        return self

    def kill(self) -> None:
        """SIGKILL the server and its worker processes (`--workers N`), which would
        otherwise outlive it."""
        if self.proc and self.proc.poll() is None:
            workers = children(self.proc.pid)
            self.proc.kill()
            self.proc.wait(10)
            for pid in workers:
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def _parent(proc_dir: Path) -> int | None:
    try:
        return int((proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def children(pid: int) -> list[int]:
    """The child processes of `pid`: a `gate server --workers N`'s workers, and
    multiprocessing's resource tracker (`workers_of` leaves it out)."""
    return [int(d.name) for d in Path("/proc").glob("[0-9]*") if _parent(d) == pid]


def workers_of(pid: int) -> list[int]:
    """The worker processes of the server `pid`."""
    out = []
    for child in children(pid):
        try:
            if b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes():
                out.append(child)
        except OSError:
            continue
    return out


def worker_holding(conn: socket.socket, workers: list[int]) -> int | None:
    """The worker process whose accepted socket is the other end of `conn` (from
    /proc/net/tcp and each worker's open files)."""
    mine, server = conn.getsockname()[1], conn.getpeername()[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if int(f[1].split(":")[1], 16) == server and int(f[2].split(":")[1], 16) == mine:
            inode = f[9]
    for pid in workers:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None


class PostgresCluster:
    """A throwaway PostgreSQL cluster in a temp dir on a free port (trust auth, 127.0.0.1)."""

    def __init__(self) -> None:
        bindir = pg_bindir()
        if bindir is None:
            raise RuntimeError(self.available() or "no pg_config")
        self.bin = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="gate-pg-"))
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.dir, "postgres")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @staticmethod
    def available() -> str | None:
        """None when a cluster can be started here, else why not."""
        bindir = pg_bindir()
        if bindir is None:
            return "PostgreSQL not found: no pg_config on PATH (apt-get install postgresql)"
        if not (bindir / "initdb").exists():
            return f"PostgreSQL server programs not found in {bindir}, pg_config --bindir (apt-get install postgresql)"
        if os.geteuid() == 0 and shutil.which("runuser") is None:
            return "running as root without runuser: cannot start initdb"
        return None

    def _run(self, *cmd: str) -> None:
        subprocess.run([*self.as_user, *cmd], check=True, capture_output=True, timeout=120)

    def start(self) -> PostgresCluster:
        data = self.dir / "data"
        self._run(str(self.bin / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                  "--no-sync", "-E", "UTF8")
        self._run(str(self.bin / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "log"), "-w", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=on", "start")
        return self

    def new_database(self, name: str) -> str:
        import psycopg
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def sample_entry(rng: random.Random | None = None, report: str | None = None, **kw) -> Entry:
    """A plausible entry: mostly residents admitted, some refusals, a few alarms."""
    rng = rng or random.Random()
    report = report or rng.choices(["none", "daily", "immediate"], [80, 15, 5])[0]
    action = {"none": "admit", "daily": "refuse", "immediate": "isolate"}[report]
    fields = dict(gate="east", direction=rng.choice(["in", "out"]), subject_kind="resident",
                  action=action, report=report, reasons=["green code", "36.5 °C"],
                  masked_name="张*三", person_ref=f"p1:{rng.getrandbits(128):032x}",
                  code_kind="health", code_colour="green" if report == "none" else "red",
                  readings=[{"body_c": round(rng.uniform(36.0, 38.5), 1), "object_c": 34.1,
                             "ambient_c": 12.0}],
                  answers={"fever": False, "travel": False}, mask_confirmed=True,
                  clock_synced=True, boot_id=_BOOT)  # (asking the kernel costs ms per entry)
    fields.update(kw)
    return Entry(**fields)


def fill(store: Store, device_id: str, n: int, rng: random.Random | None = None, **kw) -> list[Entry]:
    return [store.record(sample_entry(rng, **kw), device_id=device_id) for _ in range(n)]


def signed_request(url: str, creds, method: str, path: str, body: bytes = b"", *,
                   headers: dict | None = None, gzip_body: bool = False, now: float | None = None,
                   sign_as: str | None = None, key=None) -> httpx.Response:
    """One request signed like the sync client's, with knobs for testing the refusals."""
    import gzip as _gzip

    from sync import auth
    if gzip_body:
        body = _gzip.compress(body)
    h = auth.sign_headers(key or creds.key(), sign_as or creds.device_id, method, path, body, now=now)
    h.update({"Content-Type": "application/json"})
    if gzip_body:
        h["Content-Encoding"] = "gzip"
    h.update(headers or {})
    return httpx.request(method, url + path, content=body, headers=h, timeout=30)


def batch_body(entries, priority: bool = False, clock_sample: dict | None = None) -> bytes:
    import json as _json

    from sync.client import wire
    body = {"entries": [wire(e) if isinstance(e, Entry) else e for e in entries], "priority": priority}
    if clock_sample:
        body["clock"] = clock_sample
    return _json.dumps(body, ensure_ascii=False).encode()


class ChaosProxy:
    """A TCP proxy on 127.0.0.1 that cuts a share of connections after a random number
    of bytes (mid-request or mid-response), with a reset, like a village link."""

    def __init__(self, target_port: int, drop_rate: float = 0.3, seed: int | None = None):
        self.target_port = target_port
        self.drop_rate = drop_rate
        self.rng = random.Random(seed)
        self.cuts = 0
        self.connections = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> ChaosProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def close(self) -> None:
        self._stop.set()
        self.sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
        except OSError:
            _reset(client)
            return
        with self._lock:
            self.connections += 1
            # Until the first cut, and then every third connection, a cut is certain:
            # a short run still sees some.
            doomed = self.drop_rate > 0 and (self.cuts == 0 or self.connections % 3 == 1
                                             or self.rng.random() < self.drop_rate)
            budget = self.rng.randint(0, 16_000) if doomed else None
        state = {"left": budget, "dead": False}

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while not state["dead"]:
                    data = src.recv(8192)
                    if not data:
                        break
                    if state["left"] is not None:
                        with self._lock:
                            if len(data) >= state["left"]:
                                data = data[:state["left"]]
                                state["dead"] = True
                                self.cuts += 1
                            state["left"] -= len(data)
                    dst.sendall(data)
            except OSError:
                pass
            state["dead"] = True
            _reset(client)
            _reset(upstream)

        upstream.settimeout(None)
        threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
        pump(client, upstream)


def _reset(s: socket.socket) -> None:
    import struct
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    except OSError:
        pass
