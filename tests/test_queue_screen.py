"""The screen facing the queue, in a real headless Chromium on a gate running on simulated devices.

What a resident two metres away sees: the colour, 请通行 / 请复测 / 暂不能进入, the reason,
the temperature and the next step; and a screen that says to wait while it has lost the
gate, then comes back by itself. Needs Debian's chromium and chromium-driver (`make test`
installs them); nothing here downloads a browser.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import time

import httpx

from kiosk import clock, config, reasons
from kiosk.api import ApiServer, create_app, outcome_words, words_for
from kiosk.codes import issue
from kiosk.daemon import Daemon, Options
from kiosk.people import person_ref

AMBIENT = 12.0  # a cold morning: the module's body estimate is object - 0.1 * ambient + 4.5
NORMAL, HIGH = 33.3, 34.3  # object temperatures: 36.6 and 37.6 °C body estimates
NOBODY = (20.0, 20.0)  # the module sees the wall: no plausible body temperature
WANG, ZHANG, ZHAO = "110105199001011234", "110105197707073456", "110105199209094567"


def code(signer, name: str, id_number: str, colour: str = "green") -> str:
    return issue.health_code(signer, person_ref=person_ref(id_number, "salt"), name=name, colour=colour,
                             issued_at=clock.utc_now() - dt.timedelta(seconds=20))


SCREEN = """const t = (id) => document.getElementById(id).textContent;
return {colour: document.body.className, headline: t("headline"), temperature: t("temperature"),
        reason: t("reason"), next: t("next"), offline: !document.getElementById("offline").hidden,
        text: document.body.innerText};"""


def screen_shows(driver, timeout: float = 30.0, events: list | None = None, **want) -> dict:
    """Poll what the page shows until every wanted field matches (a str equal, a compiled
    regex found); on failure, say what the checkpoint did last (`events`, when given)."""
    deadline, seen = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        seen = driver.execute_script(SCREEN)
        if all(v.search(seen[k]) if isinstance(v, re.Pattern) else seen[k] == v for k, v in want.items()):
            return seen
        time.sleep(0.05)
    last = "".join(f"\n  {e}" for e in (events or [])[-40:])
    raise AssertionError(f"the screen never showed {want}; it shows {seen}; the checkpoint's last events:{last}")


def test_the_queue_screen_in_chromium(tmp_path, signer, browser):
    cfg = config.load(env={})
    cfg["gate"].update(device_id="east-1", community="lotus-garden", lang="zh")
    cfg["checkpoint"]["outcome_s"] = 60.0  # the outcome stays until the next person: nothing to race
    daemon = Daemon(cfg, Options(db=str(tmp_path / "g.db"), camera="sim", port="sim",
                                 trust=str(tmp_path / "trust.json"), api_socket=str(tmp_path / "api.sock"),
                                 api_tcp="127.0.0.1:0"))
    daemon.start()
    events: list[dict] = []
    daemon.checkpoint.subscribe(events.append)
    restarted: ApiServer | None = None
    try:
        browser.get(daemon.api.url + "/")
        screen_shows(browser, events=events, colour="idle", headline="请出示健康码", offline=False)

        # a resident with a green code and a normal temperature
        daemon.emulator.values = [(NORMAL, AMBIENT)]
        daemon.camera_sim.show(code(signer, "王小明", WANG), seconds=3.0)
        seen = screen_shows(browser, events=events, colour="green", headline="请通行")
        body_c = daemon.store.entries()[-1].readings[-1]["body_c"]
        assert seen["temperature"] == f"体温 {body_c:.1f}℃" and 36.0 < body_c < 37.3
        assert seen["reason"] == "健康码绿码，体温正常" and seen["next"] == "请戴好口罩通行"
        # the screen faces the whole queue: no name, masked or not, and never an ID number
        assert "王" not in seen["text"] and "*" not in seen["text"] and not re.search(r"\d{6}", seen["text"])
        assert not re.search(r"[A-Za-z]", seen["text"])  # no English inside a Chinese screen
        browser.save_screenshot(str(tmp_path / "admit.png"))

        # a red code: refused at once, with the reason and what to do
        daemon.camera_sim.show(code(signer, "张伟", ZHANG, colour="red"), seconds=3.0)
        seen = screen_shows(browser, events=events, colour="red", headline="暂不能进入")
        assert seen["reason"] == "健康码为红码" and "稍候" in seen["next"] and seen["temperature"] == ""
        browser.save_screenshot(str(tmp_path / "refuse.png"))

        # a first high reading asks for 复测 and shows it; a normal second one lets the person in.
        # The person steps aside to rest the moment 复测 is asked (on the checkpoint's own thread:
        # a high reading after the re-test's gap would confirm the fever before a slow browser
        # had shown 请复测), and comes back once the screen has shown it.
        def rests(event: dict) -> None:
            if event["type"] == "state" and event["phase"] == "retest":
                daemon.emulator.values = [NOBODY]
        daemon.checkpoint.subscribe(rests)
        daemon.emulator.values = [(HIGH, AMBIENT)]
        daemon.camera_sim.show(code(signer, "赵敏", ZHAO), seconds=3.0)
        seen = screen_shows(browser, events=events, colour="yellow", headline="请复测")
        assert re.fullmatch(r"体温 37\.\d℃", seen["temperature"]) and float(seen["temperature"][3:7]) >= 37.3
        assert "偏高" in seen["reason"] and "休息" in seen["next"]
        browser.save_screenshot(str(tmp_path / "retest.png"))
        daemon.emulator.values = [(NORMAL, AMBIENT)]
        screen_shows(browser, events=events, colour="green", headline="请通行",
                     temperature=re.compile(r"^体温 36\.\d℃$"))

        # the gate's API goes away: the screen stops showing the last outcome and says it is connecting
        daemon.api.stop()
        seen = screen_shows(browser, events=events, colour="offline", offline=True, headline="请稍候")
        assert "正在连接" in seen["text"]
        browser.save_screenshot(str(tmp_path / "offline.png"))
        # ... and comes back by itself when the API is up again on the same address
        restarted = ApiServer(create_app(daemon.checkpoint, daemon.status, "zh", people=daemon.people,
                                         reader=daemon.reader), tcp=daemon.api.tcp).start()
        screen_shows(browser, events=events, offline=False, colour="green", headline="请通行")
        assert [e.action for e in daemon.store.entries()] == ["admit", "refuse", "admit"]
    finally:
        if restarted is not None:
            restarted.stop()
        daemon.stop()


def sse(response: httpx.Response, until: str) -> list[dict]:
    """The events of a stream up to and including the first of type `until`."""
    out: list[dict] = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            out.append(json.loads(line[6:]))
            if out[-1]["type"] == until:
                return out
    raise AssertionError(f"the stream ended before a {until} event: {out}")


def test_the_tcp_address_serves_the_screen_and_nothing_about_anyone(tmp_path, signer):
    cfg = config.load(env={})
    cfg["gate"].update(device_id="east-1", community="lotus-garden")
    sock = str(tmp_path / "api.sock")
    daemon = Daemon(cfg, Options(db=str(tmp_path / "g.db"), camera="sim", port="sim",
                                 trust=str(tmp_path / "trust.json"), api_socket=sock, api_tcp="127.0.0.1:0"))
    daemon.start()
    local = httpx.Client(transport=httpx.HTTPTransport(uds=sock), base_url="http://gate", timeout=30)
    tcp = httpx.Client(base_url=daemon.api.url, timeout=30)
    try:
        page = tcp.get("/").text
        # from the network: no command (an override would open the gate), no state, no names
        for method, path, body in (("POST", "/v1/commands/override", {"reason": "开门"}), ("GET", "/v1/state", None),
                                   ("GET", "/v1/alarms", None), ("GET", "/v1/people?name=王", None),
                                   ("GET", "/openapi.json", None)):
            r = tcp.request(method, path, json=body)
            assert r.status_code == 403 and r.json()["error"] == "screen_only", (path, r.text)
            assert r.headers["connection"] == "close"  # its body is never read
        assert local.get("/v1/state").status_code == 200  # the socket has it all
        daemon.emulator.values = [(NORMAL, AMBIENT)]
        with tcp.stream("GET", "/v1/events") as screen, local.stream("GET", "/v1/events") as console:
            daemon.camera_sim.show(code(signer, "王小明", WANG), seconds=3.0)
            seen_by_screen, seen_by_console = sse(screen, "decision"), sse(console, "decision")
    finally:
        tcp.close()
        local.close()
        daemon.stop()
    assert seen_by_console[-1]["masked_name"] == "王*明" and {"code", "reading"} <= {e["type"] for e in seen_by_console}
    assert {e["type"] for e in seen_by_screen} == {"hello", "state", "decision"}
    assert all(set(e) <= {"type", "at", "words"} for e in seen_by_screen)
    assert seen_by_screen[-1]["words"]["headline"] == "请通行"
    assert "王" not in json.dumps(seen_by_screen, ensure_ascii=False)
    assert "{{" not in page and page.count("<script") == 1 and len(page) < 8000
    assert not re.search(r"https?://|<link|@import|url\(|src=", page)  # no CDN, no font, no network
    assert 'lang="zh-CN"' in page and "请出示健康码" in page


def test_every_reason_has_queue_words_without_english_in_the_chinese():
    assert set(reasons.QUEUE_REASON_TEXT) == set(reasons.REASON_TEXT)
    assert set(reasons.QUEUE_NEXT_BY_REASON) <= set(reasons.REASON_TEXT)
    for table in (reasons.QUEUE_TEXT, reasons.NEXT_STEP_TEXT, reasons.QUEUE_REASON_TEXT,
                  reasons.QUEUE_NEXT_BY_REASON, reasons.QUEUE_LABEL_TEXT):
        for code_, words in table.items():
            assert not re.search(r"[A-Za-z]", words["zh"]), (code_, words["zh"])
            assert "报警" not in words["zh"] and words["en"], code_


def test_the_words_for_each_outcome():
    """A refusal names only what refuses, with the step that puts it right; an abandoned check
    just asks the next person for a code."""
    d = {"action": "refuse", "reasons": ["invalid_code"], "readings_c": [], "masked_name": "王*明"}
    w = outcome_words(d, "zh")
    assert (w["colour"], w["headline"], w["next"]) == ("red", "暂不能进入", "请刷新健康码后重新出示")
    assert "王" not in json.dumps(w, ensure_ascii=False)
    w = outcome_words({"action": "isolate", "reasons": ["fever_confirmed"], "readings_c": [37.8, 37.9]}, "zh")
    assert w["temperature_text"] == "体温 37.9℃" and "留观点" in w["next"]
    assert outcome_words({"action": "abandoned", "reasons": ["timeout_measuring"]}, "zh")["headline"] == "请出示健康码"
    w = outcome_words({"action": "admit", "reasons": ["all_checks_passed"], "readings_c": [36.4]}, "en")
    assert (w["headline"], w["temperature_text"]) == ("Please go in", "Temperature 36.4 °C")
    w = words_for({"phase": "retest", "subject": {"readings_c": [37.5]}, "last": None}, "zh")
    assert (w["colour"], w["headline"], w["temperature_text"]) == ("yellow", "请复测", "体温 37.5℃")
