"""The wire contract (kiosk/wire.py) is what both the gate and the township server
use: the gate's entry and its list tables must agree with it, field for field."""
from __future__ import annotations

import dataclasses
import random

import pytest

from kiosk import wire
from kiosk.store import LISTS, Entry, Store
from sync.client import wire as to_wire
from sync.testing import fill


def test_the_gates_entry_and_the_wire_entry_have_the_same_fields():
    gate = {f.name: f for f in dataclasses.fields(Entry) if f.name != "synced_at"}
    server = wire.WireEntry.model_fields
    assert set(gate) == set(server)
    # Required on the wire: what the gate must always set, plus what recording fills in.
    gate_required = {n for n, f in gate.items()
                     if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    assert set(wire.RECORDED_FIELDS) <= set(gate)
    assert {n for n, f in server.items() if f.is_required()} == gate_required | set(wire.RECORDED_FIELDS)
    # What the gate may leave empty (None) the wire accepts empty.
    for name, f in gate.items():
        if f.default is None and name not in wire.RECORDED_FIELDS:
            assert server[name].default is None, name


def test_a_recorded_entry_is_a_valid_wire_entry(tmp_path):
    with Store.open(tmp_path / "g.db") as store:
        [e] = fill(store, "c.g", 1, random.Random(1))
    checked = wire.WireEntry.model_validate(to_wire(e))
    assert checked.seq == 1 and checked.created_utc == e.created_utc


def test_the_gates_list_tables_have_the_contracts_columns(tmp_path):
    assert LISTS == wire.LISTS
    with Store.open(tmp_path / "g.db") as store:
        for name, model in wire.ROWS.items():
            info = store.conn.execute(f"PRAGMA table_info({name})").fetchall()
            assert [r["name"] for r in info] == list(model.model_fields), name
            not_null = {r["name"] for r in info if r["notnull"] or (r["pk"] and name != "trust_keys")}
            assert {c for c, f in model.model_fields.items() if f.is_required()} == not_null, name


@pytest.mark.parametrize("rows, message", [
    ([{"plate": "A", "colour": "red"}], "vehicles: row 0: unknown column 'colour'"),
    ([{"household_id": "h"}], "vehicles: row 0: column 'plate': Field required"),
    ([{"plate": "A"}, {"plate": "A"}], "vehicles: row 1: plate 'A' appears twice"),
    ([{"plate": "A" * 65}], "vehicles: row 0: column 'plate'"),
    ([{"plate": 7}], "vehicles: row 0: column 'plate'"),
    ("A", "vehicles: rows must be a list"),
])
def test_a_wrong_row_names_the_list_and_the_column(rows, message):
    with pytest.raises(wire.WireError) as err:
        wire.check_rows("vehicles", rows)
    assert message in str(err.value)


def test_times_are_read_by_a_real_parser():
    # kept as written once known to be real: a date is a whole local day on the gate
    assert wire.check_rows("passes", [{"serial": "s", "person_ref": "p", "valid_from": "2026-11-01",
                                       "valid_until": "2026-11-30T08:00:00+08:00"}]) == [
        {"serial": "s", "person_ref": "p", "valid_from": "2026-11-01",
         "valid_until": "2026-11-30T08:00:00+08:00"}]
    for bad in ("2026-13-01", "2026-02-30", "1899-01-01", "soon"):
        with pytest.raises(wire.WireError):
            wire.check_rows("passes", [{"serial": "s", "person_ref": "p", "valid_from": bad,
                                        "valid_until": "2026-12-31"}])
    for bad in ("2026-02-30T00:00:00Z", "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59",
                "2300-01-01T00:00:00Z", "yesterday", "2026-11-01T25:00:00Z"):
        with pytest.raises(ValueError):
            wire.parse_time(bad)


def test_the_policy_document_is_bounded():
    assert wire.PolicyDocument.model_validate({"risk_level": "high", "visitors_allowed": False})
    for bad in ({"risk_level": "high", "note": "\ud800"},
                {"risk_level": "high", "visitors": {"max": 2}},  # a key the gate would not honour
                {"risk_level": "high", "fever_c": float("nan")},
                {"risk_level": "high", "visitors_allowed": "no"},
                {"risk_level": "high", "vehicle_exits_per_day": 10**30},
                {"risk_level": "high", "unknown_person_low": "courier"}):
        with pytest.raises(ValueError):
            wire.PolicyDocument.model_validate(bad)


def test_the_policy_document_holds_exactly_the_settings_the_rules_read():
    import dataclasses

    from kiosk.rules import GatePolicy
    assert set(wire.PolicyDocument.model_fields) == {f.name for f in dataclasses.fields(GatePolicy)}
    full = {"risk_level": "medium", "fever_c": 37.5, "plausible_min_c": 33.0, "plausible_max_c": 44.0,
            "visitors_allowed": False, "vehicle_exits_per_day": 2, "test_max_age_h": 48.0,
            "lists_max_age_h": 24.0, "unknown_person_low": "visitor", "unknown_person_medium": "visitor",
            "unknown_person_high": "visitor"}
    doc = wire.PolicyDocument.model_validate(full).model_dump(exclude_none=True)
    assert GatePolicy.from_settings(doc) == GatePolicy(**full)


def test_the_township_server_loads_only_the_contract_of_the_gate():
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", "import sys, sync.server; print(' '.join(sorted(m for m in "
                          "sys.modules if m.split('.')[0] in ('kiosk', 'devices', 'sqlite_utils'))))"],
                         capture_output=True, text=True, check=True).stdout.split()
    # and the words for the rules' reasons (a table importing nothing of the gate), which the
    # township's daily report prints as the guard's screen does
    assert out == ["kiosk", "kiosk.clock", "kiosk.reasons", "kiosk.wire"]
