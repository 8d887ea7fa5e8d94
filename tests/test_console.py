"""`gate console` against a real gate: a Daemon on simulated devices, its API on a Unix
socket in tmp_path, and the console driven by Textual's pilot, key by key, as a guard
would. What is checked is what the guard sees: the panels' text, the banner, the forms."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from pathlib import Path

import pytest
from textual.content import Content
from textual.geometry import Region
from textual.widgets import Digits, Input, Static

from kiosk import clock, config
from kiosk.codes import issue, keys, trust
from kiosk.daemon import Daemon, Options
from kiosk.people import person_ref
from kiosk.records import id_check_digit
from kiosk.shifts import hash_pin
from tui.app import GateConsole
from tui.widgets.alarm_banner import AlarmBanner
from tui.widgets.recent import RecentEntries
from tui.widgets.status_line import StatusLine

SALT = "test-salt"
AMBIENT, NORMAL, HIGH_THEN = 12.0, 33.3, 34.3  # forehead °C: 34.3 reads as a fever at 12 °C ambient
PIN = "2468"


def valid_id(first17: str) -> str:
    return first17 + id_check_digit(first17)


WANG, LI = valid_id("11010519900101123"), valid_id("11010519400505234")


class Gate:
    """A gate on simulators with lists (residents, guards) and its API on a socket."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.sock = tmp, str(tmp / "api.sock")
        self.key = keys.generate("Ed25519")
        (tmp / "trust.json").write_text(json.dumps(
            {"keys": [trust.entry_for(self.key.public_key(), ["health"], label="township")]}))
        refs = {WANG: person_ref(WANG, SALT), LI: person_ref(LI, SALT)}
        lists = {
            "households": [{"id": "h1", "address": "3-2-501"}],
            "residents": [{"person_ref": refs[WANG], "household_id": "h1", "masked_name": "王*明", "role": "owner"},
                          {"person_ref": refs[LI], "household_id": "h1", "masked_name": "李*", "role": "member"}],
            "passes": [], "revoked_passes": [], "quarantine_orders": [],
            "guards": [{"id": "g7", "masked_name": "赵*", "pin_hash": hash_pin(PIN), "leader": 0},
                       {"id": "L1", "masked_name": "钱*", "pin_hash": hash_pin("9999"), "leader": 1}],
        }
        (tmp / "lists.json").write_text(json.dumps(lists, ensure_ascii=False))
        (tmp / "salt").write_text(SALT)
        self.daemon: Daemon | None = None

    def start(self) -> Daemon:
        cfg = config.load(env={})
        cfg["gate"].update(device_id="east-1", community="lotus-garden")
        cfg["people"]["salt_file"] = str(self.tmp / "salt")
        cfg["checkpoint"]["outcome_s"] = 6.0  # long enough to read the outcome on the panel
        self.daemon = Daemon(cfg, Options(db=str(self.tmp / "g.db"), camera="sim", port="sim",
                                          trust=str(self.tmp / "trust.json"), lists=str(self.tmp / "lists.json"),
                                          api_socket=self.sock)).start()
        self.daemon.emulator.values = [(AMBIENT, AMBIENT)]  # nobody in front yet
        return self.daemon

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
            self.daemon = None

    def show(self, name: str, id_number: str, colour: str = "green", forehead: float = NORMAL) -> None:
        assert self.daemon is not None
        text = issue.health_code(self.key, person_ref=person_ref(id_number, SALT), name=name, colour=colour,
                                 issued_at=clock.utc_now() - dt.timedelta(seconds=20))
        self.daemon.emulator.values = [(forehead, AMBIENT)]
        self.daemon.camera_sim.show(text, seconds=1.5)


@pytest.fixture
def gate(tmp_path):
    g = Gate(tmp_path)
    g.start()
    yield g
    g.stop()


def text(widget) -> str:
    """What a widget shows, as plain text: its words, or the cells it draws (a table)."""
    visual = widget.render()
    if isinstance(visual, Content):
        return visual.plain
    return cells(widget)


