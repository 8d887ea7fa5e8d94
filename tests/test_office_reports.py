"""The township's daily report, its exports, the chart, contact tracing and alarms, on real
databases (SQLite files and PostgreSQL) and over real HTTP on 127.0.0.1.

The figures are checked against entries whose decisions the gate's own rules made
(kiosk.rules.decide), one for every reason the rules give, with the figures each must
count in written out by hand; and against the entries of the headless demo."""
from __future__ import annotations

import argparse
import collections
import contextlib
import csv
import datetime as dt
import io
import json
import os
import random
import secrets
import threading
import time
import xml.etree.ElementTree as ET
import zoneinfo

import httpx
import openpyxl
import pytest

from kiosk import clock, reasons, rules
from kiosk.rules import Answers, Code, Facts, GatePolicy, Subject, Vehicle
from sync import auth
from sync.admin import Admin, AdminError
from sync.client import enroll
from sync.server import Settings, exports, reports
from sync.server.db import Database, Rejected
from sync.server.deps import BATCH
from sync.server.thread import ServerThread
from sync.testing import batch_body, signed_request

TOKEN = "test-admin-token-reports"
TZ = "Asia/Shanghai"
DAY = dt.date(2026, 11, 25)
SHANGHAI = zoneinfo.ZoneInfo(TZ)
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)  # the rules' "now" for the cases


def local(hour: int, minute: int = 0, day: dt.date = DAY) -> str:
    return clock.iso(dt.datetime.combine(day, dt.time(hour, minute), SHANGHAI).astimezone(dt.UTC))


NEXT_MORNING = local(0, 5, DAY + dt.timedelta(days=1))   # an entry after the day's end: synced past it


# -- every reason the rules give, with what it counts in (written by hand) ------------------
GREEN, WARM = Code("green", True), (36.5,)
RESIDENT_PASS = Subject(has_pass=True)
CASES: list[tuple[str, str, Facts, set[str]]] = [
    # (level, the reason it must give, facts, figures it counts in besides in/out)
    ("low", "all_checks_passed", Facts(code=GREEN, readings_c=WARM), {"admitted"}),
    ("low", "exit_allowed", Facts(direction="out"), {"admitted"}),
    ("low", "no_code", Facts(readings_c=WARM), {"refused"}),
    ("low", "invalid_code", Facts(code=Code("green", False), readings_c=WARM), {"refused"}),
    ("low", "yellow_code", Facts(code=Code("yellow", True), readings_c=WARM), {"refused", "yellow_codes"}),
    ("low", "red_code", Facts(code=Code("red", True), readings_c=WARM), {"refused", "red_codes", "immediate"}),
    ("low", "fever_confirmed", Facts(code=GREEN, readings_c=(37.9, 38.1)), {"refused", "fevers", "immediate"}),
    ("low", "symptoms", Facts(code=GREEN, readings_c=WARM, answers=Answers(symptoms=True)),
     {"refused", "immediate"}),
    ("low", "risk_area_travel", Facts(code=GREEN, readings_c=WARM, answers=Answers(risk_area_travel=True)),
     {"refused", "risk_area_held", "immediate"}),
    ("low", "arrival_from_abroad", Facts(code=GREEN, readings_c=WARM, answers=Answers(abroad=True)),
     {"refused", "abroad_held", "immediate"}),
    ("low", "case_contact", Facts(code=GREEN, readings_c=WARM, answers=Answers(case_contact=True)),
     {"refused", "immediate"}),
    ("low", "check_refused", Facts(code=GREEN, readings_c=WARM, refused_check=True), {"refused", "immediate"}),
    ("low", "no_mask", Facts(code=GREEN, readings_c=WARM, mask=False), {"refused"}),
    ("tested", "no_recent_test", Facts(code=GREEN, readings_c=WARM), {"refused"}),
    ("low", "visited_home_quarantined", Facts(code=GREEN, readings_c=WARM, subject=Subject(kind="visitor"),
                                              visiting_quarantined_home=True), {"refused", "visitors"}),
    ("closed", "visitors_not_allowed", Facts(code=GREEN, readings_c=WARM, subject=Subject(kind="visitor")),
     {"refused", "visitors"}),
    ("low", "worker_registered", Facts(code=GREEN, readings_c=WARM, subject=Subject(kind="worker")), {"admitted"}),
    ("high", "worker_approved", Facts(code=GREEN, readings_c=WARM, subject=Subject(kind="worker", approved=True)),
     {"admitted"}),
    ("high", "worker_not_approved", Facts(code=GREEN, readings_c=WARM, subject=Subject(kind="worker")),
     {"refused"}),
    ("low", "emergency_exit", Facts(direction="out", emergency="dialysis"),
     {"admitted", "emergency_exits", "immediate"}),
    ("stale", "lists_stale", Facts(code=GREEN, readings_c=WARM, lists_stale=True), {"admitted"}),
    ("low", "home_quarantine_exit", Facts(direction="out", subject=Subject(quarantine="home_quarantine")),
     {"refused", "quarantine_breaches", "immediate"}),
    ("low", "home_quarantine_breach", Facts(code=GREEN, readings_c=WARM,
                                            subject=Subject(quarantine="home_quarantine")),
     {"refused", "quarantine_breaches", "immediate"}),
    ("low", "health_monitoring_exit", Facts(direction="out", subject=Subject(quarantine="health_monitoring")),
     {"admitted"}),
    ("low", "visitor_registered", Facts(code=GREEN, readings_c=WARM, subject=Subject(kind="visitor")),
     {"admitted", "visitors"}),
    ("medium", "visitor_approved", Facts(code=GREEN, readings_c=WARM, subject=Subject(kind="visitor", approved=True)),
     {"admitted", "visitors"}),
    ("medium", "visitor_not_approved", Facts(code=GREEN, readings_c=WARM, subject=Subject(kind="visitor")),
     {"refused", "visitors"}),
    ("high", "visitors_turned_away", Facts(code=GREEN, readings_c=WARM, subject=Subject(kind="visitor")),
     {"refused", "visitors"}),
    ("low", "courier_registered", Facts(code=GREEN, readings_c=WARM, subject=Subject(kind="courier")),
     {"admitted", "couriers"}),
    ("medium", "courier_dropoff_only", Facts(code=GREEN, readings_c=WARM, subject=Subject(kind="courier")),
     {"refused", "couriers"}),
    ("medium", "no_pass", Facts(code=GREEN, readings_c=WARM), {"refused"}),
    ("high", "essential_exit_approved", Facts(direction="out", subject=Subject(approved=True)), {"admitted"}),
    ("high", "essential_exit_only", Facts(direction="out"), {"refused"}),
    ("low", "vehicle_registered", Facts(code=GREEN, readings_c=WARM, vehicle=Vehicle(resident=True)),
     {"admitted", "vehicles"}),
    ("medium", "vehicle_not_admitted", Facts(code=GREEN, readings_c=WARM, subject=RESIDENT_PASS,
                                             vehicle=Vehicle(resident=False)), {"refused", "vehicles"}),
    ("medium", "vehicle_exit_limit", Facts(direction="out", vehicle=Vehicle(resident=True, exits_today=1)),
     {"refused", "vehicles"}),
    ("low", "override", Facts(code=Code("red", True), readings_c=WARM, override_reason="送医就诊"),
     {"admitted", "red_codes", "overrides", "immediate"}),
]
POLICIES = {"low": GatePolicy(), "medium": GatePolicy(risk_level="medium"), "high": GatePolicy(risk_level="high"),
            "tested": GatePolicy(test_max_age_h=48), "closed": GatePolicy(visitors_allowed=False),
            "stale": GatePolicy()}
