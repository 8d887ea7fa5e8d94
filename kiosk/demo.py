"""Run the whole gate on simulated devices: a township, `gate run`, and people at the gate.

A township server starts on 127.0.0.1; the office sets the community's policy and uploads
its lists (households, residents with passes, a home-quarantine order, a resident
vehicle, risk areas, guards with PIN hashes, the key that signs health codes) and makes
an enrollment token; the gate enrolls, pulls the lists, and runs as `gate run` does (the
`Daemon`) on a simulated camera, a GY-MCU90614 emulated on a pseudo-terminal and a
simulated relay, with its local API on a Unix socket and the uploader beside it.

Then people come, one at a time, and touch the gate only as people and a guard would:
a phone held up to the camera (rendered frames: tilted, glare, motion blur…), a forehead
in front of the thermometer, and the guard's commands through the local API (a shift
signed in with a PIN, look-ups by name or ID number, registrations, an alarm
acknowledged, the handover). Midway the township raises the risk level; the uploader
pulls it and the next decisions follow it. Each decision is printed in the guard's
words, then the township's daily report and alarms.

`gate demo --headless --people N --json` draws N people from the same kinds (seeded) and
prints one JSON summary; `gate demo --cases` runs docs/cases.jsonl through the rules.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import queue
import random
import secrets
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kiosk import clock, reasons
from kiosk.cases import parse_case
from kiosk.rules import decide
from kiosk.store import Entry, Store

log = logging.getLogger("gate.demo")

CASES = Path(__file__).resolve().parents[1] / "docs" / "cases.jsonl"
DEVICE_ID = "demo-gate-1"
COMMUNITY = "demo-community"
GATE_NAME = "east"
SALT = "demo-township-salt"  # a real township keeps its salt secret (a 0600 file on each gate)
GUARD = ("g1", "赵*", "2468")  # id, masked name, PIN
LEADER = ("L1", "钱*", "1357")
PLATE = "苏A12345"
RISK_COUNTY = ("420102", "湖北省武汉市江岸区")  # within 武汉市, listed as a high-risk area

AMBIENT_C = 12.0  # a cold morning: foreheads read low, the module's compensation lifts them
NOBODY_C = 20.0   # nobody in front: an implausible body estimate, never a measurement
NORMAL_C, HOT_C = 33.3, 34.3  # forehead °C at 12 °C ambient: body 36.6 and 37.6
HOLD_S = 2.5      # a person holds the phone up this long, then tries again (the last time held straight)
WAIT_S = 30.0     # longest wait for the gate to answer one person

# What each scripted person does, as the demo narrates it (the gate's own words come from
# kiosk/reasons.py).
SCENE_TEXT = {
    "start": {"zh": "模拟卡口已启动：镇防控办服务器 {server}，本地接口 {socket}，测温模块 {port}",
              "en": "Simulated gate up: township server {server}, local API {socket}, thermometer {port}"},
    "shift": {"zh": "值班人员{guard}输入密码上岗，带班领导{leader}",
              "en": "Guard {guard} signs in with a PIN; duty leader {leader}"},
    "green": {"zh": "居民出示绿码（{distortion}）", "en": "Resident shows a green code ({distortion})"},
    "yellow": {"zh": "居民出示黄码", "en": "Resident shows a yellow code"},
    "red": {"zh": "居民出示红码", "en": "Resident shows a red code"},
    "screenshot": {"zh": "出示25分钟前的健康码截图", "en": "Shows a screenshot of a code from 25 minutes ago"},
    "payment": {"zh": "误出示付款码", "en": "Shows a payment QR by mistake"},
    "retest": {"zh": "居民首次测温偏高，休息后复测", "en": "Resident reads high, rests, is re-tested"},
    "fever": {"zh": "居民复测仍发热", "en": "Resident still has a fever on the re-test"},
    "quarantine_exit": {"zh": "居家隔离人员要外出：值班人员按姓名查询，方向外出",
                        "en": "Resident under home quarantine wants to go out: the guard finds her by name"},
    "visit_quarantined": {"zh": "访客要探访居家隔离住户：登记后出示健康码",
                          "en": "Visitor to a household under home quarantine: registered, shows a code"},
    "elderly": {"zh": "老人无智能手机：值班人员按身份证号查询，测温",
                "en": "Elderly resident without a phone: looked up by ID number, measured"},
    "visitor": {"zh": "访客登记后出示健康码", "en": "Visitor registered, shows a code"},
    "approved_visitor": {"zh": "经社区批准的照护访客登记后出示健康码",
                         "en": "Carer approved by the community, registered, shows a code"},
    "courier": {"zh": "快递员登记后出示健康码", "en": "Courier registered, shows a code"},
    "vehicle": {"zh": "本小区车辆外出登记", "en": "Resident vehicle going out, registered"},
    "returnee": {"zh": "从中高风险地区返回：登记返回人员信息，出示健康码",
                 "en": "Arrival from a risk area: returnee form, shows a code"},
    "stranger": {"zh": "名单外人员出示绿码", "en": "Someone on no list shows a green code"},
    "acknowledged": {"zh": "值班人员确认告警 #{id}：{message}", "en": "Guard acknowledges alarm #{id}: {message}"},
    "risk_change": {"zh": "镇防控办将本小区调为{level}风险；卡口 {seconds:.1f} 秒后按新等级查验",
                    "en": "The township sets the community to {level} risk; the gate follows it {seconds:.1f} s later"},
    "handover": {"zh": "交接班：{guard}（带班 {leader}）本班 {entries} 人次（{actions}），立即上报 {immediate} 次，"
                             "未处理告警 {open}",
                 "en": "Handover: {guard} (leader {leader}) {entries} checks this shift ({actions}), {immediate} "
                       "reported at once, {open} alarms open"},
    "synced": {"zh": "已同步至镇防控办：{synced} / {written} 条",
               "en": "Synced to the township: {synced} / {written} entries"},
    "interrupted": {"zh": "已中断，模拟卡口已停止", "en": "Interrupted; the simulated gate is stopped"},
    "unplanned": {"zh": "（意外的一条记录）", "en": "(an entry nobody planned)"},
    "unread": {"zh": "未识别到码，换个角度再出示", "en": "Code not read: held up again, steadier"},
    "starting": {"zh": "演示：正在启动镇防控办服务器和模拟卡口…",
                 "en": "Demo: starting the township server and the gate…"},
    "finished": {"zh": "演示结束：按 ctrl+c 退出（各项记录随后打印）",
                 "en": "The demo is over: ctrl+c quits (the records are printed then)"},
    "failed": {"zh": "演示出错：{error}（按 ctrl+c 退出）", "en": "The demo failed: {error} (ctrl+c quits)"},
}
DISTORTION_TEXT = {
    "clean": {"zh": "端正", "en": "held straight"}, "tilt": {"zh": "手机倾斜", "en": "tilted"},
    "glare": {"zh": "屏幕反光", "en": "glare"}, "motion": {"zh": "手在晃动", "en": "motion blur"},
    "blur": {"zh": "失焦", "en": "out of focus"}, "lowlight": {"zh": "光线暗", "en": "low light"},
    "noise": {"zh": "噪点", "en": "noisy"}, "jpeg": {"zh": "压缩失真", "en": "compressed"},
}
LEVEL_TEXT = {"low": {"zh": "低", "en": "low"}, "medium": {"zh": "中", "en": "medium"},
              "high": {"zh": "高", "en": "high"}}


class DemoError(Exception):
    """The simulated gate did not answer as a gate must; the message says where."""


class Stopped(Exception):
    """The viewer quit (the console's ctrl+c): the story ends where it is."""


class Narration:
    """Where the story is told: printed line by line (the default, and `--plain`). The
    console view (kiosk/demo_console.py) shows it beside the guard's console instead."""

    def __init__(self) -> None:
        self.stop = threading.Event()  # set when the viewer quits

    def out(self, text: str) -> None:
        print(text, flush=True)

    def finished(self) -> None:
        """The story is over; the plain view ends here, the console waits for its viewer."""

    def pause(self) -> None:
        """Between two people: none when printed; the console leaves time to read the outcome."""

    def check(self) -> None:
        if self.stop.is_set():
            raise Stopped


def say(key: str, lang: str | None, **kw: Any) -> str:
    return reasons.text(SCENE_TEXT, key, lang).format(**kw)


# -- people ----------------------------------------------------------------------------------

def id_number(first17: str) -> str:
    from kiosk.records import id_check_digit
    return first17 + id_check_digit(first17)


@dataclasses.dataclass(frozen=True)
class Resident:
    name: str
    id_number: str
    household: str
    has_pass: bool = True


SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ("小明", "华", "伟", "敏", "静", "丽", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "超",
         "秀英", "桂兰")
HOUSEHOLDS = [("h1", "3-2-501"), ("h2", "3-2-502"), ("h3", "5-1-101")] + [
    (f"h{i}", f"{4 + i // 8}-{1 + i % 2}-{100 * (1 + i % 6) + 1 + i % 4}") for i in range(4, 24)]
QUARANTINED = Resident("钱芳", id_number("11010519800202456"), "h2")  # under home quarantine
ELDERLY = Resident("周桂兰", id_number("11010519400303567"), "h3")   # no smartphone


def residents(pool: int = 40) -> list[Resident]:
    """The community's residents: a fixed, reproducible pool (each with a pass)."""
    named = [Resident("王小明", id_number("11010519900101123"), "h1"),
             Resident("李华", id_number("11010519850505234"), "h1"),
             Resident("赵敏", id_number("11010519920909456"), "h1")]
    rng = random.Random(7)
    out = list(named)
    while len(out) < pool:
        i = len(out)
        birth = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(0, 20000))
        out.append(Resident(rng.choice(SURNAMES) + rng.choice(GIVEN),
                            id_number(f"110105{birth:%Y%m%d}{100 + i:03d}"), HOUSEHOLDS[3 + i % 20][0]))
    return out


