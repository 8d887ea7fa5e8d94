"""`gate doctor`: what to send when asking for help. One command, no personal data.

  gate doctor [--config FILE] [--json] [--lang en]

Prints versions, the configuration's validity, the devices (present? the running gate's
own view when its local API answers), the store's health (integrity, size, backlog,
alarms, free space, backups), the sync state (enrolled? last upload) and the clock
(synchronised?). It works with the gate stopped: it reads the configuration and opens the
store read-only, and never creates or changes a file. It prints counts, times, paths and
versions only: never a name, an ID number, a person reference, an address or a key.
Exit 0 when it finds nothing wrong, 1 when it lists problems, 2 when it cannot run.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import stat
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kiosk import clock, reasons
from kiosk import config as gate_config

PACKAGES = ("opencv-python-headless", "zxing-cpp", "pyzbar", "picamera2", "gpiozero", "pyserial",
            "fastapi", "uvicorn", "httpx", "textual")
BACKLOG_DAY_S = 86400
LOW_DISK_BYTES = 100 << 20
API_TIMEOUT_S = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="gate.toml (default: $GATE_CONFIG, else ./gate.toml if present)")
    parser.add_argument("--json", action="store_true", help="one JSON object (codes, not words), for scripts")
    parser.add_argument("--lang", choices=reasons.LANGS, default=None, help="zh (default, or $GATE_LANG) or en")


class Report:
    """Sections of (label code, value) lines, and the problems found (codes)."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.sections: dict[str, list[tuple[str, Any]]] = {
            s: [] for s in ("versions", "config", "devices", "store", "sync", "clock")}
        self.problems: list[str] = []

    def add(self, section: str, label: str, value: Any) -> None:
        self.sections.setdefault(section, []).append((label, value))

    def problem(self, code: str) -> None:
        if code not in self.problems:
            self.problems.append(code)


def run(args: argparse.Namespace) -> int:
    report = Report(args.lang or reasons.default_lang())
    cfg = _config(report, args.config)
    _versions(report)
    _devices(report, cfg)
    _store(report, cfg)
    _sync(report, cfg)
    _clock(report)
    if args.json:
        print(json.dumps({"sections": {s: dict(lines) for s, lines in report.sections.items()},
                          "problems": report.problems}, ensure_ascii=False, default=str))
    else:
        print_report(report, report.lang)
    return 1 if report.problems else 0


def print_report(report: Report, lang: str) -> None:
    def w(code: str) -> str:
        return reasons.text(reasons.DOCTOR_TEXT, code, lang)

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return w("yes" if v else "no")
        if v is None:
            return "—"
        return w(v) if isinstance(v, str) and v in reasons.DOCTOR_TEXT else str(v)

    sep = "：" if lang == "zh" else ": "
    print(w("title"))
    for section, lines in report.sections.items():
        print(f"[{w(section)}]")
        for label, v in lines:
            print(f"  {w(label) if label in reasons.DOCTOR_TEXT else label}{sep}{value(v)}")
    if report.problems:
        print(f"{w('problems')}{sep}{len(report.problems)}")
        for code in report.problems:
            print(f"  - {w(code)}")
    else:
        print(w("no_problems"))


# -- sections -------------------------------------------------------------------------

def _config(report: Report, path: str | None) -> gate_config.Config:
    named = path or os.environ.get("GATE_CONFIG") or ("gate.toml" if Path("gate.toml").exists() else None)
    report.add("config", "file", named or "—")
    try:
        cfg = gate_config.load(path)
    except gate_config.ConfigError as exc:
        report.add("config", "valid", str(exc)[:300])
        report.problem("p_config")
        return gate_config.load(os.devnull, env={})
    report.add("config", "valid", True)
    g = cfg["gate"]
    report.add("config", "device", g["device_id"])
    report.add("config", "community", g["community"])
    if g["device_id"] in ("demo-gate-1", "demo-community") or g["community"] in ("demo-gate-1", "demo-community"):
        report.problem("p_demo_ids")
    salt = cfg["people"]["salt_file"]
    if salt:
        try:
            st = os.stat(salt)
            usable = stat.S_ISREG(st.st_mode) and st.st_size > 0
            report.add("config", "salt", f"{salt} ({stat.S_IMODE(st.st_mode):04o})")
            if st.st_mode & 0o007:
                report.problem("p_salt_mode")
        except OSError as exc:
            usable = False
            report.add("config", "salt", f"{salt}: {exc.strerror}")
        if not usable:
            report.problem("p_salt")
    return cfg


