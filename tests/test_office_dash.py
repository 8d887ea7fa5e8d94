"""The township office's pages over real HTTP on 127.0.0.1 (SQLite): what an officer reads
on them and what their forms change, with real gates syncing (SyncClient on real stores).
The browser test (tests/test_office_browser.py) drives the same pages in Chromium."""
from __future__ import annotations

import datetime as dt
import random
import re
import time
from contextlib import closing

import httpx
import pytest

from kiosk import clock
from kiosk.store import Store
from sync.admin import Admin
from sync.client import SyncClient, SyncConfig, SyncError, enroll
from sync.server import Settings, accounts, reports
from sync.testing import ServerThread, batch_body, fill, sample_entry, signed_request

TOKEN = "test-admin-token-abcdef"
HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "township.db")
    cluster = request.getfixturevalue("pg_cluster")
    return cluster.new_database(f"t{random.getrandbits(48):x}")


@pytest.fixture
def server(db_url):
    with ServerThread(Settings(db_url=db_url, admin_token=TOKEN)) as srv:
        yield srv


@pytest.fixture
def admin(server):
    a = Admin(server.url, TOKEN)
    yield a
    a.close()


@pytest.fixture
def office(server):
    """The pages as the admin token sees them (scripts and first set-up)."""
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        yield http


def gate(server, admin, tmp_path, community: str, name: str) -> SyncClient:
    creds = enroll(server.url, admin.enrollment(community, name)["token"])
    return SyncClient(Store.open(tmp_path / f"{community}.{name}.db"), SyncConfig(creds))


def cells(html: str, row_attr: str) -> list[str]:
    """The text of each cell of the row marked `row_attr` (e.g. data-community="x")."""
    row = re.search(rf"<tr [^>]*{re.escape(row_attr)}[^>]*>(.*?)</tr>", html, re.S)
    assert row, f"no row {row_attr}"
    found = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", c)).strip() for c in found]


def visible_text(html: str) -> str:
    body = re.sub(r"<script.*?</script>|<style.*?</style>", "", html, flags=re.S)
    body = re.sub(r"<[^>]+>", " ", body)
    return re.sub(r"\s+", " ", body)


