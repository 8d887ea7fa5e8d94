"""The township server tried as an attacker and as bad luck would (issue 10): no gate
can stall it, no stranger can make it read a body, every field is bounded, every bad
input is a named 4xx, device ids cannot be taken over, files are private."""
from __future__ import annotations

import gzip
import json
import logging
import os
import random
import socket
import stat
import threading
import types
from pathlib import Path

import httpx
import pytest

from kiosk import wire
from sync import auth
from sync.admin import Admin, AdminError
from sync.client import enroll
from sync.client import wire as to_wire
from sync.server import Settings
from sync.testing import ServerThread, sample_entry, signed_request

TOKEN = "hardening-admin-token"


@pytest.fixture
def server(tmp_path):
    with ServerThread(Settings(db_url=str(tmp_path / "township.db"), admin_token=TOKEN)) as srv:
        yield srv


@pytest.fixture
def admin(server):
    a = Admin(server.url, TOKEN)
    yield a
    a.close()


@pytest.fixture
def gate_a(server, admin):
    return enroll(server.url, admin.enrollment("river-garden", "east")["token"])


@pytest.fixture
def gate_b(server, admin):
    return enroll(server.url, admin.enrollment("pine-court", "north")["token"])


def entry(creds, seq: int, **change) -> dict:
    e = to_wire(sample_entry(random.Random(seq), report="none"))
    e.update(device_id=creds.device_id, seq=seq, created_utc="2026-11-25T08:00:00.000Z",
             boot_id="boot-1", monotonic_ns=seq * 1000, clock_synced=True)
    e.update(change)
    return e


def post(server, creds, entries: list[dict], *, priority: bool = False, clock: dict | None = None,
         raw: bytes | None = None) -> httpx.Response:
    body = {"entries": entries, "priority": priority}
    if clock:
        body["clock"] = clock
    data = raw if raw is not None else json.dumps(body).encode()
    return signed_request(server.url, creds, "POST", "/v1/entries", data, gzip_body=True)


def held(admin, device_id) -> list[int]:
    return [e["seq"] for e in admin.entries(device_id)]


