"""Township staff accounts: users, roles, passwords, sessions, failed logins.

Passwords are hashed with Argon2id (argon2-cffi, its RFC 9106 low-memory profile: 64 MiB,
3 passes), never stored or logged in clear. A session is a random token in the
`gate_session` cookie; the database holds only its SHA-256, so a leaked database opens no
session. Sessions, failed logins and users live in the database, so every worker sees
them. Rules and bounds: docs/township.md, "Accounts and roles"."""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from kiosk import clock
from sync import auth
from sync.server.db import AuditStep, Database
from sync.server.errors import Problem
from sync.server.settings import Settings

ROLES = ("admin", "readonly", "community")  # township administrator, township read-only, community staff
USERNAME = r"^[A-Za-z0-9._-]{1,64}$"
MIN_PASSWORD, MAX_PASSWORD = 10, 256      # characters; the upper bound caps the hashing work
MAX_TOKEN = 100                           # a session token is 43 characters; longer is not ours
SESSION_COOKIE = "gate_session"
CSRF_HEADER = "X-CSRF-Token"              # JSON requests made with the cookie
CSRF_FIELD = "csrf_token"                 # HTML forms (the dashboard)
SLIDE_S = 60.0                            # refresh a session's idle deadline at most this often
# Argon2 takes 64 MiB and a core for tens of milliseconds: at most this many at once per
# process (memory stays bounded under a flood of logins), waiting at most HASH_WAIT_S.
HASH_SLOTS, HASH_WAIT_S = 2, 20.0
_hashing = threading.BoundedSemaphore(HASH_SLOTS)


@dataclass(frozen=True)
class Actor:
    """Who is asking: the administrator token (scripts, first set-up) or a signed-in user."""
    name: str                       # the user's login, or "admin-token"
    role: str                       # one of ROLES
    community: str | None = None    # community staff: the one community they see and edit
    csrf: str | None = None         # a signed-in user's CSRF token; None for the admin token

    def may_read(self, community: str) -> bool:
        return self.role != "community" or self.community == community

    def may_change(self, community: str | None = None) -> bool:
        """A township administrator changes anything; community staff only their own community."""
        if self.role == "admin":
            return True
        return self.role == "community" and community is not None and self.community == community

    @property
    def township(self) -> bool:
        """A township role (administrator or read-only): sees every community."""
        return self.role in ("admin", "readonly")


TOKEN_ACTOR = Actor("admin-token", "admin")


@dataclass(frozen=True)
class Session:
    token: str          # goes in the cookie; never stored
    actor: Actor
    expires_utc: str    # the absolute end; an idle session ends sooner


@functools.cache
def hasher() -> PasswordHasher:
    return PasswordHasher()  # Argon2id, RFC 9106 low-memory profile


@contextmanager
def hashing_slot() -> Iterator[None]:
    if not _hashing.acquire(timeout=HASH_WAIT_S):
        raise Problem(503, "too_busy", "the server is checking many passwords; try again shortly",
                      {"Retry-After": "5"})
    try:
        yield
    finally:
        _hashing.release()


def hash_password(password: str) -> str:
    with hashing_slot():
        return hasher().hash(password)


@functools.cache
def _decoy_hash() -> str:
    """Verified against when the user is unknown, so the answer takes as long either way."""
    return hash_password(secrets.token_urlsafe(16))


def token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_username(username: str) -> str:
    if not isinstance(username, str) or not re.fullmatch(USERNAME, username):
        raise Problem(422, "invalid_username", "a login is 1-64 letters, digits, '.', '_' or '-'")
    return username


