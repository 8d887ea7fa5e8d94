"""记 records: the typed forms a guard fills in for a visitor, a first return, a courier
and a vehicle, validated before anything is stored.

A form is checked field by field; every bad field gets a named error (a stable code
plus one line in the guard's language, chosen as kiosk/reasons.py chooses it), and
`RecordInvalid` carries them all so a console can mark each field at once. A valid
form becomes a frozen record whose `to_details()` is the JSON-safe dict stored in the
entry (`details`, or `vehicle` for a vehicle). An ID number never reaches a record:
the form turns it into `person_ref` (kiosk/people.py, keyed with the township's salt)
and the name into its masked form. The phone number is kept (contact tracing needs a
way to reach a visitor); show it with `mask_phone()`.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from kiosk import people, reasons

# Bounds on every text field (characters, after normalising) and on the stored dict.
MAX_NAME = 32
MAX_PLACE = 64       # home town, where from, a drop-off point, an address
MAX_REASON = 100     # reason for a visit, a vehicle's purpose
MAX_COMPANY = 32
MAX_APPROVER = 32
MAX_HOUSEHOLD = 64   # a household id or the address as the visitor says it
MAX_ROOM_PART = 8    # building, unit, room: "12", "3", "501", "A", "12A"
MAX_PASSENGERS = 60  # people in a vehicle, driver included (a coach is the most)
MAX_DETAILS_BYTES = 2048
MAX_RECORD_AGE_DAYS = 366  # an arrival or a test older than this is a typing error

# How a person came (for a returnee: public transport matters to tracing).
TRANSPORT = {
    "walk": {"zh": "步行", "en": "on foot"},
    "bicycle": {"zh": "自行车或电动车", "en": "bicycle or e-bike"},
    "private_car": {"zh": "私家车", "en": "private car"},
    "taxi": {"zh": "出租车或网约车", "en": "taxi or ride-hailing"},
    "bus": {"zh": "公交车", "en": "bus"},
    "metro": {"zh": "地铁", "en": "metro"},
    "coach": {"zh": "长途客车", "en": "long-distance coach"},
    "train": {"zh": "火车或高铁", "en": "train"},
    "plane": {"zh": "飞机", "en": "plane"},
    "ship": {"zh": "轮船", "en": "ship"},
    "other": {"zh": "其他", "en": "other"},
}
_TRANSPORT_BY_WORD = {w: code for code, words in TRANSPORT.items() for w in (code, words["zh"])}

ERROR_TEXT = {
    "required": {"zh": "必填", "en": "required"},
    "not_a_form": {"zh": "应为按项填写的表单", "en": "must be a form of named fields"},
    "unknown_field": {"zh": "表单中没有此项", "en": "not a field of this form"},
    "not_text": {"zh": "应为文字", "en": "must be text"},
    "too_long": {"zh": "过长，最多{n}个字", "en": "too long: at most {n} characters"},
    "bad_characters": {"zh": "含有不允许的字符", "en": "contains characters that are not allowed"},
    "id_number_length": {"zh": "应为18位（15位旧号请换用18位号码）",
                         "en": "must have 18 characters (the 18-character number, not an old 15-digit one)"},
    "id_number_characters": {"zh": "前17位应为数字，最后一位为数字或X", "en": "must be 17 digits and a digit or X"},
    "id_number_region": {"zh": "地区码不存在", "en": "its region code does not exist"},
    "id_number_birth_date": {"zh": "出生日期不存在", "en": "its birth date is not a real date"},
    "id_number_check_digit": {"zh": "校验位不符，请核对是否输错",
                              "en": "its check digit does not match: check for a typing error"},
    "phone": {"zh": "应为1开头的11位手机号", "en": "must be an 11-digit mobile number starting 13–19"},
    "plate": {"zh": "格式不符（如 苏A12345、苏AD12345）", "en": "not a mainland plate (e.g. 苏A12345, 苏AD12345)"},
    "transport": {"zh": "不在选项中", "en": "not one of the choices"},
    "region_code": {"zh": "应为6位县级行政区划代码", "en": "must be a 6-digit county region code"},
    "date": {"zh": "日期格式应为 年-月-日", "en": "a date is YYYY-MM-DD"},
    "date_in_future": {"zh": "日期不能晚于今天", "en": "the date cannot be after today"},
    "date_too_old": {"zh": "日期太早，请核对", "en": "the date is too long ago: check it"},
    "not_a_count": {"zh": "应为0到{n}之间的整数", "en": "must be a whole number from 0 to {n}"},
    "not_yes_no": {"zh": "应为是或否", "en": "must be yes or no"},
}

FIELD_TEXT = {
    "form": {"zh": "表单", "en": "form"},
    "name": {"zh": "姓名", "en": "name"},
    "phone": {"zh": "手机号", "en": "phone"},
    "home_town": {"zh": "来自何地", "en": "home town"},
    "visiting": {"zh": "拜访住户", "en": "household visited"},
    "reason": {"zh": "来访事由", "en": "reason"},
    "transport": {"zh": "交通方式", "en": "transport"},
    "approved_by": {"zh": "审批人", "en": "approved by"},
    "id_number": {"zh": "身份证号", "en": "ID number"},
    "building": {"zh": "楼栋", "en": "building"},
    "unit": {"zh": "单元", "en": "unit"},
    "room": {"zh": "房号", "en": "room"},
    "from_county": {"zh": "来源地（县区代码）", "en": "from (county code)"},
    "from_place": {"zh": "来源地", "en": "from"},
    "from_abroad": {"zh": "境外来返", "en": "from abroad"},
    "arrival_date": {"zh": "抵达日期", "en": "arrival date"},
    "last_test_date": {"zh": "最近核酸检测日期", "en": "last nucleic-acid test"},
    "company": {"zh": "快递公司", "en": "company"},
    "drop_off": {"zh": "投放点", "en": "drop-off point"},
    "plate": {"zh": "车牌号", "en": "plate"},
    "passengers": {"zh": "车上人数", "en": "people aboard"},
    "boot_checked": {"zh": "后备箱已检查", "en": "boot checked"},
    "household": {"zh": "所属住户", "en": "household"},
    "purpose": {"zh": "事由", "en": "purpose"},
    # fields of the guard's look-ups (kiosk/lookup.py)
    "address": {"zh": "地址", "en": "address"},
    "serial": {"zh": "出入证编号", "en": "pass serial"},
    "person_ref": {"zh": "人员编号", "en": "person reference"},
    "guard": {"zh": "值守人员编号", "en": "guard id"},
}


@dataclasses.dataclass(frozen=True)
class FieldError:
    """One bad field: `code` is stable (scripts match on it), `text()` is for the guard."""
    field: str
    code: str
    limit: int | None = None

    def text(self, lang: str | None = None) -> str:
        lang = lang or reasons.default_lang()
        name = reasons.text(FIELD_TEXT, self.field, lang)
        words = reasons.text(ERROR_TEXT, self.code, lang).format(n=self.limit)
        return f"{name}：{words}" if lang == "zh" else f"{name}: {words}"


class RecordInvalid(ValueError):
    """A form with bad fields; str() is one line naming them all."""

    def __init__(self, errors: list[FieldError], lang: str | None = None):
        self.errors = tuple(errors)
        sep = "；" if (lang or reasons.default_lang()) == "zh" else "; "
        super().__init__(sep.join(e.text(lang) for e in self.errors))

    @property
    def codes(self) -> dict[str, str]:
        return {e.field: e.code for e in self.errors}


class _Bad(Exception):
    """Raised by a field check inside a form; collected into RecordInvalid."""

    def __init__(self, code: str, limit: int | None = None):
        super().__init__(code)
        self.code, self.limit = code, limit


# -- the single-field checks (usable on their own: the look-up screen uses check_id_number)

# GB 11643: weights 2^(17-i) mod 11 for the 17 digits, check = (12 - sum mod 11) mod 11, 10 = X.
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
# Province codes (GB/T 2260 first two digits); 81/82/83 are Hong Kong, Macao and Taiwan
# residence permits, whose number carries only the province (810000, 820000, 830000).
PROVINCES = frozenset({11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43,
                       44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83})
_PERMIT_PROVINCES = frozenset({81, 82, 83})
_EARLIEST_BIRTH = dt.date(1900, 1, 1)


def id_check_digit(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits."""
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def region_code_ok(code: str) -> bool:
    """A county-shaped GB/T 2260 code: a known province; residence permits carry 0000."""
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return False
    province = int(code[:2])
    if province not in PROVINCES:
        return False
    if province in _PERMIT_PROVINCES:
        return code[2:] == "0000"
    return code[2:] != "0000"  # a person's number names a city or county, not only a province