def township_lists(signer_entry: dict, pool: list[Resident]) -> dict[str, list[dict]]:
    from kiosk.people import mask_name, person_ref
    from kiosk.shifts import hash_pin
    everyone = [*pool, QUARANTINED, ELDERLY]
    far = {"valid_from": "2026-01-01T00:00:00Z", "valid_until": "2030-01-01T00:00:00Z"}
    return {
        "households": [{"id": h, "address": a} for h, a in HOUSEHOLDS],
        "residents": [{"person_ref": person_ref(r.id_number, SALT), "household_id": r.household,
                       "masked_name": mask_name(r.name), "role": "member"} for r in everyone],
        "passes": [{"serial": f"P{i:04d}", "person_ref": person_ref(r.id_number, SALT), "household_id": r.household,
                    **far} for i, r in enumerate(everyone) if r.has_pass],
        "revoked_passes": [],
        "quarantine_orders": [{"id": "q1", "person_ref": person_ref(QUARANTINED.id_number, SALT),
                               "kind": "home_quarantine", "start": "2026-01-01T00:00:00Z",
                               "end": "2030-01-01T00:00:00Z"}],
        "vehicles": [{"plate": PLATE, "household_id": "h1"}],
        "risk_areas": [{"code": "420100", "name": "武汉市", "level": "high", "since": "2026-11-20"}],
        "guards": [{"id": GUARD[0], "masked_name": GUARD[1], "pin_hash": hash_pin(GUARD[2]), "leader": 0},
                   {"id": LEADER[0], "masked_name": LEADER[1], "pin_hash": hash_pin(LEADER[2]), "leader": 1}],
        "trust_keys": [{"kid": signer_entry["kid"], "entry": json.dumps(signer_entry),
                        "purposes": "health"}],
    }


