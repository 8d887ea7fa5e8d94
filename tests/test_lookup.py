"""Facts from the township's lists, on a real store file filled through replace_list."""
from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from kiosk import people
from kiosk.lookup import (
    CHINA_STANDARD_TIME,
    BadLookup,
    Lookup,
)
from kiosk.records import id_check_digit
from kiosk.store import Entry, Store, StoreError

SALT = "township-salt"
CST = CHINA_STANDARD_TIME
NOW = dt.datetime(2026, 11, 30, 9, 0, tzinfo=CST)
ZHANG = "11010519491231002X"   # lives at 3-2-501, pass valid, under health monitoring
LI = "440524198001010013"      # 3-2-501 too, under home quarantine
WANG = "110101200002290018"    # 5-1-101, revoked pass, quarantine ended


def ref(id_number: str) -> str:
    return people.person_ref(id_number, SALT)


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "g.db") as s:
        old = NOW - dt.timedelta(days=3)
        s.replace_list("households", [
            {"id": "H1", "address": "3栋2单元501"}, {"id": "H2", "address": "3栋2单元502"},
            {"id": "H3", "address": "5栋1单元101"}], version="h7", fetched_at=NOW - dt.timedelta(hours=2))
        s.replace_list("residents", [
            {"person_ref": ref(ZHANG), "household_id": "H1", "masked_name": "张*丰", "role": "owner"},
            {"person_ref": ref(LI), "household_id": "H1", "masked_name": "李*", "role": "member",
             "care_needs": "dialysis"},
            {"person_ref": ref(WANG), "household_id": "H3", "masked_name": "王*", "role": "tenant"},
            {"person_ref": "p1:" + "0" * 32, "household_id": "H2", "masked_name": "张*", "role": "owner"},
        ], fetched_at=NOW - dt.timedelta(hours=2))
        s.replace_list("passes", [
            {"serial": "P-old", "person_ref": ref(ZHANG), "household_id": "H1",
             "valid_from": "2026-01-01", "valid_until": "2026-06-30"},
            {"serial": "P-now", "person_ref": ref(ZHANG), "household_id": "H1",
             "valid_from": "2026-07-01T00:00:00+08:00", "valid_until": "2026-12-31"},
            {"serial": "P-next", "person_ref": ref(ZHANG), "household_id": "H1",
             "valid_from": "2027-01-01", "valid_until": "2027-06-30"},
            {"serial": "P-wang", "person_ref": ref(WANG), "household_id": "H3",
             "valid_from": "2026-01-01", "valid_until": "2026-12-31"},
        ], fetched_at=old)
        s.replace_list("revoked_passes", [{"serial": "P-wang", "revoked_at": "2026-11-01", "reason": "moved"}])
        s.replace_list("quarantine_orders", [
            {"id": "Q1", "person_ref": ref(ZHANG), "kind": "health_monitoring",
             "start": "2026-11-25", "end": "2026-12-08"},
            {"id": "Q2", "person_ref": ref(LI), "kind": "home_quarantine",
             "start": "2026-11-20T10:00:00+08:00", "end": "2026-11-30"},
            {"id": "Q3", "person_ref": ref(WANG), "kind": "home_quarantine",
             "start": "2026-11-01", "end": "2026-11-14"},
        ])
        s.replace_list("vehicles", [{"plate": "苏A12345", "household_id": "H1"},
                                    {"plate": "苏AD12345", "household_id": "H3"}])
        s.replace_list("risk_areas", [
            {"code": "420100", "name": "武汉市", "level": "high"},
            {"code": "110105", "name": "朝阳区", "level": "medium"},
            {"code": "320105001", "name": "南京市建邺区某街道", "level": "high"},
        ])
        s.replace_list("guards", [{"id": "G7", "masked_name": "赵*"}])
        yield s


@pytest.fixture
def lookup(store):
    return Lookup(store.conn, salt=SALT)


def test_person_from_a_code_or_an_id_number(lookup):
    zhang = lookup.person(ref(ZHANG))
    assert zhang and zhang.masked_name == "张*丰" and zhang.household_id == "H1" and zhang.role == "owner"
    assert lookup.person_by_id_number("110105 19491231 002x") == zhang
    stranger = "32010619900101123" + id_check_digit("32010619900101123")
    assert lookup.person_by_id_number(stranger) is None  # a real number on no list
    assert lookup.household("H1").address == "3栋2单元501"


def test_a_mistyped_id_number_is_named_not_searched(lookup, monkeypatch):
    monkeypatch.setenv("GATE_LANG", "zh")
    with pytest.raises(BadLookup) as err:
        lookup.person_by_id_number("110105194912310021")
    assert err.value.code == "id_number_check_digit" and str(err.value) == "身份证号：校验位不符，请核对是否输错"
    with pytest.raises(BadLookup) as err:
        lookup.person(ref(ZHANG) + "x" * 100)
    assert err.value.code == "too_long" and str(err.value) == "人员编号：过长，最多64个字"