def check_id_number(text: str, *, today: dt.date | None = None) -> str:
    """The normalised 18-character ID number, or ValueError whose args[0] is the error code."""
    try:
        return _id_number(text, today)
    except _Bad as bad:
        raise ValueError(bad.code) from None


def _id_number(text: str, today: dt.date | None) -> str:
    n = people.normalise_id(_text(text))
    if len(n) != 18:
        raise _Bad("id_number_length")
    if not (n[:17].isascii() and n[:17].isdigit() and (n[17] == "X" or n[17].isdigit())):
        raise _Bad("id_number_characters")
    if not region_code_ok(n[:6]):
        raise _Bad("id_number_region")
    try:
        born = dt.date(int(n[6:10]), int(n[10:12]), int(n[12:14]))
    except ValueError:
        raise _Bad("id_number_birth_date") from None
    if not _EARLIEST_BIRTH <= born <= (today or dt.date.today()):
        raise _Bad("id_number_birth_date")
    if id_check_digit(n[:17]) != n[17]:
        raise _Bad("id_number_check_digit")
    return n


_PHONE = re.compile(r"1[3-9]\d{9}")


def normalise_phone(text: str) -> str:
    """'+86 139-1234-5678' -> '13912345678' (not checked)."""
    t = "".join(ch for ch in unicodedata.normalize("NFKC", _text(text)) if ch not in " -()")
    for prefix in ("+86", "0086"):
        if t.startswith(prefix):
            t = t[len(prefix):]
    if len(t) == 13 and t.startswith("86"):
        t = t[2:]
    return t


