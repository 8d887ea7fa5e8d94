"""The checkpoint end to end on real parts: a GY-MCU90614 emulated on a pseudo-terminal
read through the real serial driver, codes signed and verified with real keys, a real
store file. The relay records when it pulsed and what the store held at that moment."""
from __future__ import annotations

import datetime as dt
import time

import pytest
from support import wait_for

from devices.thermometer.driver import Thermometer
from devices.thermometer.emulator import GyMcu90614Emulator
from devices.thermometer.sessions import GyMcu90614Session
from kiosk import clock, rules
from kiosk.checkpoint import (
    ASKING,
    DECIDED,
    MEASURING,
    RETEST,
    WAITING,
    Checkpoint,
    CommandError,
    Person,
    Settings,
    unknown_person,
)
from kiosk.codes import Verifier, issue, keys, trust
from kiosk.lookup import Lookup
from kiosk.people import person_ref
from kiosk.records import id_check_digit
from kiosk.shifts import hash_pin
from kiosk.store import Store

AMBIENT = 12.0
NORMAL, HOT = 33.3, 34.3  # forehead °C at 12 °C ambient: body 36.6 and 37.6
NOBODY = 20.0  # an empty scene: far below any body, an implausible reading
SALT = "test-salt"


class RecordingRelay:
    """The gate's relay as the checkpoint sees it; checks the entry is on disk at each pulse."""

    def __init__(self, store_path):
        self.store_path = store_path
        self.pulses: list[int] = []  # entries on disk at each pulse

    def pulse(self, seconds: float) -> None:
        with Store.open(self.store_path) as s:
            self.pulses.append(s.stats()["entries"])


@pytest.fixture
def gate(tmp_path):
    signer = keys.generate("Ed25519")
    trust_list = trust.TrustList.from_json(
        {"keys": [trust.entry_for(signer.public_key(), ["health"], label="township")]},
        fetched_at=clock.utc_now())
    emulator = GyMcu90614Emulator(values=[(NOBODY, AMBIENT)]).start()
    thermometer = Thermometer(emulator.path, GyMcu90614Session(mode="query")).start()
    store = Store.open(tmp_path / "gate.db")
    relay = RecordingRelay(tmp_path / "gate.db")
    people: dict[str, Person] = {}

    def find(ref, code, now):
        return people.get(ref) or unknown_person(ref, code, now)

    policy = {"value": rules.GatePolicy()}

    def make(**settings):
        cp = Checkpoint(store=store, verifier=Verifier(trust_list), thermometer=thermometer, relay=relay,
                        settings=Settings(gate="east", device_id="g1", **{
                            "measure_timeout_s": 5, "retest_gap_s": 0.3, "outcome_s": 0.2, **settings}),
                        policy=lambda: policy["value"], find_person=find, lists=Lookup(store.conn, salt=SALT))
        return cp.start()

    class Gate:
        def code(self, name, colour="green", age_min=0.5, id_number="110105199001011234"):
            ref = person_ref(id_number, SALT)
            return ref, issue.health_code(signer, person_ref=ref, name=name, colour=colour,
                                          issued_at=clock.utc_now() - dt.timedelta(minutes=age_min))

        def resident(self, ref, **kw):
            people[ref] = Person(person_ref=ref, masked_name="王*明", known=True, has_pass=True, **kw)

        def stand(self, forehead):
            emulator.values = [(forehead, AMBIENT)]

    g = Gate()
    g.store, g.relay, g.make, g.emulator, g.policy = store, relay, make, emulator, policy
    checkpoints: list[Checkpoint] = []
    g.checkpoints = checkpoints
    yield g
    for cp in checkpoints:
        cp.stop()
    thermometer.stop()
    emulator.stop()
    store.close()


def run(g, **settings) -> tuple[Checkpoint, list[dict]]:
    cp = g.make(**settings)
    g.checkpoints.append(cp)
    events: list[dict] = []
    cp.subscribe(events.append)
    return cp, events


def decisions(events):
    return [e for e in events if e["type"] == "decision"]


def test_green_resident_is_admitted_after_the_entry_is_on_disk(gate):
    cp, events = run(gate)
    ref, text = gate.code("王小明")
    gate.resident(ref)
    cp.code_read(text)
    wait_for(lambda: cp.phase == MEASURING)
    gate.stand(NORMAL)
    wait_for(lambda: decisions(events))
    d = decisions(events)[0]
    assert d["action"] == "admit" and d["reasons"] == ["all_checks_passed"]
    assert gate.relay.pulses == [1]  # the pulse came when the entry was already stored
    entry = gate.store.entries()[0]
    assert entry.person_ref == ref and entry.action == "admit" and entry.readings[0]["body_c"] == pytest.approx(36.6)
    wait_for(lambda: cp.phase == WAITING)