def raw_http(port: int, head: str, body: bytes = b"", timeout: float = 20.0) -> tuple[int, dict]:
    """Send a request head and part of a body, then read the answer without sending
    the rest: what the server says before it has the whole body."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, json.loads(data.split(b"\r\n\r\n", 1)[1] or b"{}")


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


# -- 1. no gate can stall the server --------------------------------------------------
def test_a_lost_range_up_to_the_largest_seq_is_declared_at_once(server, admin, gate_a, gate_b):
    assert post(server, gate_a, [entry(gate_a, s) for s in (1, 2, 3)]).json()["acked_seq"] == 3
    top = entry(gate_a, wire.MAX_SEQ, report="immediate", action="isolate")
    assert post(server, gate_a, [top], priority=True).status_code == 200
    answers: dict[str, httpx.Response] = {}

    def declare():  # the old server walked 2^40 integers here, holding the write lock
        answers["lost"] = signed_request(server.url, gate_a, "POST", "/v1/device/lost",
                                         json.dumps({"upto": wire.MAX_SEQ}).encode())

    t = threading.Thread(target=declare)
    t.start()
    others = [post(server, gate_b, [entry(gate_b, s)]).status_code for s in range(1, 6)]
    t.join(60)
    assert not t.is_alive() and answers["lost"].json() == {"acked_seq": wire.MAX_SEQ}
    assert others == [200] * 5 and held(admin, gate_b.device_id) == [1, 2, 3, 4, 5]
    [river] = [c for c in admin.daily_report()["communities"] if c["community"] == "river-garden"]
    assert river["lost_seqs"] == [{"device_id": gate_a.device_id, "from": 4, "to": wire.MAX_SEQ - 1}]


def test_numbers_past_what_a_gate_can_produce_are_refused(server, admin, gate_a):
    cases = {
        "seq_past_bound": [entry(gate_a, wire.MAX_SEQ + 1)],
        "seq_past_64_bits": [entry(gate_a, 2**64)],
        "monotonic_past_bound": [entry(gate_a, 1, monotonic_ns=wire.MAX_MONOTONIC_NS + 1)],
        "monotonic_past_64_bits": [entry(gate_a, 1, monotonic_ns=2**70)],
        "too_many_readings": [entry(gate_a, 1, readings=[{"body_c": 36.5}] * (wire.MAX_READINGS + 1))],
        "reading_with_many_keys": [entry(gate_a, 1, readings=[{f"k{i}": 1 for i in range(100)}])],
        "reading_not_flat": [entry(gate_a, 1, readings=[{"body_c": {"deep": 1}}])],
        "deep_details": [entry(gate_a, 1, details={"a": {"b": {"c": {"d": 1}}}})],
        "wide_answers": [entry(gate_a, 1, answers={f"q{i}": True for i in range(wire.MAX_KEYS + 1)})],
        "long_name": [entry(gate_a, 1, masked_name="张" * (wire.MAX_WORD + 1))],
        "too_many_reasons": [entry(gate_a, 1, reasons=["x"] * (wire.MAX_REASONS + 1))],
        "long_reading_text": [entry(gate_a, 1, readings=[{"raw": "x" * (wire.MAX_TEXT + 1)}])],
        "infinite_reading": [entry(gate_a, 1, readings=[{"body_c": float("inf")}])],
    }
    for name, entries in cases.items():
        r = post(server, gate_a, entries)
        assert (r.status_code, r.json()["error"]) == (422, "invalid_entry"), name
    r = signed_request(server.url, gate_a, "POST", "/v1/device/lost", b'{"upto": %d}' % 2**64)
    assert (r.status_code, r.json()["error"]) == (422, "invalid_request")
    assert held(admin, gate_a.device_id) == []


def test_a_small_gzip_that_expands_to_megabytes_of_readings_is_refused(server, admin, gate_a):
    # The probe: ~26 KiB of gzip expanding to 13 MiB of tiny readings.
    reading = b'{"t":1},'
    bomb = (b'{"entries":[' + json.dumps(entry(gate_a, 1)).encode()[:-1]
            + b',"readings":[' + reading * (13 * 2**20 // len(reading)) + b'{"t":1}]}]}')
    r = post(server, gate_a, [], raw=bomb)
    assert (r.status_code, r.json()["error"]) == (413, "body_too_large")
    assert "inflates" in r.json()["detail"]
    assert held(admin, gate_a.device_id) == []


# -- 2. authenticate before reading, limit every body ---------------------------------
def test_an_admin_request_without_the_token_is_refused_before_its_body(server):
    # 300 MiB announced, 64 KiB sent: the 401 must come back without the rest.
    head = (f"PUT /v1/admin/communities/c/lists/residents HTTP/1.1\nHost: x\n"
            f"Content-Type: application/json\nContent-Length: {300 * 2**20}\n")
    status, said = raw_http(server.port, head, b'{"rows": [' + b" " * 65536)
    assert (status, said["error"]) == (401, "admin_required")


def test_an_oversized_body_is_refused_before_it_is_read_on_every_route(server, gate_a):
    auth_header = f"Authorization: Bearer {TOKEN}\n"
    for method, path, extra in [("PUT", "/v1/admin/communities/c/policy", auth_header),
                                ("PUT", "/v1/admin/communities/c/lists/residents", auth_header),
                                ("POST", "/v1/admin/enrollments", auth_header),
                                ("POST", "/v1/enroll", ""), ("POST", "/v1/entries", "")]:
        head = f"{method} {path} HTTP/1.1\nHost: x\n{extra}Content-Length: {300 * 2**20}\n"
        status, said = raw_http(server.port, head, b"{")
        assert (status, said["error"]) == (413, "body_too_large"), path
    # Chunked, with no length announced: cut off at the limit all the same.
    r = httpx.put(server.url + "/v1/admin/communities/c/policy", headers={"Authorization": f"Bearer {TOKEN}"},
                  content=iter([b'{"risk_level": "low", "note": "' + b"x" * 70_000 + b'"}']))
    assert (r.status_code, r.json()["error"]) == (413, "body_too_large")


def test_an_answer_before_a_body_too_large_to_drop_closes_the_connection(server):
    # Left open, each such connection's buffers stayed in the server after the client
    # reset it: a stranger opening hundreds a second grew it by 50 KB a connection.
    for head in (f"PUT /v1/admin/communities/c/lists/residents HTTP/1.1\r\nHost: x\r\n"
                 f"Content-Length: {300 * 2**20}\r\n\r\n",
                 f"POST /v1/enroll HTTP/1.1\r\nHost: x\r\nContent-Length: {300 * 2**20}\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", server.port), timeout=20) as s:
            s.sendall(head.encode() + b"x" * 65536)
            data = b""
            while chunk := s.recv(65536):  # the server ends the connection after its answer
                data += chunk
        assert b"\r\nconnection: close\r\n" in data.split(b"\r\n\r\n")[0].lower() + b"\r\n"


def test_a_client_still_sending_a_refused_body_gets_its_answer(server):
    # The rest of a body within the route's limit is read and dropped before the early
    # answer: closing on unread data would reset the connection, answer and all.
    body = b'{"token": "' + b"x" * 40_000 + b'"}'
    with httpx.Client(base_url=server.url, timeout=20) as http:
        for _ in range(50):
            r = http.post("/v1/enroll", content=body)  # not signed: refused from its headers
            assert r.status_code == 401 and r.headers.get("connection") != "close"
        r = http.put("/v1/admin/communities/c/policy", content=body)  # no admin token
        assert r.status_code == 401 and r.headers.get("connection") != "close"
    # a request whose body was read keeps its connection for the next one
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        r = http.post("/v1/admin/enrollments", json={"community": "river-garden", "gate": "east"})
        assert r.status_code == 201 and r.headers.get("connection") != "close"


def test_a_gate_request_is_checked_from_its_headers_before_its_body(server, gate_a):
    h = auth.sign_headers(gate_a.key(), "nobody.gate", "POST", "/v1/entries", b"")
    head = "POST /v1/entries HTTP/1.1\nHost: x\nContent-Length: 3000000\n" + "".join(
        f"{k}: {v}\n" for k, v in h.items())
    status, said = raw_http(server.port, head, b"")  # nothing of the body sent at all
    assert (status, said["error"]) == (401, "unknown_device")


# -- 5. bad input is a named 4xx, never a 500 -----------------------------------------
def test_impossible_and_out_of_range_times_are_refused_and_never_stored(server, admin, gate_a):
    sample = {"boot_id": "boot-1", "monotonic_ns": 10**12, "wall_utc": "2026-11-25T08:00:00.000Z",
              "synchronised": True}
    for created in ("2026-02-30T08:00:00.000Z", "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59"):
        for clock in (None, sample):
            r = post(server, gate_a, [entry(gate_a, 1, created_utc=created)], clock=clock)
            assert (r.status_code, r.json()["error"]) == (422, "invalid_entry"), created
    r = post(server, gate_a, [entry(gate_a, 1)], clock={**sample, "wall_utc": "0001-01-01T00:00:00+23:59"})
    assert r.status_code == 422
    r = post(server, gate_a, [entry(gate_a, 1)], clock={**sample, "monotonic_ns": 2**64})
    assert r.status_code == 422
    assert held(admin, gate_a.device_id) == []


def test_bad_query_values_are_named_4xx(server, admin):
    h = {"Authorization": f"Bearer {TOKEN}"}
    cases = [("/v1/admin/alarms", {"after": str(2**64)}, "invalid_request"),
             ("/v1/admin/entries", {"after_seq": str(2**64)}, "invalid_request"),
             ("/v1/admin/reports/daily", {"day": "9999-12-31"}, "invalid_request"),
             ("/v1/admin/reports/daily", {"day": "0001-01-01"}, "invalid_request"),
             ("/v1/admin/reports/daily", {"day": "2026-02-30"}, "invalid_request"),
             ("/v1/admin/reports/daily", {"tz": "America"}, "unknown_timezone"),
             ("/v1/admin/reports/daily", {"tz": "../../../etc/passwd"}, "unknown_timezone"),
             ("/v1/admin/reports/daily", {"tz": "Asia/" + "x" * 300}, "invalid_request")]
    for path, params, reason in cases:
        r = httpx.get(server.url + path, params=params, headers=h)
        assert (r.status_code // 100, r.json()["error"]) == (4, reason), (path, params)
    assert admin.daily_report(day="2026-11-25", tz="Europe/Berlin")["tz"] == "Europe/Berlin"


def test_a_lone_surrogate_in_a_policy_value_is_refused(server, admin):
    h = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    r = httpx.put(server.url + "/v1/admin/communities/c/policy", headers=h,
                  content=b'{"risk_level": "low", "note": "\\ud800"}')
    assert (r.status_code, r.json()["error"]) == (422, "invalid_request")
    r = httpx.put(server.url + "/v1/admin/communities/c/lists/guards", headers=h,
                  content=b'{"rows": [{"id": "g1", "masked_name": "\\udfff"}]}')
    assert (r.status_code, r.json()["error"]) == (422, "invalid_list")
    assert "guards: row 0" in r.json()["detail"]


def test_a_wrong_list_column_is_a_422_naming_the_list_and_the_column(admin):
    with pytest.raises(AdminError, match="422 invalid_list: vehicles: row 1: unknown column 'colour'"):
        admin.put_list("c", "vehicles", [{"plate": "A"}, {"plate": "B", "colour": "red"}])


# -- 6. the request clock -------------------------------------------------------------
@pytest.mark.parametrize("stamp", ["nan", "inf", "-inf", "1e9", "+1764057600", "1764057600.", "1 2",
                                   "١٧٦٤٠٥٧٦٠٠", "0x10", "9" * 30])
def test_a_signed_time_that_is_not_plain_digits_is_refused(server, gate_a, stamp):
    h = auth.sign_headers(gate_a.key(), gate_a.device_id, "GET", "/v1/device", b"")
    h[auth.TIMESTAMP] = stamp
    r = httpx.get(server.url + "/v1/device", headers={k: v.encode() for k, v in h.items()})
    assert (r.status_code, r.json()["error"]) == (401, "bad_timestamp")


def test_a_device_that_sends_too_fast_is_told_to_slow_down():
    cache = auth.NonceCache(per_device=3)
    for n in range(3):
        assert cache.add("d", f"n{n}", 1000.0, now=1000.0)
    with pytest.raises(auth.AuthError) as err:
        cache.add("d", "n9", 1000.0, now=1000.0)
    assert (err.value.status, err.value.reason) == (429, "too_many_requests")
    assert cache.add("other", "n9", 1000.0, now=1000.0)  # other gates are not held up


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_nonces_shared_in_the_database_refuse_replays_and_a_device_too_fast(backend, tmp_path, request):
    from sync.server.db import Database, Rejected
    from sync.server.errors import Problem
    from sync.server.limits import DatabaseBudget, DatabaseNonces
    url = (str(tmp_path / "township.db") if backend == "sqlite"
           else request.getfixturevalue("pg_cluster").new_database(f"n{random.getrandbits(48):x}"))
    db = Database.open(url)
    try:
        nonces = DatabaseNonces(db, per_device=3)
        assert [nonces.add("d", f"n{n}", 1000.0, now=1000.0) for n in range(3)] == [True] * 3
        assert nonces.add("d", "n1", 1000.0, now=1000.0) is False  # a replay
        with pytest.raises(Rejected) as err:
            nonces.add("d", "n9", 1000.0, now=1000.0)
        assert (err.value.status, err.value.reason) == (429, "too_many_requests")
        assert nonces.add("d", "n9", 1060.0, now=1060.0)  # refused: not kept; the next minute counts anew
        assert nonces.add("other", "n9", 1000.0, now=1000.0)  # other gates are not held up
        budget = DatabaseBudget(db, burst=1000, per_s=1.0)
        budget.charge("d", 800)
        with pytest.raises(Problem) as too_much:
            budget.charge("d", 800)
        assert (too_much.value.status, too_much.value.reason) == (429, "too_many_bytes")
        budget.charge("d", 100)  # the refused charge took nothing
        with pytest.raises(Problem):  # a first charge past the burst
            budget.charge("e", 1200)
        budget.charge("e", 900)  # took nothing either
    finally:
        db.close()


def test_workers_sharing_a_database_share_the_nonces(tmp_path):
    """Two server processes' worth of apps on one database: a request replayed to the
    other worker is still refused (nonces in the database, not in memory)."""
    db_url = str(tmp_path / "township.db")
    settings = Settings(db_url=db_url, admin_token=TOKEN, shared_state=True)
    with ServerThread(settings) as one, ServerThread(settings) as two:
        admin = Admin(one.url, TOKEN)
        creds = enroll(one.url, admin.enrollment("c", "g")["token"])
        h = auth.sign_headers(creds.key(), creds.device_id, "GET", "/v1/device", b"")
        assert httpx.get(one.url + "/v1/device", headers=h).status_code == 200
        r = httpx.get(two.url + "/v1/device", headers=h)
        assert (r.status_code, r.json()["error"]) == (409, "replayed_request")
        admin.close()


# -- 7. device ids ----------------------------------------------------------------------
def test_device_ids_are_unique_by_construction(server, admin):
    # x + y.z and x.y + z would both be "x.y.z": a dot is not allowed in either name.
    for community, gate in (("x", "y.z"), ("x.y", "z")):
        with pytest.raises(AdminError, match="422 invalid_request"):
            admin.enrollment(community, gate)
    a = admin.enrollment("x", "y")
    assert a["device_id"] == "x.y"


def test_a_token_for_one_device_cannot_take_over_another(server, admin, gate_a):
    # An explicit device id that is already another gate's: refused when the token is made.
    with pytest.raises(AdminError, match="409 device_id_taken"):
        admin.enrollment("pine-court", "north", device_id=gate_a.device_id)
    # Two pending tokens may not name one device id for two gates either.
    admin.enrollment("c1", "g1", device_id="shared-id")
    with pytest.raises(AdminError, match="409 device_id_taken"):
        admin.enrollment("c2", "g2", device_id="shared-id")
    assert signed_request(server.url, gate_a, "GET", "/v1/device").status_code == 200
    # Re-enrolling the same gate with a token made for it re-keys it, as before.
    again = enroll(server.url, admin.enrollment("river-garden", "east")["token"])
    assert again.device_id == gate_a.device_id
    assert signed_request(server.url, again, "GET", "/v1/device").status_code == 200
    assert signed_request(server.url, gate_a, "GET", "/v1/device").status_code == 401


# -- 8. one text, one meaning ------------------------------------------------------------
def test_data_after_the_gzip_stream_is_refused(server, admin, gate_a):
    body = json.dumps({"entries": [entry(gate_a, 1)]}).encode()
    other = json.dumps({"entries": [entry(gate_a, 2)]}).encode()
    for data in (gzip.compress(body) + gzip.compress(other), gzip.compress(body) + b"junk"):
        h = auth.sign_headers(gate_a.key(), gate_a.device_id, "POST", "/v1/entries", data)
        r = httpx.post(server.url + "/v1/entries", content=data, headers={**h, "Content-Encoding": "gzip"})
        assert (r.status_code, r.json()["error"]) == (400, "trailing_data")
    assert held(admin, gate_a.device_id) == []


# -- 10. files --------------------------------------------------------------------------
def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_township_database_is_private(tmp_path, caplog):
    fresh = tmp_path / "fresh" / "township.db"
    old_umask = os.umask(0o022)
    try:
        # shared_state: as with --workers N, the gates' limits in files of their own beside it
        with ServerThread(Settings(db_url=str(fresh), admin_token=TOKEN, shared_state=True)) as srv:
            Admin(srv.url, TOKEN).set_policy("c", risk_level="low")
            gate = enroll(srv.url, Admin(srv.url, TOKEN).enrollment("c", "east")["token"])
            assert signed_request(srv.url, gate, "GET", "/v1/device").status_code == 200
            files = [p for p in fresh.parent.iterdir() if p.name.startswith("township.db")]
            assert {p.name for p in files} >= {"township.db", "township.db-wal", "township.db-shm",
                                               "township.db-writer", "township.db-lanes",
                                               "township.db-shares", "township.db-shares-wal"}
            assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}
            # Entries wait for the disk at every commit; the shares (nonces, budgets) need not.
            synchronous = {name: srv_db._conn().execute("PRAGMA synchronous").fetchone()[0]
                           for name, srv_db in (("entries", srv.app.state.server.db),
                                                ("shares", srv.app.state.server.nonces.db))}
            assert synchronous == {"entries": 2, "shares": 1}  # FULL, NORMAL
        loose = tmp_path / "loose.db"
        loose.touch(mode=0o644)
        os.chmod(loose, 0o644)
        with caplog.at_level(logging.WARNING, logger="gate.server"):
            with ServerThread(Settings(db_url=str(loose), admin_token=TOKEN)):
                assert _mode(loose) == 0o600
        assert "readable by others (mode 0644); now 0600" in caplog.text
    finally:
        os.umask(old_umask)


def test_one_gate_cannot_take_more_than_its_share_of_parsing(tmp_path):
    as_greedy = types.SimpleNamespace(device_id="c.greedy")
    one_batch = len(json.dumps({"entries": [entry(as_greedy, s) for s in range(1, 51)], "priority": False}))
    settings = Settings(db_url=str(tmp_path / "township.db"), admin_token=TOKEN,
                        device_burst_bytes=one_batch * 3 // 2, device_bytes_per_s=1.0)
    with ServerThread(settings) as srv:
        admin = Admin(srv.url, TOKEN)
        greedy = enroll(srv.url, admin.enrollment("c", "greedy")["token"])
        calm = enroll(srv.url, admin.enrollment("c", "calm")["token"])
        big = [entry(greedy, s) for s in range(1, 51)]  # room for this one, not for a second
        assert post(srv, greedy, big).status_code == 200
        r = post(srv, greedy, [entry(greedy, s) for s in range(51, 101)])
        assert (r.status_code, r.json()["error"]) == (429, "too_many_bytes") and "Retry-After" in r.headers
        assert post(srv, calm, [entry(calm, 1)]).status_code == 200  # the others are served
        assert held(admin, greedy.device_id) == list(range(1, 51))
        admin.close()