# -- the township and the gate -----------------------------------------------------------------

@contextlib.contextmanager
def township(tmp: Path, risk_level: str, lists: dict[str, list[dict]]) -> Iterator[tuple[Any, str, Any]]:
    """The township's server on 127.0.0.1, the community's policy and lists, this gate enrolled."""
    from sync.admin import Admin
    from sync.client import enroll
    from sync.server.app import Settings
    from sync.server.thread import ServerThread

    token = secrets.token_urlsafe(24)
    with ServerThread(Settings(db_url=str(tmp / "township.db"), admin_token=token)) as server:
        admin = Admin(server.url, token)
        try:
            admin.set_policy(COMMUNITY, risk_level=risk_level, fever_c=37.3)
            for name, rows in lists.items():
                admin.put_list(COMMUNITY, name, rows)
            enrollment = admin.enrollment(COMMUNITY, GATE_NAME, device_id=DEVICE_ID)
            credentials = enroll(server.url, enrollment["token"])
            yield admin, server.url, credentials
        finally:
            admin.close()


def gate_config(tmp: Path, db: Path, credentials_path: Path, lang: str | None, outcome_s: float = 0.1) -> dict:
    from kiosk import config
    cfg = config.load("/dev/null", env={})  # the demo's own settings, whatever ./gate.toml says
    cfg["gate"].update(device_id=DEVICE_ID, community=COMMUNITY, lang=lang or reasons.default_lang())
    cfg["store"]["path"] = str(db)
    cfg["camera"]["source"] = "sim"
    cfg["thermometer"]["port"] = "sim"
    cfg["relay"]["kind"] = "sim"
    # People move quickly here: the outcome shows briefly and a re-test follows a short rest.
    cfg["checkpoint"].update(outcome_s=outcome_s, retest_gap_s=0.5, measure_timeout_s=15.0)
    cfg["thermometer"]["interval"] = 0.05  # a query takes 13 ms at 9600 baud: two readings agree sooner
    cfg["api"].update(socket=str(tmp / "api.sock"), tcp="")
    cfg["people"]["salt_file"] = str(tmp / "salt")
    # A short round, so entries reach the township and a new policy reaches the gate within seconds.
    cfg["sync"] = {"credentials": str(credentials_path), "interval_s": 0.5, "pull_interval_s": 1.0}
    return cfg


