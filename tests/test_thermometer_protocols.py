"""Pure protocol code and body compensation: bytes in, samples and faults out."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.thermometer.body import CalibrationError, Compensation, Pair, fit, read_pairs
from devices.thermometer.protocols import Fault, Sample, ascii_line
from devices.thermometer.protocols import gy_mcu90614 as gy
from devices.thermometer.protocols import modbus_rtu as mb
from devices.thermometer.reading import Flag, Status

EXAMPLE = bytes.fromhex("5A5A45040C780D19A7")   # the example frame


# --- GY-MCU90614 ---

def test_commands_match_the_datasheet():
    assert gy.CONTINUOUS == bytes.fromhex("A545EA")
    assert gy.QUERY == bytes.fromhex("A515BA")


def test_example_frame_decodes():
    [s] = gy.FrameParser().feed(EXAMPLE)
    assert (s.object_c, s.ambient_c, s.raw) == (31.92, 33.53, EXAMPLE)
    assert gy.encode(31.92, 33.53) == EXAMPLE


def test_negative_temperatures_are_signed():
    s = gy.decode(gy.encode(-12.5, -0.01))
    assert (s.object_c, s.ambient_c) == (-12.5, -0.01)


def test_frame_split_across_reads():
    p = gy.FrameParser()
    out = []
    for b in EXAMPLE:
        out += p.feed(bytes([b]))
    assert [e for e in out if isinstance(e, Sample)] == [Sample(31.92, 33.53, EXAMPLE)]
    assert not [e for e in out if isinstance(e, Fault)]


def test_resync_after_garbage_partial_and_bad_checksum():
    bad = EXAMPLE[:-1] + b"\x00"
    good2 = gy.encode(36.6, 20.0)
    events = gy.FrameParser().feed(b"\x01\x5a\xff" + EXAMPLE[:5] + bad + good2 + EXAMPLE)
    samples = [e for e in events if isinstance(e, Sample)]
    statuses = [e.status for e in events if isinstance(e, Fault)]
    assert [s.raw for s in samples] == [good2, EXAMPLE]
    assert Status.GARBAGE in statuses and Status.PARTIAL_FRAME in statuses
    assert Status.CHECKSUM_ERROR in statuses


def test_flush_names_a_cut_frame():
    p = gy.FrameParser()
    assert p.feed(EXAMPLE[:6]) == []
    [f] = p.flush()
    assert f.status is Status.PARTIAL_FRAME and f.raw == EXAMPLE[:6]


def _is_valid_gy(raw: bytes) -> bool:
    return (len(raw) == 9 and raw[:4] == b"\x5a\x5a\x45\x04" and sum(raw[:8]) & 0xFF == raw[8])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=12))
def test_gy_parser_never_raises_and_only_returns_valid_frames(chunks):
    p = gy.FrameParser()
    stream = b"".join(chunks)
    for chunk in chunks:
        for e in p.feed(chunk):
            if isinstance(e, Sample):
                assert _is_valid_gy(e.raw) and e.raw in stream
                assert gy.decode(e.raw) == e
    p.flush()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=20).filter(lambda b: 0x5A not in b),
                          st.integers(-4000, 12000), st.integers(-4000, 6000)), max_size=8),
       st.integers(1, 13))
def test_gy_parser_recovers_every_frame_between_garbage(items, chunk):
    frames = [gy.encode(o / 100, a / 100) for _, o, a in items]
    stream = b"".join(g + f for (g, _, _), f in zip(items, frames, strict=True))
    p = gy.FrameParser()
    got = []
    for i in range(0, len(stream), chunk):
        got += [e.raw for e in p.feed(stream[i:i + chunk]) if isinstance(e, Sample)]
    assert got == frames


# --- Modbus RTU ---

def test_crc16_modbus_check_value():
    assert mb.crc16(b"123456789") == 0x4B37


def test_read_request_bytes():
    # addr 1, fn 3, start 0x12, count 3: a classic frame with its CRC, low byte first
    assert mb.read_request(1, 3, 0x12, 3) == bytes.fromhex("010300120003") + mb.crc16(
        bytes.fromhex("010300120003")).to_bytes(2, "little")


def test_response_with_noise_before_and_exception():
    resp = mb.registers_response(7, 4, [365, 0, 0xFFEC])
    p = mb.ResponseParser(7, 4, 3)
    got = p.feed(b"\x00\xff" + resp)
    assert got.values == [365, 0, 0xFFEC] and got.raw == resp
    assert [f.status for f in p.faults] == [Status.GARBAGE]
    assert mb.register_value(0xFFEC, 0.1, signed=True) == -2.0
    assert mb.register_value(0xFFEC, 0.1, signed=False) == 6551.6
    p = mb.ResponseParser(7, 4, 3)
    exc = p.feed(mb.exception_response(7, 4, 2))
    assert isinstance(exc, mb.ExceptionFrame) and exc.code == 2
    assert mb.ModbusExceptionResponse(7, 4, 2).name == "ILLEGAL_DATA_ADDRESS"


def test_response_with_bad_crc_is_a_checksum_error():
    resp = bytearray(mb.registers_response(1, 3, [365]))
    resp[-1] ^= 0xFF
    p = mb.ResponseParser(1, 3, 1)
    assert p.feed(bytes(resp)) is None
    assert Status.CHECKSUM_ERROR in [f.status for f in p.faults]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(1, 247), st.sampled_from([3, 4]), st.integers(1, 4))
def test_modbus_parser_never_raises_and_only_returns_valid_frames(data, addr, fn, count):
    p = mb.ResponseParser(addr, fn, count)
    got = p.feed(data)
    if isinstance(got, mb.Registers):
        assert mb.crc_ok(got.raw) and got.raw in data
        assert got.raw[0] == addr and got.raw[1] == fn and got.raw[2] == 2 * count
        assert len(got.values) == count
    elif isinstance(got, mb.ExceptionFrame):
        assert mb.crc_ok(got.raw) and got.raw[1] == fn | 0x80 and got.raw in data


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=30), st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=5))
def test_modbus_parser_finds_the_answer_after_noise(noise, values):
    resp = mb.registers_response(1, 3, values)
    got = mb.ResponseParser(1, 3, len(values)).feed(noise + resp)
    # noise may itself hold a valid-looking frame only with a matching CRC: vanishingly rare
    assert isinstance(got, (mb.Registers, mb.ExceptionFrame))
    if got.raw == resp:
        assert got.values == values


# --- ASCII lines ---

@pytest.mark.parametrize("line,obj,amb", [
    (b"Object: 36.50 C, Ambient: 25.00 C", 36.5, 25.0),
    (b"TO=36.5 TA=20", 36.5, 20.0),
    (b"obj=36.5", 36.5, None),
    ("Object: 36.5 °C, Ambient: -3.0 °C".encode(), 36.5, -3.0),
])
def test_default_pattern(line, obj, amb):
    [s] = ascii_line.LineParser().feed(line + b"\r\n")
    assert (s.object_c, s.ambient_c) == (obj, amb)


def test_cut_lines_and_junk_are_garbage_not_readings():
    events = ascii_line.LineParser().feed(b"Object: 3Object: 36.6 C\n\xff\xfe\nhello\n")
    assert all(isinstance(e, Fault) and e.status is Status.GARBAGE for e in events)
    assert len(events) == 3


def test_object_and_ambient_on_lines_of_their_own():
    p = ascii_line.LineParser()
    events = p.feed(b"TO:31.92\r\nTA:33.53\r\nTO:32.00\r\nTA:33.50\r\nTO:32.10\r\n")
    # the first object line comes before any ambient line: it goes out alone
    assert [(e.object_c, e.ambient_c) for e in events] == [(31.92, None), (32.0, 33.5)]
    assert events[1].raw == b"TO:32.00\nTA:33.50"
    [last] = p.flush()   # silence: the held object line goes out without an ambient
    assert (last.object_c, last.ambient_c) == (32.1, None)


def test_custom_pattern_and_bad_patterns():
    p = ascii_line.LineParser(r"T=(?P<object>\d+\.\d)")
    [s] = p.feed(b"T=36.6\n")
    assert s.object_c == 36.6 and s.ambient_c is None
    with pytest.raises(ascii_line.PatternError):
        ascii_line.LineParser(r"T=(\d+)")
    with pytest.raises(ascii_line.PatternError):
        ascii_line.LineParser(r"T=(?P<object>")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=10))
def test_ascii_parser_never_raises_and_only_returns_matching_lines(chunks):
    p = ascii_line.LineParser()
    for chunk in chunks:
        for e in p.feed(chunk):
            if isinstance(e, Sample):
                object_line, _, ambient_line = e.raw.partition(b"\n")
                assert p.rx.search(object_line.decode("utf-8", "replace"))
                assert not ambient_line or p.ambient_rx.search(ambient_line.decode("utf-8", "replace"))
                assert math.isfinite(e.object_c)
    p.flush()


# --- body temperature ---

def test_default_compensation():
    c = Compensation()
    assert c.body(35.0, 25.0) == (37.0, 37.0, Flag.OK)
    assert c.body(33.5, 10.0) == (37.0, 37.0, Flag.OK)   # cold forehead outdoors
    body, estimate, flag = c.body(22.0, 22.0)                # nobody in front: the wall
    assert body is None and flag is Flag.IMPLAUSIBLE and estimate == 24.3
    assert c.body(45.0, 20.0)[0] is None                     # a hot object, not a person
    assert c.body(math.nan, 20.0)[0] is None


def test_fit_recovers_known_coefficients(tmp_path):
    rows = [(o, a, round(o - 0.08 * a + 4.1, 3)) for o, a in
            [(34.0, 10), (34.6, 15), (35.1, 20), (35.4, 25), (35.9, 30), (33.2, 5)]]
    csv = tmp_path / "pairs.csv"
    csv.write_text("object_c,ambient_c,reference_c\n" + "".join(f"{o},{a},{r}\n" for o, a, r in rows))
    f = fit(read_pairs(csv))
    assert f.a == pytest.approx(-0.08, abs=1e-6) and f.b == pytest.approx(4.1, abs=1e-6)
    assert f.max_abs < 1e-6 and not f.fixed_a


def test_fit_with_one_ambient_keeps_a():
    f = fit([Pair(35.0, 20.0, 37.0), Pair(35.2, 20.0, 37.1)])
    assert f.fixed_a and f.a == -0.1 and f.b == pytest.approx(3.95)


def test_fit_errors(tmp_path):
    with pytest.raises(CalibrationError):
        fit([Pair(35.0, 20.0, 37.0)])
    bad = tmp_path / "bad.csv"
    bad.write_text("object_c,ambient_c\n35,20\n")
    with pytest.raises(CalibrationError, match="reference_c"):
        read_pairs(bad)
    bad.write_text("object_c,ambient_c,reference_c\n35,x,37\n")
    with pytest.raises(CalibrationError, match=":2"):
        read_pairs(bad)