def cells(widget) -> str:
    """The rows a widget draws on the terminal, as they are cut to its size."""
    size = widget.size
    return "\n".join(strip.text for strip in widget.render_lines(Region(0, 0, size.width, size.height)))


def ready(app: GateConsole) -> bool:
    """Connected, and the gate's status on the screen."""
    return app.connected and bool(text(app.main.query_one(StatusLine)))


def shown(app: GateConsole, selector: str) -> str:
    return text(app.main.query_one(selector, Static))


async def until(pilot, predicate, timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await pilot.pause(0.1)
    raise AssertionError(f"timed out waiting for {what or predicate}")


async def fill(pilot, **values: str) -> None:
    """Type into a form's fields: ASCII key by key, Chinese as an input method would."""
    for name, value in values.items():
        box = pilot.app.screen.query_one(f"#f-{name}", Input)
        box.focus()
        await pilot.pause()
        if value.isascii():
            await pilot.press(*value)
        else:
            box.value = value
    await pilot.pause()


async def start_shift(pilot) -> None:
    await pilot.press("s")
    await fill(pilot, guard_id="g7", pin=PIN, leader_id="L1")
    await pilot.press("enter")
    await until(pilot, lambda: "赵*" in text(pilot.app.main.query_one(StatusLine)), what="the guard on duty")


def run(coro) -> None:
    asyncio.run(coro)


def test_log_in_pass_a_resident_and_look_one_up_at_80x24(gate):
    async def go():
        app = GateConsole(gate.sock, "zh")
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: ready(app), what="the connection")
            assert "无人上岗" in text(app.main.query_one(StatusLine))
            # every action is on the key bar, in Chinese, and fits 80 columns
            keys = cells(app.main.query_one("#keys"))
            words = ("查询", "登记", "手测体温", "问询", "已戴口罩", "人工放行", "确认上报", "上岗", "交班", "取消")
            assert all(word in keys for word in words), keys
            # a wrong PIN is refused in Chinese, the form stays open
            await pilot.press("s")
            await fill(pilot, guard_id="g7", pin="1111")
            await pilot.press("enter")
            await until(pilot, lambda: "工号或密码不对" in text(app.screen.query_one("#message")), what="wrong PIN")
            await pilot.press("escape")
            await start_shift(pilot)
            status = text(app.main.query_one(StatusLine))
            assert "值守 赵*" in status and "带班 钱*" in status and "低风险" in status

            gate.show("王小明", WANG)
            await until(pilot, lambda: "放行" in shown(app, "#headline"), what="the admit")
            assert "请通行" in shown(app, "#headline")
            assert "健康码绿码，体温正常" in shown(app, "#reason")
            assert "王*明" in shown(app, "#detail")
            await until(pilot, lambda: "王*明" in text(app.main.query_one(RecentEntries)), what="recent")
            assert "健康码绿码" in text(app.main.query_one(RecentEntries))
            await until(pilot, lambda: app.state.get("phase") == "waiting", what="the next person")
            gate.daemon.emulator.values = [(AMBIENT, AMBIENT)]  # the resident walked on

            # an elderly resident without a phone: looked up by ID number, a typo named at once
            await pilot.press("c")
            typo = LI[:-1] + ("0" if LI[-1] != "0" else "1")
            await fill(pilot, id_number=typo)
            assert "校验位不符" in text(app.screen.query_one("#e-id_number"))
            app.screen.query_one("#f-id_number", Input).value = ""
            await fill(pilot, id_number=LI)
            assert not app.screen.query_one("#e-id_number").display
            await pilot.press("enter")
            await until(pilot, lambda: app.state.get("phase") == "measuring", what="the look-up")
            assert "李*" in shown(app, "#detail") and "人工查询" in shown(app, "#detail")
            # the hand-held gun: a manual temperature
            await pilot.press("t")
            await fill(pilot, body_c="36.5")
            await pilot.press("enter")
            await until(pilot, lambda: "放行" in shown(app, "#headline"), what="the looked-up admit")
            assert app.main.query_one("#temp", Digits).value == "36.5"  # in large digits
    run(go())