class Gate:
    """`gate run` in this process on simulated devices, seen and driven as a guard would."""

    def __init__(self, daemon: Any, lang: str | None, narration: Narration | None = None) -> None:
        import httpx
        self.daemon, self.lang = daemon, lang
        self.narration = narration or Narration()
        self.http = httpx.Client(transport=httpx.HTTPTransport(uds=daemon.api.uds), base_url="http://gate",
                                 timeout=10.0)
        self.events: queue.Queue[dict] = queue.Queue()
        self.unplanned: list[dict] = []  # decisions no step of the story expected (a timeout…)
        self.stray_codes: list[dict] = []  # codes read that were not the phone held up at the time
        self._listener = threading.Thread(target=self._listen, name="demo-events", daemon=True)
        self._listener.start()
        self.next_event(lambda e: e["type"] == "hello", 10.0)

    def _listen(self) -> None:
        import httpx
        try:
            with self.http.stream("GET", "/v1/events", timeout=None) as r:
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        self.events.put(json.loads(line[6:]))
        except httpx.HTTPError:  # the gate stopped under the stream: the end of the demo
            pass

    def close(self) -> None:
        self.http.close()

    def join(self, timeout: float = 5.0) -> None:
        self._listener.join(timeout)

    # -- what people and the guard do --------------------------------------------------------
    def next_event(self, match: Callable[[dict], bool], timeout: float = WAIT_S) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            self.narration.check()
            left = deadline - time.monotonic()
            if left <= 0:
                raise DemoError(f"the gate did not answer within {timeout:.0f} s "
                                f"(phase {self.state().get('phase')})")
            try:
                event = self.events.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if match(event):
                return event
            if event["type"] == "decision":  # one nobody here waited for: keep it, never hide it
                self.unplanned.append(event)

    def command(self, name: str, **body: Any) -> dict:
        r = self.http.post(f"/v1/commands/{name}", json=body)
        if r.status_code != 200:
            raise DemoError(f"{name}: {r.status_code} {r.json().get('detail')}")
        return r.json()

    def get(self, path: str, **params: Any) -> Any:
        r = self.http.get(path, params=params)
        r.raise_for_status()
        return r.json()

    def state(self) -> dict:
        return self.get("/v1/state")

    def stand(self, forehead_c: float) -> None:
        self.daemon.emulator.values = [(forehead_c, AMBIENT_C)]

    def step_away(self) -> None:
        """The person leaves; the next steps up only once the thermometer has seen nobody, so a
        reading of this forehead that was still on the line (a busy machine) is never the next one's."""
        self.daemon.emulator.values = [(NOBODY_C, AMBIENT_C)]
        self.daemon.camera_sim.clear()
        therm, since = self.daemon.thermometer, time.monotonic()
        deadline = since + WAIT_S
        while time.monotonic() < deadline:
            self.narration.check()
            r = therm.wait_reading(after=since, timeout=0.5)
            if r is not None and r.body_c is None:
                return
            since = r.t if r is not None else since
        raise DemoError("the thermometer still reads a forehead after the person left")

    def show(self, text: str, distortion: str, theirs: Callable[[dict], bool]) -> tuple[dict, int]:
        """Hold the phone up until the gate reads it (then lower it); the code event and the tries.
        `theirs` tells this person's code from any other the gate might report meanwhile."""
        def read(e: dict) -> bool:
            if e["type"] != "code":
                return False
            if not theirs(e):
                self.stray_codes.append(e)  # not the phone held up now: noted, never taken for it
                return False
            return True

        # Short tries: the scanner takes the same code again after 3 s without seeing it, so a
        # phone held up much longer (an unreadable stretch, then a good frame) would be a second
        # person; before trying again, ask the gate whether it has read the code after all.
        before = (self.state().get("last") or {}).get("seq")
        for attempt, how in enumerate((distortion, distortion, "clean"), start=1):
            if attempt > 1 and self._code_taken(before):
                return self.next_event(read), attempt - 1  # read just as the phone went down
            self.daemon.camera_sim.show(text, seconds=HOLD_S, distortion=how)
            try:
                event = self.next_event(read, HOLD_S + 0.5)
            except DemoError:
                continue
            finally:
                self.daemon.camera_sim.clear()
            return event, attempt
        raise DemoError("the camera read no code in three tries")

    def _code_taken(self, last_seq: int | None) -> bool:
        """The gate holds a code for the person in front, or has decided someone since."""
        state = self.state()
        subject, last = state["subject"], state.get("last") or {}
        return (subject is not None and subject["code"] is not None) or last.get("seq") != last_seq

    def decision(self) -> dict:
        return self.next_event(lambda e: e["type"] == "decision")

    def idle(self) -> None:
        """The outcome has been shown and the gate waits for the next person."""
        deadline = time.monotonic() + WAIT_S
        while self.state()["phase"] != "waiting":
            if time.monotonic() > deadline:
                raise DemoError("the gate did not return to waiting")
            self.narration.check()
            time.sleep(0.05)


@dataclasses.dataclass
class Seen:
    """One person's visit, as printed."""
    kind: str
    title: str
    decision: dict
    code: dict | None = None
    distortion: str | None = None
    tries: int = 1


