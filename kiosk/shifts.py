"""Shifts at the gate (24小时轮岗, 领导带班): who is on duty, signed in with a PIN.

A guard starts a shift with their PIN and a health check (fever or a cough: they may
not work), names the shift's leader, and ends it with a handover summary: what the gate
decided during the shift and which alarms are still open. PINs are never stored: the
guards list carries each PIN's scrypt hash, made by the community office
(`hash_pin`). Only the hash's check happens here.
"""
from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import secrets

from kiosk import clock, reasons
from kiosk.store import Store

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # ~50 ms on a Pi 4: slow to guess, quick to sign in
MAX_PIN = 12


class ShiftError(Exception):
    """A shift that cannot start or end; `code` is stable, str() is for the guard."""

    def __init__(self, code: str):
        super().__init__(reasons.text(reasons.SHIFT_TEXT, code))
        self.code = code


def hash_pin(pin: str, *, salt: bytes | None = None) -> str:
    """scrypt$N$r$p$salt$hash, for the guards list."""
    _check_shape(pin)
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def check_pin(pin: str, stored: str | None) -> bool:
    if not stored or not isinstance(pin, str) or not 4 <= len(pin) <= MAX_PIN:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt" or int(n) > 2**20 or int(r) > 16 or int(p) > 4:
            return False  # a hash from a list that would cost the gate too much to check
        got = hashlib.scrypt(pin.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(_unb64(digest)))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, _unb64(digest))


def _check_shape(pin: str) -> None:
    if not isinstance(pin, str) or not pin.isdigit() or not 4 <= len(pin) <= MAX_PIN:
        raise ShiftError("pin_shape")


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def _unb64(t: str) -> bytes:
    return base64.urlsafe_b64decode(t + "=" * (-len(t) % 4))


@dataclasses.dataclass(frozen=True)
class Shift:
    id: int
    guard_id: str
    guard_name: str
    leader_id: str | None
    leader_name: str | None
    start: str


class Shifts:
    """The shifts of one gate, in its store (the checkpoint's thread is the only writer)."""

    def __init__(self, store: Store, gate: str) -> None:
        self.store, self.gate = store, gate

    def current(self) -> Shift | None:
        row = self.store.conn.execute(
            'SELECT s.id, s.guard_id, g.masked_name, s.leader_id, l.masked_name, s.start FROM shifts s '
            'JOIN guards g ON g.id = s.guard_id LEFT JOIN guards l ON l.id = s.leader_id '
            'WHERE s.gate = ? AND s."end" IS NULL ORDER BY s.id DESC LIMIT 1', (self.gate,)).fetchone()
        return Shift(*row) if row else None

    def start(self, guard_id: str, pin: str, *, fever: bool = False, cough: bool = False,
              leader_id: str | None = None, now: dt.datetime | None = None) -> Shift:
        if fever or cough:
            # the seeds: staff with fever or a cough may not work; nothing about it is stored
            raise ShiftError("unfit_to_work")
        guard = self.store.conn.execute("SELECT id, pin_hash FROM guards WHERE id = ?",
                                        (str(guard_id)[:64],)).fetchone()
        if guard is None or not check_pin(pin, guard[1]):
            raise ShiftError("wrong_pin")
        if leader_id is not None:
            leader = self.store.conn.execute("SELECT leader FROM guards WHERE id = ?",
                                             (str(leader_id)[:64],)).fetchone()
            if leader is None or not leader[0]:
                raise ShiftError("not_a_leader")
        at = clock.iso(now or clock.utc_now())
        with self.store.transaction() as conn:
            # a shift left open (a power cut, a guard who forgot) ends where the next begins
            conn.execute('UPDATE shifts SET "end" = ? WHERE gate = ? AND "end" IS NULL', (at, self.gate))
            conn.execute("INSERT INTO shifts (guard_id, gate, start, leader_id) VALUES (?, ?, ?, ?)",
                         (guard[0], self.gate, at, leader_id))
        shift = self.current()
        assert shift is not None
        return shift

    def end(self, now: dt.datetime | None = None) -> dict:
        """End the shift on duty; the handover summary for the next guard."""
        shift = self.current()
        if shift is None:
            raise ShiftError("no_shift")
        at = clock.iso(now or clock.utc_now())
        summary = self.summary(shift, until=at)
        with self.store.transaction() as conn:
            conn.execute('UPDATE shifts SET "end" = ? WHERE id = ?', (at, shift.id))
        return summary

    def summary(self, shift: Shift, until: str | None = None) -> dict:
        """Entries by action and immediate reports during the shift, and open alarms."""
        until = until or clock.iso(clock.utc_now())
        by_action = dict(self.store.conn.execute(
            "SELECT action, COUNT(*) FROM entries WHERE created_utc >= ? AND created_utc <= ? GROUP BY action",
            (shift.start, until)).fetchall())
        immediate = self.store.conn.execute(
            "SELECT COUNT(*) FROM entries WHERE created_utc >= ? AND created_utc <= ? AND report = 'immediate'",
            (shift.start, until)).fetchone()[0]
        return {"guard": shift.guard_name, "leader": shift.leader_name, "start": shift.start, "end": until,
                "entries": sum(by_action.values()), "by_action": by_action, "immediate_reports": immediate,
                "open_alarms": len(self.store.alarms())}
