"""Run the gate on simulated devices: people come to the gate one at a time.

Each person's health code is issued and signed (as the township would), shown to a
simulated camera (a rendered frame: tilted, blurred, glare…) and decoded, verified
offline against the trust list, then the person stands before a GY-MCU90614 infrared
module emulated on a pseudo-terminal and read through the real serial driver
(re-tested when the first reading is high), and the rules decide. Every decision is
written to the local store before the gate would open. A township server runs on
127.0.0.1: it sets the community's risk level, the gate enrolls and pulls it, and at
the end the gate's log is synced up and the township's daily report and alarms shown.

`gate demo --cases` instead runs the sample cases in docs/cases.jsonl through the rules.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import secrets
import tempfile
import time
import zlib
from pathlib import Path

from kiosk import clock, reasons
from kiosk.cases import parse_case
from kiosk.rules import MEASURE, RETEST, Code, Facts, GatePolicy, Subject, decide
from kiosk.store import Entry, Store

CASES = Path(__file__).resolve().parents[1] / "docs" / "cases.jsonl"
DEVICE_ID = "demo-gate-1"
COMMUNITY = "demo-community"
SALT = "demo-township-salt"  # a real township keeps its salt secret


@dataclasses.dataclass
class Visitor:
    """One simulated person at the gate and what they bring."""
    name: str
    id_number: str
    kind: str = "resident"
    colour: str | None = "green"  # None: shows something that is not a health code
    code_age_min: float = 0.5  # how long ago the code was refreshed on the phone
    foreign_text: str | None = None
    distortion: str = "clean"  # how the camera sees the phone
    forehead: tuple[float, ...] = (33.3,)  # object °C per measurement (ambient 12 °C)


AMBIENT_C = 12.0  # a cold morning: forehead readings are low, the compensation lifts them
SCENE = [
    Visitor("王小明", "110105199001011234", distortion="tilt"),
    Visitor("李华", "110105198505052345", distortion="glare", forehead=(34.3, 33.6)),
    Visitor("张伟", "110105197707073456", colour="yellow", distortion="motion"),
    Visitor("赵敏", "110105199209094567", distortion="blur", forehead=(34.9, 34.8)),
    Visitor("陈静", "110105198812125678", code_age_min=25, distortion="jpeg"),
    Visitor("刘洋", "320102199503036789", kind="visitor", distortion="lowlight"),
    Visitor("孙丽", "110105196606067890", colour=None,
            foreign_text="https://pay.example.com/qr/8f3a9c2d-收款码", distortion="noise"),
    Visitor("周强", "110105197111118901", forehead=(26.0, 33.4)),
    Visitor("吴刚", "110105198004049012", colour="red", distortion="inverted"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cases", action="store_true",
                        help="run the sample cases in docs/cases.jsonl through the rules instead")
    parser.add_argument("--db", type=Path, help="store to log into (default: a temporary file)")
    parser.add_argument("--risk-level", choices=("low", "medium", "high"), default="low",
                        help="the level the township sets for the demo community")
    parser.add_argument("--lang", choices=reasons.LANGS, default=None, help="zh (default) or en")


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="gate-demo-") as tmp:
        db = args.db or Path(tmp) / "gate.db"
        with Store.open(db) as store:
            if args.cases:
                run_cases(store, args.lang)
            else:
                with township(Path(tmp), args.risk_level) as (admin, credentials):
                    sync = sync_client(db, credentials)
                    sync.run_once()  # enrolled: pull the community's policy and lists
                    run_gate(store, GatePolicy.from_settings(store.policy()), args.lang)
                    report(admin, sync.run_once(), args.lang)
                    sync.close()
            stats = store.stats()
        print(f"\n{stats['entries']} entries logged, {stats['unsynced']} waiting to sync.")
    return 0


@contextlib.contextmanager
def township(tmp: Path, risk_level: str):
    """The township's server on 127.0.0.1 with this gate enrolled in its community."""
    from sync.admin import Admin
    from sync.client import enroll
    from sync.server.app import Settings
    from sync.server.thread import ServerThread

    token = secrets.token_urlsafe(24)
    with ServerThread(Settings(db_url=str(tmp / "township.db"), admin_token=token)) as server:
        admin = Admin(server.url, token)
        try:
            admin.set_policy(COMMUNITY, risk_level=risk_level, fever_c=37.3)
            enrollment = admin.enrollment(COMMUNITY, "east", device_id=DEVICE_ID)
            yield admin, enroll(server.url, enrollment["token"])
        finally:
            admin.close()


def sync_client(db: Path, credentials):
    from sync.client import SyncClient, SyncConfig
    return SyncClient(Store.open(db), SyncConfig(credentials=credentials))


def report(admin, sync_round, lang: str | None) -> None:
    print("\n" + label("synced", lang)
          + f"{sync_round.uploaded} / acked seq {sync_round.acked_seq}, backlog {sync_round.backlog}")
    for c in admin.daily_report()["communities"]:
        by_action = ", ".join(f"{reasons.action_text(k, lang)} {v}" for k, v in sorted(c["by_action"].items()))
        print(label("daily_report", lang) + f"{c['community']}: {c['entries']} ({by_action})")
    for alarm in admin.alarms()["alarms"]:
        print(label("alarm", lang) + f"#{alarm.get('seq')} {alarm.get('masked_name') or ''} "
              f"{reasons.action_text(alarm.get('action', ''), lang)}: "
              + say_reasons(alarm.get("reasons", []), lang))