def check_phone(text: str) -> str:
    phone = normalise_phone(text)
    if not (phone.isascii() and _PHONE.fullmatch(phone)):
        raise _Bad("phone")
    return phone


def mask_phone(phone: str) -> str:
    """139****5678: for a screen."""
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:] if len(phone) > 7 else "*" * len(phone)


# Plates (GA 36): a province abbreviation, the issuing office's letter, then the serial.
# Serial letters never use I or O (they read as 1 and 0).
PLATE_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_L = "A-HJ-NP-Z"          # a letter, not I or O
_S = f"[{_L}0-9]"         # a serial character
_NEV_KIND = "[A-HJK]"     # new-energy kind: D/A/B/C/E pure electric, F/G/H/J/K other
_PLATE_PATTERNS = {
    "ordinary": rf"[{PLATE_PROVINCES}][{_L}]{_S}{{5}}",
    "new_energy_small": rf"[{PLATE_PROVINCES}][{_L}]{_NEV_KIND}{_S}\d{{4}}",
    "new_energy_large": rf"[{PLATE_PROVINCES}][{_L}]\d{{5}}{_NEV_KIND}",
    "trailer": rf"[{PLATE_PROVINCES}][{_L}]{_S}{{4}}挂",
    "learner": rf"[{PLATE_PROVINCES}][{_L}]{_S}{{4}}学",
    "police": rf"[{PLATE_PROVINCES}][{_L}]{_S}{{4}}警",
    "consulate": rf"[{PLATE_PROVINCES}][{_L}]{_S}{{4}}领",
    "hong_kong_macao": rf"粤Z{_S}{{4}}[港澳]",
    "embassy": r"使\d{6}",
}
_PLATE_RES = {kind: re.compile(p) for kind, p in _PLATE_PATTERNS.items()}
_PLATE_SEPARATORS = " ·•.-_"


