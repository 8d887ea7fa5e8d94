"""The wire contract between a gate and the township server, in one place both import.

What an entry looks like on the wire (`WireEntry`, with a bound on every field), a
batch, the township's list names with each list's row schema (`check_rows`), and the
policy document (`PolicyDocument`). The gate's store and the server both take their
names and limits from here, so they cannot drift apart (tests/test_wire.py checks the
gate's `Entry` against `WireEntry`). Standard library, pydantic and kiosk.clock only:
the township server imports this and nothing else of the gate. The models are built
on first use (`defer_build`), so importing the gate's store stays quick.

Every bound is what a real gate can produce with room to spare; see docs/sync.md.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    ValidationError,
    create_model,
)

from kiosk import clock

# -- numbers a gate can produce --------------------------------------------------------
# A gate recording 100 entries a second for 300 years stays below 2^40: a seq above it
# is a bug or an attack, never a real entry. The monotonic clock counts nanoseconds
# since boot: 100 years of uptime is far past any Pi's.
MAX_SEQ = 2**40
MAX_MONOTONIC_NS = 100 * 366 * 86_400 * 10**9
MAX_INT = 2**53           # any other integer (a reading, a count): exact in a double
MAX_BATCH = 1000          # entries in one POST /v1/entries; the client sends at most 500
MAX_BATCH_BYTES = 4 * 1024 * 1024  # one batch's JSON, after gunzip
# Times: a Pi without a real-time clock may believe it is 1970; nothing is after 2200.
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)

# -- sizes of texts and documents -------------------------------------------------------
MAX_ID = 100              # device ids, boot ids, person references, keys of lists
MAX_WORD = 64             # gate, action, kind, colour, a dictionary key
MAX_TEXT = 500            # any free text (a reason, an address, a note)
MAX_REASONS = 16
MAX_READINGS = 8          # thermometer readings of one entry (a re-test is the second)
MAX_KEYS = 32             # keys of one dictionary (a reading, answers, vehicle, details)
MAX_ITEMS = 16            # items of a list nested in a document
MAX_LIST_ROWS = 100_000   # rows of one township list


def _utf8(text: str) -> str:
    """A lone surrogate cannot be stored or sent as UTF-8: refuse it here."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text is not valid Unicode (a lone surrogate)") from None
    return text


def _utf8_json(value: Any) -> None:
    """Every string (and key) in a decoded JSON value is valid Unicode."""
    _utf8(json.dumps(value, ensure_ascii=False))


# Strings parsed from JSON bytes (pydantic's parser) can never hold a lone surrogate;
# documents that come as Python values are checked whole by `_utf8_json`.
Word = Annotated[str, StringConstraints(max_length=MAX_WORD)]
# No control characters in an id: PostgreSQL's text cannot hold NUL, and an entry holding
# one is refused here by name (422) rather than by the database as if it were down (503).
Ident = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID, pattern=r"^[^\x00-\x1f\x7f]+$")]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
Int = Annotated[StrictInt, Field(ge=-MAX_INT, le=MAX_INT)]
Float = Annotated[StrictFloat, Field(allow_inf_nan=False)]
Scalar = StrictBool | Int | Float | Text | None
Flat = (Annotated[list[Scalar], Field(max_length=MAX_ITEMS)]
        | Annotated[dict[Word, Scalar], Field(max_length=MAX_ITEMS)])
Nested = (Annotated[list[Scalar | Flat], Field(max_length=MAX_ITEMS)]
          | Annotated[dict[Word, Scalar | Flat], Field(max_length=MAX_ITEMS)])
# A free document (answers, vehicle, details): at most three levels of containers.
Document = Annotated[dict[Word, Scalar | Flat | Nested], Field(max_length=MAX_KEYS)]
Reading = Annotated[dict[Word, Scalar], Field(max_length=MAX_KEYS)]


def parse_time(text: str) -> dt.datetime:
    """An ISO-8601 time with its zone (or UTC when it has none), between EARLIEST and
    LATEST. Raises ValueError naming what is wrong: an impossible date (2026-02-30) or a
    time that leaves the calendar once moved to UTC (0001-01-01T00:00:00+23:59)."""
    if not isinstance(text, str) or len(text) > 40:
        raise ValueError("not an ISO-8601 time")
    try:
        t = clock.parse_iso(text)
        utc = t.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"not an ISO-8601 time: {text[:40]!r}") from None
    if not EARLIEST <= utc < LATEST:
        raise ValueError(f"time {text[:40]!r} is outside {EARLIEST.year}-{LATEST.year}")
    return utc


