"""The township server over real HTTP on 127.0.0.1, on SQLite and on PostgreSQL:
enrollment, signed requests, ingest rules, bad input, lists down, reports."""
from __future__ import annotations

import gzip
import json
import random
import time

import httpx
import pytest

from kiosk.store import Store
from sync import auth
from sync.admin import Admin, AdminError
from sync.client import enroll
from sync.server import Settings
from sync.testing import ServerThread, batch_body, fill, sample_entry, signed_request

TOKEN = "test-admin-token-abcdef"


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
def gate_a(server, admin):
    return enroll(server.url, admin.enrollment("river-garden", "east")["token"])


@pytest.fixture
def gate_b(server, admin):
    return enroll(server.url, admin.enrollment("pine-court", "north")["token"])


def entries_for(tmp_path, creds, n, **kw):
    store = Store.open(tmp_path / f"{creds.device_id}.db")
    store.conn.execute("PRAGMA synchronous = OFF")
    out = fill(store, creds.device_id, n, random.Random(n), **kw)
    store.close()
    return out


def post(server, creds, entries, **kw):
    return signed_request(server.url, creds, "POST", "/v1/entries", batch_body(entries, **{
        k: v for k, v in kw.items() if k in ("priority", "clock_sample")}), gzip_body=True,
        **{k: v for k, v in kw.items() if k not in ("priority", "clock_sample")})


def held(admin, device_id):
    return [(e["seq"], e["monotonic_ns"]) for e in admin.entries(device_id)]


# -- enrollment and authentication ------------------------------------------------------
def test_enrollment_token_works_once(server, admin):
    t = admin.enrollment("river-garden", "east")
    creds = enroll(server.url, t["token"])
    assert (creds.device_id, creds.community, creds.gate) == ("river-garden.east", "river-garden", "east")
    with pytest.raises(Exception, match="invalid_enrollment_token"):
        enroll(server.url, t["token"])
    with pytest.raises(Exception, match="invalid_enrollment_token"):
        enroll(server.url, "not-a-token-at-all")


def test_enrollment_must_prove_the_key(server, admin):
    t = admin.enrollment("river-garden", "east")
    mine, other = auth.new_device_key(), auth.new_device_key()
    body = json.dumps({"token": t["token"], "public_key": auth.public_key_text(mine)}).encode()
    h = auth.sign_headers(other, "enroll", "POST", "/v1/enroll", body)
    r = httpx.post(server.url + "/v1/enroll", content=body, headers=h)
    assert r.status_code == 401 and r.json()["error"] == "bad_signature"