def run_cases(store: Store, lang: str | None) -> None:
    for line in CASES.read_text().splitlines():
        row = json.loads(line)
        policy, facts, now = parse_case(row["case"])
        d = decide(policy, facts, now)
        entry = store.record(Entry(
            gate="demo", direction=facts.direction, subject_kind=facts.subject.kind,
            action=d.action, report=d.report, reasons=list(d.reasons),
            readings=[{"body_c": r} for r in facts.readings_c],
            code_colour=facts.code.colour if facts.code else None,
            override_reason=facts.override_reason), device_id=DEVICE_ID, now=now)
        print(f"#{entry.seq:<3} [{policy.risk_level:>6}] {row['title']}\n     -> "
              + say_decision(d, lang))


def say_reasons(codes, lang: str | None) -> str:
    sep = "; " if (lang or reasons.default_lang()) == "en" else "；"
    return sep.join(reasons.reason_text(r, lang) for r in codes)


def say_decision(d, lang: str | None) -> str:
    report = f"  ({reasons.text(reasons.REPORT_TEXT, d.report, lang)})" if d.report != "none" else ""
    return f"{reasons.action_text(d.action, lang)}: {say_reasons(d.reasons, lang)}{report}"


def run_gate(store: Store, policy: GatePolicy, lang: str | None) -> None:
    # Heavy parts are imported here so `gate demo --cases` stays light.
    import numpy as np

    from devices.camera import make_decoder
    from devices.camera.synthetic import render
    from devices.thermometer.driver import Thermometer
    from devices.thermometer.emulator import GyMcu90614Emulator
    from devices.thermometer.sessions import GyMcu90614Session
    from kiosk.codes import Reason, Verifier, issue, keys, trust
    from kiosk.people import mask_name, person_ref

    signer = keys.generate("Ed25519")  # the township's health-code key
    trust_list = trust.TrustList.from_json(
        {"keys": [trust.entry_for(signer.public_key(), ["health"], label="demo township")]},
        fetched_at=clock.utc_now())
    verifier = Verifier(trust_list)
    decoder = make_decoder()
    emulator = GyMcu90614Emulator(values=[(AMBIENT_C, AMBIENT_C)]).start()  # nobody there yet
    thermometer = Thermometer(emulator.path, GyMcu90614Session(mode="query")).start()
    print(label("simulated_gate", lang) + emulator.path)
    try:
        for v in SCENE:
            now = clock.utc_now()
            ref = person_ref(v.id_number, SALT)
            text = v.foreign_text or issue.health_code(
                signer, person_ref=ref, name=v.name, colour=v.colour,
                issued_at=now - dt.timedelta(minutes=v.code_age_min))
            # The phone is held up for about a second: up to 15 frames, the first read wins.
            found, decode_ms, seed = [], 0.0, zlib.crc32(v.id_number.encode())
            for k in range(15):
                frame = render(text, v.distortion, np.random.default_rng(seed),
                               optics=np.random.default_rng([seed, k]))
                t0 = time.perf_counter()
                found = decoder.decode(frame)
                decode_ms += (time.perf_counter() - t0) * 1000
                if found:
                    break
            seen = found[0].text if found else None
            result = verifier.verify(seen, at=now) if seen else None
            # A payment code or a URL is no health code at all, not a forged one.
            code = None if result is None or result.reason == Reason.NOT_A_CODE else Code(
                colour=result.claims.get("colour") if result.valid else None, valid=result.valid)

            readings, d = [], None
            for forehead in v.forehead:
                readings.append(measure(thermometer, emulator, forehead))
                facts = Facts(direction="in", subject=Subject(kind=v.kind, has_pass=True), code=code,
                              readings_c=tuple(r.body_estimate_c for r in readings))
                d = decide(policy, facts, now)
                if d.action not in (MEASURE, RETEST):
                    break
            emulator.values = [(AMBIENT_C, AMBIENT_C)]  # the person walks on

            entry = store.record(Entry(
                gate="demo", direction="in", subject_kind=v.kind, masked_name=mask_name(v.name),
                person_ref=ref, code_kind=result.kind if result else None,
                code_colour=code.colour if code else None,
                code_result=("valid" if result.valid else result.reason.value) if result else "no_code",
                readings=[{"object_c": r.object_c, "ambient_c": r.ambient_c, "body_c": r.body_c,
                           "body_estimate_c": r.body_estimate_c, "raw": r.raw} for r in readings],
                action=d.action, report=d.report, reasons=list(d.reasons)), device_id=DEVICE_ID)

            temps = " → ".join(f"{r.body_estimate_c:.1f}" for r in readings)
            print(f"#{entry.seq:<2} {mask_name(v.name):<4} {label(v.kind, lang)}  "
                  f"{describe_code(result, lang)} "
                  f"[{v.distortion}, {k + 1} frame{'s' if k else ''}, {decode_ms:.1f} ms]  "
                  f"{label('temperature', lang)} {temps} °C\n     -> {say_decision(d, lang)}")
    finally:
        thermometer.stop()
        emulator.stop()
        decoder.close()


def label(key: str, lang: str | None) -> str:
    return reasons.text(reasons.LABEL_TEXT, key, lang)


def describe_code(result, lang: str | None) -> str:
    if result is None:
        return label("no_code_read", lang)
    if not result.valid:
        return result.message(lang)
    return label(result.claims.get("colour", ""), lang)


def measure(thermometer, emulator, forehead_c: float):
    """The person stands before the module; the first frame that shows them is the reading."""
    emulator.values = [(forehead_c, AMBIENT_C)]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        r = thermometer.wait_reading(after=time.monotonic(), timeout=1.0)
        if r is not None and abs(r.object_c - forehead_c) < 0.005:
            return r
    raise RuntimeError("the simulated thermometer gave no reading in 5 s")
