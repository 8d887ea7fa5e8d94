"""The checkpoint: one person at a time through 查、测、问、记、报.

A state machine with one inbox and one thread. Everything that happens at the gate
arrives on the inbox (a code the camera read, a guard's command) or is polled by
that thread (the thermometer's newest reading, the clock), so two people's data can
never mix: a reading or a frame is taken only when it is newer than the step that
waits for it, and a code shown while someone else is being checked waits, briefly,
for its turn.

    waiting ─code / look-up─> measuring ─stable reading─> (retest) ─> asking ─> decided
       ^                          │ timeout                              │ timeout  │
       └──────────── abandoned (logged) <────────────────────────────────┘          │
       └─────────────────────────── outcome shown for a moment <────────────────────┘

The entry is committed before anything opens: the relay pulses only after
`Store.record` has returned. With nobody at the console the gate still works: the
guard is asked only where the lists flag the person or a default is missing.

The daemon, the demo, the benchmarks and the tests all drive this class; the console
and the queue screen see it only through `state()` and the events it publishes.
"""
from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from kiosk import clock as gate_clock
from kiosk import reasons, rules
from kiosk.codes import Reason, Verifier, VerifyResult
from kiosk.lookup import BadLookup, Lookup
from kiosk.people import mask_name
from kiosk.records import (
    RECORDS,
    CourierRecord,
    Record,
    RecordInvalid,
    ReturneeRecord,
    VehicleRecord,
    VisitorRecord,
)
from kiosk.shifts import ShiftError, Shifts
from kiosk.store import Entry, Store

log = logging.getLogger("gate.checkpoint")

WAITING, MEASURING, RETEST, ASKING, DECIDED = "waiting", "measuring", "retest", "asking", "decided"
PHASES = (WAITING, MEASURING, RETEST, ASKING, DECIDED)
ABANDONED = "abandoned"  # the action logged when a person walks away mid-check


class Relay(Protocol):
    def pulse(self, seconds: float) -> None: ...


class Thermometer(Protocol):
    def latest(self, max_age: float | None = None) -> Any: ...


class Clock(Protocol):
    def now(self) -> dt.datetime: ...
    def monotonic(self) -> float: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return gate_clock.utc_now()

    def monotonic(self) -> float:
        return time.monotonic()


@dataclasses.dataclass(frozen=True)
class Person:
    """What the lists say of the person in front of the gate."""
    person_ref: str | None = None
    masked_name: str | None = None
    kind: str = "resident"  # resident | visitor | courier
    known: bool = False  # on the township's lists
    has_pass: bool = False
    quarantine: str = "none"
    quarantine_until: dt.datetime | None = None
    approved: bool = False
    visiting_quarantined_home: bool = False  # a visitor whose household is under home quarantine
    flags: tuple[str, ...] = ()  # why the guard must look before the gate decides
    household: str | None = None  # the household's address, for the guard who looked the person up


# (person_ref or None, the verified code or None, now) -> Person. The daemon passes a
# reader of the township's lists; without lists everyone is unknown.
PersonFinder = Callable[[str | None, VerifyResult | None, dt.datetime], Person]


def unknown_person(ref: str | None, code: VerifyResult | None, now: dt.datetime) -> Person:
    name = (code.claims.get("name") if code is not None else None) or None
    return Person(person_ref=ref, masked_name=mask_name(name) if name else None)


@dataclasses.dataclass(frozen=True)
class Settings:
    gate: str
    device_id: str
    guard: str | None = None
    measure_timeout_s: float = 20.0  # no stable reading by then: the person walked away
    retest_gap_s: float = 2.0  # a re-test is a new measurement, not the same frame again
    retest_timeout_s: float = 120.0  # a short rest out of wind and sun, then the second reading
    ask_timeout_s: float = 60.0
    outcome_s: float = 3.0  # the outcome stays on the screen this long
    # A code shown while someone else is checked keeps its turn this long (None: for good,
    # as for a folder of images where every code is a person).
    waiting_code_s: float | None = 2.0
    stable_readings: int = 2  # consecutive plausible readings that agree make a measurement
    stable_delta_c: float = 0.3  # the module's accuracy
    relay_pulse_s: float = 3.0