def _versions(report: Report) -> None:
    from kiosk.cli import version
    report.add("versions", "gate", version())
    report.add("versions", "Python", platform.python_version())
    report.add("versions", "SQLite", sqlite3.sqlite_version)
    report.add("versions", "OS", f"{_os_release()} · {platform.release()} · {platform.machine()}")
    model = _read("/proc/device-tree/model").strip("\0\n ")
    if model:
        report.add("versions", "model", model)
    for name in PACKAGES:
        try:
            report.add("versions", name, metadata.version(name))
        except metadata.PackageNotFoundError:
            continue


def _devices(report: Report, cfg: gate_config.Config) -> None:
    live = _daemon_status(cfg["api"]["socket"])
    report.add("devices", "daemon", "running" if live is not None else "not_running")
    if live is None:
        report.problem("p_daemon")
    status = (live or {}).get("status") or {}
    source = str(cfg["camera"]["source"])
    if source == "sim":
        camera: Any = "simulated"
    elif source.isdigit() or source.startswith("/dev/video"):
        dev = f"/dev/video{source}" if source.isdigit() else source
        camera = f"{dev} {_presence(dev, report.lang)}"
        if not os.path.exists(dev):
            report.problem("p_camera")
    else:
        camera = source
    if "camera" in status:
        camera = f"{camera}; {status['camera'].get('status')}"
    report.add("devices", "camera", camera)
    port = str(cfg["thermometer"]["port"])
    protocol = cfg["thermometer"]["protocol"]
    therm = "simulated" if port == "sim" else f"{port} {_presence(port, report.lang)} ({protocol})"
    if port != "sim" and not os.path.exists(port):
        report.problem("p_thermometer")
    if "thermometer" in status:
        therm = f"{therm}; {reasons.thermometer_text(str(status['thermometer'].get('status')), report.lang)}"
    report.add("devices", "thermometer", therm)
    relay = cfg["relay"]
    if relay["kind"] == "gpio":
        chips = sorted(str(p) for p in Path("/dev").glob("gpiochip*"))
        report.add("devices", "relay", f"GPIO {relay['pin']}, {', '.join(chips) or _word('missing', report.lang)}")
        if not chips:
            report.problem("p_relay")
    else:
        report.add("devices", "relay", "simulated" if relay["kind"] == "sim" else relay["kind"])


def _store(report: Report, cfg: gate_config.Config) -> None:
    path = Path(cfg["store"]["path"])
    report.add("store", "path", str(path))
    try:
        free = shutil.disk_usage(path.parent if path.parent.exists() else "/").free
        report.add("store", "free_space", _size(free))
        if free < LOW_DISK_BYTES:
            report.problem("p_disk")
    except OSError:
        pass
    _backups(report, Path(cfg["backup"]["folder"]))
    if not path.exists():
        report.add("store", "file", "missing")
        report.problem("p_store_missing")
        return
    size = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    report.add("store", "size", _size(size))
    try:
        conn = sqlite3.connect(_read_only_uri(path), uri=True, timeout=5)
    except sqlite3.Error as exc:
        report.add("store", "integrity", str(exc))
        report.problem("p_store")
        return
    try:
        check = "; ".join(str(r[0]) for r in conn.execute("PRAGMA quick_check"))
        report.add("store", "integrity", "ok" if check == "ok" else check[:200])
        if check != "ok":
            report.problem("p_store")
            return
        one = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731 - a one-line helper
        report.add("store", "schema", one("SELECT MAX(version) FROM schema_versions"))
        report.add("store", "entries", one("SELECT COUNT(*) FROM entries"))
        backlog = one("SELECT COUNT(*) FROM entries WHERE synced_at IS NULL")
        report.add("store", "backlog", backlog)
        oldest = one("SELECT MIN(created_utc) FROM entries WHERE synced_at IS NULL")
        report.add("store", "oldest_backlog", oldest)
        if oldest and (clock.utc_now() - clock.parse_iso(oldest)).total_seconds() > BACKLOG_DAY_S:
            report.problem("p_backlog")
        report.add("store", "unsynced_entries", one("SELECT COUNT(*) FROM entries WHERE clock_synced = 0"))
        kinds = conn.execute("SELECT kind, COUNT(*) FROM alarms WHERE acknowledged_at IS NULL GROUP BY kind "
                             "ORDER BY kind").fetchall()
        report.add("store", "open_alarms", ", ".join(f"{k} {n}" for k, n in kinds) or 0)
        if kinds:
            report.problem("p_alarms")
        report.add("sync", "last_upload", one("SELECT MAX(synced_at) FROM entries") or "never")
        fetched = dict(conn.execute("SELECT name, fetched_at FROM list_versions").fetchall())
        report.add("sync", "lists_fetched", min(fetched.values()) if fetched else "never")
    except sqlite3.Error as exc:
        report.add("store", "integrity", str(exc)[:200])
        report.problem("p_store")
    finally:
        conn.close()


