"""The township office's pages in a real headless Chromium, against a township server on
127.0.0.1 with a real gate syncing to it: sign in, see an immediate report arrive without
reloading, acknowledge it, change a risk level and see the gate pick it up, download the
day's XLSX and read it back with openpyxl. Needs Debian's chromium and chromium-driver
(`make test` installs them); nothing here downloads a browser."""
from __future__ import annotations

import random
import time
from pathlib import Path

from kiosk.store import Store
from sync.admin import Admin
from sync.client import SyncClient, SyncConfig, enroll
from sync.server import Settings, accounts
from sync.testing import ServerThread, fill

TOKEN = "test-admin-token-abcdef"
PASSWORD = "correct horse battery"


def until(driver, script: str, timeout: float = 30.0, what: str = ""):
    """Poll a script in the page until it returns something truthy."""
    deadline, seen = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        seen = driver.execute_script(script)
        if seen:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"the page never showed {what or script}; last: {seen!r}; "
                         f"text: {driver.execute_script('return document.body.innerText')[:800]}")


def text(driver, selector: str) -> str:
    return driver.execute_script(f"const e = document.querySelector({selector!r}); return e ? e.innerText : null")


def test_the_office_in_chromium(tmp_path, browser):
    with ServerThread(Settings(db_url=str(tmp_path / "township.db"), admin_token=TOKEN)) as server:
        db = server.app.state.server.db
        accounts.add_user(db, "li.ming", PASSWORD, "admin")
        admin = Admin(server.url, TOKEN)
        admin.set_policy("river-garden", risk_level="low")
        creds = enroll(server.url, admin.enrollment("river-garden", "east")["token"])
        gate = SyncClient(Store.open(tmp_path / "gate.db"), SyncConfig(creds))
        fill(gate.store, creds.device_id, 5, random.Random(5), report="none")
        gate.run_once()
        downloads = tmp_path / "downloads"
        downloads.mkdir()
        browser.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})

        # sign in: any page sends a stranger to the login form, and back after it
        browser.get(server.url + "/office/alarms")
        until(browser, "return document.getElementById('login')", what="the login form")
        browser.find_element("id", "username").send_keys("li.ming")
        browser.find_element("id", "password").send_keys(PASSWORD)
        browser.find_element("id", "sign-in").click()
        until(browser, "return location.pathname === '/office/alarms' && document.getElementById('who')",
              what="the alarms page, signed in")
        assert text(browser, "#who") == "li.ming"

        # an immediate report arrives while the page is open, without a reload
        until(browser, "return document.getElementById('live').textContent === '实时接收中'", what="the live feed")
        browser.execute_script("window.stillThisPage = true")
        assert browser.execute_script("return document.querySelectorAll('tr[data-alarm]').length") == 0
        fill(gate.store, creds.device_id, 1, random.Random(6), report="immediate", reasons=["fever_confirmed"])
        posted = time.monotonic()
        gate.run_once()
        until(browser, "return document.querySelectorAll('tr[data-alarm]').length === 1", what="the new alarm")
        arrived = time.monotonic() - posted
        assert browser.execute_script("return window.stillThisPage === true")  # it came without a reload
        row = text(browser, "tr[data-alarm]")
        assert "river-garden" in row and "复测仍发热" in row and "张*三" in row and "报警" not in row
        print(f"the alarm reached the open page {arrived:.2f} s after the gate's sync began")

        # acknowledge it: it leaves the open list, and the township sees who did it
        browser.find_element("css selector", "tr[data-alarm] button.ack").click()
        until(browser, "return document.querySelectorAll('tr[data-alarm]').length === 0 && "
              "!document.getElementById('no-alarms').hidden", what="the list without the acknowledged alarm")
        acked = admin.alarms()["alarms"]
        assert [a["acknowledged_by"] for a in acked] == ["li.ming"]

        # change the risk level; the page shows the gate has not picked it up, then that it has
        browser.get(server.url + "/office/communities/river-garden")
        assert text(browser, "#risk") == "低风险"
        browser.find_element("css selector", "#risk-level option[value='high']").click()
        browser.find_element("css selector", "#risk-form button").click()
        until(browser, "return document.getElementById('notice')", what="the change notice")
        assert text(browser, "#risk") == "高风险"
        assert text(browser, f"tr[data-device='{creds.device_id}'] .pickup") == "尚未更新"
        browser.execute_script("window.stillThisPage = true")
        gate.run_once()
        until(browser, f"return document.querySelector(\"tr[data-device='{creds.device_id}'] .pickup\")"
              ".innerText.startsWith('卡口已更新')", what="the gate's pickup, without a reload")
        assert browser.execute_script("return window.stillThisPage === true")
        assert gate.store.policy()["risk_level"] == "high"

        # the chart is drawn on the server and shown on the page
        until(browser, "const i = document.getElementById('chart'); return i.complete && i.naturalWidth > 0",
              timeout=60, what="the chart")

        # the day's report as XLSX, downloaded by the browser and read back
        browser.find_element("id", "download-xlsx").click()
        xlsx = _downloaded(downloads, ".xlsx")
        admin.close()

    from openpyxl import load_workbook
    sheet = load_workbook(xlsx).active
    rows = [[c.value for c in r] for r in sheet.iter_rows()]
    header = rows[1]
    assert header[:4] == ["日期", "社区", "卡口", "上报状态"]
    whole = next(r for r in rows[2:] if r[1] == "river-garden" and r[2] == "合计")
    figure = dict(zip(header, whole, strict=True))
    assert figure["放行（人次）"] == 5 and figure["不予放行（人次）"] == 1  # the five admitted, the one fever
    assert figure["发热（人次）"] == 1


def _downloaded(folder: Path, suffix: str, timeout: float = 30.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.iterdir() if p.suffix == suffix]
        if done and not any(p.suffix == ".crdownload" for p in folder.iterdir()):
            return done[0]
        time.sleep(0.1)
    raise AssertionError(f"no {suffix} file was downloaded: {sorted(p.name for p in folder.iterdir())}")

