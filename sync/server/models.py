"""The wire format between gate and township, as pydantic models: one place that
both validates a batch and describes it in the OpenAPI document."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from kiosk import clock

MAX_BATCH = 1000  # entries in one POST /v1/entries; the client sends at most 500
ISO_UTC = (r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d"
           r"(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")


def _iso(value: str) -> str:
    try:
        return clock.iso(clock.parse_iso(value))
    except (ValueError, TypeError):
        raise ValueError(f"not an ISO-8601 time: {value[:40]!r}") from None


class EntryIn(BaseModel):
    """One entry as the gate recorded it (kiosk.store.Entry without synced_at).
    Lax mode with strict numbers and booleans (a JSON string is never a str-coerced int):
    as strict as strict mode and faster; `created_utc` is checked in `Database._rows`
    with ISO_UTC (pydantic's per-field regex costs more than the rest of the entry)."""
    model_config = ConfigDict(extra="forbid")

    device_id: str = Field(min_length=1)
    seq: StrictInt = Field(gt=0)
    created_utc: str = Field(description="ISO-8601 time, e.g. 2026-11-25T08:00:00.000Z")
    boot_id: str
    monotonic_ns: StrictInt = Field(ge=0)
    clock_synced: StrictBool
    gate: str
    direction: Literal["in", "out"]
    subject_kind: str
    action: str
    report: Literal["none", "daily", "immediate"]
    reasons: list[str] = []
    guard: str | None = None
    masked_name: str | None = None
    person_ref: str | None = None
    code_kind: str | None = None
    code_colour: str | None = None
    code_result: str | None = None
    readings: list[dict[str, Any]] = []
    answers: dict[str, Any] = {}
    mask_confirmed: StrictBool | None = None
    vehicle: dict[str, Any] | None = None
    details: dict[str, Any] | None = None
    override_reason: str | None = None


class ClockSample(BaseModel):
    """The gate's clocks at the moment it sent the batch: lets the server date
    entries written before the gate's wall clock was synchronised."""
    model_config = ConfigDict(extra="forbid", strict=True)

    boot_id: str = Field(max_length=100)
    monotonic_ns: int = Field(ge=0)
    wall_utc: str
    synchronised: bool

    _utc = field_validator("wall_utc")(_iso)


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    entries: list[EntryIn] = Field(min_length=1, max_length=MAX_BATCH)
    priority: bool = Field(False, description=(
        "Immediate reports sent ahead of the in-order stream: every entry must have "
        "report='immediate', and seqs may run ahead of the acknowledged seq."))
    clock: ClockSample | None = None


class Ack(BaseModel):
    acked_seq: int = Field(description="highest seq such that the server holds every seq up to it")
    stored: int = Field(description="entries of this batch that were new")
    duplicates: int = Field(description="entries of this batch the server already held")


class DeviceState(BaseModel):
    device_id: str
    community: str
    gate: str
    acked_seq: int
    max_seq: int


class LostSeqs(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    upto: int = Field(ge=0, description="seqs above the acknowledged one up to this are lost for good")


class Enroll(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=8, max_length=200)
    public_key: str = Field(min_length=40, max_length=60, description="raw Ed25519 key, base64url")


class Enrolled(BaseModel):
    device_id: str
    community: str
    gate: str


class EnrollmentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    community: str = Field(min_length=1, max_length=100)
    gate: str = Field(min_length=1, max_length=100)
    device_id: str | None = Field(None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")
    ttl_hours: float = Field(24.0, gt=0, le=24 * 30)


class EnrollmentToken(BaseModel):
    token: str = Field(description="shown once; give it to the gate's installer")
    device_id: str
    community: str
    gate: str
    expires_utc: str


class Policy(BaseModel):
    """A community's policy: the risk level and any thresholds the rules read."""
    model_config = ConfigDict(extra="allow")
    risk_level: Literal["low", "medium", "high"]
    fever_c: float | None = Field(None, ge=35.0, le=40.0)


class ListUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: list[dict[str, Any]]


class Published(BaseModel):
    community: str
    name: str
    version: int
    etag: str


class ServerTime(BaseModel):
    utc: str
    epoch: float