def test_name_search_within_a_household_or_an_address(lookup):
    assert [p.masked_name for p in lookup.find_by_name("张三丰", household_id="H1")] == ["张*丰"]
    assert lookup.find_by_name("张三", household_id="H1") == ()  # 张* is in H2, not H1
    assert [p.household_id for p in lookup.find_by_name("张", address="3栋2单元")] == ["H1", "H2"]
    assert [p.masked_name for p in lookup.find_by_name("张*", address="3栋")] == ["张*"]
    assert lookup.find_by_name("张三丰", address="5栋") == ()
    assert [h.id for h in lookup.households_at("3栋2单元")] == ["H1", "H2"]
    assert {p.masked_name for p in lookup.members("H1")} == {"张*丰", "李*"}
    with pytest.raises(BadLookup) as err:
        lookup.find_by_name("张三丰")
    assert err.value.code == "required"
    with pytest.raises(BadLookup):
        lookup.find_by_name("  ", household_id="H1")


def test_pass_valid_now_not_revoked(lookup):
    assert lookup.valid_pass(ref(ZHANG), NOW).serial == "P-now"
    # A date alone covers its whole local day: valid until the end of 31 December, Beijing time.
    assert lookup.valid_pass(ref(ZHANG), dt.datetime(2026, 12, 31, 23, 59, tzinfo=CST)).serial == "P-now"
    assert lookup.valid_pass(ref(ZHANG), dt.datetime(2027, 1, 1, 0, 0, tzinfo=CST)).serial == "P-next"
    assert lookup.valid_pass(ref(ZHANG), dt.datetime(2026, 6, 30, 16, 0, tzinfo=dt.UTC)).serial == "P-now"
    assert lookup.valid_pass(ref(WANG), NOW) is None  # revoked
    revoked = lookup.pass_by_serial("P-wang")
    assert revoked.revoked and revoked.revoked_reason == "moved" and not revoked.valid_at(NOW)
    assert lookup.valid_pass(ref(LI), NOW) is None  # 李 has no pass
    assert lookup.pass_by_serial("nope") is None


def test_quarantine_and_monitoring_orders(lookup):
    z = lookup.order(ref(ZHANG), NOW)
    assert z.kind == "health_monitoring" and z.until == dt.datetime(2026, 12, 9, tzinfo=CST)
    li = lookup.order(ref(LI), NOW)
    assert li.kind == "home_quarantine"  # "until 2026-11-30": the whole of the 30th
    assert lookup.order(ref(LI), dt.datetime(2026, 12, 1, 0, 0, tzinfo=CST)) is None
    assert lookup.order(ref(LI), dt.datetime(2026, 11, 20, 9, 59, tzinfo=CST)) is None  # not yet
    assert lookup.order(ref(WANG), NOW) is None  # ended
    facts = lookup.about(ref(ZHANG), NOW)
    assert facts.person.masked_name == "张*丰" and facts.household.address == "3栋2单元501"
    assert facts.resident_pass.serial == "P-now" and facts.order.id == "Q1"
    assert lookup.about("p1:nobody", NOW).person is None


def test_home_quarantine_wins_and_a_typo_never_lifts_an_order(store, lookup):
    store.replace_list("quarantine_orders", [
        {"id": "A", "person_ref": ref(ZHANG), "kind": "health_monitoring", "start": "2026-11-01", "end": "2027-01-01"},
        {"id": "B", "person_ref": ref(ZHANG), "kind": "home_quarantine", "start": "2026-11-29", "end": "2026-12-01"},
    ])
    assert lookup.order(ref(ZHANG), NOW).id == "B"
    assert lookup.order(ref(ZHANG), dt.datetime(2026, 12, 3, tzinfo=CST)).id == "A"
    # a list with an end date that is no date is refused whole: the running orders stay
    with pytest.raises(StoreError, match="end"):
        store.replace_list("quarantine_orders", [
            {"id": "C", "person_ref": ref(ZHANG), "kind": "home_quarantine", "start": "2026-11-29", "end": "soon"}])
    assert lookup.order(ref(ZHANG), NOW).id == "B"


def test_visited_household_under_home_quarantine(lookup):
    [order] = lookup.household_orders("H1", NOW)  # 李 is under home quarantine in H1
    assert order.person_ref == ref(LI)
    assert lookup.household_orders("H1", dt.datetime(2026, 12, 2, tzinfo=CST)) == ()  # over; 张's is monitoring
    assert lookup.household_orders("H3", NOW) == ()  # 王's ended
    assert lookup.household_orders("H2", NOW) == ()