@dataclasses.dataclass
class Subject:
    """The person (or vehicle) being checked now."""
    started: float  # monotonic
    source: str  # code | lookup
    person: Person
    code: VerifyResult | None = None
    code_text_seen: str | None = None
    phase_since: float = 0.0
    readings: list[dict] = dataclasses.field(default_factory=list)  # accepted measurements
    recent: list[Any] = dataclasses.field(default_factory=list)  # readings towards a stable one
    measure_from: float = 0.0  # only readings newer than this count
    answers: rules.Answers = rules.Answers()
    answered: bool = False
    mask_confirmed: bool | None = None
    override_reason: str | None = None
    refused_check: bool = False
    emergency: str | None = None
    direction: str = "in"
    vehicle: rules.Vehicle | None = None
    vehicle_record: dict | None = None  # the vehicle's record, stored in the entry's vehicle field
    test_age_h: float | None = None  # from a returnee's record, when the code says nothing
    details: dict | None = None


class Checkpoint:
    def __init__(self, *, store: Store, verifier: Verifier, thermometer: Thermometer | None,
                 relay: Relay, settings: Settings, policy: Callable[[], rules.GatePolicy],
                 find_person: PersonFinder = unknown_person, clock: Clock | None = None,
                 lists_age_h: Callable[[], float | None] | None = None,
                 lists: Lookup | None = None,
                 on_alive: Callable[[], None] | None = None) -> None:
        self.store, self.verifier, self.thermometer, self.relay = store, verifier, thermometer, relay
        self.settings, self.policy, self.find_person = settings, policy, find_person
        self.clock = clock or SystemClock()
        self.shifts = Shifts(store, settings.gate)
        self.lists_age_h = lists_age_h
        self.lists = lists  # the township's lists, for look-ups by ID number and registrations
        self.on_alive = on_alive
        self.phase = WAITING
        self.subject: Subject | None = None
        self.last: dict | None = None  # the last decision, as published
        self.last_handover: dict | None = None
        self._inbox: queue.Queue[tuple[str, dict, concurrent.futures.Future | None]] = queue.Queue(maxsize=256)
        self._waiting: collections.deque[tuple[str, float]] = collections.deque(maxlen=64)
        self._last_reading_t = float("-inf")
        self._listeners: list[Callable[[dict], None]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._snapshot = self._state()

    # -- inputs (any thread) --------------------------------------------------------
    def code_read(self, text: str, frame_time: float | None = None) -> None:
        """The camera read a code (the scanner's on_scan)."""
        self._put("code", {"text": text, "t": self.clock.monotonic() if frame_time is None else frame_time})

    def command(self, name: str, **args: Any) -> concurrent.futures.Future:
        """A guard's command: look_up, manual_temperature, answers, mask, override, cancel.
        The future holds the state after it, or the CommandError that refused it."""
        if name not in COMMANDS:
            raise CommandError("unknown_command", f"unknown command {name!r}")
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._put(name, args, future)
        return future

    def subscribe(self, listener: Callable[[dict], None]) -> Callable[[], None]:
        """Every event from now on (a dict with "type"); returns the unsubscribe."""
        with self._lock:
            self._listeners.append(listener)
        return lambda: self._unsubscribe(listener)

    def _unsubscribe(self, listener: Callable[[dict], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _put(self, kind: str, data: dict, future: concurrent.futures.Future | None = None) -> None:
        try:
            self._inbox.put_nowait((kind, data, future))
        except queue.Full:  # a flood (a stuck key, a looping client): drop, never block the sender
            log.warning("checkpoint inbox full; dropped %s", kind)
            if future is not None:
                future.set_exception(CommandError("gate_busy", "the gate is busy; try again"))

    # -- the loop ---------------------------------------------------------------------
    def start(self) -> Checkpoint:
        self._thread = threading.Thread(target=self.run, name="checkpoint", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step(0.02)
            except Exception:  # logged; the gate goes on with the next person
                log.exception("checkpoint step failed; back to waiting")
                self.subject = None
                self.phase = WAITING

    def step(self, wait_s: float = 0.0) -> None:
        """One turn: an input if one comes within `wait_s`, the thermometer, the clock."""
        try:
            kind, data, future = self._inbox.get(timeout=wait_s) if wait_s else self._inbox.get_nowait()
        except queue.Empty:
            pass
        else:
            try:
                self._handle(kind, data)
            except CommandError as exc:
                if future is not None:
                    future.set_exception(exc)
            except Exception as exc:  # a bug in one person's check must not stop the gate
                log.exception("checkpoint failed on %s", kind)
                if future is not None:
                    future.set_exception(exc)
            else:
                if future is not None:
                    future.set_result(self._state())
        self._poll_thermometer()
        self._check_time()
        self._snapshot = self._state()
        if self.on_alive is not None:
            self.on_alive()

    def idle(self) -> bool:
        """Nobody being checked and nobody waiting: a finite source may stop here."""
        return self.phase == WAITING and not self._waiting and self._inbox.empty()

    # -- state for the console and the queue screen --------------------------------------
    def state(self) -> dict:
        """The state as of the checkpoint's last turn (at most one turn old): safe from any
        thread, since only the checkpoint's own thread builds it."""
        return dict(self._snapshot)

    def _state(self) -> dict:
        s = self.subject
        return {"phase": self.phase, "subject": None if s is None else {
            "source": s.source, "kind": s.person.kind, "masked_name": s.person.masked_name,
            "known": s.person.known, "flags": list(s.person.flags), "household": s.person.household,
            "quarantine": s.person.quarantine, "has_pass": s.person.has_pass,
            "code": _code_summary(s.code),
            "readings_c": [r["body_c"] for r in s.readings],
            "mask_confirmed": s.mask_confirmed, "answered": s.answered,
            "waiting_s": round(self.clock.monotonic() - s.phase_since, 1),
            "deadline_in_s": self._deadline_in_s(s)},
            "last": self.last}

    def _phase_limit(self) -> float | None:
        """How long the step under way may wait before the check is abandoned."""
        return {MEASURING: self.settings.measure_timeout_s, RETEST: self.settings.retest_timeout_s,
                ASKING: self.settings.ask_timeout_s}.get(self.phase)

    def _deadline_in_s(self, s: Subject) -> float | None:
        """Seconds left for this step (a countdown needs no shared clock), None when none waits."""
        limit = self._phase_limit()
        if limit is None:
            return None
        return round(max(0.0, s.phase_since + limit - self.clock.monotonic()), 1)

    def _emit(self, event_type: str, **data: Any) -> None:
        event = {"type": event_type, "at": gate_clock.iso(self.clock.now()), **data}
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # a broken listener (a gone console) must not stop the gate
                log.exception("event listener failed")

    def _to(self, phase: str) -> None:
        self.phase = phase
        if self.subject is not None:
            self.subject.phase_since = self.clock.monotonic()
        # A listener that reads state() on this event (the queue screen's stream, from its own
        # thread) must see this phase, not the one at the start of the turn: a stale snapshot
        # once put 请测温 back over a decision and left it there.
        self._snapshot = self._state()
        self._emit("state", phase=phase)

    # -- inputs, handled on the checkpoint's thread ---------------------------------------
    def _handle(self, kind: str, data: dict) -> None:
        if kind == "code":
            self._on_code(data["text"], data["t"])
            return
        COMMANDS[kind](self, **data)

    def _on_code(self, text: str, t: float) -> None:
        s = self.subject
        if s is not None and s.source == "register" and s.code is None and self.phase == MEASURING:
            # the registered visitor (courier, returnee) now shows their code: it is theirs
            s.code, s.code_text_seen = self.verifier.verify(text, at=self.clock.now()), text
            self._emit("code", code=_code_summary(s.code), masked_name=s.person.masked_name)
            self._after_code()
            return
        if self.phase not in (WAITING, DECIDED):
            if (self.subject is None or text != self.subject.code_text_seen) and \
                    all(text != w[0] for w in self._waiting):
                self._waiting.append((text, t))  # the next person's phone: their turn comes next
            return
        self._begin(text, t)

    def _begin(self, text: str, t: float, measure_from: float | None = None) -> None:
        now = self.clock.now()
        result = self.verifier.verify(text, at=now)
        ref = result.claims.get("person_ref") if result.valid or result.claims else None
        person = self.find_person(ref, result, now)
        self.subject = Subject(started=t, source="code", person=person, code=result, code_text_seen=text,
                               measure_from=t if measure_from is None else measure_from)
        self._emit("code", code=_code_summary(result), masked_name=person.masked_name)
        self._after_code()

    def _after_code(self) -> None:
        s = self.subject
        assert s is not None
        # A code that refuses on its own (red, yellow, forged, a payment QR) needs no thermometer.
        first = self._decide(readings=False)
        if first.action in (rules.REFUSE, rules.HOLD, rules.ISOLATE):
            self._finish(first)
            return
        self._to(MEASURING)

    def look_up(self, person_ref: str | None = None, id_number: str | None = None, direction: str = "in") -> None:
        """The guard found the person by ID number or name (no phone, or no code)."""
        person_ref = self._person_for_a_new_check(person_ref, id_number)
        if not person_ref:
            raise CommandError("bad_command", "look up a person by person_ref or id_number")
        if direction not in rules.DIRECTIONS:
            raise CommandError("bad_command", f"direction must be in or out, not {direction!r}")
        now = self.clock.now()
        person = self.find_person(person_ref, None, now)
        t = self.clock.monotonic()
        self.subject = Subject(started=t, source="lookup", person=person, measure_from=t,
                               direction=direction)
        self._emit("lookup", masked_name=person.masked_name, known=person.known)
        if direction == "out":
            self._to(ASKING) if person.flags else self._finish(self._decide())
        else:
            self._to(MEASURING)

    def manual_temperature(self, body_c: float) -> None:
        """A reading from the hand-held gun, typed in by the guard."""
        if self.phase not in (MEASURING, RETEST):
            raise CommandError("not_measuring", "no one is being measured now")
        if not isinstance(body_c, int | float) or not 30.0 <= body_c <= 45.0:
            raise CommandError("bad_temperature", "a body temperature is between 30 and 45 °C")
        self._accept_reading({"body_c": round(float(body_c), 2), "source": "manual"})

    def answers(self, symptoms: bool = False, risk_area_travel: bool = False,
                case_contact: bool = False) -> None:
        """问: the person's answers, confirmed by the guard."""
        s = self._require_subject()
        s.answers = rules.Answers(bool(symptoms), bool(risk_area_travel), bool(case_contact))
        s.answered = True
        if self.phase == ASKING:
            self._finish(self._decide())

    def mask(self, confirmed: bool = True) -> None:
        self._require_subject().mask_confirmed = bool(confirmed)

    def override(self, reason: str) -> None:
        """The guard lets the person through against the rules: only with a reason, always reported."""
        if not isinstance(reason, str) or not reason.strip():
            raise CommandError("reason_required", "an override needs a reason")
        if len(reason) > 200:
            raise CommandError("bad_command", "the reason is at most 200 characters")
        s = self.subject
        if s is None or self.phase == WAITING:
            raise CommandError("nobody_to_admit", "no one to let through")
        if self.phase == DECIDED:  # overriding the outcome on the screen: a new entry for it
            self.subject = s = dataclasses.replace(s, override_reason=reason.strip())
            self._finish(self._decide())
            return
        s.override_reason = reason.strip()
        self._finish(self._decide())

    def refused(self) -> None:
        """The person will not be measured or questioned: refused and reported at once."""
        s = self._require_subject()
        s.refused_check = True
        self._finish(self._decide())

    def emergency_exit(self, person_ref: str | None = None, emergency: str = "other",
                       id_number: str | None = None) -> None:
        """急危重症: the guard lets someone out for the fever clinic, an acute illness, a birth,
        dialysis; recorded and reported at once, whatever else applies. Who it is, when the
        guard can say (a person_ref, or the ID number typed), goes into the entry."""
        if emergency not in rules.EMERGENCIES:
            raise CommandError("bad_command", f"emergency must be one of {', '.join(rules.EMERGENCIES)}")
        person_ref = self._person_for_a_new_check(person_ref, id_number)
        now, t = self.clock.now(), self.clock.monotonic()
        person = self.find_person(person_ref, None, now) if person_ref else Person()
        self.subject = Subject(started=t, source="lookup", person=person, measure_from=t, direction="out",
                               emergency=emergency)
        self._finish(self._decide())

    def register(self, form: str, fields: dict, approved: bool = False, direction: str = "in") -> None:
        """记: a visitor, courier, first return or vehicle, with the fields of its form. During a
        check it is added to the person being checked; otherwise it starts one (their code, if
        they have one, is read next), and just after a refusal it re-checks the same code."""
        record_type = RECORDS.get(form)
        if record_type is None:
            raise CommandError("bad_command", f"form must be one of {', '.join(RECORDS)}")
        if direction not in rules.DIRECTIONS:
            raise CommandError("bad_command", f"direction must be in or out, not {direction!r}")
        if not isinstance(fields, dict):
            raise CommandError("bad_command", "fields must be an object")
        now = self.clock.now()
        try:
            if record_type is ReturneeRecord:
                record: Record = ReturneeRecord.from_form(fields, salt=self._lists().salt, today=self._today(now))
            else:
                record = record_type.from_form(fields)  # type: ignore[attr-defined]
        except RecordInvalid as exc:
            raise CommandError("invalid_form", str(exc), fields=exc.codes) from None
        s = self.subject
        if s is None or self.phase in (WAITING, DECIDED):
            t = self.clock.monotonic()
            # a refused person being registered keeps their code; someone just let in is gone
            last = s if self.phase == DECIDED and (self.last or {}).get("action") != rules.ADMIT else None
            s = self.subject = Subject(started=t, source="register", person=Person(), measure_from=t,
                                       direction=direction, code=last.code if last else None,
                                       code_text_seen=last.code_text_seen if last else None)
        s.details = {**(s.details or {}), **({} if isinstance(record, VehicleRecord) else record.to_details())}
        self._apply_record(s, record, bool(approved), now)
        self._emit("register", form=form, masked_name=s.person.masked_name)
        if self.phase in (WAITING, DECIDED):
            if s.direction == "out" or s.code is not None:
                self._to(MEASURING)
                if s.direction == "out":
                    self._finish(self._decide())
                else:
                    self._after_code()
            else:
                self._to(MEASURING)  # their code, if they have one, and their temperature next

    def _apply_record(self, s: Subject, record: Record, approved: bool, now: dt.datetime) -> None:
        p = s.person
        if isinstance(record, VisitorRecord):
            lists = self.lists
            quarantined = lists is not None and any(
                lists.household_orders(h, now) for h in self._households(lists, record.visiting))
            s.person = dataclasses.replace(p, kind="visitor", masked_name=record.masked_name, known=True,
                                           approved=approved or bool(record.approved_by),
                                           visiting_quarantined_home=quarantined)
        elif isinstance(record, CourierRecord):
            s.person = dataclasses.replace(p, kind="courier", known=True)
        elif isinstance(record, ReturneeRecord):
            found = self.find_person(record.person_ref, None, now)
            s.person = dataclasses.replace(found, masked_name=found.masked_name or record.masked_name)
            risky = record.from_county is not None and self._lists().risk(record.from_county).level is not None
            s.answers = dataclasses.replace(s.answers, risk_area_travel=s.answers.risk_area_travel or risky,
                                            abroad=s.answers.abroad or record.from_abroad)
            age = record.test_age_days(self._today(now))
            s.test_age_h = None if age is None else age * 24.0
        elif isinstance(record, VehicleRecord):
            lists = self._lists()
            resident = lists.vehicle(record.plate) is not None
            s.vehicle = rules.Vehicle(resident=resident,
                                      exits_today=lists.vehicle_exits(record.plate, self._today(now)))
            s.vehicle_record = record.to_details()
            if not p.known:
                s.person = dataclasses.replace(p, kind="resident" if resident else "visitor", known=resident)

    @staticmethod
    def _households(lists: Lookup, visiting: str) -> list[str]:
        """The household a visitor names: its id, or its address as the guard typed it (3-2-501)."""
        if lists.household(visiting) is not None:
            return [visiting]
        return [h.id for h in lists.households_at(visiting) if h.address == visiting.strip()]

    def _person_for_a_new_check(self, person_ref: str | None, id_number: str | None) -> str | None:
        """A guard's look-up or emergency starts a check: refused while one is under way; an ID
        number typed is turned into the person reference (never kept in clear)."""
        if self.phase not in (WAITING, DECIDED):
            raise CommandError("check_under_way", "a check is already under way; finish or cancel it first")
        if id_number is None:
            return person_ref
        try:
            return self._lists().person_ref_for(id_number)
        except BadLookup as exc:
            raise CommandError("invalid_form", str(exc), fields={exc.field: exc.code}) from None

    def _lists(self) -> Lookup:
        if self.lists is None:
            raise CommandError("no_lists", "this gate has no lists: look-ups and registrations need them")
        return self.lists

    def _today(self, now: dt.datetime) -> dt.date:
        return now.astimezone(self.lists.tz if self.lists else dt.UTC).date()

    def start_shift(self, guard_id: str, pin: str, fever: bool = False, cough: bool = False,
                    leader_id: str | None = None) -> None:
        try:
            shift = self.shifts.start(guard_id, pin, fever=fever, cough=cough, leader_id=leader_id,
                                      now=self.clock.now())
        except ShiftError as exc:
            raise CommandError(exc.code, str(exc)) from None
        self._emit("shift", started=True, guard=shift.guard_name, leader=shift.leader_name)

    def end_shift(self) -> None:
        try:
            summary = self.shifts.end(now=self.clock.now())
        except ShiftError as exc:
            raise CommandError(exc.code, str(exc)) from None
        self.last_handover = summary
        self._emit("shift", started=False, handover=summary)

    def acknowledge_alarm(self, alarm_id: int) -> None:
        if not isinstance(alarm_id, int) or isinstance(alarm_id, bool):
            raise CommandError("bad_command", "alarm_id must be a number")
        open_ids = {a["id"] for a in self.store.alarms()}
        if alarm_id not in open_ids:
            raise CommandError("no_such_alarm", f"no open alarm {alarm_id}")
        self.store.acknowledge_alarm(alarm_id, now=self.clock.now(), by=self._guard())
        self._emit("alarm_acknowledged", id=alarm_id, by=self._guard())

    def cancel(self) -> None:
        if self.subject is not None and self.phase not in (WAITING, DECIDED):
            self._abandon("cancelled")

    def _require_subject(self) -> Subject:
        if self.subject is None or self.phase in (WAITING, DECIDED):
            raise CommandError("not_checking", "no one is being checked now")
        return self.subject

    # -- 测 -------------------------------------------------------------------------
    def _poll_thermometer(self) -> None:
        if self.thermometer is None or self.phase not in (MEASURING, RETEST):
            return
        r = self.thermometer.latest()
        if r is None or r.t <= self._last_reading_t:
            return
        self._last_reading_t = r.t
        s = self.subject
        assert s is not None
        if r.t <= s.measure_from:
            return  # taken before this person (or this re-test) stood there
        self._emit("reading", object_c=r.object_c, ambient_c=r.ambient_c, body_c=r.body_c,
                   flag=getattr(r.flag, "value", r.flag))
        if r.body_c is None:  # implausible or stuck: nobody in front yet, or a sensor fault
            s.recent.clear()
            return
        s.recent.append(r)
        need = max(1, self.settings.stable_readings)
        last = s.recent[-need:]
        if len(last) < need or max(x.body_c for x in last) - min(x.body_c for x in last) > self.settings.stable_delta_c:
            return
        s.recent.clear()
        self._accept_reading({"object_c": r.object_c, "ambient_c": r.ambient_c, "body_c": r.body_c,
                              "raw": r.raw, "source": "module"})

    def _accept_reading(self, reading: dict) -> None:
        s = self.subject
        assert s is not None
        s.readings.append(reading)
        d = self._decide()
        if d.action == rules.RETEST:
            s.measure_from = self.clock.monotonic() + self.settings.retest_gap_s
            self._to(RETEST)
            return
        if d.action == rules.MEASURE:
            return  # an implausible number typed in: keep measuring
        self._ask_or_finish(d)

    # -- 问 -------------------------------------------------------------------------
    def _ask_or_finish(self, d: rules.Decision) -> None:
        s = self.subject
        assert s is not None
        if d.action == rules.ADMIT and s.person.flags and not s.answered:
            self._to(ASKING)  # a list flags this person: the guard looks before the gate opens
            return
        self._finish(d)

    # -- 记 and 报 ----------------------------------------------------------------------
    def _facts(self, readings: bool = True) -> rules.Facts:
        s = self.subject
        assert s is not None
        p = s.person
        kind = p.kind
        policy = self.policy()
        if not p.known and s.code is not None and s.code.valid:
            kind = policy.unknown_person()
        code = None
        if s.code is not None and s.code.reason != Reason.NOT_A_CODE:
            code = rules.Code(colour=s.code.claims.get("colour") if s.code.valid else None, valid=s.code.valid)
        if s.source == "lookup" and s.code is None:
            # looked up without a phone: the guard checks the person on the lists instead of a code
            code = rules.Code(colour="green", valid=True) if p.known else None
        return rules.Facts(
            direction=s.direction,
            subject=rules.Subject(kind=kind, has_pass=p.has_pass, quarantine=p.quarantine,
                                  quarantine_until=p.quarantine_until, approved=p.approved),
            code=code, readings_c=tuple(r["body_c"] for r in s.readings) if readings else (), vehicle=s.vehicle,
            answers=s.answers, override_reason=s.override_reason, mask=s.mask_confirmed,
            refused_check=s.refused_check, emergency=s.emergency,
            visiting_quarantined_home=p.visiting_quarantined_home, test_age_h=self._test_age_h(s),
            lists_stale=self._lists_stale(policy))

    def _test_age_h(self, s: Subject) -> float | None:
        if s.test_age_h is not None:
            return s.test_age_h
        nat_at = s.code.claims.get("nat_at") if s.code is not None and s.code.valid else None
        if not nat_at:
            return None
        try:
            return max(0.0, (self.clock.now() - gate_clock.parse_iso(nat_at)).total_seconds() / 3600)
        except ValueError:
            return None

    def _lists_stale(self, policy: rules.GatePolicy) -> bool:
        if self.lists_age_h is None:
            return False  # no lists configured for this checkpoint (a bench, a test)
        age = self.lists_age_h()
        return age is None or age > policy.lists_max_age_h

    def _decide(self, readings: bool = True) -> rules.Decision:
        return rules.decide(self.policy(), self._facts(readings), self.clock.now())

    def _finish(self, d: rules.Decision) -> None:
        s = self.subject
        assert s is not None
        facts = self._facts()
        entry = self._record(Entry(
            gate=self.settings.gate, direction=s.direction, subject_kind=facts.subject.kind,
            action=d.action, report=d.report, reasons=list(d.reasons), guard=self._guard(),
            masked_name=s.person.masked_name, person_ref=s.person.person_ref,
            code_kind=s.code.kind if s.code else None,
            code_colour=facts.code.colour if facts.code else None,
            code_result=_code_result(s), readings=list(s.readings),
            answers=dataclasses.asdict(s.answers) if s.answered else {},
            mask_confirmed=s.mask_confirmed, details=s.details, vehicle=s.vehicle_record,
            override_reason=s.override_reason))
        if entry is None:
            return
        if d.report == "immediate":  # 立即上报: the console's banner stays until a guard acknowledges it
            # what makes it urgent: an override, else the strongest reason
            why = "override" if d.overridden_action else d.reasons[0]
            who = f" {s.person.masked_name}" if s.person.masked_name else ""
            self._alarm(why, f"#{entry.seq}{who} {reasons.action_text(d.action)}：{reasons.reason_text(why)}")
        # The entry is on disk: only now may the gate open.
        self.last = {"seq": entry.seq, "action": d.action, "reasons": list(d.reasons), "report": d.report,
                     "masked_name": s.person.masked_name, "readings_c": [r["body_c"] for r in s.readings],
                     "code_colour": entry.code_colour, "subject_kind": entry.subject_kind,
                     "overridden_action": d.overridden_action}
        if d.admitted:
            try:
                self.relay.pulse(self.settings.relay_pulse_s)
            except Exception as exc:  # noqa: BLE001 - the guard opens by hand; the entry stands
                log.error("relay failed: %s", exc)
                self._emit("device", device="relay", status="fault", detail=str(exc))
                # on the banner of every console until a guard has seen it
                self._alarm("relay_fault", f"#{entry.seq} {reasons.text(reasons.ALARM_TEXT, 'relay_fault')}")
        self._emit("decision", **self.last)
        self._to(DECIDED)

    def _alarm(self, kind: str, message: str) -> None:
        try:
            alarm_id = self.store.raise_alarm(kind, message, now=self.clock.now())
        except Exception as exc:  # noqa: BLE001 - the entry is stored; the alarm still goes out as an event
            log.error("could not store the alarm: %s", exc)
            alarm_id = None
        self._emit("alarm", id=alarm_id, kind=kind, message=message)

    def _guard(self) -> str | None:
        shift = self.shifts.current()
        return shift.guard_id if shift else self.settings.guard

    def _record(self, entry: Entry) -> Entry | None:
        try:
            return self.store.record(entry, device_id=self.settings.device_id, now=self.clock.now())
        except Exception as exc:  # noqa: BLE001 - no record, no opening: the gate stays shut
            log.error("could not record the entry: %s", exc)
            self._emit("alarm", kind="store", message=str(exc))
            self.subject = None
            self._to(WAITING)
            return None

    def _abandon(self, why: str) -> None:
        s = self.subject
        assert s is not None
        reason = f"{why}_{self.phase}" if why == "timeout" else why
        entry = self._record(Entry(
            gate=self.settings.gate, direction=s.direction, subject_kind=s.person.kind,
            action=ABANDONED, report="none", reasons=[reason], guard=self._guard(),
            masked_name=s.person.masked_name, person_ref=s.person.person_ref,
            code_kind=s.code.kind if s.code else None, code_result=_code_result(s),
            readings=list(s.readings)))
        if entry is not None:
            self.last = {"seq": entry.seq, "action": ABANDONED, "reasons": [reason], "report": "none",
                         "masked_name": s.person.masked_name, "readings_c": [r["body_c"] for r in s.readings],
                         "code_colour": None, "subject_kind": s.person.kind, "overridden_action": None}
            self._emit("decision", **self.last)
        self.subject = None
        self._to(WAITING)

    # -- the clock ----------------------------------------------------------------------
    def _check_time(self) -> None:
        now = self.clock.monotonic()
        s = self.subject
        if self.phase == DECIDED and s is not None and now - s.phase_since >= self.settings.outcome_s:
            self.subject = None
            self._to(WAITING)
        while self.phase in (WAITING, DECIDED) and self._waiting:
            text, t = self._waiting.popleft()
            limit = self.settings.waiting_code_s
            if limit is None or now - t <= limit:
                self._begin(text, t, measure_from=now)  # readings before their turn were not theirs
                return
        limit = self._phase_limit()
        if limit is not None and s is not None and now - s.phase_since >= limit:
            self._abandon("timeout")


class CommandError(Exception):
    """A guard's command that cannot be done now. `code` is stable (the API returns it and a
    console words it in its own language; docs/api.md lists them), str() says why, and
    `fields` names a form's bad fields by their error codes (kiosk/records.py)."""

    def __init__(self, code: str, detail: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.code, self.fields = code, dict(fields or {})


COMMANDS: dict[str, Callable[..., None]] = {
    "look_up": Checkpoint.look_up, "manual_temperature": Checkpoint.manual_temperature,
    "answers": Checkpoint.answers, "mask": Checkpoint.mask, "override": Checkpoint.override,
    "refused": Checkpoint.refused, "emergency_exit": Checkpoint.emergency_exit, "cancel": Checkpoint.cancel,
    "register": Checkpoint.register, "start_shift": Checkpoint.start_shift, "end_shift": Checkpoint.end_shift,
    "acknowledge_alarm": Checkpoint.acknowledge_alarm,
}


def _code_summary(code: VerifyResult | None) -> dict | None:
    if code is None:
        return None
    return {"kind": code.kind, "valid": code.valid, "colour": code.claims.get("colour") if code.valid else None,
            "reason": code.reason.value if code.reason else None, "trust_stale": code.trust_stale}


def _code_result(s: Subject) -> str:
    if s.code is None:
        return "looked_up" if s.source == "lookup" else "no_code"
    return "valid" if s.code.valid else (s.code.reason.value if s.code.reason else "invalid")