def check_password(password: str) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise Problem(422, "weak_password", f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


def check_role(role: str, community: str | None) -> None:
    if role not in ROLES:
        raise Problem(422, "unknown_role", f"role {str(role)[:64]!r}: one of {', '.join(ROLES)}")
    if (role == "community") != (community is not None):
        raise Problem(422, "community_role", "community staff need --community; township roles have none")


# -- users ----------------------------------------------------------------------------------

def add_user(db: Database, username: str, password: str, role: str, community: str | None = None,
             audit: AuditStep | None = None) -> dict:
    check_username(username)
    check_password(password)
    check_role(role, community)
    digest = hash_password(password)
    now = clock.iso(clock.utc_now())
    with db.tx(write=True) as t:
        row = t.one("INSERT INTO users (username, role, community, password_hash, created_utc, "
                    "password_changed_utc) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (username) DO NOTHING "
                    "RETURNING username", (username, role, community, digest, now, now))
        if row is not None and audit:
            audit(t, username)
    if row is None:
        raise Problem(409, "user_exists", f"user {username!r} already exists")
    return user(db, username) or {}


USER_COLUMNS = ("username", "role", "community", "created_utc", "password_changed_utc", "disabled_utc")


def user(db: Database, username: str) -> dict | None:
    with db.tx() as t:
        row = t.one(f"SELECT {', '.join(USER_COLUMNS)} FROM users WHERE username = ?", (username,))
    return dict(zip(USER_COLUMNS, row, strict=True)) if row else None


def users(db: Database) -> list[dict]:
    with db.tx() as t:
        rows = t.all(f"SELECT {', '.join(USER_COLUMNS)} FROM users ORDER BY username")
    return [dict(zip(USER_COLUMNS, r, strict=True)) for r in rows]


def disable_user(db: Database, username: str, audit: AuditStep | None = None) -> bool:
    """The user can no longer sign in; their open sessions end now."""
    with db.tx(write=True) as t:
        row = t.one("UPDATE users SET disabled_utc = COALESCE(disabled_utc, ?) WHERE username = ? "
                    "RETURNING username", (clock.iso(clock.utc_now()), username))
        t.all("DELETE FROM sessions WHERE username = ?", (username,))
        if row is not None and audit:
            audit(t, username)
    return row is not None


def enable_user(db: Database, username: str, audit: AuditStep | None = None) -> bool:
    with db.tx(write=True) as t:
        row = t.one("UPDATE users SET disabled_utc = NULL WHERE username = ? RETURNING username", (username,))
        if row is not None and audit:
            audit(t, username)
    return row is not None


def set_password(db: Database, username: str, password: str, audit: AuditStep | None = None) -> bool:
    """A new password; every open session of the user ends (a reset after a leak)."""
    check_password(password)
    digest = hash_password(password)
    with db.tx(write=True) as t:
        row = t.one("UPDATE users SET password_hash = ?, password_changed_utc = ? WHERE username = ? "
                    "RETURNING username", (digest, clock.iso(clock.utc_now()), username))
        t.all("DELETE FROM sessions WHERE username = ?", (username,))
        if row is not None and audit:
            audit(t, username)
    return row is not None


# -- signing in and out ------------------------------------------------------------------

def _failures_refusal(db: Database, settings: Settings, keys: tuple[str, str], now: float) -> Problem | None:
    """429 while this login or this address has too many recent failures."""
    since = now - settings.login_window_s
    limits = (settings.login_failures_per_user, settings.login_failures_per_address)
    with db.tx() as t:
        for key, limit in zip(keys, limits, strict=True):
            n, oldest = t.row("SELECT COUNT(*), MIN(at) FROM login_failures WHERE key = ? AND at > ?",
                              (key, since))
            if n >= limit:
                wait = max(1, int(oldest + settings.login_window_s - now + 0.999))
                return Problem(429, "too_many_logins", f"too many failed sign-ins; try again in {wait} s",
                               {"Retry-After": str(wait)})
    return None


def login(db: Database, settings: Settings, username: str, password: str, address: str = "") -> Session:
    """Check the password and open a session; raises Problem 401 bad_credentials, 403
    account_disabled (only to someone who knows the password) or 429 too_many_logins.
    Call it from a worker thread: the hash takes ~64 MiB and tens of milliseconds."""
    now = time.time()
    name = username if isinstance(username, str) and re.fullmatch(USERNAME, username) else ""
    keys = (f"user:{name}", f"addr:{address[:64]}")
    refusal = _failures_refusal(db, settings, keys, now)
    if refusal is not None:
        raise refusal
    with db.tx() as t:
        row = t.one("SELECT password_hash, role, community, disabled_utc FROM users WHERE username = ?",
                    (name,)) if name else None
    ok = False
    if isinstance(password, str) and 0 < len(password) <= MAX_PASSWORD:
        stored = row[0] if row else _decoy_hash()
        try:
            with hashing_slot():
                ok = hasher().verify(stored, password) and row is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
    if not ok or row is None:
        with db.tx(write=True) as t:
            t.all("DELETE FROM login_failures WHERE at < ?", (now - settings.login_window_s,))
            t.many("INSERT INTO login_failures (key, at) VALUES (?, ?)", [(k, now) for k in keys])
        raise Problem(401, "bad_credentials", "wrong login or password")
    digest, role, community, disabled = row
    if disabled:
        raise Problem(403, "account_disabled", "this account is disabled; ask the township administrator")
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires = now + settings.session_max_s
    rehashed = hash_password(password) if hasher().check_needs_rehash(digest) else None  # new defaults
    with db.tx(write=True) as t:
        t.all("DELETE FROM login_failures WHERE key = ?", (keys[0],))
        t.all("DELETE FROM sessions WHERE expires < ? OR idle_until < ?", (now, now))
        t.all("INSERT INTO sessions (id_hash, username, csrf, created_utc, expires, idle_until) "
              "VALUES (?, ?, ?, ?, ?, ?)", (token_id(token), name, csrf, clock.iso(clock.utc_now()),
                                            expires, min(expires, now + settings.session_idle_s)))
        if rehashed:
            t.all("UPDATE users SET password_hash = ? WHERE username = ?", (rehashed, name))
    return Session(token, Actor(name, role, community, csrf), clock.iso(dt.datetime.fromtimestamp(expires, dt.UTC)))


def logout(db: Database, token: str) -> None:
    with db.tx(write=True) as t:
        t.all("DELETE FROM sessions WHERE id_hash = ?", (token_id(token[:MAX_TOKEN]),))


def session_actor(db: Database, settings: Settings, token: str, now: float | None = None) -> Actor:
    """The signed-in user behind a session cookie, or Problem 401 not_signed_in /
    session_expired. Each use moves the idle deadline on (at most once a minute)."""
    now = time.time() if now is None else now
    if not token or len(token) > MAX_TOKEN:
        raise Problem(401, "not_signed_in", "sign in first")
    tid = token_id(token)
    with db.tx() as t:
        row = t.one("SELECT s.csrf, s.expires, s.idle_until, u.username, u.role, u.community, u.disabled_utc "
                    "FROM sessions s JOIN users u ON u.username = s.username WHERE s.id_hash = ?", (tid,))
    if row is None:
        raise Problem(401, "not_signed_in", "sign in first (no such session: signed out, or the "
                      "password was changed)")
    csrf, expires, idle_until, name, role, community, disabled = row
    if disabled or now >= expires or now >= idle_until:
        with db.tx(write=True) as t:
            t.all("DELETE FROM sessions WHERE id_hash = ?", (tid,))
        raise Problem(401, "session_expired", "the session has ended; sign in again")
    want = min(expires, now + settings.session_idle_s)
    if want - idle_until > SLIDE_S:
        with db.tx(write=True) as t:
            t.all("UPDATE sessions SET idle_until = ? WHERE id_hash = ?", (want, tid))
    return Actor(name, role, community, csrf)


def csrf_matches(actor: Actor, given: str | None) -> bool:
    """The CSRF token sent with a cookie request is this session's (constant time)."""
    return actor.csrf is not None and auth.same_secret(given, actor.csrf)