def normalise_plate(text: str) -> str:
    """'苏a·12345' -> '苏A12345': full-width to half-width, upper case, no separators.
    The vehicles list is written in this form, so look-ups match it exactly."""
    t = unicodedata.normalize("NFKC", _text(text)).upper()
    return "".join(ch for ch in t if ch not in _PLATE_SEPARATORS)


def plate_kind(plate: str) -> str | None:
    """Which kind of plate a normalised plate is, or None when it is none of them."""
    for kind, pattern in _PLATE_RES.items():
        if pattern.fullmatch(plate):
            return kind
    return None


def check_plate(text: str) -> str:
    plate = normalise_plate(text)
    if plate_kind(plate) is None:
        raise _Bad("plate")
    return plate


# -- forms -----------------------------------------------------------------------------

def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _Bad("not_text")
    return value


def _clean(value: Any, limit: int) -> str:
    """Trimmed, NFC text of at most `limit` characters, with no control characters."""
    t = unicodedata.normalize("NFC", _text(value)).strip()
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in t):
        raise _Bad("bad_characters")
    if len(t) > limit:
        raise _Bad("too_long", limit)
    return t


def _date(value: Any, today: dt.date) -> dt.date:
    if isinstance(value, dt.datetime):
        raise _Bad("date")
    if isinstance(value, dt.date):
        d = value
    else:
        try:
            d = dt.date.fromisoformat(_text(value).strip())
        except ValueError:
            raise _Bad("date") from None
    if d > today:
        raise _Bad("date_in_future")
    if (today - d).days > MAX_RECORD_AGE_DAYS:
        raise _Bad("date_too_old")
    return d


def _transport(value: Any) -> str:
    code = _TRANSPORT_BY_WORD.get(_text(value).strip().lower())
    if code is None:
        raise _Bad("transport")
    return code


