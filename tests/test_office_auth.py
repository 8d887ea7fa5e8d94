"""Township staff accounts over real HTTP on 127.0.0.1 (SQLite, and PostgreSQL where it
matters): roles, CSRF, sessions and their expiry, the login limit shared by servers on
one database, disabled users, passwords never in clear, the audit log, and the
`gate township user` commands."""
from __future__ import annotations

import datetime as dt
import json
import logging
import random
import socket

import httpx
import pytest
from argon2 import PasswordHasher

from kiosk import clock
from sync import auth
from sync.admin import Admin, AdminError
from sync.client import enroll, wire
from sync.server import Settings, accounts
from sync.server.db import Database
from sync.server.errors import Problem
from sync.testing import ServerThread, batch_body, sample_entry, signed_request

TOKEN = "office-auth-admin-token-0123456789"
PASSWORDS = {"town": "town-admin-pass-甲", "look": "read-only-pass-乙", "li": "river-staff-pass-丙",
             "zhao": "pine-staff-pass-丁"}
ROLES = {"town": ("admin", None), "look": ("readonly", None), "li": ("community", "river-garden"),
         "zhao": ("community", "pine-court")}


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
def sqlite_server(tmp_path):
    with ServerThread(Settings(db_url=str(tmp_path / "township.db"), admin_token=TOKEN)) as srv:
        yield srv


def add_staff(srv: ServerThread, *names: str) -> Admin:
    """These accounts (default all four), made the way an administrator makes them: with
    the token. Each is an Argon2 hash: a test makes only those it signs in with."""
    a = Admin(srv.url, TOKEN)
    for name in names or ROLES:
        role, community = ROLES[name]
        a.add_user(name, PASSWORDS[name], role, community)
    return a


class Staff:
    """A browser-like client: the session cookie in its jar, the CSRF token remembered."""

    def __init__(self, srv: ServerThread, name: str, password: str | None = None):
        self.http = httpx.Client(base_url=srv.url, timeout=30)
        r = self.http.post("/v1/session", json={"username": name, "password": password or PASSWORDS[name]})
        assert r.status_code == 200, r.text
        self.csrf = r.json()["csrf_token"]

    def get(self, path: str, **kw) -> httpx.Response:
        return self.http.get(path, **kw)

    def change(self, method: str, path: str, **kw) -> httpx.Response:
        return self.http.request(method, path, headers={accounts.CSRF_HEADER: self.csrf}, **kw)


def refused(r: httpx.Response, status: int, reason: str) -> None:
    assert (r.status_code, r.json()["error"]) == (status, reason), r.text


def post_alarm(srv: ServerThread, creds) -> None:
    """One immediate report (isolate) from this gate, dated now."""
    e = wire(sample_entry(random.Random(1), report="immediate"))
    e.update(device_id=creds.device_id, seq=1, created_utc=clock.iso(clock.utc_now()), boot_id="boot-1",
             monotonic_ns=1000, clock_synced=True)
    r = signed_request(srv.url, creds, "POST", "/v1/entries", batch_body([e]), gzip_body=True)
    assert r.status_code == 200, r.text