def test_red_code_is_refused_at_once_without_the_thermometer(gate):
    cp, events = run(gate)
    ref, text = gate.code("吴刚", colour="red")
    cp.code_read(text)
    wait_for(lambda: decisions(events))
    d = decisions(events)[0]
    assert d["action"] == "refuse" and "red_code" in d["reasons"] and d["report"] == "immediate"
    assert gate.relay.pulses == []
    assert gate.store.entries()[0].readings == []


def test_a_screenshot_of_an_old_code_is_refused(gate):
    cp, events = run(gate)
    _, text = gate.code("陈静", age_min=25)
    cp.code_read(text)
    wait_for(lambda: decisions(events))
    assert decisions(events)[0]["action"] == "refuse"
    assert gate.store.entries()[0].code_result == "too_old"


def test_first_high_reading_is_retested_and_a_normal_second_admits(gate):
    cp, events = run(gate)
    ref, text = gate.code("李华")
    gate.resident(ref)
    gate.stand(HOT)
    cp.code_read(text)
    wait_for(lambda: cp.phase == RETEST)
    gate.stand(NOBODY)  # steps aside, rests, comes back
    time.sleep(0.4)
    gate.stand(NORMAL)
    wait_for(lambda: decisions(events))
    d = decisions(events)[0]
    assert d["action"] == "admit" and d["readings_c"] == [pytest.approx(37.6), pytest.approx(36.6)]


def test_a_listener_reading_the_state_on_a_state_event_sees_that_phase(gate):
    # The queue screen's stream words each state event from state(), on its own thread; it
    # once read the snapshot of the turn's start and put 请测温 back over the decision.
    cp, events = run(gate)
    seen: list[tuple[str, str]] = []
    cp.subscribe(lambda e: seen.append((e["phase"], cp.state()["phase"])) if e["type"] == "state" else None)
    ref, text = gate.code("李华")
    gate.resident(ref)
    gate.stand(HOT)
    cp.code_read(text)
    wait_for(lambda: cp.phase == RETEST)
    gate.stand(NORMAL)
    wait_for(lambda: decisions(events))
    wait_for(lambda: cp.phase == WAITING)
    assert [p for p, _ in seen] == [MEASURING, RETEST, DECIDED, WAITING]
    assert all(event == state for event, state in seen), seen


def test_confirmed_fever_isolates_and_reports_at_once(gate):
    cp, events = run(gate)
    ref, text = gate.code("赵敏")
    gate.resident(ref)
    gate.stand(HOT)
    cp.code_read(text)
    wait_for(lambda: cp.phase == RETEST)
    wait_for(lambda: decisions(events))
    d = decisions(events)[0]
    assert d["action"] == "isolate" and "fever_confirmed" in d["reasons"] and d["report"] == "immediate"
    assert gate.relay.pulses == []


def test_nobody_in_front_of_the_thermometer_is_logged_as_abandoned(gate):
    cp, events = run(gate, measure_timeout_s=0.5)
    ref, text = gate.code("周强")
    gate.resident(ref)
    cp.code_read(text)
    wait_for(lambda: decisions(events))
    assert decisions(events)[0]["action"] == "abandoned"
    assert gate.store.entries()[0].reasons == ["timeout_measuring"]
    assert cp.phase == WAITING and gate.relay.pulses == []


def test_a_reading_from_before_the_person_never_counts(gate):
    cp, events = run(gate)
    gate.stand(NORMAL)  # someone else's forehead, before this person shows a code
    time.sleep(0.5)
    gate.stand(NOBODY)
    time.sleep(0.3)
    ref, text = gate.code("王小明")
    gate.resident(ref)
    cp.code_read(text)
    time.sleep(0.5)
    assert cp.phase == MEASURING and not decisions(events)
    gate.stand(NORMAL)
    wait_for(lambda: decisions(events))


def test_the_next_persons_code_waits_its_turn(gate):
    cp, events = run(gate)
    ref1, text1 = gate.code("王小明")
    ref2, text2 = gate.code("李华", id_number="110105198505052345")
    gate.resident(ref1)
    gate.resident(ref2)
    cp.code_read(text1)
    wait_for(lambda: cp.phase == MEASURING)
    cp.code_read(text2)  # the next phone, held up while the first person is measured
    gate.stand(NORMAL)
    wait_for(lambda: len(decisions(events)) == 2)
    assert [e.person_ref for e in gate.store.entries()] == [ref1, ref2]