def test_register_a_visitor_and_a_fever_retest(gate):
    async def go():
        app = GateConsole(gate.sock, "zh")
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: ready(app), what="the connection")
            # a resident without a phone found by name within the household, then cancelled
            await pilot.press("c")
            await fill(pilot, name="李华", household="h1")
            await pilot.press("enter")
            await until(pilot, lambda: app.screen.query("#found") and "李*" in cells(app.screen.query_one("#found")),
                        what="the names found")
            assert "李*" in cells(app.screen.query_one("#found")) and "h1" in cells(app.screen.query_one("#found"))
            await pilot.press("enter")
            await until(pilot, lambda: app.state.get("phase") == "measuring", what="the look-up by name")
            assert "李*" in shown(app, "#detail")
            # 问: she says she has a cough; the guard toggles it and sends, then the gun reads normal
            await pilot.press("w")
            await pilot.pause()
            await pilot.press("1")
            assert "有发热、咳嗽等症状：是" in text(app.screen.query_one("#answers"))
            await pilot.press("enter")
            await until(pilot, lambda: (app.state.get("subject") or {}).get("answered"), what="the answers")
            await pilot.press("t")
            await fill(pilot, body_c="36.6")
            await pilot.press("enter")
            await until(pilot, lambda: app.state.get("phase") == "decided", what="the decision")
            assert "有发热、咳嗽等症状" in shown(app, "#reason") and "不予放行" in shown(app, "#headline")
            await until(pilot, lambda: app.state.get("phase") == "waiting", what="the next person")

            await pilot.press("d", "1")
            assert "访客登记" in text(app.screen.query_one("#title"))
            await fill(pilot, phone="1391234")
            assert "手机号" in text(app.screen.query_one("#e-phone"))  # said at once, in Chinese
            app.screen.query_one("#f-phone", Input).value = ""
            await fill(pilot, name="刘洋", phone="13912345678", home_town="南京", visiting="h1",
                       reason="探亲", transport="步行")
            assert not app.screen.query_one("#e-phone").display
            await pilot.press("enter")
            await until(pilot, lambda: (app.state.get("subject") or {}).get("kind") == "visitor", what="registered")
            assert "刘*" in shown(app, "#detail") and "访客" in shown(app, "#detail")
            await pilot.press("x")  # the visitor walks away: the guard cancels
            await until(pilot, lambda: app.state.get("phase") == "waiting", what="cancelled")

            gate.show("王小明", WANG, forehead=HIGH_THEN)
            await until(pilot, lambda: app.state.get("phase") == "retest", what="the re-test")
            assert "请复测" in shown(app, "#headline") and "首次偏高" in shown(app, "#temp-note")
            gate.daemon.emulator.values = [(AMBIENT, AMBIENT)]  # steps aside to rest
            await pilot.press("t")
            await fill(pilot, body_c="36.4")
            await pilot.press("enter")
            await until(pilot, lambda: "放行" in shown(app, "#headline"), what="admitted after the re-test")
            assert "36.4" in shown(app, "#temp-note") and "复测" in shown(app, "#temp-note")
    run(go())