def test_vehicle_and_its_exits_on_a_local_day(store, lookup):
    assert lookup.vehicle("苏a·12345").household_id == "H1"
    assert lookup.vehicle("苏 AD 12345").household_id == "H3"
    assert lookup.vehicle("苏B99999") is None

    def out(plate, at, action="admit", direction="out"):
        store.record(Entry(gate="east", direction=direction, subject_kind="resident", action=action,
                           report="none", vehicle={"form": "vehicle", "plate": plate}),
                     device_id="g1", now=at)

    day = dt.date(2026, 11, 30)
    out("苏A12345", dt.datetime(2026, 11, 30, 0, 10, tzinfo=CST))            # 16:10Z the day before
    out("苏A12345", dt.datetime(2026, 11, 30, 23, 50, tzinfo=CST))
    out("苏A12345", dt.datetime(2026, 11, 30, 12, 0, tzinfo=CST), action="refuse")  # not an exit
    out("苏A12345", dt.datetime(2026, 11, 30, 13, 0, tzinfo=CST), direction="in")   # coming back
    out("苏A12345", dt.datetime(2026, 11, 29, 23, 59, tzinfo=CST))          # yesterday, local
    out("苏A12345", dt.datetime(2026, 12, 1, 0, 0, tzinfo=CST))             # tomorrow, local
    out("苏AD12345", dt.datetime(2026, 11, 30, 9, 0, tzinfo=CST))
    store.record(Entry(gate="east", direction="out", subject_kind="resident", action="admit", report="none"),
                 device_id="g1", now=NOW)  # a person on foot
    assert lookup.vehicle_exits("苏A·12345", day) == 2
    assert lookup.vehicle_exits("苏AD12345", day) == 1
    assert lookup.vehicle_exits("苏A12345", dt.date(2026, 12, 1)) == 1
    assert lookup.vehicle_exits("苏B99999", day) == 0


@pytest.mark.parametrize("place, level, within, inside", [
    ("420102", "high", ["420100"], []),          # a county in a listed city
    ("420100", "high", ["420100"], []),
    ("420000", None, [], ["420100"]),            # the province: a city in it is listed, ask where
    ("110105", "medium", ["110105"], []),
    ("110106", None, [], []),
    ("320105", None, [], ["320105001"]),         # a county with a listed street in it
    ("320105001", "high", ["320105001"], []),
    ("320105002", None, [], []),
    ("420102003004", "high", ["420100"], []),    # a village code, within the city
    ("４２０１０２", "high", ["420100"], []),       # full-width digits as typed
])
def test_risk_areas_county_city_and_province(lookup, place, level, within, inside):
    check = lookup.risk(place)
    assert check.level == level
    assert [a.code for a in check.within] == within
    assert [a.code for a in check.inside] == inside


@pytest.mark.parametrize("place", ["4201", "42010x", "", "4201020"])
def test_a_place_that_is_not_a_region_code(lookup, place):
    with pytest.raises(BadLookup) as err:
        lookup.risk(place)
    assert err.value.code in ("region_code", "required")


def test_risk_areas_written_at_other_widths(store, lookup):
    store.replace_list("risk_areas", [{"code": "420100000000", "name": "武汉市", "level": "medium"},
                                      {"code": "320000", "name": "江苏省", "level": "high"}])
    assert lookup.risk("420102").level == "medium"
    assert lookup.risk("320105001").level == "high"


def test_list_ages_and_stale_lists(lookup):
    ages = {a.name: a for a in lookup.list_ages()}
    assert ages["households"].version == "h7"
    assert ages["households"].age(NOW) == dt.timedelta(hours=2)
    assert ages["passes"].age(NOW) == dt.timedelta(days=3)
    assert lookup.stale_lists(NOW, dt.timedelta(days=1)) == ("passes",)
    # Never received is the stalest of all.
    assert lookup.stale_lists(NOW, dt.timedelta(days=1), names=("trust_keys", "households")) == ("trust_keys",)


def test_look_ups_only_read_and_use_indexes(store):
    conn = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True)
    try:
        ro = Lookup(conn, salt=SALT)
        assert ro.person_by_id_number(ZHANG).masked_name == "张*丰"
        assert ro.valid_pass(ref(ZHANG), NOW) and ro.order(ref(LI), NOW)
        assert ro.household_orders("H1", NOW) and ro.risk("420102").level == "high"
        assert ro.vehicle_exits("苏A12345", dt.date(2026, 11, 30)) == 0
        assert ro.find_by_name("张", address="3栋")
        plans = {
            "passes": "SELECT * FROM passes WHERE person_ref = 'x'",
            "members": "SELECT * FROM residents WHERE household_id = 'x'",
            "exits": "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM entries WHERE vehicle IS NOT NULL "
                     "AND json_extract(vehicle, '$.plate') = 'x' AND created_utc >= 'a' AND created_utc < 'b'",
        }
        for name, sql in plans.items():
            sql = sql if sql.startswith("EXPLAIN") else "EXPLAIN QUERY PLAN " + sql
            detail = " ".join(r[3] for r in conn.execute(sql))
            assert "USING INDEX" in detail or "USING COVERING INDEX" in detail, (name, detail)
    finally:
        conn.close()


def test_the_store_creates_the_look_up_indexes(store):
    names = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"residents_household", "passes_person", "households_address", "entries_vehicle_plate"} <= names


def test_guard_on_the_list(lookup):
    assert lookup.guard("G7").masked_name == "赵*"
    assert lookup.guard("G8") is None
    with pytest.raises(BadLookup) as err:
        lookup.guard(" ")
    assert err.value.code == "required"