def _backups(report: Report, folder: Path) -> None:
    from kiosk.backup import copies
    try:
        found = copies(folder)
    except OSError as exc:
        report.add("store", "backups", f"{folder}: {exc.strerror}")
        return
    if not found:
        report.add("store", "backups", f"{folder}: 0")
        report.problem("p_no_backup")
        return
    newest = found[-1][1]
    report.add("store", "backups", f"{folder}: {len(found)}; {newest.name} ({_size(newest.stat().st_size)})")


def _sync(report: Report, cfg: gate_config.Config) -> None:
    path = str(cfg["sync"].get("credentials") or "")
    try:
        creds = json.loads(Path(path).read_text(encoding="utf-8")) if path else None
    except (OSError, ValueError):
        creds = None
    report.add("sync", "enrolled", isinstance(creds, dict))
    if not isinstance(creds, dict):
        report.problem("p_not_enrolled")
        return
    # the server and the device id only: the file also holds the device's private key
    report.add("sync", "server", str(creds.get("server", ""))[:200])
    if creds.get("device_id") != cfg["gate"]["device_id"]:
        report.problem("p_enrolled_other")


def _clock(report: Report) -> None:
    synced = clock.clock_synchronised()
    report.add("clock", "synchronised", synced)
    report.add("clock", "now_utc", clock.iso(clock.utc_now()))
    if shutil.which("timedatectl"):
        try:
            out = subprocess.run(["timedatectl", "show", "-p", "NTP", "-p", "NTPSynchronized"],
                                 capture_output=True, text=True, timeout=3).stdout
            if out.strip():
                report.add("clock", "ntp_service", " ".join(out.split()))
        except (OSError, subprocess.TimeoutExpired):
            pass
    if not synced:
        report.problem("p_clock")


# -- helpers --------------------------------------------------------------------------

def _daemon_status(socket_path: str) -> dict | None:
    """The running gate's state from its local API; None when it does not answer."""
    if not socket_path or not os.path.exists(socket_path):
        return None
    try:
        import httpx
        with httpx.Client(transport=httpx.HTTPTransport(uds=socket_path), base_url="http://gate",
                          timeout=API_TIMEOUT_S) as client:
            r = client.get("/v1/state")
        return r.json() if r.status_code == 200 else None
    except Exception:  # noqa: BLE001 - whatever the reason, the gate did not answer
        return None


def _read_only_uri(path: Path) -> str:
    """mode=ro while the gate runs (its WAL and shared memory exist: SQLite makes nothing new).
    With the gate stopped there are none, and a read-only connection would leave them behind,
    owned by whoever ran the doctor, and the gate could not open its store: immutable then."""
    live = Path(f"{path}-wal").exists() and Path(f"{path}-shm").exists()
    return f"file:{quote(str(path.absolute()))}?{'mode=ro' if live else 'immutable=1'}"


def _word(code: str, lang: str) -> str:
    return reasons.text(reasons.DOCTOR_TEXT, code, lang)


def _presence(path: str, lang: str) -> str:
    return _word("present" if os.path.exists(path) else "missing", lang)


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _os_release() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return sys.platform
