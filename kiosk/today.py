"""Today at this gate: the figures a guard looks at during a shift, and a preview of the
daily report (日报告) the community sends the township, both counted from the gate's own
store for the local calendar day (the gate's time zone, China Standard Time by default).

The preview counts what the report asks for: checks in and out, outcomes as the
township's report words them (放行4人次，不予放行2人次), refusals by reason, fevers,
yellow and red codes, arrivals from risk areas held, first returns, visitors, couriers,
vehicles, quarantine breaches, emergency exits and overrides, each line with its zero.
It is a preview: the township's own report counts what reached it, by corrected time.
"""
from __future__ import annotations

import collections
import datetime as dt
from typing import Any

from kiosk import clock, reasons
from kiosk.store import Entry, Store

REFUSED = ("refuse", "isolate", "hold")  # the outcomes that keep a person out
RISK_AREA = ("risk_area_travel", "arrival_from_abroad", "case_contact")
BREACH = ("home_quarantine_exit", "home_quarantine_breach")

# The report's lines in order: (key, what counts). Each is worded by REPORT_LINE_TEXT.
LINES = ("entries_in", "entries_out", "refused", "fevers", "yellow_codes", "red_codes", "risk_area_held",
         "returnees", "visitors", "couriers", "vehicles", "quarantine_breaches", "emergency_exits", "overrides",
         "immediate_reports", "not_completed")

REPORT_LINE_TEXT = {
    "entries_in": {"zh": "进入查验{n}人次", "en": "{n} checked going in"},
    "entries_out": {"zh": "外出查验{n}人次", "en": "{n} checked going out"},
    "refused": {"zh": "不予放行{n}人次", "en": "{n} not admitted"},
    "fevers": {"zh": "发热（复测仍发热）{n}人次", "en": "{n} fever(s) confirmed on the re-test"},
    "yellow_codes": {"zh": "黄码{n}人次", "en": "{n} yellow code(s)"},
    "red_codes": {"zh": "红码{n}人次", "en": "{n} red code(s)"},
    "risk_area_held": {"zh": "中高风险地区及境外来（返）人员留观{n}人次",
                       "en": "{n} arrival(s) from risk areas or abroad held"},
    "returnees": {"zh": "首返人员登记{n}人次", "en": "{n} first return(s) registered"},
    "visitors": {"zh": "外来访客{n}人次", "en": "{n} visitor(s)"},
    "couriers": {"zh": "快递外卖{n}人次", "en": "{n} courier(s)"},
    "vehicles": {"zh": "车辆{n}辆次", "en": "{n} vehicle(s)"},
    "quarantine_breaches": {"zh": "居家隔离人员外出{n}人次", "en": "{n} home-quarantine breach(es)"},
    "emergency_exits": {"zh": "紧急外出（就医等）{n}人次", "en": "{n} emergency exit(s)"},
    "overrides": {"zh": "值班人员人工放行{n}人次", "en": "{n} guard override(s)"},
    "immediate_reports": {"zh": "立即上报{n}起", "en": "{n} reported at once"},
    "not_completed": {"zh": "未完成查验{n}人次", "en": "{n} check(s) not completed"},
}


def local_day(now: dt.datetime, tz: dt.tzinfo) -> tuple[dt.date, str, str]:
    """The local calendar day of `now` and its bounds as stored times (UTC text sorts)."""
    day = now.astimezone(tz).date()
    start = dt.datetime.combine(day, dt.time(), tz)
    return day, clock.iso(start), clock.iso(start + dt.timedelta(days=1))


def entries_of_day(store: Store, now: dt.datetime, tz: dt.tzinfo) -> tuple[dt.date, list[Entry]]:
    day, start, end = local_day(now, tz)
    return day, store.entries("created_utc >= ? AND created_utc < ?", (start, end), order="created_utc")


def kind_of(e: Entry) -> str:
    """resident, visitor, courier or vehicle (a vehicle's driver is counted as the vehicle)."""
    return "vehicle" if e.vehicle else e.subject_kind


def figures(store: Store, now: dt.datetime, tz: dt.tzinfo) -> dict[str, Any]:
    """Today's counts: by outcome, by reason, by kind, fevers, immediate reports, open alarms."""
    day, entries = entries_of_day(store, now, tz)
    return {"day": day.isoformat(), "entries": len(entries),
            "by_action": dict(sorted(collections.Counter(e.action for e in entries).items())),
            "by_reason": dict(sorted(collections.Counter(r for e in entries for r in e.reasons).items())),
            "by_kind": dict(sorted(collections.Counter(kind_of(e) for e in entries).items())),
            "fevers": sum("fever_confirmed" in e.reasons for e in entries),
            "immediate_reports": sum(e.report == "immediate" for e in entries),
            "open_alarms": len(store.alarms()),
            "last_entry_utc": entries[-1].created_utc if entries else None}


def counts(entries: list[Entry]) -> dict[str, int]:
    """Each report line's count."""
    done = [e for e in entries if e.action != "abandoned"]

    def has(e: Entry, codes: tuple[str, ...]) -> bool:
        return any(r in codes for r in e.reasons)

    return {
        "entries_in": sum(e.direction == "in" for e in done),
        "entries_out": sum(e.direction == "out" for e in done),
        "refused": sum(e.action in REFUSED for e in done),
        "fevers": sum(has(e, ("fever_confirmed",)) for e in done),
        "yellow_codes": sum(has(e, ("yellow_code",)) for e in done),
        "red_codes": sum(has(e, ("red_code",)) for e in done),
        "risk_area_held": sum(e.action == "hold" and has(e, RISK_AREA) for e in done),
        "returnees": sum((e.details or {}).get("form") == "returnee" for e in done),
        "visitors": sum(kind_of(e) == "visitor" for e in done),
        "couriers": sum(kind_of(e) == "courier" for e in done),
        "vehicles": sum(kind_of(e) == "vehicle" for e in done),
        "quarantine_breaches": sum(has(e, BREACH) for e in done),
        "emergency_exits": sum(has(e, ("emergency_exit",)) for e in done),
        "overrides": sum(has(e, ("override",)) for e in done),
        "immediate_reports": sum(e.report == "immediate" for e in done),
        "not_completed": len(entries) - len(done),
    }


def report_preview(store: Store, now: dt.datetime, tz: dt.tzinfo, lang: str | None) -> dict[str, Any]:
    """Today's daily report as it will read, zeros included, in `lang`."""
    lang = lang or reasons.default_lang()
    day, entries = entries_of_day(store, now, tz)
    n = counts(entries)
    comma = "，" if lang == "zh" else ", "
    by_action = collections.Counter(e.action for e in entries if e.action != "abandoned")
    # as the township's report words its outcomes: 放行4人次，不予放行2人次
    outcome = comma.join(f"{reasons.action_text(a, lang)}{v}人次" if lang == "zh" else
                         f"{reasons.action_text(a, lang)}: {v}" for a, v in sorted(by_action.items()))
    refusals = collections.Counter(e.reasons[0] for e in entries if e.action in REFUSED and e.reasons)
    return {"day": day.isoformat(), "lang": lang, "entries": len(entries),
            "by_action": dict(sorted(by_action.items())), "outcomes_text": outcome,
            "lines": [{"key": k, "count": n[k], "text": reasons.text(REPORT_LINE_TEXT, k, lang).format(n=n[k])}
                      for k in LINES],
            "refusals_by_reason": [{"reason": r, "count": c, "text": reasons.reason_text(r, lang)}
                                   for r, c in sorted(refusals.items(), key=lambda rc: (-rc[1], rc[0]))]}