def test_admin_endpoints_need_the_admin_token(server, gate_a):
    assert httpx.get(server.url + "/v1/admin/devices").status_code == 401
    r = httpx.get(server.url + "/v1/admin/devices", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["error"] == "admin_required"
    # A gate's signature is not an admin credential.
    r = signed_request(server.url, gate_a, "GET", "/v1/admin/devices")
    assert r.status_code == 401
    with pytest.raises(AdminError, match="admin_required"):
        Admin(server.url, "nope").devices()


@pytest.mark.parametrize("case", ["unsigned", "bad_signature", "unknown_device", "stale", "revoked"])
def test_gate_requests_are_authenticated(server, admin, gate_a, tmp_path, case):
    entries = entries_for(tmp_path, gate_a, 3)
    body = gzip.compress(batch_body(entries))
    if case == "unsigned":
        r = httpx.post(server.url + "/v1/entries", content=body, headers={"Content-Encoding": "gzip"})
        expect = (401, "unsigned")
    elif case == "bad_signature":
        r = signed_request(server.url, gate_a, "POST", "/v1/entries", batch_body(entries),
                           gzip_body=True, key=auth.new_device_key())
        expect = (401, "bad_signature")
    elif case == "unknown_device":
        r = signed_request(server.url, gate_a, "POST", "/v1/entries", batch_body(entries),
                           gzip_body=True, sign_as="nobody.gate")
        expect = (401, "unknown_device")
    elif case == "stale":
        r = post(server, gate_a, entries, now=time.time() - 3600)
        expect = (401, "stale_timestamp")
    else:
        admin.revoke(gate_a.device_id)
        r = post(server, gate_a, entries)
        expect = (403, "device_revoked")
        assert signed_request(server.url, gate_a, "GET", "/v1/manifest").status_code == 403
    assert (r.status_code, r.json()["error"]) == expect
    assert held(admin, gate_a.device_id) == []


def test_signature_binds_the_body_and_path(server, admin, gate_a, tmp_path):
    entries = entries_for(tmp_path, gate_a, 2)
    good = gzip.compress(batch_body(entries))
    h = auth.sign_headers(gate_a.key(), gate_a.device_id, "POST", "/v1/entries", good)
    h["Content-Encoding"] = "gzip"
    tampered = gzip.compress(batch_body(entries[:1]))
    r = httpx.post(server.url + "/v1/entries", content=tampered, headers=h)
    assert r.status_code == 401 and r.json()["error"] == "bad_signature"
    h2 = auth.sign_headers(gate_a.key(), gate_a.device_id, "GET", "/v1/lists/residents", b"")
    r = httpx.get(server.url + "/v1/lists/passes", headers=h2)
    assert r.status_code == 401
    assert held(admin, gate_a.device_id) == []


def test_a_replayed_request_is_refused_but_a_resent_batch_is_idempotent(server, admin, gate_a, tmp_path):
    entries = entries_for(tmp_path, gate_a, 5)
    body = gzip.compress(batch_body(entries))
    h = auth.sign_headers(gate_a.key(), gate_a.device_id, "POST", "/v1/entries", body)
    h["Content-Encoding"] = "gzip"
    first = httpx.post(server.url + "/v1/entries", content=body, headers=h)
    assert first.json() == {"acked_seq": 5, "stored": 5, "duplicates": 0}
    replay = httpx.post(server.url + "/v1/entries", content=body, headers=h)
    assert replay.status_code == 409 and replay.json()["error"] == "replayed_request"
    again = post(server, gate_a, entries)  # the client retrying after a lost answer
    assert again.status_code == 200
    assert again.json() == {"acked_seq": 5, "stored": 0, "duplicates": 5}
    assert len(held(admin, gate_a.device_id)) == 5


def test_a_gate_writes_only_its_own_entries_and_reads_only_its_community(
        server, admin, gate_a, gate_b, tmp_path):
    theirs = entries_for(tmp_path, gate_b, 3)
    r = post(server, gate_a, theirs)
    assert r.status_code == 403 and r.json()["error"] == "foreign_entry"
    mixed = entries_for(tmp_path, gate_a, 3) + theirs[:1]
    assert post(server, gate_a, mixed).status_code == 403
    assert held(admin, gate_a.device_id) == [] and held(admin, gate_b.device_id) == []

    admin.put_list("river-garden", "vehicles", [{"plate": "京A12345", "household_id": "h1"}])
    admin.put_list("pine-court", "vehicles", [{"plate": "京B99999", "household_id": "h9"}])
    a = signed_request(server.url, gate_a, "GET", "/v1/lists/vehicles").json()
    b = signed_request(server.url, gate_b, "GET", "/v1/lists/vehicles").json()
    assert [r["plate"] for r in a["rows"]] == ["京A12345"]
    assert [r["plate"] for r in b["rows"]] == ["京B99999"]
    # There is no way to name another community: the device's own is the only one.
    r = signed_request(server.url, gate_a, "GET", "/v1/lists/vehicles?community=pine-court").json()
    assert [x["plate"] for x in r["rows"]] == ["京A12345"]
    r = signed_request(server.url, gate_a, "GET", "/v1/admin/entries?device_id=pine-court.north")
    assert r.status_code == 401


# -- ingest rules ---------------------------------------------------------------------
def test_ingest_acks_highest_contiguous_and_refuses_gaps_whole(server, admin, gate_a, tmp_path):
    e = entries_for(tmp_path, gate_a, 10)
    assert post(server, gate_a, e[:4]).json()["acked_seq"] == 4
    r = post(server, gate_a, e[6:9])  # 5 and 6 missing
    assert r.status_code == 409 and r.json()["error"] == "seq_gap"
    assert "seq 5 is missing" in r.json()["detail"]
    assert [s for s, _ in held(admin, gate_a.device_id)] == [1, 2, 3, 4]  # nothing half-stored
    r = post(server, gate_a, e[2:10])  # overlapping resend: duplicates skipped
    assert r.json() == {"acked_seq": 10, "stored": 6, "duplicates": 2}
    assert [s for s, _ in held(admin, gate_a.device_id)] == list(range(1, 11))


def test_priority_batch_runs_ahead_and_fills_in_later(server, admin, gate_a, tmp_path):
    e = entries_for(tmp_path, gate_a, 6)
    e[4].report = "immediate"
    r = post(server, gate_a, [e[4]], priority=True)
    assert r.status_code == 200 and r.json() == {"acked_seq": 0, "stored": 1, "duplicates": 0}
    alarms = admin.alarms()["alarms"]
    assert [(a["device_id"], a["seq"]) for a in alarms] == [(gate_a.device_id, 5)]
    # The in-order stream may skip what the server already holds.
    r = post(server, gate_a, e[:4] + e[5:])
    assert r.json() == {"acked_seq": 6, "stored": 5, "duplicates": 0}
    r = post(server, gate_a, [e[1]], priority=True)
    assert r.status_code == 422 and r.json()["error"] == "priority_not_immediate"


def test_postgres_stores_the_usual_batch_in_one_statement_and_nothing_there_otherwise(
        server, admin, gate_a, tmp_path, monkeypatch):
    """PostgreSQL's usual batch (the next seqs) takes one statement; a batch that is not
    usual finds nothing to do there and is stored whole, once, by the full transaction."""
    db = server.app.state.server.db
    if db.dialect != "postgres":
        pytest.skip("SQLite stores every batch in its group commit")
    answers = []
    one_statement = db._store_next
    monkeypatch.setattr(db, "_store_next", lambda job: answers.append(one_statement(job)) or answers[-1])
    e = entries_for(tmp_path, gate_a, 10)
    for x in e:
        x.report = "immediate" if x.seq == 9 else "none"
    sent = [(e[:3], False), (e[:3], False), (e[5:6], False), (e[8:9], True), (e[3:8], False)]
    got = [post(server, gate_a, batch, priority=priority) for batch, priority in sent]
    assert [(r.status_code, r.json().get("acked_seq")) for r in got] == [
        (200, 3), (200, 3), (409, None), (200, 3), (200, 9)]
    usual = {"acked_seq": 3, "stored": 3, "duplicates": 0}
    # the first batch, then: a resend, a gap, a priority batch ahead, the gap filled behind it
    assert answers == [usual, None, None, None, None]
    assert [s for s, _ in held(admin, gate_a.device_id)] == list(range(1, 10))
    assert [a["seq"] for a in admin.alarms()["alarms"]] == [9]
    assert post(server, gate_a, e[9:]).json()["acked_seq"] == 10
    assert answers[-1] == {"acked_seq": 10, "stored": 1, "duplicates": 0}


def test_same_seq_different_entry_is_a_conflict(server, admin, gate_a, tmp_path):
    e = entries_for(tmp_path, gate_a, 3)
    post(server, gate_a, e)
    impostor = sample_entry(random.Random(9))
    impostor.device_id, impostor.seq = gate_a.device_id, 2
    impostor.created_utc, impostor.boot_id, impostor.monotonic_ns = e[1].created_utc, "other-boot", 7
    impostor.clock_synced = True
    r = post(server, gate_a, [impostor])
    assert r.status_code == 409 and r.json()["error"] == "seq_conflict"
    assert held(admin, gate_a.device_id) == [(x.seq, x.monotonic_ns) for x in e]


def _raw(server, creds, body: bytes, encoding: str | None = "gzip"):
    h = auth.sign_headers(creds.key(), creds.device_id, "POST", "/v1/entries", body)
    if encoding:
        h["Content-Encoding"] = encoding
    return httpx.post(server.url + "/v1/entries", content=body, headers=h)


def test_bad_input_gets_a_named_4xx_and_stores_nothing(server, admin, gate_a, tmp_path):
    e = entries_for(tmp_path, gate_a, 3)
    good = json.loads(batch_body(e))

    def with_entry(**change):
        b = json.loads(json.dumps(good))
        b["entries"][1].update(change)
        return gzip.compress(json.dumps(b).encode())

    cases = {
        "malformed_gzip": _raw(server, gate_a, b"\x1f\x8b\x08 this is not gzip"),
        "truncated_gzip": _raw(server, gate_a, gzip.compress(batch_body(e))[:-12]),
        "malformed_json": _raw(server, gate_a, gzip.compress(b'{"entries": [')),
        "not_json_at_all": _raw(server, gate_a, b"hello", encoding=None),
        "seq_as_string": _raw(server, gate_a, with_entry(seq="2")),
        "negative_seq": _raw(server, gate_a, with_entry(seq=-2)),
        "bad_report": _raw(server, gate_a, with_entry(report="whenever")),
        "bad_time": _raw(server, gate_a, with_entry(created_utc="yesterday")),
        "extra_field": _raw(server, gate_a, with_entry(id_number="110105194912310021")),
        "empty_batch": _raw(server, gate_a, gzip.compress(b'{"entries": []}')),
        "duplicate_seq": _raw(server, gate_a, gzip.compress(batch_body([e[0], e[1], e[1]]))),
        "brotli": _raw(server, gate_a, gzip.compress(batch_body(e)), encoding="br"),
        "nul_in_boot_id": _raw(server, gate_a, with_entry(boot_id="boot\u0000")),
    }
    expected = {
        "malformed_gzip": (400, "malformed_gzip"), "truncated_gzip": (400, "malformed_gzip"),
        "malformed_json": (400, "malformed_json"), "not_json_at_all": (400, "malformed_json"),
        "seq_as_string": (422, "invalid_entry"), "negative_seq": (422, "invalid_entry"),
        "bad_report": (422, "invalid_entry"), "bad_time": (422, "invalid_entry"),
        "extra_field": (422, "invalid_entry"), "empty_batch": (422, "invalid_entry"),
        "duplicate_seq": (422, "duplicate_seq_in_batch"), "brotli": (415, "unsupported_encoding"),
        "nul_in_boot_id": (422, "invalid_entry"),  # PostgreSQL's text holds no NUL
    }
    got = {k: (r.status_code, r.json()["error"]) for k, r in cases.items()}
    assert got == expected
    assert "entries.1.seq" in cases["seq_as_string"].json()["detail"]
    assert held(admin, gate_a.device_id) == []


def test_body_over_the_limit_is_413(db_url, tmp_path):
    with ServerThread(Settings(db_url=db_url, admin_token=TOKEN, max_body_bytes=20_000,
                               max_inflated_bytes=200_000)) as srv:
        admin = Admin(srv.url, TOKEN)
        creds = enroll(srv.url, admin.enrollment("c", "g")["token"])
        big = entries_for(tmp_path, creds, 400)
        r = _raw(srv, creds, batch_body(big), encoding=None)
        assert r.status_code == 413 and r.json()["error"] == "body_too_large"
        bomb = gzip.compress(b'{"entries": [' + b" " * 5_000_000 + b"]}", 9)
        assert len(bomb) < 20_000
        r = _raw(srv, creds, bomb)
        assert r.status_code == 413 and "inflates" in r.json()["detail"]
        assert admin.entries(creds.device_id) == []
        admin.close()


def test_lost_seqs_are_recorded_and_skipped(server, admin, gate_a, tmp_path):
    e = entries_for(tmp_path, gate_a, 8)
    post(server, gate_a, e[:3])
    e[6].report = "immediate"
    post(server, gate_a, [e[6]], priority=True)  # seq 7 held; 4..6 will be lost
    r = signed_request(server.url, gate_a, "POST", "/v1/device/lost", b'{"upto": 7}')
    assert r.json() == {"acked_seq": 7}
    state = signed_request(server.url, gate_a, "GET", "/v1/device").json()
    assert (state["acked_seq"], state["max_seq"]) == (7, 7)
    losses = admin.daily_report()["communities"]
    [river] = [c for c in losses if c["community"] == "river-garden"]
    assert river["lost_seqs"] == [{"device_id": gate_a.device_id, "from": 4, "to": 6}]


def test_clock_sample_redates_unsynchronised_entries(server, admin, gate_a, tmp_path):
    e = entries_for(tmp_path, gate_a, 2, clock_synced=False, boot_id="boot-1")
    # The gate believed it was 1970; 30 s (monotonic) passed between entry and upload.
    e[0].created_utc, e[0].monotonic_ns = "1970-01-01T00:05:00.000Z", 1_000_000_000
    e[1].created_utc, e[1].monotonic_ns = "1970-01-01T00:05:10.000Z", 11_000_000_000
    sample = {"boot_id": "boot-1", "monotonic_ns": 31_000_000_000,
              "wall_utc": "1970-01-01T00:05:30.000Z", "synchronised": False}
    before = time.time()
    assert post(server, gate_a, e, clock_sample=sample).status_code == 200
    got = admin.entries(gate_a.device_id)
    from kiosk.clock import parse_iso
    first = parse_iso(got[0]["corrected_utc"]).timestamp()
    assert got[0]["time_source"] == "monotonic" and got[0]["created_utc"].startswith("1970")
    assert before - 31 <= first <= time.time() - 29
    assert parse_iso(got[1]["corrected_utc"]).timestamp() - first == pytest.approx(10, abs=0.01)
    [dev] = admin.devices()[:1] if admin.devices()[0]["device_id"] == gate_a.device_id else [
        d for d in admin.devices() if d["device_id"] == gate_a.device_id]
    assert dev["clock_offset_s"] > 50 * 365 * 86400  # the server knows how far off the gate was


# -- policy and lists down ------------------------------------------------------------------
def test_policy_and_lists_with_etags(server, admin, gate_a):
    r = signed_request(server.url, gate_a, "GET", "/v1/manifest")
    assert r.status_code == 200 and r.json()["documents"] == {}
    assert signed_request(server.url, gate_a, "GET", "/v1/policy").status_code == 404
    p = admin.set_policy("river-garden", risk_level="high", fever_c=37.3)
    r = signed_request(server.url, gate_a, "GET", "/v1/policy")
    assert r.json()["policy"] == {"risk_level": "high", "fever_c": 37.3}
    assert r.headers["etag"] == p["etag"]
    r304 = signed_request(server.url, gate_a, "GET", "/v1/policy", headers={"If-None-Match": p["etag"]})
    assert r304.status_code == 304 and r304.content == b""
    m = signed_request(server.url, gate_a, "GET", "/v1/manifest")
    assert signed_request(server.url, gate_a, "GET", "/v1/manifest",
                          headers={"If-None-Match": m.headers["etag"]}).status_code == 304
    admin.put_list("river-garden", "risk_areas", [{"code": "420100", "name": "武汉市", "level": "high"}])
    m2 = signed_request(server.url, gate_a, "GET", "/v1/manifest",
                        headers={"If-None-Match": m.headers["etag"]})
    assert m2.status_code == 200 and set(m2.json()["documents"]) == {"policy", "risk_areas"}


def test_admin_upload_is_checked_against_the_gate_schema(server, admin):
    with pytest.raises(AdminError, match="invalid_list"):
        admin.put_list("c", "risk_areas", [{"code": "1", "name": "x", "level": "apocalyptic"}])
    with pytest.raises(AdminError, match="invalid_list"):
        admin.put_list("c", "vehicles", [{"plate": "A", "colour": "red"}])
    with pytest.raises(AdminError, match="unknown_list"):
        admin.put_list("c", "everyone", [])
    with pytest.raises(AdminError, match="invalid_request"):
        admin.set_policy("c", risk_level="extreme")


# -- reports ---------------------------------------------------------------------------
def test_daily_report_lists_every_community_with_zeros(server, admin, gate_a, gate_b, tmp_path):
    admin.set_policy("quiet-lane", risk_level="low")  # a community with no gate traffic
    e = entries_for(tmp_path, gate_a, 6)
    for x, report in zip(e, ["none", "none", "daily", "immediate", "none", "none"], strict=True):
        x.report = report
        x.action = {"none": "admit", "daily": "refuse", "immediate": "isolate"}[report]
    post(server, gate_a, e)
    rep = admin.daily_report()
    by = {c["community"]: c for c in rep["communities"]}
    assert set(by) == {"river-garden", "pine-court", "quiet-lane"}
    assert by["river-garden"]["entries"] == 6
    assert by["river-garden"]["by_action"] == {"admit": 4, "refuse": 1, "isolate": 1}
    assert by["river-garden"]["immediate"] == 1
    assert by["pine-court"]["entries"] == 0 and by["pine-court"]["by_action"] == {}
    assert [g["gate"] for g in by["pine-court"]["gates"]] == ["north"]
    assert by["quiet-lane"]["entries"] == 0 and by["quiet-lane"]["gates"] == []
    other_day = admin.daily_report(day="2020-01-01")
    assert all(c["entries"] == 0 for c in other_day["communities"])
    feed = admin.alarms()
    assert [a["seq"] for a in feed["alarms"]] == [4]
    assert admin.alarms(after=feed["next_after"])["alarms"] == []


def test_openapi_documents_the_versioned_endpoints(server):
    doc = httpx.get(server.url + "/openapi.json").json()
    paths = set(doc["paths"])
    for p in ("/v1/entries", "/v1/enroll", "/v1/time", "/v1/manifest", "/v1/policy",
              "/v1/lists/{name}", "/v1/device", "/v1/admin/enrollments",
              "/v1/admin/reports/daily", "/v1/admin/alarms"):
        assert p in paths
    assert "Batch" in doc["components"]["schemas"]


# -- what is kept of a batch ------------------------------------------------------------
def test_a_batch_is_kept_as_the_gate_sent_it(server, admin, gate_a, tmp_path):
    """Gzipped, it is kept as those very bytes (a sixteenth of the JSON); uncompressed, as
    its text; each entry's full record reads back the same from either."""
    entries = entries_for(tmp_path, gate_a, 4)
    raw = batch_body(entries[:2])
    sent = gzip.compress(raw)
    h = {**auth.sign_headers(gate_a.key(), gate_a.device_id, "POST", "/v1/entries", sent),
         "Content-Type": "application/json", "Content-Encoding": "gzip"}
    assert httpx.post(server.url + "/v1/entries", content=sent, headers=h).status_code == 200
    plain = batch_body(entries[2:])
    assert signed_request(server.url, gate_a, "POST", "/v1/entries", plain).status_code == 200
    db = server.app.state.server.db
    with db.tx() as t:
        kept = t.all("SELECT body, body_gz FROM batches ORDER BY id")
    assert [(body, bytes(gz) if gz is not None else None) for body, gz in kept] == \
        [("", sent), (plain.decode(), None)]
    records = admin.entries(gate_a.device_id)
    assert [r["seq"] for r in records] == [1, 2, 3, 4]
    wanted = json.loads(raw)["entries"] + json.loads(plain)["entries"]
    assert [{k: r[k] for k in w} for r, w in zip(records, wanted, strict=True)] == wanted


def test_a_database_from_before_the_gzip_column_is_brought_up_to_date(tmp_path):
    from sync.server.db import Database
    path = tmp_path / "township.db"
    db = Database.open(str(path))
    with db.tx(write=True) as t:  # as the table was made before body_gz
        t.all("ALTER TABLE batches DROP COLUMN body_gz")
    db.close()
    with ServerThread(Settings(db_url=str(path), admin_token=TOKEN)) as srv:
        admin = Admin(srv.url, TOKEN)
        creds = enroll(srv.url, admin.enrollment("river-garden", "east")["token"])
        assert post(srv, creds, entries_for(tmp_path, creds, 3)).status_code == 200
        assert [r["seq"] for r in admin.entries(creds.device_id)] == [1, 2, 3]
        admin.close()