class People:
    """The kinds of people who come to the gate; each drives the gate and returns what it saw."""

    def __init__(self, gate: Gate, signer: Any, pool: list[Resident], lang: str | None, rng: random.Random) -> None:
        self.gate, self.signer, self.pool, self.lang, self.rng = gate, signer, pool, lang, rng
        self._turn = 0
        self._names: dict[str, str] = {}  # the code text shown now -> the masked name it carries
        self._strangers = 0

    def next_resident(self) -> Resident:
        """Residents in turn, so no one shows the same code twice within the scanner's debounce."""
        r = self.pool[self._turn % len(self.pool)]
        self._turn += 1
        return r

    def code(self, who: Resident, colour: str = "green", age_min: float = 0.3) -> str:
        from kiosk.codes import issue
        from kiosk.people import mask_name, person_ref
        text = issue.health_code(self.signer, person_ref=person_ref(who.id_number, SALT), name=who.name,
                                 colour=colour, issued_at=clock.utc_now() - dt.timedelta(minutes=age_min))
        self._names = {text: mask_name(who.name)}
        return text

    def show(self, text: str, distortion: str, named: bool = True) -> tuple[dict, int]:
        """This person's phone up to the camera: their code is the one that names them (a
        payment QR names nobody; a courier's record keeps no name, so any valid code is theirs)."""
        name = self._names.get(text)
        if not named:
            return self.gate.show(text, distortion, lambda e: bool((e.get("code") or {}).get("valid")))
        if name is None:
            return self.gate.show(text, distortion, lambda e: (e.get("code") or {}).get("reason") == "not_a_code")
        return self.gate.show(text, distortion, lambda e: e.get("masked_name") == name)

    def forehead(self, base: float) -> float:
        return round(base + self.rng.uniform(-0.15, 0.15), 2)  # no two foreheads read the same

    def new_stranger(self) -> Resident:
        self._strangers += 1
        birth = dt.date(1960, 1, 1) + dt.timedelta(days=self.rng.randrange(0, 16000))
        return Resident(self.rng.choice(SURNAMES) + self.rng.choice(GIVEN),
                        id_number(f"320102{birth:%Y%m%d}{self._strangers % 1000:03d}"), "")

    def _by_code(self, kind: str, text: str, distortion: str = "clean", forehead: float | None = None) -> Seen:
        g = self.gate
        if forehead is not None:
            g.stand(forehead)  # in front of the module before the phone goes up: measured at once
        event, tries = self.show(text, distortion)
        d = g.decision()
        return Seen(kind, "", d, event.get("code"), distortion, tries)

    # the kinds --------------------------------------------------------------------------
    def green(self, distortion: str | None = None) -> Seen:
        distortion = distortion or self.rng.choice(("clean", "tilt", "glare", "motion", "blur", "lowlight"))
        seen = self._by_code("green", self.code(self.next_resident()), distortion, self.forehead(NORMAL_C))
        seen.title = say("green", self.lang, distortion=reasons.text(DISTORTION_TEXT, distortion, self.lang))
        return seen

    def yellow(self) -> Seen:
        seen = self._by_code("yellow", self.code(self.next_resident(), "yellow"), "clean", self.forehead(NORMAL_C))
        seen.title = say("yellow", self.lang)
        return seen

    def red(self) -> Seen:
        seen = self._by_code("red", self.code(self.next_resident(), "red"), "motion", self.forehead(NORMAL_C))
        seen.title = say("red", self.lang)
        return seen

    def screenshot(self) -> Seen:
        seen = self._by_code("screenshot", self.code(self.next_resident(), age_min=25), "glare",
                             self.forehead(NORMAL_C))
        seen.title = say("screenshot", self.lang)
        return seen

    def payment(self) -> Seen:
        text = f"https://pay.example.com/qr/{self.rng.getrandbits(40):010x}-收款码"
        seen = self._by_code("payment", text, "clean", self.forehead(NORMAL_C))
        seen.title = say("payment", self.lang)
        return seen

    def _retest(self, kind: str, second: float) -> Seen:
        g = self.gate
        g.stand(self.forehead(HOT_C))
        event, tries = self.show(self.code(self.next_resident()), "clean")
        first = g.next_event(lambda e: e["type"] == "decision" or (e["type"] == "state" and e["phase"] == "retest"))
        if first["type"] == "state":
            g.stand(second)  # rests out of the wind; only readings after the rest count
            first = g.decision()
        return Seen(kind, say(kind, self.lang), first, event.get("code"), "clean", tries)

    def retest(self) -> Seen:
        return self._retest("retest", self.forehead(NORMAL_C))

    def fever(self) -> Seen:
        return self._retest("fever", self.forehead(HOT_C))

    def quarantine_exit(self) -> Seen:
        from kiosk.people import mask_name
        g = self.gate
        found = g.get("/v1/people", name=QUARANTINED.name, household=QUARANTINED.household)["people"]
        match = [p for p in found if p["masked_name"] == mask_name(QUARANTINED.name)]
        if not match:
            raise DemoError("the guard's search by name found nobody")
        g.command("look_up", person_ref=match[0]["person_ref"], direction="out")
        return Seen("quarantine_exit", say("quarantine_exit", self.lang), g.decision())

    def _registered(self, kind: str, form: str, fields: dict, who: Resident, forehead: float | None,
                    **extra: Any) -> Seen:
        g = self.gate
        g.idle()  # a form filled in while the last outcome shows would re-check that person's code
        g.command("register", form=form, fields=fields, **extra)
        event, tries = self.show(self.code(who), "clean", named=form != "courier")
        if forehead is not None:
            g.stand(forehead)  # after the code: a reading before it would find no code to go with
        return Seen(kind, say(kind, self.lang), g.decision(), event.get("code"), "clean", tries)

    def visit_quarantined(self) -> Seen:
        who = self.new_stranger()
        return self._registered("visit_quarantined", "visitor", {
            "name": who.name, "phone": "13812345678", "home_town": "江苏南京", "visiting": "3-2-502",
            "reason": "送生活用品", "transport": "bus"}, who, self.forehead(NORMAL_C))

    def visitor(self) -> Seen:
        who = self.new_stranger()
        return self._registered("visitor", "visitor", {
            "name": who.name, "phone": "13912345678", "home_town": "江苏苏州", "visiting": "3-2-501",
            "reason": "探望老人", "transport": "walk"}, who, self.forehead(NORMAL_C))

    def approved_visitor(self) -> Seen:
        who = self.new_stranger()
        return self._registered("approved_visitor", "visitor", {
            "name": who.name, "phone": "13512345678", "home_town": "江苏无锡", "visiting": "h3",
            "reason": "照护独居老人", "transport": "bicycle", "approved_by": "居委会王*"}, who,
            self.forehead(NORMAL_C))

    def courier(self) -> Seen:
        return self._registered("courier", "courier", {"company": "顺丰速运", "phone": "13700001111",
                                                       "drop_off": "东门快递柜"}, self.new_stranger(),
                                self.forehead(NORMAL_C))

    def returnee(self) -> Seen:
        who = self.new_stranger()
        today = clock.utc_now().astimezone(dt.timezone(dt.timedelta(hours=8))).date()
        return self._registered("returnee", "returnee", {
            "name": who.name, "id_number": who.id_number, "phone": "13612345678", "building": "3", "unit": "2",
            "room": "501", "from_county": RISK_COUNTY[0], "from_place": RISK_COUNTY[1],
            "arrival_date": (today - dt.timedelta(days=1)).isoformat(), "transport": "train"},
            who, self.forehead(NORMAL_C))

    def elderly(self) -> Seen:
        g = self.gate
        g.stand(self.forehead(NORMAL_C))
        g.command("look_up", id_number=ELDERLY.id_number, direction="in")
        return Seen("elderly", say("elderly", self.lang), g.decision())

    def vehicle(self) -> Seen:
        g = self.gate
        g.idle()
        g.command("register", form="vehicle", direction="out",
                  fields={"plate": PLATE, "passengers": 1, "boot_checked": True, "household": "h1"})
        return Seen("vehicle", say("vehicle", self.lang), g.decision())

    def stranger(self) -> Seen:
        seen = self._by_code("stranger", self.code(self.new_stranger()), "tilt", self.forehead(NORMAL_C))
        seen.title = say("stranger", self.lang)
        return seen