def test_an_alarm_stays_until_acknowledged_then_override_and_hand_over(gate):
    async def go():
        app = GateConsole(gate.sock, "zh")
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: ready(app), what="the connection")
            await start_shift(pilot)
            gate.show("张伟", "110105197707073456", colour="red")
            await until(pilot, lambda: app.main.query_one(AlarmBanner).display, what="the banner")
            banner = text(app.main.query_one(AlarmBanner))
            assert "立即上报" in banner and "红码" in banner and "报警" not in banner
            assert "不予放行" in shown(app, "#headline")
            await pilot.pause(1.0)
            assert app.main.query_one(AlarmBanner).display  # it stays
            await pilot.press("a")
            await until(pilot, lambda: not app.main.query_one(AlarmBanner).display, what="acknowledged")

            # the guard lets the refused person through: a reason, then y to confirm
            await pilot.press("o")
            await pilot.pause()
            await pilot.press("enter")
            await until(pilot, lambda: "请填写理由" in text(app.screen.query_one("#message")), what="reason needed")
            await fill(pilot, reason="120 急救人员")
            await pilot.press("enter")
            await until(pilot, lambda: "按 y 确认" in text(app.screen.query_one("#message")), what="confirm")
            await pilot.press("y")
            await until(pilot, lambda: (app.state.get("last") or {}).get("overridden_action") == "refuse",
                        what="the override")
            assert "放行" in shown(app, "#headline") and "人工放行" in shown(app, "#reason")
            await until(pilot, lambda: app.main.query_one(AlarmBanner).display, what="the override's report")
            await pilot.press("a")
            await until(pilot, lambda: not app.main.query_one(AlarmBanner).display, what="acknowledged")

            await pilot.press("e")
            await pilot.pause()
            await pilot.press("y")
            await until(pilot, lambda: app.screen.query("#handover"), what="the handover")
            handover = text(app.screen.query_one("#handover"))
            assert "赵*" in handover and "不予放行1人次" in handover and "放行1人次" in handover
            assert "立即上报2起" in handover
            await pilot.press("enter")
            await until(pilot, lambda: "无人上岗" in text(app.main.query_one(StatusLine)), what="shift ended")
    run(go())


def test_the_console_survives_the_gate_restarting(gate):
    async def go():
        app = GateConsole(gate.sock, "en")
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: ready(app), what="the connection")
            assert "Waiting for the next person" in shown(app, "#headline")
            gate.stop()
            await until(pilot, lambda: "reconnecting" in text(app.main.query_one(StatusLine)), what="reconnecting")
            await pilot.press("m")  # a key pressed while the gate is away is answered, not a crash
            await pilot.pause(0.3)
            gate.start()
            await until(pilot, lambda: ready(app) and "reconnecting" not in text(app.main.query_one(StatusLine)),
                        timeout=30, what="reconnected")
            gate.show("王小明", WANG)
            await until(pilot, lambda: "Admit" in shown(app, "#headline"), what="the admit after the restart")
            assert "Please go in" in shown(app, "#headline")
    run(go())


def test_without_a_gate_the_console_says_it_is_reconnecting(tmp_path):
    async def go():
        app = GateConsole(str(tmp_path / "none.sock"), "zh")
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: "正在重新连接" in text(app.main.query_one(StatusLine)), what="reconnecting")
            await pilot.press("c")
            await fill(pilot, id_number=WANG)
            await pilot.press("enter")
            await until(pilot, lambda: "正在重新连接" in text(app.screen.query_one("#message")),
                        what="the form's answer")
    run(go())