def raw_head(port: int, head: str, body: bytes = b"") -> tuple[int, dict]:
    """Send a request head and part of a body; read what the server answers without the rest."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        data = b""
        while b"}" not in data.split(b"\r\n\r\n", 1)[-1]:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1]), json.loads(data.split(b"\r\n\r\n", 1)[1])


def audit_rows(srv: ServerThread) -> list[dict]:
    return Admin(srv.url, TOKEN).audit(limit=1000)["records"]


# -- roles --------------------------------------------------------------------------------
def test_community_staff_see_and_change_only_their_own_community(server):
    office = add_staff(server, "li")
    river = enroll(server.url, office.enrollment("river-garden", "east")["token"])
    pine = enroll(server.url, office.enrollment("pine-court", "north")["token"])
    post_alarm(server, river)
    post_alarm(server, pine)
    db = server.app.state.server.db
    li = Staff(server, "li")

    # Reading: their community only, whatever they ask for.
    assert {d["community"] for d in li.get("/v1/admin/devices").json()["devices"]} == {"river-garden"}
    assert {a["community"] for a in li.get("/v1/admin/alarms").json()["alarms"]} == {"river-garden"}
    assert [c["community"] for c in li.get("/v1/admin/reports/daily").json()["communities"]] == ["river-garden"]
    assert {r["community"] for r in li.get("/v1/admin/audit", params={"community": "pine-court"}).json()
            ["records"]} == {"river-garden"}
    refused(li.get("/v1/admin/entries"), 403, "township_only")
    refused(li.get("/v1/admin/users"), 403, "township_only")

    # Changing another community: refused, nothing changed.
    rows = {"rows": [{"id": "G07", "masked_name": "李*"}]}
    refused(li.change("PUT", "/v1/admin/communities/pine-court/lists/guards", json=rows), 403, "other_community")
    assert db.document("pine-court", "guards") is None
    refused(li.change("POST", "/v1/admin/enrollments", json={"community": "pine-court", "gate": "west"}),
            403, "other_community")
    refused(li.change("POST", f"/v1/admin/devices/{pine.device_id}/revoke"), 403, "other_community")
    assert db.device(pine.device_id).status == "active"
    # The risk level is the township's decision, even for their own community.
    refused(li.change("PUT", "/v1/admin/communities/river-garden/policy", json={"risk_level": "high"}),
            403, "township_admin_only")
    assert db.document("river-garden", "policy") is None
    refused(li.change("POST", "/v1/admin/users", json={"username": "x", "password": "p" * 12,
                                                        "role": "admin"}), 403, "township_admin_only")

    # Their own community: lists, enrollment tokens, revoking their gate.
    assert li.change("PUT", "/v1/admin/communities/river-garden/lists/guards", json=rows).status_code == 200
    assert json.loads(db.document("river-garden", "guards")["body"]) == rows["rows"]
    assert li.change("POST", "/v1/admin/enrollments",
                     json={"community": "river-garden", "gate": "west"}).status_code == 201
    assert li.change("POST", f"/v1/admin/devices/{river.device_id}/revoke").status_code == 200
    assert db.device(river.device_id).status == "revoked"


def test_reader_and_changer_check_the_community_in_the_path(tmp_path):
    """The dependencies other routes build on (reports, pages): a {community} in the path."""
    from fastapi import Depends

    from sync.server.deps import Actor, changer, reader

    srv = ServerThread(Settings(db_url=str(tmp_path / "township.db"), admin_token=TOKEN))

    @srv.app.get("/v1/admin/communities/{community}/probe")
    def probe(community: str, actor: Actor = Depends(reader)):
        return {"who": actor.name}

    @srv.app.put("/v1/admin/communities/{community}/probe")
    def change_probe(community: str, actor: Actor = Depends(changer)):
        return {"who": actor.name}

    with srv:
        add_staff(srv, "li", "look", "town")
        li, look, town = Staff(srv, "li"), Staff(srv, "look"), Staff(srv, "town")
        own, other = "/v1/admin/communities/river-garden/probe", "/v1/admin/communities/pine-court/probe"
        assert li.get(own).json() == {"who": "li"}
        refused(li.get(other), 403, "other_community")
        assert look.get(other).json() == {"who": "look"} and town.get(other).json() == {"who": "town"}
        assert li.change("PUT", own).json() == {"who": "li"}
        refused(li.change("PUT", other), 403, "other_community")
        refused(look.change("PUT", own), 403, "read_only")
        refused(town.http.put(own), 403, "csrf_failed")
        assert town.change("PUT", other).json() == {"who": "town"}


def test_read_only_reads_every_community_and_changes_nothing(server):
    office = add_staff(server, "look", "li")
    gate = enroll(server.url, office.enrollment("pine-court", "north")["token"])
    post_alarm(server, gate)
    db = server.app.state.server.db
    look = Staff(server, "look")
    for path in ("/v1/admin/devices", "/v1/admin/alarms", "/v1/admin/reports/daily", "/v1/admin/entries",
                 "/v1/admin/users", "/v1/admin/audit"):
        assert look.get(path).status_code == 200, path
    assert [d["device_id"] for d in look.get("/v1/admin/devices").json()["devices"]] == [gate.device_id]
    before = audit_rows(server)
    for method, path, body in [
            ("PUT", "/v1/admin/communities/pine-court/policy", {"risk_level": "high"}),
            ("PUT", "/v1/admin/communities/pine-court/lists/guards", {"rows": []}),
            ("POST", "/v1/admin/enrollments", {"community": "pine-court", "gate": "west"}),
            ("POST", f"/v1/admin/devices/{gate.device_id}/revoke", None),
            ("POST", "/v1/admin/users", {"username": "x", "password": "p" * 12, "role": "admin"}),
            ("POST", "/v1/admin/users/li/disable", None),
            ("PUT", "/v1/admin/users/li/password", {"password": "q" * 12})]:
        refused(look.change(method, path, json=body), 403, "read_only")
    assert db.device(gate.device_id).status == "active"
    assert db.document("pine-court", "policy") is None and db.document("pine-court", "guards") is None
    assert audit_rows(server) == before
    Staff(server, "li")  # li's password and account are untouched


def test_nobody_reaches_the_office_without_signing_in(sqlite_server):
    for path in ("/v1/admin/devices", "/v1/admin/users", "/v1/admin/audit"):
        refused(httpx.get(sqlite_server.url + path), 401, "admin_required")
        refused(httpx.get(sqlite_server.url + path, cookies={"gate_session": "made-up"}), 401, "not_signed_in")
    refused(httpx.get(sqlite_server.url + "/v1/session"), 401, "not_signed_in")
    # A bad cookie is refused before the body is read (300 MiB announced, 1 KiB sent).
    head = (f"PUT /v1/admin/communities/c/lists/residents HTTP/1.1\nHost: x\nCookie: gate_session=made-up\n"
            f"Content-Type: application/json\nContent-Length: {300 * 2**20}\n")
    assert raw_head(sqlite_server.port, head, b'{"rows": [' + b" " * 1024) == (
        401, {"error": "not_signed_in", "detail": "sign in first (no such session: signed out, or the "
                                                  "password was changed)"})


def test_the_session_cookie_is_httponly_strict_and_secure_off_loopback(sqlite_server):
    add_staff(sqlite_server, "town")
    login = {"username": "town", "password": PASSWORDS["town"]}
    local = httpx.post(sqlite_server.url + "/v1/session", json=login).headers["set-cookie"]
    named = httpx.post(sqlite_server.url + "/v1/session", json=login,
                       headers={"Host": "township.example"}).headers["set-cookie"]
    for cookie in (local, named):
        flags = {f.strip().split("=")[0].lower(): f.strip() for f in cookie.split(";")}
        assert "httponly" in flags and flags["samesite"].lower() == "samesite=strict" and flags["path"] == "Path=/"
    assert "secure" not in local.lower()    # plain http on 127.0.0.1: tests and a local trial
    assert "; secure" in named.lower()      # any other name: the browser sends it over https only


# -- CSRF ---------------------------------------------------------------------------------
def test_a_change_made_with_the_cookie_needs_the_sessions_csrf_token(sqlite_server):
    add_staff(sqlite_server, "town")
    db = sqlite_server.app.state.server.db
    town, other = Staff(sqlite_server, "town"), Staff(sqlite_server, "town")
    assert town.csrf != other.csrf  # one token per session
    policy = "/v1/admin/communities/river-garden/policy"
    refused(town.http.put(policy, json={"risk_level": "high"}), 403, "csrf_failed")
    refused(town.http.put(policy, json={"risk_level": "high"}, headers={accounts.CSRF_HEADER: "x" * 43}),
            403, "csrf_failed")
    refused(town.http.put(policy, json={"risk_level": "high"}, headers={accounts.CSRF_HEADER: other.csrf}),
            403, "csrf_failed")
    refused(town.http.delete("/v1/session"), 403, "csrf_failed")
    assert db.document("river-garden", "policy") is None
    assert town.get("/v1/session").json()["username"] == "town"   # still signed in
    assert town.change("PUT", policy, json={"risk_level": "high"}).status_code == 200
    # A script with the admin token needs no CSRF token: a browser never sends it by itself.
    r = httpx.put(sqlite_server.url + policy, json={"risk_level": "low"}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and json.loads(db.document("river-garden", "policy")["body"])["risk_level"] == "low"
    # A form (the dashboard) carries it in the csrf_token field.
    r = town.http.request("DELETE", "/v1/session", data={accounts.CSRF_FIELD: town.csrf})
    assert r.status_code == 200
    refused(town.get("/v1/session"), 401, "not_signed_in")


# -- sessions ------------------------------------------------------------------------------
def test_sessions_end_when_idle_at_their_end_and_at_logout(server):
    add_staff(server, "li")
    db = server.app.state.server.db
    li = Staff(server, "li")
    cookie = li.http.cookies["gate_session"]
    assert li.get("/v1/session").json()["username"] == "li"
    with db.tx(write=True) as t:  # unused for longer than the idle time
        t.all("UPDATE sessions SET idle_until = ?", (0,))
    refused(li.get("/v1/admin/devices"), 401, "session_expired")
    refused(li.get("/v1/session"), 401, "not_signed_in")  # and it is gone from the database
    with db.tx() as t:
        assert t.one("SELECT COUNT(*) FROM sessions")[0] == 0

    li = Staff(server, "li")
    cookie = li.http.cookies["gate_session"]
    assert li.change("DELETE", "/v1/session").status_code == 200
    refused(httpx.get(server.url + "/v1/session", cookies={"gate_session": cookie}), 401, "not_signed_in")

    # The idle deadline moves on with use; the absolute end does not.
    settings = Settings(db_url="unused", admin_token=None, session_idle_s=600, session_max_s=1000)
    session = accounts.login(db, settings, "li", PASSWORDS["li"])
    with db.tx() as t:
        (t0,) = t.row("SELECT expires - 1000 FROM sessions WHERE id_hash = ?", (accounts.token_id(session.token),))
    assert accounts.session_actor(db, settings, session.token, now=t0 + 100).name == "li"
    assert accounts.session_actor(db, settings, session.token, now=t0 + 650).name == "li"  # moved on at +100
    with pytest.raises(Problem, match="session has ended"):
        accounts.session_actor(db, settings, session.token, now=t0 + 1001)
    session = accounts.login(db, settings, "li", PASSWORDS["li"])
    with pytest.raises(Problem, match="session has ended"):
        accounts.session_actor(db, settings, session.token, now=t0 + 601 + 60)  # never used: idle


def test_failed_logins_are_limited_across_servers_on_one_database(db_url):
    settings = Settings(db_url=db_url, admin_token=TOKEN, login_failures_per_user=3,
                        login_failures_per_address=6)
    with ServerThread(settings) as a, ServerThread(settings) as b:
        add_staff(a, "li", "town")
        for srv in (a, a, b):
            refused(httpx.post(srv.url + "/v1/session", json={"username": "li", "password": "guess-guess"}),
                    401, "bad_credentials")
        r = httpx.post(b.url + "/v1/session", json={"username": "li", "password": PASSWORDS["li"]})
        refused(r, 429, "too_many_logins")
        assert 1 <= int(r.headers["Retry-After"]) <= settings.login_window_s
        Staff(a, "town")  # another login from the same address is not yet limited
        for name in ("nobody1", "nobody2", "nobody3"):  # an unknown name counts the same
            refused(httpx.post(b.url + "/v1/session", json={"username": name, "password": "guess-guess"}),
                    401, "bad_credentials")
        refused(httpx.post(a.url + "/v1/session", json={"username": "town", "password": PASSWORDS["town"]}),
                429, "too_many_logins")  # six failures from this address
        with a.app.state.server.db.tx(write=True) as t:  # the window passes
            t.all("UPDATE login_failures SET at = at - ?", (settings.login_window_s,))
        Staff(b, "li")


def test_a_disabled_user_cannot_sign_in_and_loses_open_sessions(sqlite_server):
    office = add_staff(sqlite_server, "li")
    li = Staff(sqlite_server, "li")
    office.disable_user("li")
    refused(li.get("/v1/admin/devices"), 401, "not_signed_in")
    login = {"username": "li", "password": PASSWORDS["li"]}
    refused(httpx.post(sqlite_server.url + "/v1/session", json=login), 403, "account_disabled")
    refused(httpx.post(sqlite_server.url + "/v1/session", json={**login, "password": "wrong-wrong"}),
            401, "bad_credentials")  # a stranger learns nothing about the account
    assert [u["disabled_utc"] is not None for u in office.users() if u["username"] == "li"] == [True]
    office.enable_user("li")
    Staff(sqlite_server, "li")


def test_bad_login_input_is_a_named_one_line_error(sqlite_server):
    add_staff(sqlite_server, "li")
    url = sqlite_server.url + "/v1/session"
    refused(httpx.post(url, json={"username": "li", "password": "x" * 10_000}), 422, "invalid_request")
    refused(httpx.post(url, json={"username": "李" * 100, "password": "whatever-1"}), 422, "invalid_request")
    refused(httpx.post(url, content=b"{not json", headers={"Content-Type": "application/json"}),
            422, "invalid_request")
    refused(httpx.post(url, json={"username": "../etc", "password": "whatever-1"}), 401, "bad_credentials")
    # A browser's cross-site post cannot sign anyone in (login CSRF), even with the right password.
    refused(httpx.post(url, json={"username": "li", "password": PASSWORDS["li"]},
                       headers={"Sec-Fetch-Site": "cross-site"}), 403, "cross_site_login")
    r = httpx.post(url, json={"username": "ghost", "password": "whatever-1"})
    assert r.json() == httpx.post(url, json={"username": "li", "password": "whatever-1"}).json()


# -- passwords ---------------------------------------------------------------------------
def test_passwords_are_never_stored_or_logged_in_clear(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    new = "a-brand-new-password-戊"
    typo = "town-admin-pass-甲甲"
    with ServerThread(Settings(db_url=str(tmp_path / "township.db"), admin_token=TOKEN)) as srv:
        office = add_staff(srv)
        Staff(srv, "town")
        httpx.post(srv.url + "/v1/session", json={"username": "town", "password": typo})
        office.set_password("li", new)
        Staff(srv, "li", new)
        refused(httpx.post(srv.url + "/v1/session", json={"username": "li", "password": PASSWORDS["li"]}),
                401, "bad_credentials")
        db = srv.app.state.server.db
        with db.tx() as t:
            hashes = dict(t.all("SELECT username, password_hash FROM users"))
        stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("township.db"))
    for secret in [*PASSWORDS.values(), new, typo]:
        assert secret.encode() not in stored and secret not in caplog.text
    assert all(h.startswith("$argon2id$") for h in hashes.values())
    assert PasswordHasher().verify(hashes["li"], new)
    assert any("signed in: li" in m for m in caplog.messages)  # the log says who, never the password


# -- the audit log -----------------------------------------------------------------------
def refuse_audit_rows(db_url: str, refuse: bool) -> None:
    """Make the database itself refuse (or again take) every new audit row: a trigger."""
    db = Database.open(db_url)
    try:
        with db.tx(write=True) as t:
            if db.dialect == "sqlite":
                t.all("DROP TRIGGER IF EXISTS no_audit")
                if refuse:
                    t.all("CREATE TRIGGER no_audit BEFORE INSERT ON audit_log BEGIN "
                          "SELECT RAISE(ABORT, 'audit refused'); END")
            else:
                t.all("DROP TRIGGER IF EXISTS no_audit ON audit_log")
                if refuse:
                    t.all("CREATE OR REPLACE FUNCTION no_audit() RETURNS trigger LANGUAGE plpgsql AS "
                          "$$ BEGIN RAISE EXCEPTION 'audit refused'; END $$")
                    t.all("CREATE TRIGGER no_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION no_audit()")
    finally:
        db.close()


def test_a_change_and_its_audit_row_are_stored_both_or_neither(server, db_url):
    office = add_staff(server, "zhao")
    office.set_policy("pine-court", risk_level="low")
    office.put_list("pine-court", "guards", [{"id": "G01", "masked_name": "王*"}])
    creds = enroll(server.url, office.enrollment("pine-court", "north")["token"])
    post_alarm(server, creds)
    [alarm] = office.alarms(open_only=True)["alarms"]
    before = audit_rows(server)
    http = office.http

    # The database refuses the audit row: the change it records is not stored either.
    refuse_audit_rows(db_url, True)
    for method, path, body in [
            ("PUT", "/v1/admin/communities/pine-court/policy", {"risk_level": "high"}),
            ("PUT", "/v1/admin/communities/pine-court/lists/guards", {"rows": []}),
            ("POST", "/v1/admin/enrollments", {"community": "pine-court", "gate": "south"}),
            ("POST", f"/v1/admin/devices/{creds.device_id}/revoke", None),
            ("POST", f"/v1/admin/alarms/{alarm['id']}/acknowledge", {"note": "已处理"}),
            ("POST", "/v1/admin/users/zhao/disable", None),
            ("POST", "/v1/admin/users", {"username": "wu", "password": "wu-staff-pass-戊", "role": "readonly"})]:
        r = http.request(method, path, json=body, headers={"Connection": "close"})  # uvicorn closes it after a fault
        assert (r.status_code, r.json()["error"]) in ((500, "server_fault"), (503, "storage_unavailable")), r.text
    refuse_audit_rows(db_url, False)
    assert audit_rows(server) == before
    policy = signed_request(server.url, creds, "GET", "/v1/policy").json()
    assert policy["policy"]["risk_level"] == "low"  # the gate still gets the level before the refused change
    assert signed_request(server.url, creds, "GET", "/v1/lists/guards").json()["rows"] == [
        {"id": "G01", "masked_name": "王*"}]
    assert [d["status"] for d in office.devices()] == ["active"]
    assert [a["id"] for a in office.alarms(open_only=True)["alarms"]] == [alarm["id"]]
    assert {u["username"]: u["disabled_utc"] for u in office.users()} == {"zhao": None}
    db = Database.open(db_url)
    with db.tx() as t:
        assert t.all("SELECT gate FROM enrollments") == [("north",)]
    db.close()

    # A change the database takes is stored with its row; one it refuses (a device id of
    # another gate) leaves no row.
    office.set_policy("pine-court", risk_level="high")
    with pytest.raises(AdminError, match="device_id_taken"):
        office.enrollment("river-garden", "east", device_id=creds.device_id)
    rows = audit_rows(server)
    assert [(r["action"], r["community"], r["detail"].get("risk_level")) for r in rows[:len(rows) - len(before)]] == [
        ("risk_level", "pine-court", "high")]
def test_every_change_is_in_the_audit_log_with_who_and_when(server):
    office = add_staff(server)
    start = clock.utc_now() - dt.timedelta(seconds=1)
    town, li = Staff(server, "town"), Staff(server, "li")
    assert town.change("PUT", "/v1/admin/communities/pine-court/policy", json={"risk_level": "high"}).status_code == 200
    assert li.change("PUT", "/v1/admin/communities/river-garden/lists/guards",
                     json={"rows": [{"id": "G07", "masked_name": "李*"}]}).status_code == 200
    token = li.change("POST", "/v1/admin/enrollments", json={"community": "river-garden", "gate": "east"}).json()
    enroll(server.url, token["token"])
    office.revoke("river-garden.east")
    assert town.change("POST", "/v1/admin/users/zhao/disable").status_code == 200
    end = clock.utc_now() + dt.timedelta(seconds=1)

    look = Staff(server, "look")
    rows = look.get("/v1/admin/audit").json()["records"]
    made = [r for r in rows if r["action"] not in ("signed_in", "user_added")]
    assert [(r["actor"], r["role"], r["action"], r["community"]) for r in made] == [
        ("town", "admin", "user_disabled", None),
        ("admin-token", "admin", "device_revoked", "river-garden"),
        ("li", "community", "enrollment_token", "river-garden"),
        ("li", "community", "list_upload", "river-garden"),
        ("town", "admin", "risk_level", "pine-court")]
    assert all(start <= clock.parse_iso(r["at_utc"]) <= end for r in made)
    assert next(r for r in rows if r["action"] == "risk_level")["detail"]["risk_level"] == "high"
    assert next(r for r in rows if r["action"] == "list_upload")["detail"]["rows"] == 1
    assert token["token"] not in json.dumps(rows)  # the audit says a token was made, never the token
    assert all(auth.token_hash(token["token"]) not in json.dumps(r) for r in rows)
    # Paging, newest first.
    first = look.get("/v1/admin/audit", params={"limit": 2}).json()
    rest = look.get("/v1/admin/audit", params={"before": first["next_before"], "limit": 1000}).json()
    assert [r["id"] for r in first["records"] + rest["records"]] == [r["id"] for r in rows]
    # Community staff read their own community's rows only.
    assert {r["community"] for r in li.get("/v1/admin/audit").json()["records"]} == {"river-garden"}


# -- `gate township user` -----------------------------------------------------------------
def test_township_user_commands(sqlite_server, gate):
    pw, new = "first-password-庚", "second-password-辛"
    said: list[str] = []

    def township(*args: str, stdin: str | None = None):
        r = gate("township", *args, "--server", sqlite_server.url, input=stdin, env={"GATE_ADMIN_TOKEN": TOKEN})
        said.append(r.stdout + r.stderr)
        return r

    r = township("user", "add", "wu", "--role", "community", "--community", "river-garden",
                 "--password-stdin", stdin=pw + "\n")
    assert r.returncode == 0 and r.stdout.strip() == "added wu (community of river-garden)", r.stderr
    Staff(sqlite_server, "wu", pw)
    r = township("user", "add", "qian", "--role", "community", "--password-stdin",
                 stdin="long-enough-pass\n")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "community_role" in r.stderr
    r = township("user", "passwd", "wu", "--password-stdin", stdin=new + "\n")
    assert r.returncode == 0, r.stderr
    refused(httpx.post(sqlite_server.url + "/v1/session", json={"username": "wu", "password": pw}),
            401, "bad_credentials")
    Staff(sqlite_server, "wu", new)
    r = township("user", "disable", "wu")
    assert r.returncode == 0, r.stderr
    refused(httpx.post(sqlite_server.url + "/v1/session", json={"username": "wu", "password": new}),
            403, "account_disabled")
    r = township("user", "list")
    assert r.returncode == 0 and r.stdout.startswith("wu ") and "community of river-garden, disabled since" in r.stdout
    r = township("audit")
    assert [line.split()[4] for line in r.stdout.splitlines()] == [
        "user_disabled", "signed_in", "password_set", "signed_in", "user_added"]
    r = township("user", "passwd", "wu", stdin=new + "\n")
    assert r.returncode == 1 and r.stderr.strip() == ("gate township: no terminal to ask the password on; "
                                                      "give it on stdin with --password-stdin")
    r = township("user", "passwd", "nobody", "--password-stdin", stdin=new + "\n")
    assert r.returncode == 1 and r.stderr.strip() == "gate township: 404 unknown_user: no user 'nobody'"
    assert "Traceback" not in r.stderr
    assert not any(pw in text or new in text for text in said)  # never echoed or printed
