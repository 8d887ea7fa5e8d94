"""The daily report (日报告、零报告): what every community's gates saw on one local day.

`daily(db, day, tz, community=None) -> DailyReport` counts, per community and per gate,
the figures the township asks for (FIGURES: in and out, admitted, not admitted, fevers,
yellow and red codes, arrivals held, first returns, visitors, couriers, vehicles,
quarantine breaches, overrides...), the refusals by reason (the rules' reason codes,
worded by kiosk/reasons.py), and the headcount under home quarantine and health
monitoring from the community's quarantine list. Every entry is counted from its full
record as the gate sent it (one `tally()`, used for gates and communities alike).

Status (docs/township.md, "The daily report"): a community whose gates have not all
synced past the end of the day is missing (未报), whatever was submitted: its figures
are incomplete, never a zero. Otherwise the community's staff submit the day's report,
signed with the shift leader's name (`submit`): on time it is submitted (已报), after
the deadline late (迟报); not submitted by the deadline it is missing; before, pending.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import zoneinfo
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from kiosk import clock, reasons, wire
from sync.server.db import AuditStep, Database, Rejected, Tx, batch_entries

# The figures, in the order of the report's columns: (Chinese header, English header, unit).
FIGURES: dict[str, tuple[str, str, str]] = {
    "entered": ("进入", "In", "person"),
    "exited": ("外出", "Out", "person"),
    "admitted": ("放行", "Admitted", "person"),
    "refused": ("不予放行", "Not admitted", "person"),
    "abandoned": ("未完成查验", "Check not completed", "person"),
    "fevers": ("发热", "Fever confirmed", "person"),
    "yellow_codes": ("黄码", "Yellow code", "person"),
    "red_codes": ("红码", "Red code", "person"),
    "risk_area_held": ("中高风险地区来人留观", "Held: from a medium/high-risk area", "person"),
    "abroad_held": ("境外来（返）人员留观", "Held: from abroad", "person"),
    "first_returns": ("首返人员登记", "First returns registered", "person"),
    "visitors": ("访客", "Visitors", "person"),
    "couriers": ("快递外卖", "Couriers", "person"),
    "vehicles": ("车辆", "Vehicles", "vehicle"),
    "quarantine_breaches": ("居家隔离人员外出", "Quarantine breaches", "person"),
    "overrides": ("人工放行", "Guard overrides", "person"),
    "emergency_exits": ("紧急外出", "Emergency exits", "person"),
    "immediate": ("立即上报", "Reported at once", "person"),
}
# Headcounts from the community's quarantine list (people, not passages).
HEADCOUNTS: dict[str, tuple[str, str]] = {
    "home_quarantine": ("居家隔离", "Home quarantine"),
    "health_monitoring": ("健康监测", "Health monitoring"),
}
UNITS = {"person": ("人次", "passages"), "vehicle": ("辆次", "vehicles"), "people": ("人", "people")}
STATUS_TEXT = {
    "submitted": {"zh": "已报", "en": "Submitted"},
    "late": {"zh": "迟报", "en": "Late"},
    "missing": {"zh": "未报", "en": "Missing"},
    "pending": {"zh": "待报", "en": "Pending"},
}
NOT_ADMITTED = ("refuse", "isolate", "hold")
# What a zero report (零报告) has none of: the cases the township must hear about.
ABNORMAL = ("fevers", "yellow_codes", "red_codes", "risk_area_held", "abroad_held", "quarantine_breaches",
            "overrides", "immediate")
# A day's report is due by this time the next local morning (the seeds: 日报 every day).
DUE_NEXT_DAY = dt.time(10, 0)
MAX_LEADER = 32     # the shift leader's name as signed
MAX_NOTE = 500


def tally(record: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The figures one entry counts in, and the reasons it counts under when it was not
    admitted. The one place that says what an entry means for the report."""
    action = record.get("action")
    why = [r for r in record.get("reasons") or [] if isinstance(r, str)]
    details = record.get("details") or {}
    counts = ["entered" if record.get("direction") == "in" else "exited"]
    if action == "admit":
        counts.append("admitted")
    elif action in NOT_ADMITTED:
        counts.append("refused")
    elif action == "abandoned":
        counts.append("abandoned")
    colour = record.get("code_colour")
    for figure, yes in (
            ("fevers", "fever_confirmed" in why),
            ("yellow_codes", colour == "yellow"),
            ("red_codes", colour == "red"),
            ("risk_area_held", "risk_area_travel" in why),
            ("abroad_held", "arrival_from_abroad" in why),
            ("first_returns", isinstance(details, dict) and details.get("form") == "returnee"),
            ("visitors", record.get("subject_kind") == "visitor"),
            ("couriers", record.get("subject_kind") == "courier"),
            ("vehicles", bool(record.get("vehicle"))),
            ("quarantine_breaches", "home_quarantine_exit" in why or "home_quarantine_breach" in why),
            ("overrides", bool(record.get("override_reason")) or "override" in why),
            ("emergency_exits", "emergency_exit" in why),
            ("immediate", record.get("report") == "immediate")):
        if yes:
            counts.append(figure)
    return counts, (list(dict.fromkeys(why)) if action in NOT_ADMITTED else [])