def test_mask_refused_emergency_today_and_the_report(gate):
    """The keys a shift needs beyond the first tests: mask, refuses the check (y to confirm),
    emergency exit, a countdown while the gate waits, today's figures and the report preview."""
    async def go():
        app = GateConsole(gate.sock, "zh")
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: ready(app), what="the connection")
            await start_shift(pilot)
            # a look-up waits for a temperature: the panel counts down the gate's deadline
            await pilot.press("c")
            await fill(pilot, id_number=LI)
            await pilot.press("enter")
            await until(pilot, lambda: "还剩" in shown(app, "#detail"), what="the countdown")
            first = int(shown(app, "#detail").split("还剩")[1].split("秒")[0])
            await until(pilot, lambda: int(shown(app, "#detail").split("还剩")[1].split("秒")[0]) < first,
                        what="the countdown ticking")
            await pilot.press("m")
            await until(pilot, lambda: "已戴口罩" in shown(app, "#detail"), what="the mask")
            # she will not be measured: r, then y
            await pilot.press("r")
            await pilot.pause()
            await pilot.press("y")
            await until(pilot, lambda: (app.state.get("last") or {}).get("reasons", [""])[0] == "check_refused",
                        what="refused")
            assert "不予放行" in shown(app, "#headline") and "拒不配合查验" in shown(app, "#reason")
            await until(pilot, lambda: "拒不配合查验" in text(app.main.query_one(AlarmBanner)), what="reported")
            await until(pilot, lambda: app.state.get("phase") == "waiting", timeout=30, what="the next person")
            # an emergency: 1 (the fever clinic), then who it is; let out, recorded and reported
            await pilot.press("j")
            await pilot.pause()
            assert "送发热门诊" in text(app.screen.query_one("#choices"))
            await pilot.press("1")
            assert "送发热门诊（已选）" in text(app.screen.query_one("#choices"))
            await fill(pilot, id_number=LI)
            await pilot.press("enter")
            await until(pilot, lambda: (app.state.get("last") or {}).get("reasons") == ["emergency_exit"],
                        what="the emergency exit")
            assert "放行" in shown(app, "#headline") and "紧急外出" in shown(app, "#reason")
            assert "李*" in shown(app, "#detail")  # the entry says who went out
            # today's figures and the report, in the guard's words, counted from the gate's store
            await pilot.press("f")
            await until(pilot, lambda: "共2人次" in text(app.screen.query_one("#figures")), what="today")
            figures = text(app.screen.query_one("#figures"))
            assert "放行1人次" in figures and "不予放行1人次" in figures and "立即上报2起" in figures
            await pilot.press("escape")
            await pilot.press("b")
            await until(pilot, lambda: "拒不配合查验" in text(app.screen.query_one("#refusals")), what="report")
            report = cells(app.screen.query_one("#lines"))
            assert "紧急外出（就医等）1人次" in report and "红码0人次" in report and "外出查验1人次" in report
            assert "今日日报预览" in text(app.screen.query_one("#title"))
            await pilot.press("escape")
    run(go())


def test_an_english_console_on_a_chinese_gate_says_everything_in_english(gate):
    """The gate words its refusals and alarms in its own language (Chinese); the console
    translates them by their codes and kinds."""
    async def go():
        app = GateConsole(gate.sock, "en")
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: ready(app), what="the connection")
            await pilot.press("s")
            await fill(pilot, guard_id="g7", pin="1111")
            await pilot.press("enter")
            await until(pilot, lambda: "wrong PIN" in text(app.screen.query_one("#message")), what="wrong PIN")
            app.screen.query_one("#f-pin", Input).value = ""
            await fill(pilot, pin=PIN, fever="yes")  # the guard's own health check: a fever
            await pilot.press("enter")
            await until(pilot, lambda: "may not work" in text(app.screen.query_one("#message")), what="unfit")
            await pilot.press("escape")
            gate.show("张伟", "110105197707073456", colour="red")
            await until(pilot, lambda: app.main.query_one(AlarmBanner).display, what="the banner")
            stored = gate.daemon.reader.alarms()[0]["message"]
            assert "红码" in stored  # the gate's language
            banner = text(app.main.query_one(AlarmBanner))
            assert "Red code: report at once" in banner and "红码" not in banner, banner
            await pilot.press("t")  # nobody is being measured now: the gate refuses, by its code
            await fill(pilot, body_c="36.5")
            await pilot.press("enter")
            await until(pilot, lambda: "Nobody is being measured now" in text(app.screen.query_one("#message")),
                        what="the refusal")
    run(go())


def test_two_consoles_on_one_gate_see_the_same_state(gate):
    """The Pi's own screen and an SSH session: what one guard does, the other sees."""
    async def go():
        first, second = GateConsole(gate.sock, "zh"), GateConsole(gate.sock, "en")
        async with first.run_test(size=(80, 24)) as one, second.run_test(size=(80, 24)) as two:
            await until(one, lambda: ready(first) and ready(second), what="both connected")
            await start_shift(one)
            await until(two, lambda: "赵*" in text(second.main.query_one(StatusLine)), what="the shift, seen")
            await two.press("c")
            await fill(two, id_number=LI)
            await two.press("enter")
            await until(one, lambda: "李*" in shown(first, "#detail"), what="the look-up, seen")
            assert first.state.get("phase") == second.state.get("phase") == "measuring"
            await one.press("t")
            await fill(one, body_c="36.6")
            await one.press("enter")
            await until(two, lambda: "Admit" in shown(second, "#headline"), what="the admit, seen")
            assert "放行" in shown(first, "#headline")
            await until(two, lambda: "李*" in text(second.main.query_one(RecentEntries)), what="recent, seen")
            await one.press("ctrl+q")  # one console quits: the other and the gate go on
        assert gate.daemon is not None and gate.daemon.checkpoint.phase in ("decided", "waiting")
    run(go())