# The scripted demo: every path, in order. Then the township raises the level to medium
# and the AFTER list shows what changes.
SCRIPT: list[tuple[str, dict]] = [
    ("green", {"distortion": "tilt"}), ("green", {"distortion": "glare"}), ("green", {"distortion": "motion"}),
    ("yellow", {}), ("red", {}), ("screenshot", {}), ("payment", {}), ("retest", {}), ("fever", {}),
    ("quarantine_exit", {}), ("visit_quarantined", {}), ("elderly", {}), ("visitor", {}), ("courier", {}),
    ("vehicle", {}), ("returnee", {}), ("stranger", {}),
]
AFTER: list[tuple[str, dict]] = [
    ("green", {"distortion": "blur"}), ("stranger", {}), ("visitor", {}), ("approved_visitor", {}), ("courier", {}),
    ("vehicle", {}),
]
# For --headless: how often each kind comes (a day at a gate is mostly residents).
WEIGHTS = {"green": 40, "yellow": 4, "red": 2, "screenshot": 3, "payment": 2, "retest": 4, "fever": 2,
           "quarantine_exit": 2, "visit_quarantined": 2, "elderly": 4, "visitor": 6, "approved_visitor": 2,
           "courier": 5, "vehicle": 4,
           "returnee": 2, "stranger": 3}


# -- the run -----------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cases", action="store_true",
                        help="run the sample cases in docs/cases.jsonl through the rules instead")
    parser.add_argument("--db", type=Path, help="store to log into (default: a temporary file)")
    parser.add_argument("--risk-level", choices=("low", "medium", "high"), default="low",
                        help="the level the township sets for the demo community at the start")
    parser.add_argument("--lang", choices=reasons.LANGS, default=None, help="zh (default) or en")
    parser.add_argument("--headless", action="store_true",
                        help="no scripted story: N people drawn from the same kinds, then a summary")
    parser.add_argument("--people", type=int, default=50, metavar="N", help="people for --headless (default 50)")
    parser.add_argument("--seed", type=int, default=None, help="seed for --headless (default: random, printed)")
    parser.add_argument("--json", action="store_true", help="with --headless: one JSON summary on stdout")
    parser.add_argument("--plain", action="store_true",
                        help="print the story line by line instead of showing the guard's console "
                             "(the default when the output is not a terminal)")


def run(args: argparse.Namespace) -> int:
    if args.cases:
        with tempfile.TemporaryDirectory(prefix="gate-demo-") as tmp, \
                Store.open(args.db or Path(tmp) / "gate.db") as store:
            run_cases(store, args.lang)
            print(f"\n{store.stats()['entries']} entries logged.")
        return 0
    if args.headless and not 1 <= args.people <= 100_000:
        print("gate demo: --people must be between 1 and 100000", file=sys.stderr)
        return 2
    if console_view(args):
        from kiosk import demo_console
        return demo_console.run(args)
    try:
        return run_gate(args)
    except KeyboardInterrupt:
        print(say("interrupted", args.lang), file=sys.stderr)
        return 130


def console_view(args: argparse.Namespace) -> bool:
    """The scripted story in the guard's console: on a terminal, unless --plain or --headless."""
    if args.headless or getattr(args, "plain", False) or not (sys.stdin.isatty() and sys.stdout.isatty()):
        return False
    try:
        import textual  # noqa: F401 - the console is an optional extra ('.[console]')
    except ImportError:
        return False
    return True


