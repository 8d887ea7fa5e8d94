"""Facts from the township's lists: who this person is, and what the lists say about them.

The checkpoint asks; this module reads the store's list tables (households, residents,
passes, revoked_passes, quarantine_orders, vehicles, risk_areas, guards) and the entries
table (a vehicle's exits today) through a `sqlite3.Connection`, with read-only queries,
and answers with small frozen dataclasses. It decides nothing: the rules do.

Times in the lists are ISO-8601. A time with an offset (or Z) is taken as written; a
time without one is the gate's local time (`tz`, China Standard Time by default), as an
office writes it; a date alone covers that whole local day (a quarantine "until
2026-12-10" still runs on the 10th). A time that cannot be read is never in a person's
favour: a pass with one is not valid, a quarantine order with one is running.

Risk areas are GB/T 2260 region codes of 6 digits (province PP0000, city PPCC00, county
PPCCDD), or 9 (township) and 12 (village) digits. A place is *within* an area when the
area's code, with its trailing zero levels dropped, is a prefix of the place's: county
420102 is within the listed city 420100 and province 420000. An area is *inside* a
coarser place (the person said only the city, 420100, and county 420102 is listed):
the answer says so separately, so the guard asks where exactly.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
import unicodedata
from collections.abc import Iterable

from kiosk import clock, people, records

CHINA_STANDARD_TIME = dt.timezone(dt.timedelta(hours=8), "CST")
MAX_RESULTS = 20        # a name search shows at most this many people
MAX_QUERY = 64          # characters of any look-up text

# The lists a decision reads; their age is what "lists older than the policy allows" checks.
LOOKUP_LISTS = ("households", "residents", "passes", "revoked_passes", "quarantine_orders",
                "vehicles", "risk_areas")

class BadLookup(ValueError):
    """A look-up the guard typed that cannot be asked (a mistyped ID number, an empty
    name); `code` is stable, str() is one line in the guard's language."""

    def __init__(self, field: str, code: str, lang: str | None = None, limit: int | None = None):
        self.field, self.code = field, code
        super().__init__(records.FieldError(field, code, limit).text(lang))


# -- what the look-ups return ------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Household:
    """一户一档: a household and its address in the community."""
    id: str
    address: str


@dataclasses.dataclass(frozen=True)
class Person:
    """一人一档: a resident on the list. `care_needs` is sensitive: show it only when it matters."""
    person_ref: str
    masked_name: str | None
    household_id: str | None
    role: str | None           # owner / tenant / member
    care_needs: str | None


@dataclasses.dataclass(frozen=True)
class ResidentPass:
    """出入证: valid between its dates unless revoked."""
    serial: str
    person_ref: str
    household_id: str | None
    valid_from: dt.datetime | None   # None: unreadable in the list, so never valid
    valid_until: dt.datetime | None
    revoked: bool
    revoked_reason: str | None

    def valid_at(self, now: dt.datetime) -> bool:
        return (not self.revoked and self.valid_from is not None and self.valid_until is not None
                and self.valid_from <= now < self.valid_until)


@dataclasses.dataclass(frozen=True)
class QuarantineOrder:
    """居家隔离 (home_quarantine: must not leave) or 健康监测 (health_monitoring: may leave
    with checks). `until` None: open-ended (or unreadable, which counts as open-ended)."""
    id: str
    person_ref: str
    kind: str
    start: dt.datetime | None
    until: dt.datetime | None

    def running_at(self, now: dt.datetime) -> bool:
        return (self.start is None or self.start <= now) and (self.until is None or now < self.until)


@dataclasses.dataclass(frozen=True)
class ResidentVehicle:
    plate: str
    household_id: str | None


@dataclasses.dataclass(frozen=True)
class RiskArea:
    code: str
    name: str
    level: str        # medium / high
    since: str | None


@dataclasses.dataclass(frozen=True)
class RiskCheck:
    """Where a place stands against the current risk areas."""
    place: str
    within: tuple[RiskArea, ...]   # listed areas the place lies in
    inside: tuple[RiskArea, ...]   # listed areas lying inside a coarser place: ask where exactly

    @property
    def level(self) -> str | None:
        """The highest level of the areas the place lies in; None if in none."""
        levels = {a.level for a in self.within}
        return "high" if "high" in levels else "medium" if levels else None


@dataclasses.dataclass(frozen=True)
class Guard:
    """值守人员 on the township's list, who may start a shift at this gate."""
    id: str
    masked_name: str


