"""The gate daemon: builds the gate from its configuration and runs it all day.

A composition root: it may wire anything together (devices, the checkpoint, the local
API, the uploader); library modules may not. Threads, each of which can fail apart:

  scanner (camera grab + decode)  ─codes─>  checkpoint  <─commands─  local API (uvicorn)
  thermometer (serial loop)      ─polled─>      │                        ^ events
                                             store ── sync client (its own connection)

Under systemd (Type=notify) it sends READY=1 once the devices are up, and WATCHDOG=1
from the checkpoint's own loop, so a hung checkpoint stops the pets and systemd
restarts the gate.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from kiosk import clock, rules
from kiosk.checkpoint import Checkpoint, Settings
from kiosk.codes import Verifier, trust
from kiosk.facts import lists_age_h, person_finder
from kiosk.lookup import Lookup
from kiosk.shifts import Shifts
from kiosk.store import LISTS, Store

log = logging.getLogger("gate.daemon")

DEMO_IDS = ("demo-gate-1", "demo-community")


class DaemonError(Exception):
    """The gate cannot start as configured; the message names what to fix."""


def notify(message: str) -> bool:
    """sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET, if systemd gave one."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.setblocking(False)  # never let a slow reader stall the loop that pets the watchdog
            s.connect(address)
            s.send(message.encode())
        return True
    except BlockingIOError:
        return False
    except OSError as exc:
        log.warning("cannot notify systemd: %s", exc)
        return False


class Watchdog:
    """Pets systemd's watchdog from the loop it watches, at half the interval systemd asked for."""

    def __init__(self) -> None:
        usec = os.environ.get("WATCHDOG_USEC", "")
        self.interval = int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 else None
        self._last = 0.0

    def pet(self) -> None:
        if self.interval is None:
            return
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            notify("WATCHDOG=1")


def trust_from_store(store: Store) -> trust.TrustList:
    """The trust list the township pushed down, with its age."""
    rows = store.conn.execute("SELECT entry FROM trust_keys").fetchall()
    version = store.list_version("trust_keys") or {}
    fetched = clock.parse_iso(version["fetched_at"]) if version.get("fetched_at") else None
    return trust.TrustList.from_json({"keys": [json.loads(r[0]) for r in rows]}, fetched_at=fetched,
                                     source="township")