def _time_text(text: str) -> str:
    """Valid times in our own text form (UTC, milliseconds, Z): sorts as text."""
    if len(text) == 24 and text[10] == "T" and text[19] == "." and text[23] == "Z":
        # Already in our form (every gate entry): the parser still checks the date is real.
        try:
            dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not an ISO-8601 time: {text!r}") from None
        if str(EARLIEST.year) <= text[:4] < str(LATEST.year):
            return text
    return clock.iso(parse_time(text))


Time = Annotated[str, AfterValidator(_time_text)]


def _list_time(text: str) -> str:
    """A time in a township list, kept as the township wrote it once it is known to be real:
    a date alone means that whole local day, and a time without a zone is local time, as
    the gate reads them (kiosk/lookup.py); moving them to UTC here would change their meaning."""
    if len(text) == 10:
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not an ISO-8601 date: {text!r}") from None
        if not EARLIEST.year <= day.year < LATEST.year:
            raise ValueError(f"date {text!r} is outside {EARLIEST.year}-{LATEST.year}")
        return text
    parse_time(text)
    return text


ListTime = Annotated[str, AfterValidator(_list_time)]


class WireEntry(BaseModel):
    """One entry as the gate recorded it: kiosk.store.Entry without `synced_at`.
    Lax mode with strict numbers and booleans (a JSON string is never coerced to an int)."""
    model_config = ConfigDict(extra="forbid", defer_build=True)

    device_id: Ident
    seq: StrictInt = Field(gt=0, le=MAX_SEQ)
    created_utc: Time = Field(description="ISO-8601 time, e.g. 2026-11-25T08:00:00.000Z")
    boot_id: Ident
    monotonic_ns: StrictInt = Field(ge=0, le=MAX_MONOTONIC_NS)
    clock_synced: StrictBool
    gate: Word
    direction: Literal["in", "out"]
    subject_kind: Word
    action: Word
    report: Literal["none", "daily", "immediate"]
    reasons: list[Text] = Field([], max_length=MAX_REASONS)
    guard: Word | None = None
    masked_name: Word | None = None
    person_ref: Ident | None = None
    code_kind: Word | None = None
    code_colour: Word | None = None
    code_result: Word | None = None
    readings: list[Reading] = Field([], max_length=MAX_READINGS)
    answers: Document = {}
    mask_confirmed: StrictBool | None = None
    vehicle: Document | None = None
    details: Document | None = None
    override_reason: Text | None = None


def check_entry(fields: dict[str, Any]) -> None:
    """The gate checks an entry against the same bounds before recording it, so it never
    holds an entry the township would refuse for good. Raises WireError naming the field."""
    try:
        WireEntry.model_validate(fields)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"]) or "entry"
        raise WireError(f"entry: {where}: {err['msg']}") from None


# Fields the gate's store fills in when it records an entry (kiosk.store.Store.record):
# optional on the gate's Entry before recording, required on the wire.
RECORDED_FIELDS = ("device_id", "seq", "created_utc", "boot_id", "monotonic_ns", "clock_synced")


class ClockSample(BaseModel):
    """The gate's clocks at the moment it sent the batch: lets the server date
    entries written before the gate's wall clock was synchronised."""
    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)

    boot_id: Ident
    monotonic_ns: int = Field(ge=0, le=MAX_MONOTONIC_NS)
    wall_utc: Time
    synchronised: bool


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)

    entries: list[WireEntry] = Field(min_length=1, max_length=MAX_BATCH)
    priority: bool = Field(False, description=(
        "Immediate reports sent ahead of the in-order stream: every entry must have "
        "report='immediate', and seqs may run ahead of the acknowledged seq."))
    clock: ClockSample | None = None


class PolicyDocument(BaseModel):
    """A community's policy as the township publishes it: exactly the settings the gate's
    rules read (kiosk.rules.GatePolicy, which the gate builds from it; a test keeps the two
    alike). A key the gate would not honour is refused here, at upload, by name."""
    model_config = ConfigDict(extra="forbid")
    risk_level: Literal["low", "medium", "high"]
    fever_c: float | None = Field(None, ge=35.0, le=40.0, allow_inf_nan=False)
    plausible_min_c: float | None = Field(None, ge=25.0, le=37.0, allow_inf_nan=False)
    plausible_max_c: float | None = Field(None, ge=38.0, le=50.0, allow_inf_nan=False)
    visitors_allowed: StrictBool | None = Field(None, description="false turns visitors away at every level")
    vehicle_exits_per_day: StrictInt | None = Field(None, ge=0, le=24)
    test_max_age_h: float | None = Field(None, ge=0, le=24 * 31, allow_inf_nan=False,
                                         description="a nucleic-acid test no older than this; 0: not asked")
    lists_max_age_h: float | None = Field(None, gt=0, le=24 * 366, allow_inf_nan=False)
    unknown_person_low: Literal["resident", "visitor"] | None = None
    unknown_person_medium: Literal["resident", "visitor"] | None = None
    unknown_person_high: Literal["resident", "visitor"] | None = None


