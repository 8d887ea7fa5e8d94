"""The server's requests and answers as pydantic models (validation and the OpenAPI
document). The wire contract shared with the gate (entries, batches, lists, the
policy document) is kiosk/wire.py; its names are re-exported here."""
from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kiosk import wire
from kiosk.wire import MAX_BATCH, Batch, ClockSample, PolicyDocument, WireEntry

__all__ = ["MAX_BATCH", "Batch", "ClockSample", "PolicyDocument", "WireEntry"]  # and the models below
# Communities and gates are slugs without a dot, so the default device id
# `community.gate` names one pair only (x + y.z and x.y + z cannot both exist).
SLUG = r"^[A-Za-z0-9_-]{1,64}$"
DEVICE_ID = r"^[A-Za-z0-9._:-]{1,100}$"


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
    upto: int = Field(ge=0, le=wire.MAX_SEQ,
                      description="seqs above the acknowledged one up to this are lost for good")


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
    community: str = Field(pattern=SLUG, description="letters, digits, - and _ (no dot)")
    gate: str = Field(pattern=SLUG, description="letters, digits, - and _ (no dot)")
    device_id: str | None = Field(None, pattern=DEVICE_ID,
                                  description="default: community.gate")
    ttl_hours: float = Field(24.0, gt=0, le=24 * 30, allow_inf_nan=False)


class EnrollmentToken(BaseModel):
    token: str = Field(description="shown once; give it to the gate's installer")
    device_id: str
    community: str
    gate: str
    expires_utc: str


class ListUpload(BaseModel):
    """A whole list; each row is checked with the list's schema in kiosk/wire.py."""
    model_config = ConfigDict(extra="forbid")
    rows: list[dict[str, Any]] = Field(max_length=wire.MAX_LIST_ROWS)


class Published(BaseModel):
    community: str
    name: str
    version: int
    etag: str


class ServerTime(BaseModel):
    utc: str
    epoch: float


class LostAck(BaseModel):
    acked_seq: int


class DeviceRow(BaseModel):
    device_id: str
    community: str
    gate: str
    status: str
    enrolled_utc: str | None
    revoked_utc: str | None
    last_seen_utc: str | None
    acked_seq: int
    max_seq: int
    clock_offset_s: float | None
    clock_checked_utc: str | None


class Devices(BaseModel):
    devices: list[DeviceRow]


class Revoked(BaseModel):
    device_id: str
    status: str


class Alarm(BaseModel):
    id: int
    community: str
    gate: str
    device_id: str
    seq: int
    at_utc: str
    action: str
    reasons: list[str]
    subject_kind: str | None
    code_colour: str | None
    masked_name: str | None
    readings: list[dict[str, Any]]
    acknowledged_by: str | None = Field(None, description="who acknowledged it; null: still open")
    acknowledged_utc: str | None = None
    note: str | None = None


class Alarms(BaseModel):
    alarms: list[Alarm]
    next_after: int = Field(description="poll again with after = this")


class Acknowledge(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=200)


class Acknowledged(BaseModel):
    id: int
    acknowledged_by: str
    acknowledged_utc: str
    note: str | None


class Entries(BaseModel):
    entries: list[dict[str, Any]] = Field(description="the entries as the gates sent them (kiosk/wire.py), "
                                          "with the server's server_id, corrected_utc, time_source, received_utc")


Counts = dict[str, int]


class GateDay(BaseModel):
    device_id: str
    gate: str
    status: str
    last_seen_utc: str | None
    acked_seq: int
    max_seq: int
    synced: bool = Field(description="every entry of the day is held: the gate synced past its end")
    entries: int
    figures: Counts
    refusals: Counts = Field(description="entries not admitted, by the rules' reason code")
    by_action: Counts


class LostRange(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    device_id: str
    from_: int = Field(alias="from")
    to: int


class Submission(BaseModel):
    community: str
    day: str
    submitted_by: str
    leader: str = Field(description="the shift leader's name, as signed (带班领导)")
    note: str | None
    submitted_utc: str
    late: bool
    figures: dict[str, Any] = Field(description="the figures as they were when submitted")


class SubmitReport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    day: dt.date
    leader: str = Field(min_length=1, max_length=32, description="the shift leader's name (带班领导)")
    note: str | None = Field(None, max_length=500)


class CommunityDay(BaseModel):
    community: str
    status: str = Field(description="submitted | late | missing | pending (已报, 迟报, 未报, 待报)")
    status_text: str
    complete: bool = Field(description="every gate synced past the end of the day")
    zero_report: bool = Field(description="submitted, with nothing the township must hear about (零报告)")
    entries: int
    immediate: int
    figures: Counts
    refusals: Counts = Field(description="entries not admitted, by the rules' reason code")
    by_action: Counts
    headcounts: Counts = Field(description="people under home quarantine / health monitoring that day")
    gates: list[GateDay]
    lost_seqs: list[LostRange]
    submission: Submission | None


class DailyReport(BaseModel):
    day: str
    tz: str
    start_utc: str
    end_utc: str
    due_utc: str = Field(description="submissions after this are late")
    communities: list[CommunityDay]


class TraceRow(BaseModel):
    id: int
    at_utc: str
    community: str
    gate: str
    direction: str | None
    subject_kind: str | None
    masked_name: str | None
    person_ref: str | None
    plate: str | None
    action: str | None


class Trace(BaseModel):
    community: str
    gate: str | None
    start_utc: str
    end_utc: str
    passages: list[TraceRow]
    next_after: int = Field(description="more may follow: ask again with after = this")


# -- office-auth: accounts, sessions, the audit log --------------------------------------------

class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(max_length=64)
    password: str = Field(max_length=256)


class WhoAmI(BaseModel):
    username: str
    role: str = Field(description="admin (township administrator), readonly (township read-only) "
                                  "or community (community staff)")
    community: str | None = Field(None, description="community staff: their community")
    csrf_token: str | None = Field(None, description="send it as X-CSRF-Token (or the csrf_token form "
                                                     "field) with every change made with the cookie")
    expires_utc: str | None = None


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    password: str = Field(min_length=10, max_length=256)
    role: str = Field(pattern=r"^(admin|readonly|community)$")
    community: str | None = Field(None, pattern=SLUG, description="community staff only")


class NewPassword(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str = Field(min_length=10, max_length=256)


class User(BaseModel):
    username: str
    role: str
    community: str | None
    created_utc: str
    password_changed_utc: str
    disabled_utc: str | None


class Users(BaseModel):
    users: list[User]


class AuditRecord(BaseModel):
    id: int
    at_utc: str
    actor: str = Field(description="the user's login, or admin-token")
    role: str
    action: str
    community: str | None
    detail: dict[str, Any]


class AuditLog(BaseModel):
    records: list[AuditRecord]
    next_before: int | None = Field(description="pass as ?before= for the next (older) page")