# Reasons the gate records without the rules: a person who walked away, a guard's cancel.
ABANDONED = ("timeout_measuring", "timeout_retest", "timeout_asking", "cancelled")
# Reasons that ask for a measurement, never a final decision: not in an entry's refusal.
MEASURING = ("not_measured", "implausible_reading", "fever_retest")


def decided(level: str, facts: Facts) -> dict:
    """An entry's fields as the gate records them (kiosk/checkpoint.py) from the rules' decision."""
    d = rules.decide(POLICIES[level], facts, NOW)
    return {"direction": facts.direction, "subject_kind": facts.subject.kind, "action": d.action,
            "report": d.report, "reasons": list(d.reasons),
            "code_colour": facts.code.colour if facts.code else None,
            "readings": [{"body_c": r} for r in facts.readings_c],
            "vehicle": {"form": "vehicle", "plate": "苏A12345", "passengers": 1} if facts.vehicle else None,
            "override_reason": facts.override_reason, "masked_name": "张*丰",
            "person_ref": f"p1:{secrets.token_hex(16)}"}


def hand_built() -> list[tuple[dict, set[str]]]:
    out = [(decided(level, facts), want) for level, _, facts, want in CASES]
    for why in ABANDONED:
        out.append(({"direction": "in", "subject_kind": "resident", "action": "abandoned", "report": "none",
                     "reasons": [why]}, {"abandoned"}))
    returnee = {"form": "returnee", "building": "3", "unit": "2", "room": "501", "from_county": "320583",
                "from_place": "昆山", "arrival_date": "2026-11-24", "transport": "train"}
    out.append(({**decided("low", Facts(code=GREEN, readings_c=WARM)), "details": returnee},
                {"admitted", "first_returns"}))
    return out


def test_the_cases_cover_every_reason_the_rules_give():
    given = {r for level, _, facts, _ in CASES for r in rules.decide(POLICIES[level], facts, NOW).reasons}
    for level, reason, facts, _ in CASES:
        assert reason in rules.decide(POLICIES[level], facts, NOW).reasons, reason
    assert given | set(ABANDONED) | set(MEASURING) == set(reasons.REASON_TEXT)