@dataclasses.dataclass(frozen=True)
class ListAge:
    name: str
    version: str | None
    fetched_at: dt.datetime | None   # None: never received

    def age(self, now: dt.datetime) -> dt.timedelta | None:
        return None if self.fetched_at is None else now - self.fetched_at


@dataclasses.dataclass(frozen=True)
class PersonFacts:
    """Everything the lists say about one person at one moment."""
    person: Person | None               # None: on no list
    household: Household | None
    resident_pass: ResidentPass | None  # a pass valid now, not revoked
    order: QuarantineOrder | None       # the order running now, home quarantine first


# -- the look-ups -------------------------------------------------------------------------

class Lookup:
    """Read-only questions to the lists. `salt` is the township's person_ref salt (for a
    guard's look-up by ID number); `tz` is the gate's local time zone."""

    def __init__(self, conn: sqlite3.Connection, *, salt: bytes | str,
                 tz: dt.tzinfo = CHINA_STANDARD_TIME):
        self.conn = conn
        self.salt = salt
        self.tz = tz

    # people and households
    def person(self, person_ref: str) -> Person | None:
        row = self.conn.execute(
            "SELECT person_ref, masked_name, household_id, role, care_needs FROM residents "
            "WHERE person_ref = ?", (_bounded("person_ref", person_ref),)).fetchone()
        return Person(*row) if row else None

    def person_ref_for(self, id_number: str, *, today: dt.date | None = None) -> str:
        """The person_ref of an ID number the guard typed; BadLookup names a typing error."""
        try:
            number = records.check_id_number(_bounded("id_number", id_number), today=today)
        except ValueError as exc:
            raise BadLookup("id_number", exc.args[0]) from None
        return people.person_ref(number, self.salt)

    def person_by_id_number(self, id_number: str, *, today: dt.date | None = None) -> Person | None:
        return self.person(self.person_ref_for(id_number, today=today))

    def household(self, household_id: str) -> Household | None:
        row = self.conn.execute("SELECT id, address FROM households WHERE id = ?",
                                (_bounded("household", household_id),)).fetchone()
        return Household(*row) if row else None

    def households_at(self, address: str) -> tuple[Household, ...]:
        """Households whose address starts with what the guard typed (3栋2单元)."""
        prefix = _needed("address", address)
        rows = self.conn.execute(
            "SELECT id, address FROM households WHERE address >= ? AND address < ? ORDER BY address LIMIT ?",
            (prefix, prefix + "\U0010ffff", MAX_RESULTS)).fetchall()
        return tuple(Household(*r) for r in rows)

    def members(self, household_id: str) -> tuple[Person, ...]:
        rows = self.conn.execute(
            "SELECT person_ref, masked_name, household_id, role, care_needs FROM residents "
            "WHERE household_id = ? ORDER BY person_ref LIMIT ?",
            (_bounded("household", household_id), MAX_RESULTS)).fetchall()
        return tuple(Person(*r) for r in rows)

    def find_by_name(self, name: str, *, household_id: str | None = None,
                     address: str | None = None) -> tuple[Person, ...]:
        """A guard's search by name, within a household or an address prefix. The list holds
        masked names only, so the typed name is masked the same way (张三丰 -> 张*丰); a
        single character is a surname (张 -> every 张 there)."""
        typed = _needed("name", name)
        if household_id is None and address is None:
            raise BadLookup("household", "required")
        if len(typed) == 1:
            where, value = "substr(r.masked_name, 1, 1) = ?", typed
        else:
            where, value = "r.masked_name = ?", typed if "*" in typed else people.mask_name(typed)
        if household_id is not None:
            scope, params = "r.household_id = ?", [_bounded("household", household_id)]
        else:
            prefix = _needed("address", address or "")
            scope, params = "h.address >= ? AND h.address < ?", [prefix, prefix + "\U0010ffff"]
        rows = self.conn.execute(
            "SELECT r.person_ref, r.masked_name, r.household_id, r.role, r.care_needs "
            "FROM residents r JOIN households h ON h.id = r.household_id "
            f"WHERE {scope} AND {where} ORDER BY h.address, r.person_ref LIMIT ?",
            (*params, value, MAX_RESULTS)).fetchall()
        return tuple(Person(*r) for r in rows)

    # passes
    def passes(self, person_ref: str) -> tuple[ResidentPass, ...]:
        rows = self.conn.execute(
            "SELECT p.serial, p.person_ref, p.household_id, p.valid_from, p.valid_until, "
            "r.serial IS NOT NULL, r.reason FROM passes p "
            "LEFT JOIN revoked_passes r ON r.serial = p.serial WHERE p.person_ref = ? "
            "ORDER BY p.valid_until DESC LIMIT ?", (_bounded("person_ref", person_ref), MAX_RESULTS)).fetchall()
        return tuple(self._pass(r) for r in rows)

    def valid_pass(self, person_ref: str, now: dt.datetime) -> ResidentPass | None:
        """A pass valid at `now` and not revoked, the one valid longest first."""
        valid = [p for p in self.passes(person_ref) if p.valid_at(now)]
        return max(valid, key=lambda p: p.valid_until or now) if valid else None

    def pass_by_serial(self, serial: str) -> ResidentPass | None:
        row = self.conn.execute(
            "SELECT p.serial, p.person_ref, p.household_id, p.valid_from, p.valid_until, "
            "r.serial IS NOT NULL, r.reason FROM passes p "
            "LEFT JOIN revoked_passes r ON r.serial = p.serial WHERE p.serial = ?",
            (_bounded("serial", serial),)).fetchone()
        return self._pass(row) if row else None

    def _pass(self, row: Iterable) -> ResidentPass:
        serial, ref, household, start, end, revoked, reason = row
        return ResidentPass(serial, ref, household, self._time(start), self._time(end, end=True),
                            bool(revoked), reason)

    # quarantine and monitoring
    def orders(self, person_ref: str) -> tuple[QuarantineOrder, ...]:
        rows = self.conn.execute(
            'SELECT id, person_ref, kind, start, "end" FROM quarantine_orders WHERE person_ref = ? LIMIT ?',
            (_bounded("person_ref", person_ref), MAX_RESULTS)).fetchall()
        return tuple(self._order(r) for r in rows)

    def order(self, person_ref: str, now: dt.datetime) -> QuarantineOrder | None:
        """The order running at `now`: home quarantine before monitoring, then the latest end."""
        return _strongest(o for o in self.orders(person_ref) if o.running_at(now))

    def household_orders(self, household_id: str, now: dt.datetime) -> tuple[QuarantineOrder, ...]:
        """Home-quarantine orders running now for anyone in the household: a visit there is refused."""
        rows = self.conn.execute(
            'SELECT q.id, q.person_ref, q.kind, q.start, q."end" FROM residents r '
            "JOIN quarantine_orders q ON q.person_ref = r.person_ref "
            "WHERE r.household_id = ? AND q.kind = 'home_quarantine' LIMIT ?",
            (_bounded("household", household_id), MAX_RESULTS)).fetchall()
        return tuple(o for o in map(self._order, rows) if o.running_at(now))

    def _order(self, row: Iterable) -> QuarantineOrder:
        ident, ref, kind, start, end = row
        # Unreadable dates keep the order running: a typo never lifts a quarantine.
        return QuarantineOrder(ident, ref, kind, self._time(start), self._time(end, end=True))

    def about(self, person_ref: str, now: dt.datetime) -> PersonFacts:
        person = self.person(person_ref)
        household = self.household(person.household_id) if person and person.household_id else None
        return PersonFacts(person, household, self.valid_pass(person_ref, now), self.order(person_ref, now))

    # vehicles
    def vehicle(self, plate: str) -> ResidentVehicle | None:
        """A resident vehicle by plate (as typed: normalised the way the list writes it)."""
        row = self.conn.execute("SELECT plate, household_id FROM vehicles WHERE plate = ?",
                                (_plate(plate),)).fetchone()
        return ResidentVehicle(*row) if row else None

    def vehicle_exits(self, plate: str, day: dt.date) -> int:
        """Admitted exits of this plate on the local `day`, counted from the store's entries."""
        start = dt.datetime.combine(day, dt.time(), self.tz)
        end = start + dt.timedelta(days=1)
        return self.conn.execute(
            "SELECT COUNT(*) FROM entries WHERE vehicle IS NOT NULL "
            "AND json_extract(vehicle, '$.plate') = ? AND created_utc >= ? AND created_utc < ? "
            "AND direction = 'out' AND action = 'admit'",
            (_plate(plate), clock.iso(start), clock.iso(end))).fetchone()[0]

    # risk areas
    def risk(self, place: str) -> RiskCheck:
        """Where a place (a region code: 6, 9 or 12 digits) stands against the risk areas."""
        code = unicodedata.normalize("NFKC", _needed("from_county", place))  # full-width digits
        if not (code.isascii() and code.isdigit() and len(code) in (6, 9, 12)):
            raise BadLookup("from_county", "region_code")
        sig = _significant(code)
        ancestors = {a for n in _LEVELS if n <= len(sig) for a in _padded(sig[:n])}
        marks = ",".join("?" * len(ancestors))
        within = self.conn.execute(
            f"SELECT code, name, level, since FROM risk_areas WHERE code IN ({marks}) ORDER BY code",
            sorted(ancestors)).fetchall()
        finer = self.conn.execute(
            "SELECT code, name, level, since FROM risk_areas WHERE code > ? AND code < ? ORDER BY code",
            (sig, sig + ":")).fetchall()  # ':' sorts just after '9': every code starting with sig
        inside = [r for r in finer if len(_significant(r[0])) > len(sig) and r[0] not in ancestors]
        return RiskCheck(code, tuple(RiskArea(*r) for r in within),
                         tuple(RiskArea(*r) for r in inside[:MAX_RESULTS]))

    # guards
    def guard(self, guard_id: str) -> Guard | None:
        row = self.conn.execute("SELECT id, masked_name FROM guards WHERE id = ?",
                                (_needed("guard", guard_id),)).fetchone()
        return Guard(*row) if row else None

    # list ages
    def list_ages(self, names: Iterable[str] = LOOKUP_LISTS) -> tuple[ListAge, ...]:
        wanted = tuple(names)
        rows = {r[0]: r for r in self.conn.execute("SELECT name, version, fetched_at FROM list_versions")}
        out = []
        for name in wanted:
            row = rows.get(name)
            fetched = _parse(row[2], self.tz) if row and row[2] else None
            out.append(ListAge(name, row[1] if row else None, fetched))
        return tuple(out)

    def stale_lists(self, now: dt.datetime, max_age: dt.timedelta,
                    names: Iterable[str] = LOOKUP_LISTS) -> tuple[str, ...]:
        """The lists older than `max_age`, or never received: the decision must say so."""
        stale = []
        for a in self.list_ages(names):
            age = a.age(now)
            if age is None or age > max_age:
                stale.append(a.name)
        return tuple(stale)

    def _time(self, text: object, *, end: bool = False) -> dt.datetime | None:
        return _parse(text, self.tz, end=end)