def load_lists(store: Store, path: str) -> None:
    """A JSON object of lists by name (each as `gate township list` uploads it), for a gate not
    yet enrolled. Applied in one transaction, like the township's own."""
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise DaemonError(f"cannot read lists {path}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DaemonError(f"lists {path} are not JSON: {exc}") from None
    if not isinstance(obj, dict) or any(not isinstance(v, list) for k, v in obj.items() if k != "policy"):
        raise DaemonError(f'lists {path}: expected {{"households": [...], ...}}')
    unknown = sorted(set(obj) - set(LISTS) - {"policy"})
    if unknown:
        raise DaemonError(f"lists {path}: unknown list {unknown[0]!r}; known: {', '.join(LISTS)}")
    policy = obj.get("policy")
    if policy is not None:
        if not isinstance(policy, dict):
            raise DaemonError(f"lists {path}: policy must be an object")
        try:
            rules.GatePolicy.from_settings(policy)
        except ValueError as exc:
            raise DaemonError(f"lists {path}: {exc}") from None
    store.apply_township(lists={k: (v, "file", None) for k, v in obj.items() if k in LISTS}, policy=policy)


@dataclasses.dataclass
class Options:
    """Flags that override the configuration file (tests and benches use them)."""
    db: str | None = None
    camera: str | None = None
    port: str | None = None
    protocol: str | None = None
    trust: str | None = None
    lists: str | None = None
    api_socket: str | None = None
    api_tcp: str | None = None
    exit_when_done: bool = False
    demo: bool = False
    thermometer: dict[str, Any] = dataclasses.field(default_factory=dict)  # modbus / ascii options


class Daemon:
    def __init__(self, cfg: dict[str, dict[str, Any]], opts: Options) -> None:
        self.cfg, self.opts = cfg, opts
        g = cfg["gate"]
        if not opts.demo and (g["device_id"] in DEMO_IDS or g["community"] in DEMO_IDS):
            raise DaemonError("this gate still has the demo's device_id or community: set [gate] device_id "
                              "and community in gate.toml (gate config example), or enroll it")
        self.stop_event = threading.Event()
        self.parts: list[Any] = []  # started parts, stopped in reverse
        self.emulator = None  # the simulated thermometer, when --port sim
        self.camera_sim = None
        self._trust_version: str | None = None

    # -- building ---------------------------------------------------------------------
    def start(self) -> Daemon:
        cfg, opts = self.cfg, self.opts
        self.store = Store.open(opts.db or cfg["store"]["path"])  # the checkpoint's connection
        self.parts.append(self.store)
        self.reader = Store.open(self.store.path)  # the status line's own, never in a write
        self.parts.append(self.reader)
        if opts.lists:
            load_lists(self.store, opts.lists)
        self.verifier = self._verifier()
        self.thermometer = self._thermometer()
        self.relay = self._relay()
        self.watchdog = Watchdog()
        c = cfg["checkpoint"]
        settings = Settings(gate=cfg["gate"]["name"], device_id=cfg["gate"]["device_id"],
                            measure_timeout_s=c["measure_timeout_s"], retest_gap_s=c["retest_gap_s"],
                            retest_timeout_s=c["retest_timeout_s"],
                            ask_timeout_s=c["ask_timeout_s"], outcome_s=c["outcome_s"],
                            relay_pulse_s=cfg["relay"]["pulse_s"])
        salt = self._salt()
        lookup = Lookup(self.store.conn, salt=salt or "-")  # on the checkpoint's thread
        self.people = Lookup(self.reader.conn, salt=salt or "-")  # for the guard's searches
        self.checkpoint = Checkpoint(store=self.store, verifier=self.verifier, thermometer=self.thermometer,
                                     relay=self.relay, settings=settings, policy=self.policy,
                                     find_person=person_finder(lookup), lists_age_h=lists_age_h(lookup),
                                     lists=lookup if salt else None,
                                     on_alive=self.watchdog.pet)
        self.voice = self._voice()
        self.checkpoint.start()
        self.parts.append(self.checkpoint)
        self.scanner = self._scanner()
        self.api = self._api()
        self.sync = self._sync()
        notify("READY=1")
        log.info("gate %s of %s is up", cfg["gate"]["device_id"], cfg["gate"]["community"])
        return self

    def _salt(self) -> bytes | None:
        path = self.cfg["people"]["salt_file"]
        if not path:
            return None
        try:
            salt = Path(path).read_bytes().strip()
        except OSError as exc:
            raise DaemonError(f"[people] salt_file {path}: {exc.strerror}") from None
        if not salt:
            raise DaemonError(f"[people] salt_file {path} is empty")
        return salt

    def policy(self) -> rules.GatePolicy:
        return rules.GatePolicy.from_settings(self.store.policy())

    def _verifier(self) -> Verifier:
        try:
            tl = trust.TrustList.load(self.opts.trust) if self.opts.trust else trust_from_store(self.reader)
        except trust.TrustListError as exc:
            raise DaemonError(str(exc)) from None
        for problem in tl.problems:
            log.warning("trust list: %s", problem)
        return Verifier(tl)

    def _thermometer(self):
        from devices.thermometer.driver import Thermometer
        from devices.thermometer.thermometer_cmd import make_session
        t = {**self.cfg["thermometer"], **self.opts.thermometer}
        port = self.opts.port or t["port"]
        protocol = self.opts.protocol or t["protocol"]
        if port == "sim":
            from devices.thermometer.emulator import EMULATORS
            self.emulator = EMULATORS[protocol](values=[(20.0, 20.0)]).start()  # nobody there yet
            self.parts.append(self.emulator)
            port = self.emulator.path
        from devices.thermometer.protocols.ascii_line import DEFAULT_PATTERN
        args = SimpleNamespace(**{**t, "protocol": protocol, "pattern": t["pattern"] or DEFAULT_PATTERN,
                                  "ambient_pattern": t["ambient_pattern"] or None,
                                  "ambient_register": t["ambient_register"] if t["ambient_register"] >= 0 else None})
        try:
            session = make_session(args)
        except ValueError as exc:
            raise DaemonError(f"[thermometer] {exc}") from None
        therm = Thermometer(port, session, baud=t["baud"]).start()
        self.parts.append(therm)
        return therm

    def _relay(self):
        from devices.relay import RelayError, open_relay
        r = self.cfg["relay"]
        try:
            relay = open_relay(r["kind"], pin=r["pin"], active_high=r["active_high"], log_path=r["log"] or None)
        except (RelayError, ValueError) as exc:
            raise DaemonError(f"[relay] {exc}") from None
        self.parts.append(relay)
        return relay

    def _voice(self):
        """Spoken prompts, when [voice] enabled: a listener of the checkpoint's events."""
        from kiosk import voice
        try:
            v = voice.from_config(self.cfg["voice"], self.cfg["gate"]["lang"])
        except ValueError as exc:
            raise DaemonError(str(exc)) from None
        if v is not None:
            self.parts.append(v)
            self.checkpoint.subscribe(v.on_event)
        return v

    def _scanner(self):
        from devices.camera import LiveDecoder, make_decoder
        from devices.camera.scanner import Scanner
        from devices.camera.sources import SourceError, open_source
        spec = self.opts.camera or self.cfg["camera"]["source"]
        if spec == "sim":
            from devices.camera.simulated import SimulatedCamera
            source = self.camera_sim = SimulatedCamera()
        elif spec.isdigit() or spec.startswith("/dev/video"):
            # A camera that is not there yet (unplugged, still booting) is retried with back-off
            # while the gate works on: the guard can still look people up.
            from devices.camera.sources import CameraSource
            source = CameraSource(spec)
        else:
            try:
                source = open_source(spec)
            except SourceError as exc:
                raise DaemonError(str(exc)) from None
        c = self.cfg["camera"]
        if getattr(source, "live", True) and c["decoder"] == "cascade":
            # a camera: zxing-cpp on every frame, the cascade in a capped worker beside it
            decoder = LiveDecoder()
        else:  # files: every frame matters, read each one thoroughly
            decoder = make_decoder(c["decoder"])
        scanner = Scanner(source, decoder, background_s=c["background_s"],
                          on_scan=lambda ev: self.checkpoint.code_read(ev.text, ev.frame_time))
        self.parts.append(decoder)  # stopped after the scanner that uses it
        scanner.start()
        self.parts.append(scanner)
        return scanner

    def _api(self):
        from kiosk.api import ApiServer, create_app
        a = self.cfg["api"]
        uds = self.opts.api_socket or a["socket"] or None
        tcp_text = self.opts.api_tcp or a["tcp"] or ""
        tcp = None
        if tcp_text:
            host, _, port = tcp_text.rpartition(":")
            if not port.isdigit() or not 0 <= int(port) <= 65535:
                raise DaemonError(f"[api] tcp must be HOST:PORT, not {tcp_text!r}")
            tcp = (host or "127.0.0.1", int(port))
        if not uds and not tcp:
            return None
        app = create_app(self.checkpoint, self.status, self.cfg["gate"]["lang"], people=self.people,
                         reader=self.reader)
        server = ApiServer(app, uds=uds, tcp=tcp)
        server.start()
        self.parts.append(server)
        return server

    def _sync(self):
        """The uploader beside the gate, on its own connection: it never delays a decision."""
        from sync.client import SyncClient, SyncConfig, SyncError
        section = dict(self.cfg.get("sync", {}))
        path = section.get("credentials") or ""
        if not path or not Path(path).exists():
            log.warning("not enrolled (no %s): entries stay on the gate until `gate enroll`", path or "credentials")
            return None
        try:
            conf = SyncConfig.from_gate_config(self.cfg, credentials=path)
        except SyncError as exc:
            raise DaemonError(str(exc)) from None
        client = SyncClient(Store.open(self.opts.db or self.cfg["store"]["path"]), conf)
        thread = client.start_thread(self.stop_event)
        # joined before its store closes: a round cut off mid-way would log a crash at every stop
        self.parts.append(SimpleNamespace(stop=lambda: (self.stop_event.set(), thread.join(client.config.timeout_s),
                                                        client.close(), client.store.close())))
        return client

    def _refresh_trust(self) -> None:
        """New keys pulled by the uploader take effect at the next code."""
        version = (self.reader.list_version("trust_keys") or {}).get("fetched_at")
        if self.opts.trust or version == self._trust_version:
            return
        self._trust_version = version
        self.checkpoint.verifier = self._verifier()

    # -- running ----------------------------------------------------------------------
    def status(self) -> dict:
        """The status line: devices, lists' age, the clock."""
        t = self.thermometer.status()
        versions = {n: (self.reader.list_version(n) or {}).get("fetched_at") for n in ("policy",) + LISTS}
        return {"device_id": self.cfg["gate"]["device_id"], "gate": self.cfg["gate"]["name"],
                "risk_level": rules.GatePolicy.from_settings(self.reader.policy()).risk_level,
                "thermometer": {"status": t.status.value, "connected": t.connected},
                "camera": {"status": getattr(self.scanner.status, "value", str(self.scanner.status)),
                           "frames": self.scanner.stats.frames, "scans": self.scanner.stats.scans},
                "shift": dataclasses.asdict(shift) if (shift := Shifts(self.reader, self.cfg["gate"]["name"]).current())
                else None,
                "open_alarms": len(self.reader.alarms()),
                "sync": self._sync_status(),
                "lists_fetched": versions, "clock_synchronised": clock.clock_synchronised(),
                "utc": clock.iso(clock.utc_now())}

    def _sync_status(self) -> dict:
        stats = self.reader.stats()
        out = {"enrolled": self.sync is not None, "backlog": stats["unsynced"]}
        if self.sync is not None:
            out["online"] = self.sync.backoff.attempt == 0  # no failed round since the last good one
            out["acked_seq"] = self.sync.acked_seq
        return out

    def run(self) -> int:
        """Until stopped (SIGTERM) or, with --exit-when-done, the source is used up and decided."""
        self._trust_version = (self.reader.list_version("trust_keys") or {}).get("fetched_at")
        while not self.stop_event.wait(0.2):
            self._refresh_trust()
            if self.opts.exit_when_done and self._source_done() and self.checkpoint.phase == "waiting":
                break
        return 0

    def _source_done(self) -> bool:
        return not any(t.is_alive() for t in self.scanner._threads)

    def stop(self) -> None:
        notify("STOPPING=1")
        self.stop_event.set()
        for part in reversed(self.parts):
            try:
                (getattr(part, "stop", None) or part.close)()
            except Exception:  # one part failing to stop must not keep the others running
                log.exception("stopping %s", type(part).__name__)
        self.parts.clear()