# -- a township database with gates, filled by hand -----------------------------------------
class Township:
    def __init__(self, db: Database):
        self.db = db
        self.devices: dict[str, object] = {}
        self.seq: dict[str, int] = collections.Counter()

    def gate(self, community: str, gate: str):
        token = secrets.token_urlsafe(16)
        expires = clock.utc_now() + dt.timedelta(hours=1)
        self.db.create_enrollment(auth.token_hash(token), f"{community}.{gate}", community, gate, expires)
        device = self.db.enroll(auth.token_hash(token), auth.public_key_text(auth.new_device_key()))
        self.devices[device.device_id] = device
        return device

    def post(self, device, *entries: tuple[str, dict]) -> list[dict]:
        """Entries (time, fields) in one batch, numbered on from the device's last seq."""
        wire = []
        for at, fields in entries:
            self.seq[device.device_id] += 1
            n = self.seq[device.device_id]
            wire.append({"device_id": device.device_id, "seq": n, "created_utc": at, "boot_id": "boot-1",
                         "monotonic_ns": n * 10**9, "clock_synced": True, "gate": device.gate,
                         "direction": "in", "subject_kind": "resident", "action": "admit", "report": "none",
                         **{k: v for k, v in fields.items() if v is not None}})
        raw = json.dumps({"entries": wire}, ensure_ascii=False).encode()
        self.db.ingest(device, BATCH.validate_json(raw), clock.utc_now(), raw)
        return wire


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "township.db")
    return request.getfixturevalue("pg_cluster").new_database(f"r{random.getrandbits(48):x}")


@pytest.fixture
def township(db_url):
    db = Database.open(db_url)
    yield Township(db)
    db.close()


def refusal(fn, *args, **kw) -> str:
    """The reason a call was refused for."""
    with pytest.raises(Rejected) as refused:
        fn(*args, **kw)
    return refused.value.reason


def figures_of(cases: list[tuple[dict, set[str]]]) -> tuple[dict[str, int], dict[str, int]]:
    """The figures and refusals by reason the cases add up to, from the hand-written sets."""
    want = dict.fromkeys(reports.FIGURES, 0)
    refusals: collections.Counter[str] = collections.Counter()
    for fields, figures in cases:
        for f in figures | {"entered" if fields["direction"] == "in" else "exited"}:
            want[f] += 1
        if "refused" in figures:
            refusals.update(fields["reasons"])
    return want, dict(refusals)