def _parse(text: object, tz: dt.tzinfo, *, end: bool = False) -> dt.datetime | None:
    """An ISO-8601 time from a list, aware; None when it cannot be read."""
    if not isinstance(text, str) or len(text) > 40:
        return None
    t = text.strip()
    try:
        if len(t) == 10:  # a date alone: the whole local day
            day = dt.date.fromisoformat(t)
            start = dt.datetime.combine(day, dt.time(), tz)
            return start + dt.timedelta(days=1) if end else start
        when = dt.datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=tz)


def _strongest(orders: Iterable[QuarantineOrder]) -> QuarantineOrder | None:
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    ranked = sorted(orders, key=lambda o: (o.kind == "home_quarantine", o.until or far), reverse=True)
    return ranked[0] if ranked else None


_LEVELS = (2, 4, 6, 9, 12)  # province, city, county, township, village


def _significant(code: str) -> str:
    """The code without its trailing zero levels: 420100 -> 4201, 420000 -> 42."""
    full = code.ljust(12, "0")
    for n in _LEVELS:
        if not full[n:].strip("0"):
            return full[:n]
    return full


def _padded(prefix: str) -> tuple[str, ...]:
    """How a list may write the area of this prefix: 4201 -> 420100, 420100000, 420100000000."""
    return tuple(prefix.ljust(width, "0") for width in (6, 9, 12) if width >= len(prefix))


def _plate(text: str) -> str:
    return records.normalise_plate(_needed("plate", text))


def _bounded(field: str, value: str) -> str:
    if not isinstance(value, str):
        raise BadLookup(field, "not_text")
    if len(value) > MAX_QUERY:
        raise BadLookup(field, "too_long", limit=MAX_QUERY)
    return value


def _needed(field: str, value: str) -> str:
    text = unicodedata.normalize("NFC", _bounded(field, value)).strip()
    if not text:
        raise BadLookup(field, "required")
    return text