def test_a_person_without_a_phone_is_looked_up_and_measured_by_hand(gate):
    cp, events = run(gate)
    ref = person_ref("110105194001011234", SALT)
    gate.resident(ref)
    cp.command("look_up", person_ref=ref).result(2)
    assert cp.phase == MEASURING
    with pytest.raises(CommandError):
        cp.command("manual_temperature", body_c=80).result(2)
    cp.command("manual_temperature", body_c=36.5).result(2)
    wait_for(lambda: decisions(events))
    entry = gate.store.entries()[0]
    assert entry.action == "admit" and entry.code_result == "looked_up"
    assert entry.readings == [{"body_c": 36.5, "source": "manual"}]


def test_a_flagged_person_waits_for_the_guard_and_the_answers_decide(gate):
    cp, events = run(gate)
    ref, text = gate.code("刘洋")
    gate.resident(ref, flags=("risk_area_origin",))
    gate.stand(NORMAL)
    cp.code_read(text)
    wait_for(lambda: cp.phase == ASKING)
    cp.command("answers", risk_area_travel=True).result(2)
    wait_for(lambda: decisions(events))
    d = decisions(events)[0]
    assert d["action"] == "hold" and "risk_area_travel" in d["reasons"]


def test_an_override_needs_a_reason_and_is_reported(gate):
    cp, events = run(gate, outcome_s=5)
    _, text = gate.code("孙丽", colour="yellow")
    cp.code_read(text)
    wait_for(lambda: cp.phase == DECIDED)
    with pytest.raises(CommandError):
        cp.command("override", reason="  ").result(2)
    cp.command("override", reason="急诊送医").result(2)
    wait_for(lambda: len(decisions(events)) == 2)
    d = decisions(events)[1]
    assert d["action"] == "admit" and d["overridden_action"] == "refuse" and d["report"] == "immediate"
    assert [e.action for e in gate.store.entries()] == ["refuse", "admit"]
    assert gate.relay.pulses == [2]


def test_a_shift_signs_in_with_a_pin_and_hands_over(gate):
    gate.store.replace_list("guards", [
        {"id": "g7", "masked_name": "赵*", "pin_hash": hash_pin("2468"), "leader": False},
        {"id": "L1", "masked_name": "钱*", "pin_hash": hash_pin("1357"), "leader": True}])
    cp, events = run(gate)
    with pytest.raises(CommandError, match="密码"):
        cp.command("start_shift", guard_id="g7", pin="0000").result(2)
    with pytest.raises(CommandError, match="不能上岗"):
        cp.command("start_shift", guard_id="g7", pin="2468", cough=True).result(2)
    with pytest.raises(CommandError, match="带班领导"):
        cp.command("start_shift", guard_id="g7", pin="2468", leader_id="g7").result(2)
    cp.command("start_shift", guard_id="g7", pin="2468", leader_id="L1").result(2)
    _, text = gate.code("吴刚", colour="red")
    cp.code_read(text)
    wait_for(lambda: decisions(events))
    assert gate.store.entries()[0].guard == "g7"
    # the red code is an immediate report: an alarm until a guard acknowledges it
    alarm = gate.store.alarms()[0]
    assert alarm["kind"] == "red_code" and "红码" in alarm["message"]
    cp.command("acknowledge_alarm", alarm_id=alarm["id"]).result(2)
    assert gate.store.alarms() == []
    assert gate.store.alarms(include_acknowledged=True)[0]["acknowledged_by"] == "g7"
    cp.command("end_shift").result(2)
    handover = cp.last_handover
    assert handover["guard"] == "赵*" and handover["leader"] == "钱*"
    assert handover["by_action"] == {"refuse": 1} and handover["immediate_reports"] == 1
    assert handover["open_alarms"] == 0


def test_a_registered_visitor_shows_a_code_and_is_admitted_at_low(gate):
    cp, events = run(gate)
    cp.command("register", form="visitor", fields={
        "name": "刘洋", "phone": "13812345678", "home_town": "江苏南京", "visiting": "3-2-501",
        "reason": "探望老人", "transport": "walk"}).result(2)
    assert cp.phase == MEASURING
    _, text = gate.code("刘洋", id_number="320102199503036789")
    cp.code_read(text)  # the visitor's own code is theirs, not the next person's
    gate.stand(NORMAL)
    wait_for(lambda: decisions(events))
    entry = gate.store.entries()[0]
    assert entry.subject_kind == "visitor" and entry.action == "admit"
    assert "visitor_registered" in entry.reasons and entry.details["form"] == "visitor"
    assert entry.details["masked_name"] == "刘*" and "刘洋" not in str(entry.details)