def test_a_relay_fault_and_a_resident_s_status_on_the_console(gate):
    """The relay does not answer: the gate records the admit, says so on every console's
    banner until acknowledged; a looked-up resident shows her household and pass."""
    async def go():
        app = GateConsole(gate.sock, "zh")
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: ready(app), what="the connection")
            await start_shift(pilot)
            await pilot.press("c")
            await fill(pilot, id_number=WANG)
            await pilot.press("enter")
            await until(pilot, lambda: "住户 3-2-501" in shown(app, "#detail"), what="the household")
            assert "无出入证" in shown(app, "#detail")  # the lists hold no pass for him
            gate.daemon.relay.close()  # the relay's pin is gone
            await pilot.press("t")
            await fill(pilot, body_c="36.6")
            await pilot.press("enter")
            await until(pilot, lambda: "开闸继电器无响应" in text(app.main.query_one(AlarmBanner)), what="the fault")
            assert "放行" in shown(app, "#headline")  # the entry stands: the guard opens by hand
            await pilot.press("a")
            await until(pilot, lambda: not app.main.query_one(AlarmBanner).display, what="acknowledged")
    run(go())


def test_register_a_courier_a_vehicle_and_a_returnee(gate):
    """The other forms, each field checked as it is typed (a plate's format, an ID number)."""
    async def go():
        app = GateConsole(gate.sock, "zh")
        async with app.run_test(size=(100, 40)) as pilot:
            await until(pilot, lambda: ready(app), what="the connection")
            await pilot.press("d", "2")
            assert "快递外卖登记" in text(app.screen.query_one("#title"))
            await fill(pilot, company="顺丰速运", phone="13700001111", drop_off="东门快递柜")
            await pilot.press("enter")
            await until(pilot, lambda: (app.state.get("subject") or {}).get("kind") == "courier", what="courier")
            assert "快递外卖" in shown(app, "#detail")
            await pilot.press("x")
            await until(pilot, lambda: app.state.get("phase") == "waiting", what="cancelled")

            await pilot.press("d", "4")
            assert "车辆登记" in text(app.screen.query_one("#title"))
            await fill(pilot, plate="苏A1")
            assert "车牌" in text(app.screen.query_one("#e-plate"))  # said as it is typed
            app.screen.query_one("#f-plate", Input).value = ""
            await fill(pilot, plate="苏A12345", passengers="2", boot_checked="是", purpose="送货")
            assert not app.screen.query_one("#e-plate").display
            await pilot.press("enter")
            await until(pilot, lambda: app.state.get("phase") in ("measuring", "decided"), what="the vehicle")
            await pilot.press("x")
            await until(pilot, lambda: app.state.get("phase") == "waiting", timeout=30, what="the next one")

            await pilot.press("d", "3")
            assert "首返人员登记" in text(app.screen.query_one("#title"))
            returnee = valid_id("32010219950303678")
            await fill(pilot, id_number=returnee[:-1] + ("0" if returnee[-1] != "0" else "1"))
            assert "校验位" in text(app.screen.query_one("#e-id_number"))
            app.screen.query_one("#f-id_number", Input).value = ""
            await fill(pilot, name="孙丽", id_number=returnee, phone="13700002222", building="3", unit="2",
                       room="501", from_county="320102", from_place="南京市玄武区",
                       arrival_date=dt.date.today().isoformat(), transport="火车")
            await pilot.press("enter")
            await until(pilot, lambda: "孙*" in shown(app, "#detail"), what="the returnee")
            assert app.state.get("subject", {}).get("source") == "register"
    run(go())
