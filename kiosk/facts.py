"""From the township's lists to what the checkpoint knows of the person in front of it.

The checkpoint asks `find(person_ref, code, now)`; this answers from the lists through
`kiosk.lookup` (household, pass valid and not revoked, the quarantine or monitoring
order running now) and says how old the lists are, so a stale list is named in the
decision instead of silently trusted.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from kiosk import clock
from kiosk.checkpoint import Person, PersonFinder, unknown_person
from kiosk.codes import VerifyResult
from kiosk.lookup import Lookup

# The lists a person's facts come from: the oldest of them is the lists' age.
PERSON_LISTS = ("residents", "passes", "revoked_passes", "quarantine_orders")


def person_finder(lookup: Lookup) -> PersonFinder:
    def find(ref: str | None, code: VerifyResult | None, now: dt.datetime) -> Person:
        if not ref:
            return unknown_person(ref, code, now)
        facts = lookup.about(ref, now)
        if facts.person is None:  # on no list: the policy says what a fresh green code counts as
            return unknown_person(ref, code, now)
        order = facts.order
        name = facts.person.masked_name or unknown_person(ref, code, now).masked_name
        return Person(person_ref=ref, masked_name=name, kind="resident", known=True,
                      has_pass=facts.resident_pass is not None,
                      quarantine=order.kind if order else "none", quarantine_until=order.until if order else None,
                      household=facts.household.address if facts.household else None)
    return find


def lists_age_h(lookup: Lookup) -> Callable[[], float | None]:
    """Hours since the oldest of the person lists was received; None if one never was."""
    def age() -> float | None:
        now = clock.utc_now()
        ages = [a.age(now) for a in lookup.list_ages(PERSON_LISTS)]
        if any(a is None for a in ages):
            return None
        return max(a.total_seconds() for a in ages if a is not None) / 3600
    return age