# -- the township's lists: names and row schemas --------------------------------------
def _rows(**columns: Any) -> type[BaseModel]:
    return create_model("Row", __config__=ConfigDict(extra="forbid", strict=True, defer_build=True), **columns)


_REQ, _OPT = ..., None
ROWS: dict[str, type[BaseModel]] = {
    "households": _rows(id=(Ident, _REQ), address=(Text, _REQ), phone=(Word | None, _OPT),
                        note=(Text | None, _OPT)),
    "residents": _rows(person_ref=(Ident, _REQ), household_id=(Ident | None, _OPT),
                       masked_name=(Word | None, _OPT),
                       role=(Literal["owner", "tenant", "member"] | None, _OPT),
                       phone=(Word | None, _OPT), care_needs=(Text | None, _OPT)),
    "passes": _rows(serial=(Ident, _REQ), person_ref=(Ident, _REQ),
                    household_id=(Ident | None, _OPT), valid_from=(ListTime, _REQ),
                    valid_until=(ListTime, _REQ)),
    "revoked_passes": _rows(serial=(Ident, _REQ), revoked_at=(ListTime | None, _OPT),
                            reason=(Text | None, _OPT)),
    "quarantine_orders": _rows(id=(Ident, _REQ), person_ref=(Ident, _REQ),
                               kind=(Literal["home_quarantine", "health_monitoring"], _REQ),
                               start=(ListTime, _REQ), end=(ListTime, _REQ)),
    "vehicles": _rows(plate=(Word, _REQ), household_id=(Ident | None, _OPT)),
    "risk_areas": _rows(code=(Word, _REQ), name=(Text, _REQ), level=(Literal["medium", "high"], _REQ),
                        since=(ListTime | None, _OPT)),
    "trust_keys": _rows(kid=(Word, _REQ), entry=(Annotated[str, StringConstraints(max_length=4000)], _REQ),
                        purposes=(Text | None, _OPT), not_before=(ListTime | None, _OPT),
                        not_after=(ListTime | None, _OPT)),
    "guards": _rows(id=(Ident, _REQ), masked_name=(Word, _REQ), phone=(Word | None, _OPT),
                    # the PIN's scrypt hash (kiosk.shifts.hash_pin), never the PIN
                    pin_hash=(Annotated[str, StringConstraints(max_length=200)] | None, _OPT),
                    leader=(bool | Literal[0, 1] | None, _OPT)),  # may lead a shift
}
# Lists the township pushes down, replaced whole and atomically on the gate.
LISTS = tuple(ROWS)
# The column that identifies a row (its primary key on the gate), when it has one.
KEYS = {"households": "id", "residents": "person_ref", "passes": "serial", "revoked_passes": "serial",
        "quarantine_orders": "id", "vehicles": "plate", "risk_areas": "code", "guards": "id"}


class WireError(ValueError):
    """Input that breaks the contract; the message names the list or field and why."""


def check_rows(name: str, rows: Any) -> list[dict[str, Any]]:
    """Check a whole township list against its schema; return the rows with times in
    our text form. Raises WireError naming the list, the row and the column."""
    if name not in ROWS:
        raise WireError(f"unknown list {name!r}; known: {', '.join(LISTS)}")
    if not isinstance(rows, list):
        raise WireError(f"{name}: rows must be a list")
    if len(rows) > MAX_LIST_ROWS:
        raise WireError(f"{name}: {len(rows)} rows, at most {MAX_LIST_ROWS}")
    model, key = ROWS[name], KEYS.get(name)
    columns = ", ".join(model.model_fields)
    out, seen = [], set()
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise WireError(f"{name}: row {i} is not an object")
        unknown = next((c for c in row if c not in model.model_fields), None)
        if unknown is not None:
            raise WireError(f"{name}: row {i}: unknown column {str(unknown)[:MAX_WORD]!r}; columns: {columns}")
        try:
            clean = model.model_validate(row).model_dump(exclude_unset=True)
            _utf8_json(clean)
        except ValueError as exc:
            if not isinstance(exc, ValidationError):
                raise WireError(f"{name}: row {i}: {exc}") from None
            err = exc.errors(include_url=False)[0]
            column = ".".join(str(p) for p in err["loc"]) or "row"
            raise WireError(f"{name}: row {i}: column {column!r}: {err['msg']}") from None
        if key is not None:
            if clean[key] in seen:
                raise WireError(f"{name}: row {i}: {key} {clean[key]!r} appears twice")
            seen.add(clean[key])
        out.append(clean)
    return out