def test_the_communities_page_in_the_offices_words(server, admin, office, tmp_path):
    east = gate(server, admin, tmp_path, "river-garden", "east")
    admin.set_policy("river-garden", risk_level="medium")
    admin.set_policy("pine-court", risk_level="high")
    fill(east.store, east.device_id, 5, random.Random(1))
    east.run_once()  # uploads and fetches the policy

    page = office.get("/office/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    river = cells(page.text, 'data-community="river-garden"')
    assert river[0] == "river-garden" and river[1] == "中风险" and river[3] == "1"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", river[2])  # last sync, local time
    pine = cells(page.text, 'data-community="pine-court"')
    assert pine[1] == "高风险" and pine[2] == "从未" and pine[3] == "0"
    # Chinese by default, with no English words inside it (community names are data)
    text = visible_text(page.text)
    for slug in ("river-garden", "pine-court", "English", "admin-token"):
        text = text.replace(slug, "")
    assert HAN.search(text) and not re.search(r"[A-Za-z]{2,}", text), text
    assert "报警" not in page.text

    english = office.get("/office/?lang=en")
    assert cells(english.text, 'data-community="river-garden"')[1] == "Medium risk"
    assert english.cookies.get("gate_lang") == "en"
    assert cells(office.get("/office/").text, 'data-community="river-garden"')[1] == "Medium risk"  # kept


def test_a_risk_level_change_shows_when_each_gate_picks_it_up(server, admin, office, tmp_path):
    east, west = (gate(server, admin, tmp_path, "river-garden", g) for g in ("east", "west"))
    admin.set_policy("river-garden", risk_level="low", fever_c=37.5)
    east.run_once()
    west.run_once()

    r = office.post("/office/communities/river-garden/risk", data={"risk_level": "high"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("/office/communities/river-garden?done=risk_changed")
    page = office.get("/office/communities/river-garden").text
    assert "高风险" in page and cells(page, 'data-device="river-garden.east"')[2] == "尚未更新"
    assert cells(office.get("/office/").text, 'data-community="river-garden"')[1] == "高风险（2个卡口尚未更新）"

    east.run_once()
    page = office.get("/office/communities/river-garden").text
    assert cells(page, 'data-device="river-garden.east"')[2].startswith("卡口已更新（")
    assert cells(page, 'data-device="river-garden.west"')[2] == "尚未更新"
    assert east.store.policy()["risk_level"] == "high"  # the gate holds it, and the other keys stayed
    assert east.store.policy()["fever_c"] == 37.5
    west.run_once()
    page = office.get("/office/communities/river-garden").text
    assert cells(page, 'data-device="river-garden.west"')[2].startswith("卡口已更新（")

    bad = office.post("/office/communities/river-garden/risk", data={"risk_level": "extreme"})
    assert bad.status_code == 422 and "填写有误" in bad.text and "<html" in bad.text


def test_the_gates_page_and_revoke(server, admin, office, tmp_path):
    east = gate(server, admin, tmp_path, "river-garden", "east")
    fill(east.store, east.device_id, 5, random.Random(2))
    east.run_once()
    row = cells(office.get("/office/gates").text, 'data-device="river-garden.east"')
    assert row[3] == "在用" and re.fullmatch(r"[+-]\d+\.\d 秒", row[5])
    assert re.fullmatch(r"\d+\.\d+.*|unknown", row[6])  # the software version the gate names

    r = office.post("/office/gates/river-garden.east/revoke", data={}, follow_redirects=True)
    assert r.status_code == 200 and "设备已停用" in r.text
    assert cells(r.text, 'data-device="river-garden.east"')[3] == "已停用"
    with pytest.raises(SyncError, match="device_revoked"):
        east.run_once()
    assert office.post("/office/gates/nowhere/revoke", data={}).status_code == 404


def test_an_enrollment_token_made_on_the_page_enrolls_a_gate_once(server, office):
    r = office.post("/office/enrollments", data={"community": "lotus-garden", "gate": "north", "ttl_hours": "2"})
    assert r.status_code == 200
    token = re.search(r'<code id="token">([^<]+)</code>', r.text).group(1)
    creds = enroll(server.url, token)
    assert (creds.device_id, creds.community) == ("lotus-garden.north", "lotus-garden")
    listed = office.get("/office/enrollments").text
    assert token not in listed and "lotus-garden.north" in listed  # the token is shown once only
    with pytest.raises(Exception, match="invalid_enrollment_token"):
        enroll(server.url, token)
    bad = office.post("/office/enrollments", data={"community": "bad.name", "gate": "x"})
    assert bad.status_code == 422 and "填写有误" in bad.text


def test_pages_need_someone_signed_in(server):
    r = httpx.get(server.url + "/office/gates", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/office/login?next=%2Foffice%2Fgates"
    r = httpx.post(server.url + "/office/gates/x/revoke", data={}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/office/login")


# -- signed-in staff: sessions, CSRF, roles, the audit log, immediate reports ---------------------
PASSWORD = "correct horse battery"


def staff(server, username: str, role: str, community: str | None = None) -> httpx.Client:
    """A browser-like client signed in through the login form (the cookie, no token)."""
    accounts.add_user(server.app.state.server.db, username, PASSWORD, role, community)
    http = httpx.Client(base_url=server.url)
    r = http.post("/office/login", data={"username": username, "password": PASSWORD, "next": "/office/gates"})
    assert r.status_code == 303 and r.headers["location"] == "/office/gates", r.text
    assert "gate_session" in http.cookies
    return http


def csrf(http: httpx.Client, path: str = "/office/") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', http.get(path).text).group(1)


def test_sign_in_with_the_form_and_out_again(server):
    accounts.add_user(server.app.state.server.db, "li.ming", PASSWORD, "admin")
    with httpx.Client(base_url=server.url) as http:
        page = http.get("/office/", follow_redirects=True)
        assert 'id="login"' in page.text and "登录" in page.text
        wrong = http.post("/office/login", data={"username": "li.ming", "password": "not the password"})
        assert wrong.status_code == 401 and "账号或密码不正确" in wrong.text and "gate_session" not in http.cookies
        r = http.post("/office/login", data={"username": "li.ming", "password": PASSWORD,
                                             "next": "https://elsewhere.example/"})
        assert r.status_code == 303 and r.headers["location"] == "/office/"  # never sent off-site
        assert 'id="who">li.ming<' in http.get("/office/").text

        assert http.post("/office/logout", data={}).status_code == 403  # no CSRF token: refused
        r = http.post("/office/logout", data={"csrf_token": csrf(http)}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/office/login"
        assert http.get("/office/", follow_redirects=False).status_code == 303  # the session is over


def test_every_form_needs_the_sessions_csrf_token(server, admin):
    admin.set_policy("river-garden", risk_level="low")
    with closing(staff(server, "li.ming", "admin")) as http:
        for form in ({}, {"csrf_token": "forged"}):
            r = http.post("/office/communities/river-garden/risk", data={**form, "risk_level": "high"})
            assert r.status_code == 403 and "页面已过期" in r.text
        assert "低风险" in http.get("/office/communities/river-garden").text
        r = http.post("/office/communities/river-garden/risk", data={"csrf_token": csrf(http), "risk_level": "high"})
        assert r.status_code == 303
        audit_page = http.get("/office/audit").text
        newest = re.search(r'data-audit="(\d+)"', audit_page).group(1)
        row = cells(audit_page, f'data-audit="{newest}"')
        assert row[1:4] == ["li.ming", "调整风险等级", "river-garden"], row
        assert "原为：低风险" in row[4] and "改为：高风险" in row[4] and "途径：网页" in row[4], row
        words = visible_text(audit_page)
        for data in ("li.ming", "river-garden", "English"):
            words = words.replace(data, "")
        assert not re.search(r"[A-Za-z]{2,}", words), words  # the audit log in words too


def test_roles_on_the_pages(server, admin, tmp_path):
    for community, g in (("river-garden", "east"), ("pine-court", "north")):
        admin.set_policy(community, risk_level="low")
        gate(server, admin, tmp_path, community, g)
    mine, ro = staff(server, "wang.fang", "community", "river-garden"), staff(server, "zhao.lei", "readonly")
    with closing(mine), closing(ro):
        listed = mine.get("/office/").text
        assert 'data-community="river-garden"' in listed and 'data-community="pine-court"' not in listed
        assert mine.get("/office/communities/pine-court").status_code == 403
        assert "pine-court.north" not in mine.get("/office/gates").text
        token = csrf(mine)
        assert mine.post("/office/gates/pine-court.north/revoke", data={"csrf_token": token}).status_code == 404
        r = mine.post("/office/communities/river-garden/risk", data={"csrf_token": token, "risk_level": "high"})
        assert r.status_code == 403 and "无权进行此操作" in r.text  # the township sets risk levels
        r = mine.post("/office/enrollments", data={"csrf_token": token, "community": "pine-court", "gate": "x"})
        assert r.status_code == 403
        assert mine.post("/office/enrollments", data={"csrf_token": token, "community": "river-garden",
                                                      "gate": "west"}).status_code == 200
        assert mine.get("/office/users").status_code == 403

        assert 'data-community="pine-court"' in ro.get("/office/").text  # read-only sees every community...
        token = csrf(ro)
        for path, form in (("/office/communities/pine-court/risk", {"risk_level": "high"}),
                           ("/office/gates/pine-court.north/revoke", {}),
                           ("/office/enrollments", {"community": "pine-court", "gate": "y"})):
            assert ro.post(path, data={"csrf_token": token, **form}).status_code == 403, path  # ...changes nothing
        assert 'name="risk_level"' not in ro.get("/office/communities/pine-court").text
        assert "revoke" not in ro.get("/office/gates").text
    assert [d["status"] for d in admin.devices()] == ["active", "active"]


def test_immediate_reports_are_listed_until_acknowledged(server, admin, tmp_path):
    east = gate(server, admin, tmp_path, "river-garden", "east")
    fill(east.store, east.device_id, 3, random.Random(3), report="none")
    fill(east.store, east.device_id, 2, random.Random(4), report="immediate", reasons=["fever_confirmed"])
    east.run_once()
    with closing(staff(server, "wang.fang", "community", "river-garden")) as http:
        assert cells(http.get("/office/").text, 'data-community="river-garden"')[6] == "2"
        page = http.get("/office/alarms").text
        ids = re.findall(r'data-alarm="(\d+)"', page)
        assert len(ids) == 2 and "张*三" in page and "复测仍发热" in page and "报警" not in page
        assert "带至临时留观点，立即上报" in page  # the action in the office's words
        row = http.get(f"/office/alarms/row/{ids[0]}")
        assert row.status_code == 200 and row.text.strip().startswith(f'<tr data-alarm="{ids[0]}"')

        r = http.post(f"/office/alarms/{ids[0]}/acknowledge", data={"csrf_token": csrf(http)})
        assert r.status_code == 303
        left = http.get("/office/alarms").text
        assert re.findall(r'data-alarm="(\d+)"', left) == [ids[1]]
        assert cells(http.get("/office/").text, 'data-community="river-garden"')[6] == "1"
        assert "确认立即上报已处理" in http.get("/office/audit").text
    acked = [a for a in admin.alarms()["alarms"] if str(a["id"]) == ids[0]]
    assert acked[0]["acknowledged_by"] == "wang.fang"


def test_a_report_cannot_be_sent_before_the_day_is_over_and_says_why(server, admin, tmp_path):
    east = gate(server, admin, tmp_path, "river-garden", "east")
    fill(east.store, east.device_id, 2, random.Random(7), report="none")
    east.run_once()
    with closing(staff(server, "wang.fang", "community", "river-garden")) as http:
        page = http.get("/office/communities/river-garden").text  # today's report
        assert cells(page, 'data-figure="admitted"')[:2] == ["放行", "2人次"]
        assert 'id="report-status">待报<' in page and 'id="download-xlsx"' in page
        words = visible_text(page)
        for data in ("river-garden", "east", "wang.fang", "English"):  # names are data; the link names the other
            words = words.replace(data, "")
        assert not re.search(r"[A-Za-z]{2,}", words), words  # no English inside the Chinese page
        r = http.post("/office/communities/river-garden/submit", data={"csrf_token": csrf(http), "leader": "王主任"})
        assert r.status_code == 409 and "当日尚未结束，请于次日上报" in r.text
        assert not re.search(r"[A-Za-z]{3,}", visible_text(r.text).replace("English", "").replace("wang.fang", ""))
        missing = http.get("/office/no/such/page")
        assert missing.status_code == 404 and "未找到" in missing.text
        script = http.get("/office/static/office.js")
        assert script.status_code == 200 and "EventSource" in script.text


def test_the_administrator_disables_an_account_and_its_session_ends(server):
    with closing(staff(server, "wang.fang", "community", "river-garden")) as theirs, \
            closing(staff(server, "li.ming", "admin")) as http:
        assert theirs.get("/office/", follow_redirects=False).status_code == 200
        listed = http.get("/office/users").text
        assert cells(listed, 'data-user="wang.fang"')[:4] == ["wang.fang", "社区工作人员", "river-garden", "在用"]
        assert "/office/users/li.ming/disable" not in listed  # never oneself
        r = http.post("/office/users/wang.fang/disable", data={"csrf_token": csrf(http)})
        assert r.status_code == 303
        assert cells(http.get("/office/users").text, 'data-user="wang.fang"')[3] == "已停用"
        assert theirs.get("/office/", follow_redirects=False).status_code == 303  # signed out at once
        assert "停用账号" in http.get("/office/audit").text
        r = http.post("/office/users/wang.fang/enable", data={"csrf_token": csrf(http)})
        assert r.status_code == 303 and cells(http.get("/office/users").text, 'data-user="wang.fang"')[3] == "在用"


def test_an_expired_session_goes_back_to_the_login_form(tmp_path):
    settings = Settings(db_url=str(tmp_path / "township.db"), admin_token=TOKEN, session_idle_s=5.0)
    with ServerThread(settings) as srv, closing(staff(srv, "li.ming", "admin")) as http:
        signed_in = time.monotonic()
        assert http.get("/office/gates", follow_redirects=False).status_code == 200
        time.sleep(max(0.0, signed_in + 5.5 - time.monotonic()))  # the idle limit, waited out
        r = http.get("/office/gates", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/office/login?next=%2Foffice%2Fgates"
        r = http.post("/office/enrollments", data={"csrf_token": "x", "community": "a", "gate": "b"},
                      follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/office/login")


def test_yesterdays_report_status_on_the_communities_page(server, admin, tmp_path):
    """A gate that has not synced past yesterday makes its community 未报; a community
    whose gates have, and whose staff submitted, shows 已报 (or 迟报 after the deadline)."""
    tz = server.app.state.server.settings.report_tz
    yesterday = reports.today(tz) - dt.timedelta(days=1)
    start, end = reports.bounds(yesterday, tz)
    for community, times in (("river-garden", (start + dt.timedelta(hours=9), clock.utc_now())),
                             ("pine-court", (start + dt.timedelta(hours=9),))):  # silent since yesterday
        creds = enroll(server.url, admin.enrollment(community, "east")["token"])
        entries = [sample_entry(random.Random(i), report="none", device_id=creds.device_id, seq=i + 1,
                                created_utc=clock.iso(at), monotonic_ns=i + 1) for i, at in enumerate(times)]
        r = signed_request(server.url, creds, "POST", "/v1/entries", batch_body(entries), gzip_body=True)
        assert r.status_code == 200, r.text
    with closing(staff(server, "li.ming", "admin")) as http:
        r = http.post("/office/communities/river-garden/submit",
                      data={"csrf_token": csrf(http), "day": yesterday.isoformat(), "leader": "王主任"})
        assert r.status_code == 303
        listed = http.get("/office/").text
        river = cells(listed, 'data-community="river-garden"')[5]
        assert river in ("已报", "迟报") and river == reports.STATUS_TEXT[
            reports.statuses(server.app.state.server.db, yesterday, tz)["river-garden"]]["zh"]
        assert cells(listed, 'data-community="pine-court"')[5] == "未报"  # missing, never a zero
        r = http.post("/office/communities/pine-court/submit",
                      data={"csrf_token": csrf(http), "day": yesterday.isoformat(), "leader": "李主任"})
        assert r.status_code == 409 and "有卡口尚未同步完当日记录" in r.text