@pytest.fixture
def filled(township):
    """river-garden: two gates sharing the hand-built cases, both synced past the day;
    quiet-lane: a gate with nothing that day (synced past it); pine-court: a gate that went
    silent during the day; empty-court: a community with a policy and no gate."""
    cases = hand_built()
    random.Random(7).shuffle(cases)
    east, west = township.gate("river-garden", "east"), township.gate("river-garden", "west")
    halves = {east: cases[::2], west: cases[1::2]}
    for device, mine in halves.items():
        before = [(local(0, 0, DAY - dt.timedelta(days=1)), {}), (local(23, 59, DAY - dt.timedelta(days=1)), {})]
        day = [(local(6 + i // 4, (i % 4) * 15), fields) for i, (fields, _) in enumerate(mine)]
        township.post(device, *before, *day, (local(0, 0, DAY + dt.timedelta(days=1)), {}))
    quiet = township.gate("quiet-lane", "main")
    township.post(quiet, (local(9, 0, DAY - dt.timedelta(days=1)), {}), (local(10, 0), {}),
                  (local(11, 0), {"direction": "out"}), (NEXT_MORNING, {}))
    silent = township.gate("pine-court", "north")
    township.post(silent, (local(8, 0), {}), (local(9, 30), {"action": "refuse", "reasons": ["no_mask"]}))
    township.db.publish("empty-court", "policy", {"risk_level": "low"})
    township.db.publish("river-garden", "quarantine_orders", [
        {"id": "q1", "person_ref": "p1:a", "kind": "home_quarantine", "start": "2026-11-20", "end": "2026-12-03"},
        {"id": "q2", "person_ref": "p1:a", "kind": "home_quarantine", "start": "2026-11-24", "end": "2026-11-25"},
        {"id": "q3", "person_ref": "p1:b", "kind": "home_quarantine", "start": "2026-11-01", "end": "2026-11-10"},
        {"id": "q4", "person_ref": "p1:c", "kind": "health_monitoring", "start": "2026-11-25T15:00:00",
         "end": "2026-12-09T15:00:00"},
        {"id": "q5", "person_ref": "p1:d", "kind": "health_monitoring", "start": "2026-11-26", "end": "2026-12-10"}])
    return township, cases, halves


def test_figures_match_entries_made_for_every_reason(filled):
    township, cases, halves = filled
    rep = reports.daily(township.db, DAY, TZ, now=NOW)
    by = {c.community: c for c in rep.communities}
    river = by["river-garden"]
    want, refusals = figures_of(cases)
    assert river.figures == want
    assert river.refusals == refusals
    assert river.entries == len(cases)  # the entries of the days before and after are not counted
    for g in river.gates:
        mine = halves[township.devices[g.device_id]]
        assert (g.figures, g.refusals) == figures_of(mine)
    assert river.headcounts == {"home_quarantine": 1, "health_monitoring": 1}
    # every figure was exercised, and every refusal is worded in the office's words
    assert all(want[f] > 0 for f in reports.FIGURES)
    assert all(reasons.reason_text(r, "zh") != r for r in refusals)


def test_zero_missing_pending_submitted_and_late(filled):
    township, _, _ = filled
    db = township.db
    due = dt.datetime.combine(DAY + dt.timedelta(days=1), reports.DUE_NEXT_DAY, SHANGHAI).astimezone(dt.UTC)
    morning = due - dt.timedelta(hours=2)
    status = {c.community: c.status for c in reports.daily(db, DAY, TZ, now=morning).communities}
    assert reports.statuses(db, DAY, TZ, now=morning) == status  # the same rule, without the entries
    # the silent gate makes its community missing at once; the others wait for their staff
    assert status == {"river-garden": "pending", "quiet-lane": "pending", "pine-court": "missing",
                      "empty-court": "pending"}
    during = reports.daily(db, DAY, TZ, now=NOW)
    assert {c.status for c in during.communities} == {"pending"}  # the day is not over

    assert refusal(reports.submit, db, "quiet-lane", DAY, TZ, "staff-q", "王*明", now=NOW) == "day_not_over"
    with pytest.raises(Rejected) as refused:
        reports.submit(db, "pine-court", DAY, TZ, "staff-p", "李*", now=morning)
    assert refused.value.reason == "gates_not_synced" and "north" in refused.value.detail
    assert refusal(reports.submit, db, "quiet-lane", DAY, TZ, "staff-q", "   ", now=morning) == "invalid_leader"
    zero = reports.submit(db, "quiet-lane", DAY, TZ, "staff-q", "王*明", now=morning)
    assert not zero.late and zero.figures["figures"]["entered"] == 1 and zero.figures["figures"]["exited"] == 1
    late = reports.submit(db, "river-garden", DAY, TZ, "staff-r", "赵*", note="补报", now=due + dt.timedelta(hours=3))
    assert late.late

    after = {c.community: c for c in reports.daily(db, DAY, TZ, now=due + dt.timedelta(hours=5)).communities}
    # ordinary passages and nothing to report: a zero report (零报告)
    assert after["quiet-lane"].status == "submitted" and after["quiet-lane"].zero
    assert after["quiet-lane"].submission.leader == "王*明"
    assert after["river-garden"].status == "late" and not after["river-garden"].zero
    assert after["pine-court"].status == "missing" and after["pine-court"].entries == 2  # missing, never zero
    assert after["empty-court"].status == "missing"  # nothing sent by the deadline
    assert reports.statuses(db, DAY, TZ, now=due + dt.timedelta(hours=5)) == {c: d.status for c, d in after.items()}
    words = reports.daily(db, DAY, TZ, now=due + dt.timedelta(hours=5)).as_json("zh")["communities"]
    assert {c["community"]: c["status_text"] for c in words} == {
        "river-garden": "迟报", "quiet-lane": "已报", "pine-court": "未报", "empty-court": "未报"}


def test_a_gate_that_catches_up_completes_its_community(filled):
    township, _, _ = filled
    silent = next(d for d in township.devices.values() if d.community == "pine-court")
    township.post(silent, (local(22, 0), {}))  # still the same day: not past its end
    assert reports.daily(township.db, DAY, TZ, "pine-court").communities[0].status == "missing"
    township.post(silent, (NEXT_MORNING, {}))
    assert reports.statuses(township.db, DAY, TZ, "pine-court") == {"pine-court": "missing"}  # the deadline passed
    [pine] = reports.daily(township.db, DAY, TZ, "pine-court",
                           now=reports.due(DAY, TZ) - dt.timedelta(hours=1)).communities
    assert pine.complete and pine.status == "pending" and pine.entries == 3


def test_exports_read_back_with_chinese_headers(filled):
    township, cases, _ = filled
    rep = reports.daily(township.db, DAY, TZ, now=NOW)
    want, refusals = figures_of(cases)
    wb = openpyxl.load_workbook(io.BytesIO(exports.to_xlsx(rep, "zh")))
    ws = wb["日报"]
    assert "疫情防控卡口日报 2026-11-25" in ws["A1"].value
    header = [c.value for c in ws[2]]
    assert header[:4] == ["日期", "社区", "卡口", "上报状态"]
    assert {"放行（人次）", "不予放行（人次）", "发热（人次）", "黄码（人次）", "红码（人次）", "车辆（辆次）",
            "居家隔离（人）", "健康监测（人）", "带班领导"} <= set(header)
    assert f"不予放行：{reasons.reason_text('fever_confirmed', 'zh')}" in header
    rows = [dict(zip(header, (c.value for c in r), strict=True)) for r in ws.iter_rows(min_row=3)]
    river = next(r for r in rows if r["社区"] == "river-garden" and r["卡口"] == "合计")
    for key, (zh, _, unit) in reports.FIGURES.items():
        assert river[f"{zh}（{reports.UNITS[unit][0]}）"] == want[key], key
    for reason, n in refusals.items():
        assert river[f"不予放行：{reasons.reason_text(reason, 'zh')}"] == n
    assert river["居家隔离（人）"] == 1
    assert {r["卡口"] for r in rows if r["社区"] == "river-garden"} == {"合计", "east", "west"}
    assert not any("报警" in str(v) for r in rows for v in r.values())

    text = exports.to_csv(rep, "zh").decode("utf-8")
    assert text.startswith("\ufeff")  # Excel and WPS read Chinese CSV with the mark
    table = list(csv.DictReader(io.StringIO(text[1:])))
    csv_river = next(r for r in table if r["社区"] == "river-garden" and r["卡口"] == "合计")
    assert int(csv_river["发热（人次）"]) == want["fevers"] and int(csv_river["访客（人次）"]) == want["visitors"]
    english = exports.table(rep, "en")[0]
    assert "Admitted (passages)" in english and all(ord(ch) < 0x3000 for ch in "".join(english[:40]))


def test_chart_counts_days_and_is_svg_with_chinese_labels(filled):
    township, cases, _ = filled
    points = reports.history(township.db, "river-garden", DAY + dt.timedelta(days=1), 3, TZ)
    assert [p.day for p in points] == ["2026-11-24", "2026-11-25", "2026-11-26"]
    want, _ = figures_of(cases)
    assert (points[1].entries, points[1].refused, points[1].fevers) == (len(cases), want["refused"], want["fevers"])
    assert (points[0].entries, points[2].entries) == (4, 2)  # 2 gates x (00:00 and 23:59; 00:00 next day)
    svg = reports.chart_svg(points, "river-garden", "zh")
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    text = "".join(root.itertext())
    assert "进出人次" in text and "不予放行" in text and "发热" in text
    ids = {el.get("id") for el in root.iter()}
    assert {"entries", "refused", "fevers"} <= ids
    assert refusal(reports.history, township.db, "river-garden", DAY, reports.MAX_CHART_DAYS + 1, TZ) == \
        "invalid_request"


# -- over HTTP ------------------------------------------------------------------------------
@pytest.fixture
def served(filled, db_url):
    township, cases, halves = filled
    with ServerThread(Settings(db_url=db_url, admin_token=TOKEN)) as srv:
        admin = Admin(srv.url, TOKEN)
        yield srv, admin, township, cases
        admin.close()


def test_report_route_serves_json_csv_and_xlsx(served):
    srv, admin, _, cases = served
    rep = admin.daily_report(day=DAY.isoformat(), tz=TZ)
    river = next(c for c in rep["communities"] if c["community"] == "river-garden")
    assert river["figures"] == figures_of(cases)[0] and river["status"] == "missing"  # no one submitted
    assert river["entries"] == len(cases) and river["by_action"]["admit"] == river["figures"]["admitted"]
    one = admin.daily_report(day=DAY.isoformat(), tz=TZ, community="quiet-lane")
    assert [c["community"] for c in one["communities"]] == ["quiet-lane"]
    xlsx = admin.report_file("xlsx", day=DAY.isoformat(), tz=TZ)
    ws = openpyxl.load_workbook(io.BytesIO(xlsx)).active
    assert ws["B2"].value == "社区"
    r = httpx.get(srv.url + "/v1/admin/reports/daily", params={"day": DAY.isoformat(), "format": "csv"},
                  headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    assert r.headers["content-type"].startswith("text/csv") and "attachment" in r.headers["content-disposition"]
    assert r.content.decode("utf-8-sig").splitlines()[0].startswith("日期,社区,卡口,上报状态")
    bad = httpx.get(srv.url + "/v1/admin/reports/daily", params={"format": "pdf"},
                    headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_request"
    bad = httpx.get(srv.url + "/v1/admin/reports/daily", params={"tz": "../../etc/passwd"},
                    headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    assert bad.status_code == 422 and bad.json()["error"] == "unknown_timezone"
    assert httpx.get(srv.url + "/v1/admin/reports/daily", timeout=60).status_code == 401
    doc = httpx.get(srv.url + "/openapi.json", timeout=60).json()
    params = {p["name"]: p for p in doc["paths"]["/v1/admin/reports/daily"]["get"]["parameters"]}
    assert params["format"]["schema"]["enum"] == ["json", "csv", "xlsx"]
    content = doc["paths"]["/v1/admin/reports/daily"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "text/csv", exports.MEDIA["xlsx"]} <= set(content)


def test_submission_and_chart_routes(served):
    srv, admin, _, _ = served
    done = admin.submit_report("quiet-lane", DAY.isoformat(), "王*明", tz=TZ)
    assert done["late"] and done["submitted_by"] == "admin-token"  # the day is long past its deadline
    with pytest.raises(AdminError, match="gates_not_synced"):
        admin.submit_report("pine-court", DAY.isoformat(), "李*", tz=TZ)
    with pytest.raises(AdminError, match="invalid_request"):
        admin.submit_report("quiet-lane", DAY.isoformat(), "x" * 33, tz=TZ)
    [quiet] = admin.daily_report(day=DAY.isoformat(), tz=TZ, community="quiet-lane")["communities"]
    assert quiet["status"] == "late" and quiet["zero_report"] and quiet["submission"]["leader"] == "王*明"
    r = httpx.get(srv.url + "/v1/admin/reports/chart/river-garden",
                  params={"day": DAY.isoformat(), "days": 14, "tz": TZ},
                  headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml"
    assert "进出人次" in r.text
    for day in ("0001-01-01", "9999-12-31"):  # the edges of the calendar: refused by name, not a 500
        r = httpx.get(srv.url + "/v1/admin/reports/chart/river-garden", params={"day": day, "days": 28},
                      headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
        assert (r.status_code, r.json()["error"]) == (422, "invalid_request"), r.text


def test_township_report_command_writes_xlsx_and_text(served, gate, tmp_path):
    srv, _, _, cases = served
    env = {"GATE_ADMIN_TOKEN": TOKEN}
    out = tmp_path / "report.xlsx"
    done = gate("township", "report", "--server", srv.url, "--day", DAY.isoformat(), "--tz", TZ,
                "--format", "xlsx", "--out", str(out), env=env)
    assert done.returncode == 0, done.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    ws = openpyxl.load_workbook(out).active
    header = [c.value for c in ws[2]]
    river = next(dict(zip(header, (c.value for c in r), strict=True)) for r in ws.iter_rows(min_row=3)
                 if r[1].value == "river-garden" and r[2].value == "合计")
    assert river["发热（人次）"] == figures_of(cases)[0]["fevers"] and river["上报状态"] == "未报"
    text = gate("township", "report", "--server", srv.url, "--day", DAY.isoformat(), "--tz", TZ, env=env)
    assert text.returncode == 0 and "pine-court: 2 entries (admit 1, refuse 1) [missing]" in text.stdout
    assert "gate north not synced past the day" in text.stdout
    bad = gate("township", "report", "--server", srv.url, "--format", "xlsx", env=env)
    assert bad.returncode == 1 and "--out FILE" in bad.stderr and "Traceback" not in bad.stderr


def test_contact_tracing_gives_masked_names_and_references(served):
    _, admin, township, cases = served
    start, end = local(6), local(7)
    got = admin.trace("river-garden", start, end)
    assert got["passages"] and all(p["masked_name"] in ("张*丰", None) for p in got["passages"])
    assert all(start <= p["at_utc"] < end for p in got["passages"])
    assert all(set(p) == {"id", "at_utc", "community", "gate", "direction", "subject_kind", "masked_name",
                          "person_ref", "plate", "action"} for p in got["passages"])
    assert len(got["passages"]) == 8  # two gates, four an hour each from 06:00
    east = admin.trace("river-garden", start, end, gate="east")["passages"]
    assert {p["gate"] for p in east} == {"east"} and len(east) == 4
    whole_day = admin.trace("river-garden", local(0), local(0, 0, DAY + dt.timedelta(days=1)))["passages"]
    assert {p["plate"] for p in whole_day} >= {"苏A12345"} and len(whole_day) == len(cases)
    with pytest.raises(AdminError, match="invalid_window"):
        admin.trace("river-garden", end, start)
    with pytest.raises(AdminError, match="invalid_window"):
        admin.trace("river-garden", "2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z")


def test_alarms_are_listed_until_acknowledged(served):
    _, admin, _, cases = served
    immediate = sum(1 for fields, _ in cases if fields["report"] == "immediate")
    listed = admin.alarms(limit=1000)["alarms"]
    assert len(listed) == immediate and all(a["acknowledged_by"] is None for a in listed)
    first = listed[0]["id"]
    ack = admin.acknowledge(first, note="已联系社区")
    assert ack["acknowledged_by"] == "admin-token" and ack["acknowledged_utc"]
    again = admin.acknowledge(first)  # the first acknowledgement stands
    assert again["acknowledged_utc"] == ack["acknowledged_utc"]
    still_open = admin.alarms(limit=1000, open_only=True)["alarms"]
    assert [a["id"] for a in still_open] == [a["id"] for a in listed[1:]]
    assert next(a for a in admin.alarms(limit=1000)["alarms"] if a["id"] == first)["note"] == "已联系社区"
    with pytest.raises(AdminError, match="unknown_alarm"):
        admin.acknowledge(10**12)


def read_events(response: httpx.Response, got: list[dict], ready: threading.Event) -> None:
    data = None
    for line in response.iter_lines():
        ready.set()
        if line.startswith("data: "):
            data = json.loads(line[6:])
        elif line == "" and data is not None:
            got.append(data)
            data = None
            return


def post_and_listen(srv, to, admin: Admin) -> list[dict]:
    """Open the alarm stream on `srv`, post an immediate report to `to`: what arrived."""
    got: list[dict] = []
    ready = threading.Event()
    with httpx.Client(timeout=httpx.Timeout(10.0)) as client, client.stream(
            "GET", srv.url + "/v1/admin/alarms/stream", headers={"Authorization": f"Bearer {TOKEN}"}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        creds = enroll(to.url, admin.enrollment("river-garden", "south")["token"])
        reader = threading.Thread(target=read_events, args=(r, got, ready), daemon=True)
        reader.start()
        assert ready.wait(10)  # the stream is open (its first line arrived)
        alarm = {"device_id": creds.device_id, "seq": 1, "created_utc": clock.iso(clock.utc_now()),
                 "boot_id": "b", "monotonic_ns": 1, "clock_synced": True, "gate": "south", "direction": "in",
                 "subject_kind": "resident", "action": "isolate", "report": "immediate",
                 "reasons": ["fever_confirmed"], "masked_name": "李*"}
        posted = signed_request(to.url, creds, "POST", "/v1/entries", batch_body([alarm], priority=True),
                                gzip_body=True)
        assert posted.status_code == 200, posted.text
        reader.join(10)
    return got


def test_an_alarm_reaches_an_open_stream_from_another_worker(served, db_url):
    """A gate posts to one server process's worker; the dashboard's stream is open on
    another's: nothing but the shared database carries the alarm."""
    srv, admin, _, _ = served
    with ServerThread(Settings(db_url=db_url, admin_token=TOKEN)) as other:
        got = post_and_listen(srv, other, admin)
    assert len(got) == 1 and got[0]["reasons"] == ["fever_confirmed"] and got[0]["gate"] == "south"
    assert got[0]["masked_name"] == "李*" and got[0]["acknowledged_by"] is None


def test_the_commit_of_an_alarm_wakes_the_open_streams(served, db_url, monkeypatch):
    """The streams would not look again for two minutes: the alarm arrives because its
    commit woke them (SQLite: the one server process; PostgreSQL: another worker's commit,
    through LISTEN/NOTIFY)."""
    from sync.server import alarms
    monkeypatch.setattr(alarms, "POLL_S", 120.0)
    srv, admin, _, _ = served
    if served[2].db.dialect == "sqlite":  # one process serves a SQLite file
        got = post_and_listen(srv, srv, admin)
    else:
        with ServerThread(Settings(db_url=db_url, admin_token=TOKEN)) as other:
            got = post_and_listen(srv, other, admin)
    assert [(a["gate"], a["reasons"]) for a in got] == [("south", ["fever_confirmed"])]


def test_open_streams_are_bounded_and_a_closed_one_frees_its_slot(served, monkeypatch):
    srv, _, _, _ = served
    from sync.server import alarms
    monkeypatch.setattr(alarms, "MAX_STREAMS", 1)
    auth_header = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=srv.url, timeout=10, headers=auth_header) as client:
        with client.stream("GET", "/v1/admin/alarms/stream") as first:
            lines = first.iter_lines()  # held: a dropped line iterator closes the stream
            assert next(lines).startswith("retry:")
            second = client.get("/v1/admin/alarms/stream")
            assert (second.status_code, second.json()["error"]) == (503, "too_many_streams")
        deadline = time.monotonic() + 10
        while True:  # the server notices the closed stream at its next poll
            with client.stream("GET", "/v1/admin/alarms/stream") as again:
                if again.status_code == 200:
                    break
            assert time.monotonic() < deadline, "the closed stream's slot was never freed"
            time.sleep(0.2)


def signed_in(srv, township, username: str, role: str, community: str | None = None) -> httpx.Client:
    """A client holding a township user's session cookie, sending its CSRF token."""
    from sync.server import accounts

    password = secrets.token_urlsafe(12)
    accounts.add_user(township.db, username, password, role, community)
    client = httpx.Client(base_url=srv.url, timeout=30)
    r = client.post("/v1/session", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return client


def test_roles_community_staff_and_read_only(served):
    srv, admin, township, _ = served
    day = {"day": DAY.isoformat(), "tz": TZ}
    staff = signed_in(srv, township, "staff-river", "community", "river-garden")
    ro = signed_in(srv, township, "office-ro", "readonly")
    try:
        mine = staff.get("/v1/admin/reports/daily", params=day).json()
        assert [c["community"] for c in mine["communities"]] == ["river-garden"]
        for path, params in (("/v1/admin/reports/daily", {**day, "community": "pine-court"}),
                             ("/v1/admin/reports/chart/pine-court", day)):
            r = staff.get(path, params=params)
            assert (r.status_code, r.json()["error"]) == (403, "other_community"), path
        r = staff.get("/v1/admin/trace", params={"community": "river-garden", "start": local(6), "end": local(7)})
        assert (r.status_code, r.json()["error"]) == (403, "township_only")
        assert {a["community"] for a in staff.get("/v1/admin/alarms", params={"limit": 1000}).json()["alarms"]} \
            == {"river-garden"}
        other = staff.post("/v1/admin/reports/daily/quiet-lane/submission", params={"tz": TZ},
                           json={"day": DAY.isoformat(), "leader": "王*明"})
        assert (other.status_code, other.json()["error"]) == (403, "other_community")
        no_csrf = httpx.post(srv.url + "/v1/admin/reports/daily/river-garden/submission", params={"tz": TZ},
                             json={"day": DAY.isoformat(), "leader": "赵*"}, cookies=staff.cookies, timeout=60)
        assert (no_csrf.status_code, no_csrf.json()["error"]) == (403, "csrf_failed")
        ok = staff.post("/v1/admin/reports/daily/river-garden/submission", params={"tz": TZ},
                        json={"day": DAY.isoformat(), "leader": "赵*"})
        assert ok.status_code == 201 and ok.json()["submitted_by"] == "staff-river"

        r = ro.post("/v1/admin/reports/daily/quiet-lane/submission", params={"tz": TZ},
                    json={"day": DAY.isoformat(), "leader": "王*明"})
        assert (r.status_code, r.json()["error"]) == (403, "read_only")
        alarm = admin.alarms()["alarms"][0]["id"]
        r = ro.post(f"/v1/admin/alarms/{alarm}/acknowledge", json={})
        assert (r.status_code, r.json()["error"]) == (403, "read_only")
        traced = ro.get("/v1/admin/trace", params={"community": "river-garden", "start": local(6), "end": local(7)})
        assert traced.status_code == 200 and len(traced.json()["passages"]) == 8
    finally:
        staff.close()
        ro.close()
    log = httpx.get(srv.url + "/v1/admin/audit", headers={"Authorization": f"Bearer {TOKEN}"},
                    timeout=60).json()["records"]
    done = {(r["actor"], r["action"], r["community"]) for r in log}
    assert {("office-ro", "contact_trace", "river-garden"),
            ("staff-river", "report_submitted", "river-garden")} <= done
    trace_row = next(r for r in log if r["action"] == "contact_trace")
    assert trace_row["detail"]["rows"] == 8


# -- the headless demo ------------------------------------------------------------------------
@pytest.fixture
def demo_township(monkeypatch, capsys):
    """Run the headless demo, keeping what its township served before it shuts down."""
    from kiosk import demo

    kept: dict = {}
    real = demo.township

    @contextlib.contextmanager
    def township(tmp, risk_level, lists):
        with real(tmp, risk_level, lists) as (admin, url, creds):
            yield admin, url, creds
            kept["entries"] = admin.entries(demo.DEVICE_ID)
            days = {clock.parse_iso(e["corrected_utc"]).astimezone(SHANGHAI).date() for e in kept["entries"]}
            kept["reports"] = [admin.daily_report(day=d.isoformat(), tz=TZ, community=demo.COMMUNITY)
                               for d in sorted(days)]
            kept["xlsx"] = admin.report_file("xlsx", day=min(days).isoformat(), tz=TZ, community=demo.COMMUNITY)

    monkeypatch.setattr(demo, "township", township)
    seed = int(os.environ.get("GATE_DEMO_SEED") or random.randrange(2**31))
    print(f"GATE_DEMO_SEED={seed}")
    args = argparse.Namespace(cases=False, db=None, risk_level="low", lang="zh", headless=True, people=24,
                              seed=seed, json=True)
    assert demo.run(args) == 0
    kept["summary"] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])  # the gate's own count
    return kept


def test_figures_match_the_headless_demo(demo_township):
    summary = demo_township["summary"]
    entries = demo_township["entries"]
    assert len(entries) == summary["entries_written"] > 0
    total: collections.Counter[str] = collections.Counter()
    refusals: collections.Counter[str] = collections.Counter()
    by_action: collections.Counter[str] = collections.Counter()
    for rep in demo_township["reports"]:
        [c] = rep["communities"]
        total.update(c["figures"])
        refusals.update(c["refusals"])
        by_action.update(c["by_action"])
    # what the gate itself counted (its summary) and what its entries say, against the report
    assert dict(by_action) == summary["by_action"]
    assert total["admitted"] == summary["by_action"].get("admit", 0)
    assert total["refused"] == sum(summary["by_action"].get(a, 0) for a in ("refuse", "isolate", "hold"))
    assert total["fevers"] == summary["by_reason"].get("fever_confirmed", 0)
    assert total["entered"] + total["exited"] == len(entries)
    assert total["visitors"] == sum(1 for e in entries if e["subject_kind"] == "visitor")
    assert total["couriers"] == sum(1 for e in entries if e["subject_kind"] == "courier")
    assert total["vehicles"] == sum(1 for e in entries if e.get("vehicle"))
    assert total["yellow_codes"] == sum(1 for e in entries if e.get("code_colour") == "yellow")
    assert total["red_codes"] == sum(1 for e in entries if e.get("code_colour") == "red")
    assert total["immediate"] == sum(1 for e in entries if e["report"] == "immediate")
    assert total["first_returns"] == sum(1 for e in entries if (e.get("details") or {}).get("form") == "returnee")
    assert total["quarantine_breaches"] == summary["by_reason"].get("home_quarantine_exit", 0) + \
        summary["by_reason"].get("home_quarantine_breach", 0)
    assert dict(refusals) == dict(collections.Counter(
        r for e in entries if e["action"] in ("refuse", "isolate", "hold") for r in e["reasons"]))
    ws = openpyxl.load_workbook(io.BytesIO(demo_township["xlsx"])).active
    assert [c.value for c in ws[2]][:3] == ["日期", "社区", "卡口"]