def _count(value: Any, limit: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _Bad("not_a_count", limit)
    try:
        n = int(value)
    except ValueError:
        raise _Bad("not_a_count", limit) from None
    if not 0 <= n <= limit:
        raise _Bad("not_a_count", limit)
    return n


def _yes_no(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    words = {"yes": True, "no": False, "true": True, "false": False, "是": True, "否": False}
    if isinstance(value, str) and value.strip().lower() in words:
        return words[value.strip().lower()]
    raise _Bad("not_yes_no")


class _Form:
    """Collects the errors of one form; `take` checks one field."""

    def __init__(self, raw: Mapping[str, Any], known: tuple[str, ...]):
        self.errors: list[FieldError] = []
        if not isinstance(raw, Mapping):
            self.errors.append(FieldError("form", "not_a_form"))
            raw = {}
        self.raw = raw
        self.errors += [FieldError(str(k)[:32], "unknown_field") for k in raw if k not in known]

    def take(self, name: str, check: Callable[[Any], Any], *, required: bool = True) -> Any:
        value = self.raw.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.errors.append(FieldError(name, "required"))
            return None
        try:
            return check(value)
        except _Bad as bad:
            self.errors.append(FieldError(name, bad.code, bad.limit))
            return None

    def done(self, lang: str | None) -> None:
        if self.errors:
            raise RecordInvalid(self.errors, lang)


def _masked(name: str) -> str:
    return people.mask_name(name)


class Record:
    """What every record offers the checkpoint."""
    KIND: ClassVar[str]
    FIELDS: ClassVar[tuple[str, ...]]

    def to_details(self) -> dict[str, Any]:
        raise NotImplementedError

    def entry_fields(self) -> dict[str, Any]:
        """Keyword arguments for kiosk.store.Entry: details (or vehicle), masked name, person_ref."""
        return {"details": self.to_details()}


def _bounded(details: dict[str, Any]) -> dict[str, Any]:
    size = len(json.dumps(details, ensure_ascii=False).encode())
    if size > MAX_DETAILS_BYTES:  # the field bounds make this unreachable; keep the promise anyway
        raise ValueError(f"record details are {size} bytes, more than {MAX_DETAILS_BYTES}")
    return details


@dataclasses.dataclass(frozen=True)
class VisitorRecord(Record):
    """外来访客: registered at the gate; time in and out are the entries' own times."""
    masked_name: str
    phone: str
    home_town: str
    visiting: str          # the household visited: its id, or its address as said
    reason: str
    transport: str         # a key of TRANSPORT
    approved_by: str | None = None  # who in the community approved the visit (medium risk)

    KIND: ClassVar[str] = "visitor"
    FIELDS: ClassVar[tuple[str, ...]] = (
        "name", "phone", "home_town", "visiting", "reason", "transport", "approved_by")

    @classmethod
    def from_form(cls, form: Mapping[str, Any], *, lang: str | None = None) -> VisitorRecord:
        f = _Form(form, cls.FIELDS)
        name = f.take("name", lambda v: _clean(v, MAX_NAME))
        values = dict(
            phone=f.take("phone", check_phone),
            home_town=f.take("home_town", lambda v: _clean(v, MAX_PLACE)),
            visiting=f.take("visiting", lambda v: _clean(v, MAX_HOUSEHOLD)),
            reason=f.take("reason", lambda v: _clean(v, MAX_REASON)),
            transport=f.take("transport", _transport),
            approved_by=f.take("approved_by", lambda v: _clean(v, MAX_APPROVER), required=False))
        f.done(lang)
        return cls(masked_name=_masked(name), **values)

    def to_details(self) -> dict[str, Any]:
        return _bounded({"form": self.KIND, **dataclasses.asdict(self)})

    def entry_fields(self) -> dict[str, Any]:
        return {"details": self.to_details(), "masked_name": self.masked_name}


@dataclasses.dataclass(frozen=True)
class ReturneeRecord(Record):
    """首返人员: a resident coming back from elsewhere, with the fuller record."""
    person_ref: str
    masked_name: str
    phone: str
    building: str
    unit: str
    room: str
    from_county: str | None  # 6-digit county code (GB/T 2260), for the risk-area check; None from abroad
    from_place: str          # the place in words, as the returnee says it (a country, from abroad)
    arrival_date: dt.date
    transport: str
    last_test_date: dt.date | None  # last nucleic-acid test; None = none taken
    from_abroad: bool = False       # an arrival from abroad: held and handed over, as from a risk area

    KIND: ClassVar[str] = "returnee"
    FIELDS: ClassVar[tuple[str, ...]] = (
        "name", "id_number", "phone", "building", "unit", "room", "from_county", "from_place",
        "arrival_date", "transport", "last_test_date", "from_abroad")
    TEST_WINDOW_DAYS: ClassVar[int] = 7

    @classmethod
    def from_form(cls, form: Mapping[str, Any], *, salt: bytes | str, today: dt.date,
                  lang: str | None = None) -> ReturneeRecord:
        f = _Form(form, cls.FIELDS)
        name = f.take("name", lambda v: _clean(v, MAX_NAME))
        id_number = f.take("id_number", lambda v: _id_number(v, today))
        abroad = bool(f.take("from_abroad", _yes_no, required=False))
        values = dict(
            phone=f.take("phone", check_phone),
            building=f.take("building", _room_part), unit=f.take("unit", _room_part),
            room=f.take("room", _room_part), from_abroad=abroad,
            from_county=f.take("from_county", _county, required=not abroad),
            from_place=f.take("from_place", lambda v: _clean(v, MAX_PLACE)),
            arrival_date=f.take("arrival_date", lambda v: _date(v, today)),
            transport=f.take("transport", _transport),
            last_test_date=f.take("last_test_date", lambda v: _date(v, today), required=False))
        f.done(lang)
        # The ID number stops here: only its keyed hash goes on.
        return cls(person_ref=people.person_ref(id_number, salt), masked_name=_masked(name), **values)

    @property
    def address(self) -> str:
        """Building-unit-room as the office writes it: 3-2-501."""
        return f"{self.building}-{self.unit}-{self.room}"

    def test_age_days(self, today: dt.date) -> int | None:
        return None if self.last_test_date is None else (today - self.last_test_date).days

    def tested_within_window(self, today: dt.date) -> bool:
        """A negative test within 7 days is what the plan asks of a first return."""
        age = self.test_age_days(today)
        return age is not None and age <= self.TEST_WINDOW_DAYS

    def to_details(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("person_ref")  # in the entry's own column
        d.pop("masked_name")
        d["arrival_date"] = self.arrival_date.isoformat()
        d["last_test_date"] = self.last_test_date.isoformat() if self.last_test_date else None
        return _bounded({"form": self.KIND, **d})

    def entry_fields(self) -> dict[str, Any]:
        return {"details": self.to_details(), "masked_name": self.masked_name,
                "person_ref": self.person_ref}


def _room_part(value: Any) -> str:
    t = _clean(value, MAX_ROOM_PART)
    if not re.fullmatch(r"[0-9A-Za-z]+", t):
        raise _Bad("bad_characters")
    return t.upper()


def _county(value: Any) -> str:
    code = _text(value).strip()
    if not region_code_ok(code):
        raise _Bad("region_code")
    return code


@dataclasses.dataclass(frozen=True)
class CourierRecord(Record):
    """快递外卖: who brought what where."""
    company: str
    phone: str
    drop_off: str

    KIND: ClassVar[str] = "courier"
    FIELDS: ClassVar[tuple[str, ...]] = ("company", "phone", "drop_off")

    @classmethod
    def from_form(cls, form: Mapping[str, Any], *, lang: str | None = None) -> CourierRecord:
        f = _Form(form, cls.FIELDS)
        values = dict(company=f.take("company", lambda v: _clean(v, MAX_COMPANY)),
                      phone=f.take("phone", check_phone),
                      drop_off=f.take("drop_off", lambda v: _clean(v, MAX_PLACE)))
        f.done(lang)
        return cls(**values)

    def to_details(self) -> dict[str, Any]:
        return _bounded({"form": self.KIND, **dataclasses.asdict(self)})


@dataclasses.dataclass(frozen=True)
class VehicleRecord(Record):
    """A vehicle at the gate: stored in the entry's `vehicle` field."""
    plate: str                 # normalised (normalise_plate), as the vehicles list writes it
    plate_kind: str            # a key of the plate patterns: ordinary, new_energy_small, ...
    passengers: int            # people aboard, driver included
    boot_checked: bool
    household: str | None = None   # the household, for a resident's vehicle
    purpose: str | None = None

    KIND: ClassVar[str] = "vehicle"
    FIELDS: ClassVar[tuple[str, ...]] = ("plate", "passengers", "boot_checked", "household", "purpose")

    @classmethod
    def from_form(cls, form: Mapping[str, Any], *, lang: str | None = None) -> VehicleRecord:
        f = _Form(form, cls.FIELDS)
        plate = f.take("plate", check_plate)
        values = dict(
            passengers=f.take("passengers", lambda v: _count(v, MAX_PASSENGERS)),
            boot_checked=f.take("boot_checked", _yes_no),
            household=f.take("household", lambda v: _clean(v, MAX_HOUSEHOLD), required=False),
            purpose=f.take("purpose", lambda v: _clean(v, MAX_REASON), required=False))
        f.done(lang)
        return cls(plate=plate, plate_kind=plate_kind(plate) or "", **values)

    def to_details(self) -> dict[str, Any]:
        return _bounded({"form": self.KIND, **dataclasses.asdict(self)})

    def entry_fields(self) -> dict[str, Any]:
        return {"vehicle": self.to_details()}


RECORDS: dict[str, type[Record]] = {
    r.KIND: r for r in (VisitorRecord, ReturneeRecord, CourierRecord, VehicleRecord)}


def parse_record(kind: str, form: Mapping[str, Any], *, salt: bytes | str, today: dt.date,
                 lang: str | None = None) -> Record:
    """One entry point for the API: the record of `kind` from a form, or RecordInvalid."""
    if kind == "returnee":
        return ReturneeRecord.from_form(form, salt=salt, today=today, lang=lang)
    if kind == "visitor":
        return VisitorRecord.from_form(form, lang=lang)
    if kind == "courier":
        return CourierRecord.from_form(form, lang=lang)
    if kind == "vehicle":
        return VehicleRecord.from_form(form, lang=lang)
    raise ValueError(f"unknown record kind {kind[:32]!r}; known: {', '.join(RECORDS)}")