@dataclass
class Figures:
    figures: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIGURES, 0))
    refusals: dict[str, int] = field(default_factory=dict)  # reason code -> entries not admitted
    by_action: dict[str, int] = field(default_factory=dict)

    def add(self, record: dict[str, Any], counted: tuple[list[str], list[str]] | None = None) -> None:
        """Count one entry; `counted` is its tally() when the caller already has it."""
        counts, why = counted or tally(record)
        for f in counts:
            self.figures[f] += 1
        for r in why:
            self.refusals[r] = self.refusals.get(r, 0) + 1
        action = str(record.get("action"))
        self.by_action[action] = self.by_action.get(action, 0) + 1

    @property
    def entries(self) -> int:
        return self.figures["entered"] + self.figures["exited"]

    @property
    def zero(self) -> bool:
        """A zero report (零报告): nothing the township must hear about, however many
        ordinary passages there were."""
        return not any(self.figures[f] for f in ABNORMAL)


@dataclass
class GateDay(Figures):
    device_id: str = ""
    gate: str = ""
    status: str = ""                 # the device: active | revoked
    last_seen_utc: str | None = None
    acked_seq: int = 0
    max_seq: int = 0
    synced: bool = False             # every entry of the day is held (synced past the day's end)


@dataclass
class Submission:
    community: str
    day: str
    submitted_by: str                # the account that submitted
    leader: str                      # the shift leader's name, as signed
    note: str | None
    submitted_utc: str
    late: bool
    figures: dict[str, Any]          # what was signed: figures, refusals, headcounts


@dataclass
class CommunityDay(Figures):
    community: str = ""
    status: str = "pending"          # submitted | late | missing | pending (STATUS_TEXT)
    complete: bool = True            # every gate synced past the end of the day
    headcounts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(HEADCOUNTS, 0))
    gates: list[GateDay] = field(default_factory=list)
    lost_seqs: list[dict[str, Any]] = field(default_factory=list)
    submission: Submission | None = None

    @property
    def zero_report(self) -> bool:
        """A submitted zero report: a missing community is never shown as a zero."""
        return self.zero and self.status in ("submitted", "late")

    def signed(self) -> dict[str, Any]:
        return {"figures": self.figures, "refusals": self.refusals, "headcounts": self.headcounts,
                "gates": {g.gate: {"figures": g.figures, "refusals": g.refusals} for g in self.gates}}


@dataclass
class DailyReport:
    day: str
    tz: str
    start_utc: str
    end_utc: str
    due_utc: str
    communities: list[CommunityDay]

    def as_json(self, lang: str = "zh") -> dict[str, Any]:
        """The API's answer: the figures, words for the status, and the old fields
        (`entries`, `by_action`, `immediate`) that scripts already read."""
        out = asdict(self)
        for c, raw in zip(self.communities, out["communities"], strict=True):
            raw.update(entries=c.entries, immediate=c.figures["immediate"], zero_report=c.zero_report,
                       status_text=STATUS_TEXT[c.status][lang])
            for g, graw in zip(c.gates, raw["gates"], strict=True):
                graw["entries"] = g.entries
        return out


# -- days and time zones ----------------------------------------------------------------------
@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def zone(tz: str) -> zoneinfo.ZoneInfo:
    """An IANA zone by name only (never a path, a folder or a long name)."""
    if len(tz) > 64 or tz not in _zones():
        raise Rejected(422, "unknown_timezone", f"unknown time zone {tz[:64]!r}")
    return zoneinfo.ZoneInfo(tz)