def test_a_form_with_a_wrong_phone_is_refused_in_words(gate):
    cp, _ = run(gate)
    with pytest.raises(CommandError, match="手机"):
        cp.command("register", form="courier", fields={"company": "顺丰", "phone": "12345",
                                                       "drop_off": "东门快递柜"}).result(2)
    assert cp.phase == WAITING


def test_a_returnee_from_a_risk_area_is_held_and_handed_over(gate):
    gate.store.replace_list("risk_areas", [{"code": "420100", "name": "武汉市", "level": "high"}])
    cp, events = run(gate)
    first17 = "42010219900101123"
    cp.command("register", form="returnee", fields={
        "name": "周强", "id_number": first17 + id_check_digit(first17), "phone": "13912345678",
        "building": "3", "unit": "2", "room": "501", "from_county": "420102", "from_place": "武汉市江岸区",
        "arrival_date": clock.utc_now().date().isoformat(), "transport": "train"}).result(2)
    _, text = gate.code("周强", id_number=first17 + id_check_digit(first17))
    cp.code_read(text)
    gate.stand(NORMAL)
    wait_for(lambda: decisions(events))
    d = decisions(events)[0]
    assert d["action"] == "hold" and "risk_area_travel" in d["reasons"] and d["report"] == "immediate"
    assert gate.relay.pulses == []


def test_a_resident_vehicle_goes_out_once_a_day_at_medium(gate):
    gate.policy["value"] = rules.GatePolicy(risk_level="medium")
    gate.store.replace_list("households", [{"id": "h1", "address": "3-2-501"}])
    gate.store.replace_list("vehicles", [{"plate": "苏A12345", "household_id": "h1"}])
    cp, events = run(gate)
    form = {"plate": "苏A·12345", "passengers": 1, "boot_checked": True}
    cp.command("register", form="vehicle", fields=form, direction="out").result(2)
    wait_for(lambda: len(decisions(events)) == 1)
    wait_for(lambda: cp.phase == WAITING)
    cp.command("register", form="vehicle", fields=form, direction="out").result(2)
    wait_for(lambda: len(decisions(events)) == 2)
    first, second = gate.store.entries()
    assert first.action == "admit" and first.vehicle["plate"] == "苏A12345"
    assert second.action == "refuse" and second.reasons == ["vehicle_exit_limit"]


@pytest.mark.parametrize("visiting", ["h2", "3-2-502"])
def test_a_visit_to_a_household_under_home_quarantine_is_refused_by_id_or_address(gate, visiting):
    ref = person_ref("11010519800202456" + id_check_digit("11010519800202456"), SALT)
    gate.store.apply_township(lists={
        "households": ([{"id": "h2", "address": "3-2-502"}], None, None),
        "residents": ([{"person_ref": ref, "household_id": "h2", "masked_name": "钱*"}], None, None),
        "quarantine_orders": ([{"id": "q1", "person_ref": ref, "kind": "home_quarantine",
                                "start": "2026-01-01T00:00:00Z", "end": "2030-01-01T00:00:00Z"}], None, None)})
    cp, events = run(gate)
    cp.command("register", form="visitor", fields={
        "name": "何洋", "phone": "13812345678", "home_town": "江苏南京", "visiting": visiting,
        "reason": "送生活用品", "transport": "bus"}).result(2)
    _, text = gate.code("何洋", id_number="320102199503036789")
    cp.code_read(text)
    wait_for(lambda: decisions(events))
    d = decisions(events)[0]
    assert d["action"] == "refuse" and d["reasons"] == ["visited_home_quarantined"]


def test_a_form_filled_in_just_after_an_admit_does_not_take_that_persons_code(gate):
    cp, events = run(gate, outcome_s=5)
    ref, text = gate.code("王小明")
    gate.resident(ref)
    gate.stand(NORMAL)
    cp.code_read(text)
    wait_for(lambda: cp.phase == DECIDED)
    gate.stand(NOBODY)  # walks in; the courier steps up while the outcome still shows
    cp.command("register", form="courier", fields={"company": "顺丰", "phone": "13700001111",
                                                   "drop_off": "东门快递柜"}).result(2)
    assert cp.phase == MEASURING and cp.state()["subject"]["code"] is None  # their own code comes next
    _, courier_code = gate.code("快递员", id_number="320102199503036789")
    cp.code_read(courier_code)
    gate.stand(NORMAL)
    wait_for(lambda: len(decisions(events)) == 2)
    entry = gate.store.entries()[1]
    assert entry.subject_kind == "courier" and entry.person_ref != ref