def run_gate(args: argparse.Namespace, narration: Narration | None = None, tmp_dir: Path | None = None,
             outcome_s: float = 0.1) -> int:
    """The demo's run; `narration` tells the story (printed by default), `tmp_dir` holds the
    gate's files (its API socket: the console view knows the path before the gate is up)."""
    from kiosk.codes import keys, trust
    from kiosk.daemon import Daemon, Options
    from sync.client import SyncClient, SyncConfig

    lang = args.lang
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    if args.headless:
        print(f"gate demo: seed {seed} (replay with --seed {seed})", file=sys.stderr)
    started = time.monotonic()
    signer = keys.generate("Ed25519")  # the township's health-code key
    signer_entry = trust.entry_for(signer.public_key(), ["health"], label="demo township")
    pool = residents()
    narration = narration or Narration()
    main = threading.current_thread() is threading.main_thread()  # only it may set signal handlers
    with (contextlib.nullcontext(str(tmp_dir)) if tmp_dir else
          tempfile.TemporaryDirectory(prefix="gate-demo-")) as tmp_text:
        tmp = Path(tmp_text)
        db = args.db or tmp / "gate.db"
        fd = os.open(tmp / "salt", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(SALT)
        with township(tmp, args.risk_level, township_lists(signer_entry, pool)) as (admin, url, creds):
            creds.save(tmp / "credentials.json")
            first = SyncClient(Store.open(db), SyncConfig(credentials=creds))
            try:
                first.run_once()  # as `gate sync` would once after enrolling: the lists before the gate opens
            finally:
                first.close()
                first.store.close()
            narration.check()
            daemon = Daemon(gate_config(tmp, db, tmp / "credentials.json", lang, outcome_s), Options(demo=True))
            runner: threading.Thread | None = None
            gate: Gate | None = None
            try:
                daemon.start()
                runner = threading.Thread(target=daemon.run, name="gate-run", daemon=True)
                runner.start()
                gate = Gate(daemon, lang, narration)
                if not args.headless:
                    port = getattr(daemon.emulator, "path", "")  # the pseudo-terminal of the emulated module
                    narration.out(say("start", lang, server=url, socket=daemon.api.uds, port=port))
                people = People(gate, signer, pool, lang, random.Random(seed))
                story = Story(gate, people, admin, lang, quiet=args.headless, out=narration.out)
                if args.headless:
                    story.headless(args.people)
                else:
                    story.scripted()
                written, synced = story.wait_synced()
                summary = story.summary(seed, written, synced, time.monotonic() - started) if args.headless else {}
                narration.finished()
            finally:
                if main:
                    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
                try:
                    daemon.stop()  # its API ends the event stream, so the listener ends too
                    if runner is not None:
                        runner.join(5)
                    if gate is not None:
                        gate.join()
                        gate.close()
                finally:
                    if main:
                        signal.signal(signal.SIGINT, signal.default_int_handler)
            if args.headless:
                if args.json:
                    print(json.dumps(summary, ensure_ascii=False))
                else:
                    print_summary(summary, lang)
            else:
                narration.out("\n" + say("synced", lang, synced=synced, written=written))
                report(admin, lang, narration.out)
    return 0


class Story:
    """The order people come in, the guard's shift around them, and the township's change."""

    def __init__(self, gate: Gate, people: People, admin: Any, lang: str | None, quiet: bool,
                 out: Callable[[str], None] = print) -> None:
        self.gate, self.people, self.admin, self.lang, self.quiet = gate, people, admin, lang, quiet
        self._out = out
        self.seen: list[Seen] = []
        self.unplanned: list[dict] = []
        self.acknowledged = 0
        self.risk_change: dict | None = None
        self.handover: dict | None = None

    def out(self, text: str) -> None:
        if not self.quiet:
            self._out(text)

    def visit(self, kind: str, **kw: Any) -> Seen:
        seen = getattr(self.people, kind)(**kw)
        self.flush_unplanned()
        self.seen.append(seen)
        self.out(describe(seen, self.lang))
        self.gate.step_away()  # the next person may step up while this outcome is still shown
        self.gate.narration.pause()
        if seen.decision.get("report") == "immediate" and not self.quiet and self.acknowledged == 0:
            self.acknowledge()  # the guard on duty answers the first alarm at once, as the console asks
        return seen

    def flush_unplanned(self) -> None:
        for d in self.gate.unplanned[len(self.unplanned):]:
            self.unplanned.append(d)
            self.out(describe(Seen("unplanned", say("unplanned", self.lang), d), self.lang))

    def start_shift(self) -> None:
        self.gate.command("start_shift", guard_id=GUARD[0], pin=GUARD[2], leader_id=LEADER[0])
        self.out(say("shift", self.lang, guard=GUARD[1], leader=LEADER[1]))

    def end_shift(self) -> None:
        self.gate.command("end_shift")
        h = self.handover = self.gate.next_event(lambda e: e["type"] == "shift" and not e.get("started"))["handover"]
        self.flush_unplanned()
        comma = ", " if (self.lang or reasons.default_lang()) == "en" else "，"
        actions = comma.join(f"{reasons.action_text(k, self.lang)} {v}" for k, v in sorted(h["by_action"].items()))
        self.out(say("handover", self.lang, guard=h["guard"], leader=h["leader"], entries=h["entries"],
                     actions=actions, immediate=h["immediate_reports"], open=h["open_alarms"]))

    def acknowledge(self, every: bool = False) -> None:
        for alarm in self.gate.get("/v1/alarms")["alarms"]:
            self.gate.command("acknowledge_alarm", alarm_id=alarm["id"])
            self.acknowledged += 1
            # the stored message is in the gate's language; its kind is the reason, said in ours
            self.out(say("acknowledged", self.lang, id=alarm["id"],
                         message=reasons.reason_text(alarm["kind"], self.lang)))
            if not every:
                return

    def raise_risk(self, level: str = "medium") -> None:
        """The township pushes a new level; the uploader pulls it; the status line shows it."""
        t0 = time.monotonic()
        self.admin.set_policy(COMMUNITY, risk_level=level, fever_c=37.3)
        deadline = t0 + WAIT_S
        while self.gate.state()["status"]["risk_level"] != level:
            self.gate.narration.check()
            if time.monotonic() > deadline:
                raise DemoError(f"the gate did not pull the {level} risk level")
            time.sleep(0.1)
        seconds = time.monotonic() - t0
        self.risk_change = {"after_people": len(self.seen), "level": level, "effective_s": round(seconds, 2)}
        self.out("\n" + say("risk_change", self.lang, level=reasons.text(LEVEL_TEXT, level, self.lang),
                             seconds=seconds) + "\n")

    def scripted(self) -> None:
        self.start_shift()
        for kind, kw in SCRIPT:
            self.visit(kind, **kw)
        self.raise_risk("medium")
        for kind, kw in AFTER:
            self.visit(kind, **kw)
        self.end_shift()

    def headless(self, n: int) -> None:
        self.start_shift()
        kinds, weights = zip(*WEIGHTS.items(), strict=True)
        for i in range(n):
            if i == n // 2:
                self.raise_risk("medium")
            self.visit(self.people.rng.choices(kinds, weights)[0])
        self.acknowledge(every=True)
        self.end_shift()

    def wait_synced(self) -> tuple[int, int]:
        """Until the township holds every entry the gate wrote (the uploader's rounds)."""
        reader = self.gate.daemon.reader
        deadline = time.monotonic() + WAIT_S
        while True:
            written = reader.stats()["entries"]
            synced = len(self.admin.entries(DEVICE_ID))
            if synced >= written or time.monotonic() > deadline:
                return written, synced
            self.gate.narration.check()
            time.sleep(0.2)

    def summary(self, seed: int, written: int, synced: int, elapsed_s: float) -> dict:
        entries = self.gate.daemon.reader.entries()
        by_action = collections.Counter(e.action for e in entries)
        by_reason = collections.Counter(r for e in entries for r in e.reasons)
        return {"seed": seed, "people": len(self.seen), "decided": len(self.seen) + len(self.unplanned),
                "unplanned": [{k: d[k] for k in ("seq", "action", "reasons")} for d in self.unplanned],
                "entries_written": written, "entries_synced": synced,
                "by_action": dict(sorted(by_action.items())), "by_reason": dict(sorted(by_reason.items())),
                "by_kind": dict(sorted(collections.Counter(s.kind for s in self.seen).items())),
                "codes_read_on_second_try": sum(1 for s in self.seen if s.tries > 1),
                "stray_codes": len(self.gate.stray_codes),
                "risk_change": self.risk_change, "alarms_acknowledged": self.acknowledged,
                "handover": self.handover, "elapsed_s": round(elapsed_s, 1)}


def describe(seen: Seen, lang: str | None) -> str:
    from kiosk.codes import Reason
    d = seen.decision
    code = seen.code
    if code is None:
        shown = ""
    elif code["valid"]:
        shown = reasons.text(reasons.LABEL_TEXT, code["colour"] or "", lang)
    else:
        shown = reasons.text(reasons.CODE_TEXT, code["reason"] or Reason.NOT_A_CODE.value, lang)
    temps = " → ".join(f"{t:.1f}" for t in d.get("readings_c") or [])
    parts = [f"#{d['seq']:<3}", d.get("masked_name") or "", reasons.text(reasons.LABEL_TEXT, d["subject_kind"], lang)]
    if shown:
        parts.append(shown)
    if temps:
        parts.append(f"{reasons.text(reasons.LABEL_TEXT, 'temperature', lang)} {temps} °C")
    if seen.tries > 1:
        parts.append(f"({say('unread', lang)})")
    return f"{seen.title}\n  {' '.join(p for p in parts if p)}\n     -> {say_decision(d, lang)}"


def say_reasons(codes: list[str] | tuple[str, ...], lang: str | None) -> str:
    sep = "; " if (lang or reasons.default_lang()) == "en" else "；"
    return sep.join(reasons.reason_text(r, lang) for r in codes)


def say_decision(d: Any, lang: str | None) -> str:
    action, why, report_to = (d["action"], d["reasons"], d["report"]) if isinstance(d, dict) else \
        (d.action, d.reasons, d.report)
    colon = ": " if (lang or reasons.default_lang()) == "en" else "："
    report_words = f"  ({reasons.text(reasons.REPORT_TEXT, report_to, lang)})" if report_to != "none" else ""
    return f"{reasons.action_text(action, lang)}{colon}{say_reasons(why, lang)}{report_words}"


def report(admin: Any, lang: str | None, out: Callable[[str], None] = print) -> None:
    """The township's side: the daily report (zeros included) and the immediate reports."""
    en = (lang or reasons.default_lang()) == "en"
    comma, colon = (", ", ": ") if en else ("，", "：")
    for c in admin.daily_report()["communities"]:
        by_action = comma.join(f"{reasons.action_text(k, lang)} {v}" for k, v in sorted(c["by_action"].items()))
        counts = f" ({by_action})" if en else f"（{by_action}）"
        out(label("daily_report", lang) + f"{c['community']}{colon}{c['entries']}{counts}")
    for alarm in admin.alarms()["alarms"]:
        out(label("alarm", lang) + f"#{alarm.get('seq')} {alarm.get('masked_name') or ''} "
              f"{reasons.action_text(alarm.get('action', ''), lang)}{colon}"
              + say_reasons(alarm.get("reasons", []), lang))


def print_summary(s: dict, lang: str | None) -> None:
    print(f"seed {s['seed']}: {s['people']} people, {s['entries_written']} entries written, "
          f"{s['entries_synced']} synced, {s['elapsed_s']} s")
    for action, n in s["by_action"].items():
        print(f"  {reasons.action_text(action, lang)}: {n}")
    for reason, n in s["by_reason"].items():
        print(f"    {reasons.reason_text(reason, lang)}: {n}")


def label(key: str, lang: str | None) -> str:
    return reasons.text(reasons.LABEL_TEXT, key, lang)


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