def bounds(day: dt.date, tz: str) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a local calendar day, in UTC."""
    if not wire.EARLIEST.year <= day.year < wire.LATEST.year - 1:
        raise Rejected(422, "invalid_request", f"day: {day} is outside "
                       f"{wire.EARLIEST.year}-{wire.LATEST.year - 2}")
    z = zone(tz)
    start = dt.datetime.combine(day, dt.time(), z).astimezone(dt.UTC)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), z).astimezone(dt.UTC)
    return start, end


def due(day: dt.date, tz: str) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), DUE_NEXT_DAY, zone(tz)).astimezone(dt.UTC)


def today(tz: str) -> dt.date:
    return clock.utc_now().astimezone(zone(tz)).date()


# -- the report --------------------------------------------------------------------------------
# One community's entries through its gates (a device belongs to one community for good):
# the (device_id, seq) index finds them, where the day index would walk every community's day.
_OF_COMMUNITY = " AND device_id IN (SELECT device_id FROM devices WHERE community = ?)"


def daily(db: Database, day: dt.date, tz: str, community: str | None = None,
          now: dt.datetime | None = None) -> DailyReport:
    """Every known community (or the one asked for), zeros included; missing when a gate
    has not synced past the end of the day."""
    start, end = bounds(day, tz)
    deadline = due(day, tz)
    now = now or clock.utc_now()
    one = "" if community is None else " AND community = ?"
    only: tuple = () if community is None else (community,)
    with db.tx() as t:
        names = sorted({c for (c,) in t.all(
            "SELECT community FROM communities WHERE 1 = 1" + one + " UNION "
            "SELECT community FROM devices WHERE 1 = 1" + one, only + only)})
        days = {c: CommunityDay(community=c) for c in names}
        held = _held_until(t, community)
        by_gate: dict[str, GateDay] = {}
        for device_id, c, gate, status, revoked, seen, acked, max_seq in t.all(
                "SELECT device_id, community, gate, status, revoked_utc, last_seen_utc, acked_seq, max_seq "
                "FROM devices WHERE 1 = 1" + one + " ORDER BY community, gate", only):
            g = by_gate[device_id] = GateDay(device_id=device_id, gate=gate, status=status, last_seen_utc=seen,
                                             acked_seq=acked, max_seq=max_seq,
                                             synced=_synced(revoked, held[device_id][2], end))
            days[c].gates.append(g)
        rows = t.all("SELECT device_id, community, batch_id, batch_index FROM entries "
                     "WHERE corrected_utc >= ? AND corrected_utc < ?" + ("" if community is None else _OF_COMMUNITY),
                     (clock.iso(start), clock.iso(end)) + only)
        for (device_id, c, _b, _i), record in _each_record(t, rows, batch_at=2):
            counted = tally(record)
            days[c].add(record, counted)
            by_gate[device_id].add(record, counted)
        for c, device_id, lo, hi in t.all(
                "SELECT d.community, l.device_id, l.from_seq, l.to_seq FROM seq_losses l "
                "JOIN devices d ON d.device_id = l.device_id WHERE l.declared_utc >= ? AND l.declared_utc < ?"
                + one.replace("community", "d.community"), (clock.iso(start), clock.iso(end)) + only):
            days[c].lost_seqs.append({"device_id": device_id, "from": lo, "to": hi})
        lists = dict(t.all("SELECT community, body FROM documents WHERE name = 'quarantine_orders'"
                           + one, only))
        submitted = dict(_submissions(t, day, community))
    for c, d in days.items():
        d.headcounts = headcounts(lists.get(c), start, end, tz)
        d.complete = all(g.synced for g in d.gates)
        d.submission = submitted.get(c)
        d.status = _status(d, now, end, deadline)
    return DailyReport(day=day.isoformat(), tz=tz, start_utc=clock.iso(start), end_utc=clock.iso(end),
                       due_utc=clock.iso(deadline), communities=list(days.values()))


BATCHES_AT_ONCE = 20    # batch bodies (up to 4 MB of JSON each) held in memory at a time


def _each_record(t: Tx, rows: list[tuple], batch_at: int) -> Iterator[tuple[tuple, dict[str, Any]]]:
    """(row, the entry's full record) for rows holding (batch_id, batch_index) at
    `batch_at`: each batch is read and parsed once, BATCHES_AT_ONCE at a time, so a day of
    a whole township is counted in bounded memory."""
    ordered = sorted(rows, key=lambda r: r[batch_at])
    i = 0
    while i < len(ordered):
        ids: list[int] = []
        j = i
        while j < len(ordered) and (len(ids) < BATCHES_AT_ONCE or ordered[j][batch_at] == ids[-1]):
            if not ids or ordered[j][batch_at] != ids[-1]:
                ids.append(ordered[j][batch_at])
            j += 1
        bodies = batch_entries(t, ids)
        for r in ordered[i:j]:
            yield r, bodies[r[batch_at]][r[batch_at + 1]]
        i = j


def _status(d: CommunityDay, now: dt.datetime, end: dt.datetime, deadline: dt.datetime) -> str:
    if now < end:
        return "pending"
    if not d.complete:
        return "missing"
    if d.submission is not None:
        return "late" if d.submission.late else "submitted"
    return "pending" if now < deadline else "missing"


def _held_until(t: Tx, community: str | None) -> dict[str, tuple[str, str | None, str | None]]:
    """Per gate: (community, revoked_utc, the date of the last entry held without a gap).
    A gate numbers its entries in the order it records them and uploads them in that order,
    so once an entry dated at or after a day's end is held without a gap, every entry of
    that day is here. One index read per gate (entries' (device_id, seq) key): never a scan."""
    one = "" if community is None else " WHERE d.community = ?"
    rows = t.all("SELECT d.device_id, d.community, d.revoked_utc, (SELECT e.corrected_utc FROM entries e "
                 "WHERE e.device_id = d.device_id AND e.seq <= d.acked_seq ORDER BY e.seq DESC LIMIT 1) "
                 "FROM devices d" + one, () if community is None else (community,))
    return {device_id: (c, revoked, held) for device_id, c, revoked, held in rows}


def _synced(revoked: str | None, held: str | None, end: dt.datetime) -> bool:
    """Every entry of the day before `end` is held; a gate revoked before the day ended
    cannot sync it and holds nothing back."""
    end_text = clock.iso(end)
    return (held is not None and held >= end_text) or (revoked is not None and revoked < end_text)


def statuses(db: Database, day: dt.date, tz: str, community: str | None = None,
             now: dt.datetime | None = None) -> dict[str, str]:
    """Each community's status for the day (STATUS_TEXT) without reading the day's entries:
    what a list of every community needs."""
    _, end = bounds(day, tz)
    deadline = due(day, tz)
    now = now or clock.utc_now()
    one = "" if community is None else " WHERE community = ?"
    only: tuple = () if community is None else (community,)
    with db.tx() as t:
        names = {c for (c,) in t.all(f"SELECT community FROM communities{one} UNION "
                                     f"SELECT community FROM devices{one}", only + only)}
        held = _held_until(t, community)
        submitted = dict(_submissions(t, day, community))
    days = {c: CommunityDay(community=c) for c in names}
    for c, revoked, until in held.values():
        days[c].complete &= _synced(revoked, until, end)
    for c, d in days.items():
        d.submission = submitted.get(c)
    return {c: _status(d, now, end, deadline) for c, d in sorted(days.items())}


def headcounts(body: str | None, start: dt.datetime, end: dt.datetime, tz: str) -> dict[str, int]:
    """People under each kind of order at any time of the day, from the community's
    quarantine list as last published (a person with two orders counts once)."""
    people: dict[str, set[str]] = {k: set() for k in HEADCOUNTS}
    if body:
        z = zone(tz)
        for row in json.loads(body):
            try:
                since, until = _list_time(row["start"], z, False), _list_time(row["end"], z, True)
            except (KeyError, TypeError, ValueError):
                continue  # the list was checked at upload; a row it let through stays uncounted
            if row.get("kind") in people and since < end and until > start:
                people[row["kind"]].add(str(row.get("person_ref")))
    return {k: len(v) for k, v in people.items()}


def _list_time(text: str, z: zoneinfo.ZoneInfo, is_end: bool) -> dt.datetime:
    """A list's time as the gate reads it: a date alone is that whole local day (an end
    date includes the day), a time without a zone is local time."""
    if len(text) == 10:
        d = dt.date.fromisoformat(text) + dt.timedelta(days=1 if is_end else 0)
        return dt.datetime.combine(d, dt.time(), z)
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=z)


# -- submission --------------------------------------------------------------------------------
def _submissions(t: Tx, day: dt.date, community: str | None) -> Iterable[tuple[str, Submission]]:
    one = "" if community is None else " AND community = ?"
    for c, by, leader, note, at, late, figures in t.all(
            "SELECT community, submitted_by, leader, note, submitted_utc, late, figures "
            "FROM report_submissions WHERE day = ?" + one,
            (day.isoformat(),) + (() if community is None else (community,))):
        yield c, Submission(community=c, day=day.isoformat(), submitted_by=by, leader=leader, note=note,
                            submitted_utc=at, late=bool(late), figures=json.loads(figures))


def submit(db: Database, community: str, day: dt.date, tz: str, submitted_by: str, leader: str,
           note: str | None = None, now: dt.datetime | None = None, audit: AuditStep | None = None) -> Submission:
    """The community's staff submit the day's report, zero or not, signed with the shift
    leader's name. Refused while the day is not over or a gate has not synced past its
    end (the figures would be incomplete). Submitting again replaces the submission."""
    leader = " ".join(leader.split())
    if not leader or len(leader) > MAX_LEADER:
        raise Rejected(422, "invalid_leader", f"the shift leader's name: 1 to {MAX_LEADER} characters")
    if note is not None and len(note) > MAX_NOTE:
        raise Rejected(422, "invalid_note", f"the note: at most {MAX_NOTE} characters")
    now = now or clock.utc_now()
    report = daily(db, day, tz, community, now=now)
    found = next((c for c in report.communities if c.community == community), None)
    if found is None:
        raise Rejected(404, "unknown_community", f"no community {community!r}")
    if now < clock.parse_iso(report.end_utc):
        raise Rejected(409, "day_not_over", f"{day} is not over yet in {tz}: submit it after midnight")
    silent = [g.gate for g in found.gates if not g.synced]
    if silent:
        raise Rejected(409, "gates_not_synced", "gate " + ", ".join(silent) + " has not synced past the "
                       f"end of {day}: its entries of the day are not all here yet")
    late = now > clock.parse_iso(report.due_utc)
    figures = json.dumps(found.signed(), ensure_ascii=False, sort_keys=True)
    with db.tx(write=True) as t:
        t.all("INSERT INTO report_submissions VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (community, day) "
              "DO UPDATE SET submitted_by = excluded.submitted_by, leader = excluded.leader, "
              "note = excluded.note, submitted_utc = excluded.submitted_utc, late = excluded.late, "
              "figures = excluded.figures",
              (community, day.isoformat(), submitted_by, leader, note, clock.iso(now), int(late), figures))
        done = Submission(community=community, day=day.isoformat(), submitted_by=submitted_by, leader=leader,
                          note=note, submitted_utc=clock.iso(now), late=late, figures=found.signed())
        if audit:
            audit(t, done)
    return done


# -- history and the chart ----------------------------------------------------------------------
@dataclass
class DayPoint:
    day: str
    entries: int
    refused: int
    fevers: int


MAX_CHART_DAYS = 92


def history(db: Database, community: str, last_day: dt.date, days: int, tz: str) -> list[DayPoint]:
    """A community's entries, refusals and fevers for each of `days` local days ending
    with `last_day` (zeros included)."""
    if not 1 <= days <= MAX_CHART_DAYS:
        raise Rejected(422, "invalid_request", f"days: 1 to {MAX_CHART_DAYS}")
    _, end = bounds(last_day, tz)  # first: a day out of range is refused before any arithmetic
    first = last_day - dt.timedelta(days=days - 1)
    start, _ = bounds(first, tz)
    z = zone(tz)
    points = {(first + dt.timedelta(days=i)).isoformat(): DayPoint((first + dt.timedelta(days=i)).isoformat(),
                                                                   0, 0, 0) for i in range(days)}
    with db.tx() as t:
        counts = t.all("SELECT corrected_utc, action, report, batch_id, batch_index FROM entries "
                       "WHERE corrected_utc >= ? AND corrected_utc < ?" + _OF_COMMUNITY,
                       (clock.iso(start), clock.iso(end), community))
        # only immediate reports can be confirmed fevers: read just their records
        for (at, *_), record in _each_record(t, [r for r in counts if r[2] == "immediate"], batch_at=3):
            if "fevers" in tally(record)[0]:
                points[clock.parse_iso(at).astimezone(z).date().isoformat()].fevers += 1
    for at, action, _report, _b, _i in counts:
        p = points[clock.parse_iso(at).astimezone(z).date().isoformat()]
        p.entries += 1
        p.refused += action in NOT_ADMITTED
    return list(points.values())


CHART_TEXT = {
    "entries": {"zh": "进出人次", "en": "Entries"},
    "refused": {"zh": "不予放行", "en": "Not admitted"},
    "fevers": {"zh": "发热", "en": "Fever"},
    "title": {"zh": "{community} 近{days}天", "en": "{community}, last {days} days"},
}


def chart_svg(points: list[DayPoint], community: str, lang: str = "zh") -> str:
    """The chart as SVG text: matplotlib's SVG backend with text kept as text, so the
    browser draws the Chinese with its own fonts (no font file needed on the server)."""
    from sync.server import chart
    return chart.draw(points, community, lang)


def reason_words(code: str, lang: str = "zh") -> str:
    return reasons.reason_text(code, lang)
