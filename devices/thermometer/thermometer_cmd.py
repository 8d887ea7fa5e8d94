"""Read a serial thermometer, or fit its body-temperature compensation.

  gate thermometer read --port /dev/ttyUSB0 --protocol gy-mcu90614 --count 5 --json
  gate thermometer read --port /dev/ttyUSB0 --protocol modbus --address 1 --register 0x12 \\
        --ambient-register 0x14 --scale 0.1 --function 3
  gate thermometer calibrate pairs.csv      # CSV: object_c,ambient_c,reference_c

A reading's body_c is null (and its flag says why) when the estimate is outside the
plausible range or the sensor is stuck; object and ambient are always printed.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

from .body import DEFAULT_A, DEFAULT_B, DEFAULT_HIGH, DEFAULT_LOW, CalibrationError, Compensation, fit, read_pairs
from .protocols import PROTOCOLS
from .protocols.ascii_line import DEFAULT_AMBIENT_PATTERN, DEFAULT_PATTERN, PatternError
from .reading import Status


def _int(text: str) -> int:
    return int(text, 0)   # 18, 0x12, 0o22 all work


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    r = sub.add_parser("read", help="print readings from a thermometer on a serial port",
                       description="Print one line per reading (or one JSON object per line).")
    r.add_argument("--port", required=True, help="serial device, e.g. /dev/ttyUSB0 or a pty path")
    r.add_argument("--protocol", required=True, choices=PROTOCOLS)
    r.add_argument("--baud", type=int, default=9600, help="baud rate (default 9600)")
    r.add_argument("--count", type=int, default=0, help="stop after N readings (default: run until Ctrl-C)")
    r.add_argument("--json", action="store_true", help="one JSON object per line")
    r.add_argument("--timeout", type=float, default=10.0,
                   help="give up (exit 1) when no reading has come in this many seconds "
                        "(default 10: a wrong --protocol or --baud gives none; 0: wait for ever)")
    r.add_argument("--mode", choices=("query", "continuous"), default="query",
                   help="gy-mcu90614: ask for each reading, or let the module stream (default query)")
    r.add_argument("--interval", type=float, default=0.1, help="seconds between queries (default 0.1)")
    m = r.add_argument_group("modbus")
    m.add_argument("--address", type=_int, default=1, help="device address (default 1)")
    m.add_argument("--register", type=_int, default=0x12, help="object temperature register (default 0x12)")
    m.add_argument("--ambient-register", type=_int, default=None,
                   help="ambient temperature register (default: none)")
    m.add_argument("--scale", type=float, default=0.1, help="degrees C per unit (default 0.1)")
    m.add_argument("--function", type=_int, choices=(3, 4), default=3,
                   help="3 read holding registers, 4 read input registers (default 3)")
    m.add_argument("--unsigned", action="store_true", help="registers are unsigned (default signed)")
    a = r.add_argument_group("ascii")
    a.add_argument("--pattern", default=DEFAULT_PATTERN,
                   help="regular expression with named groups object and (optional) ambient")
    a.add_argument("--ambient-pattern", default=None,
                   help="regular expression with a named group ambient, for modules that print "
                        "ambient on a line of its own (default accepts TA:20.5, Ambient: 20.5 C)")
    c = r.add_argument_group("body temperature")
    c.add_argument("--coef-a", type=float, default=DEFAULT_A, help=f"ambient coefficient a (default {DEFAULT_A})")
    c.add_argument("--coef-b", type=float, default=DEFAULT_B, help=f"offset b in °C (default {DEFAULT_B})")
    c.add_argument("--low", type=float, default=DEFAULT_LOW, help=f"lowest plausible body °C (default {DEFAULT_LOW})")
    c.add_argument("--high", type=float, default=DEFAULT_HIGH,
                   help=f"highest plausible body °C (default {DEFAULT_HIGH})")
    r.add_argument("--stuck-after", type=float, default=60.0,
                   help="seconds of identical values before the sensor counts as stuck (default 60)")
    r.add_argument("--lang", choices=("zh", "en"), default=None,
                   help="language of status messages (default zh, or $GATE_LANG)")
    r.add_argument("-v", "--verbose", action="store_true",
                   help="log every fault to stderr (the same as `gate --log-level debug`)")

    k = sub.add_parser("calibrate", help="fit body = object + a*ambient + b from a CSV of paired readings",
                       description="Least-squares fit of the compensation from paired readings "
                                   "(columns object_c, ambient_c, reference_c).")
    k.add_argument("csv", help="CSV file with a header: object_c,ambient_c,reference_c")
    k.add_argument("--json", action="store_true", help="print the fit as JSON")


def make_session(args: argparse.Namespace):
    from .sessions import AsciiSession, GyMcu90614Session, ModbusSession
    if args.protocol == "gy-mcu90614":
        return GyMcu90614Session(mode=args.mode, interval=args.interval)
    if args.protocol == "modbus":
        return ModbusSession(address=args.address, function=args.function, register=args.register,
                             ambient_register=args.ambient_register, scale=args.scale,
                             signed=not args.unsigned, interval=args.interval)
    return AsciiSession(pattern=args.pattern,
                        ambient_pattern=args.ambient_pattern or DEFAULT_AMBIENT_PATTERN)


def _fmt(v: float | None) -> str:
    return "  -  " if v is None else f"{v:5.2f}"


def run_read(args: argparse.Namespace) -> int:
    import threading

    from kiosk.reasons import thermometer_text

    from .driver import PortOpenError, Thermometer
    if args.verbose:
        logging.getLogger("gate").setLevel(logging.DEBUG)
    try:
        session = make_session(args)
    except (ValueError, PatternError) as e:
        print(f"gate thermometer: {e}", file=sys.stderr)
        return 2
    therm = Thermometer(args.port, session, baud=args.baud, stuck_after=args.stuck_after,
                        compensation=Compensation(a=args.coef_a, b=args.coef_b, low=args.low, high=args.high))
    try:
        therm.connect()
    except PortOpenError as e:
        print(f"gate thermometer: {e}", file=sys.stderr)
        return 2
    timed_out = threading.Event()
    done = threading.Event()

    def watchdog() -> None:
        # The loop yields only readings, so silence is noticed from outside it.
        last = -1
        while not done.wait(args.timeout):
            st = therm.status()
            if st.readings == last:
                why = thermometer_text(st.status.value, args.lang)
                print(f"gate thermometer: no reading for {args.timeout:g} s on {args.port} ({why}"
                      f"{'; ' + st.last_error if st.last_error else ''}): check --protocol, --baud "
                      f"and the wiring", file=sys.stderr, flush=True)
                timed_out.set()
                therm.stop()
                return
            last = st.readings

    if args.timeout:
        threading.Thread(target=watchdog, daemon=True).start()
    n, last_status = 0, Status.OK
    try:
        for reading in therm.readings():
            n += 1
            if args.json:
                print(json.dumps(reading.to_dict(), ensure_ascii=False), flush=True)
            else:
                print(f"object {_fmt(reading.object_c)} °C  ambient {_fmt(reading.ambient_c)} °C  "
                      f"body {_fmt(reading.body_c)} °C  [{reading.flag.value}]", flush=True)
            if args.count and n >= args.count:
                break
            st = therm.status().status
            if st != last_status and st is not Status.OK:
                print(f"# {st.value}: {thermometer_text(st.value, args.lang)}", file=sys.stderr, flush=True)
            last_status = st
    finally:
        done.set()
    return 1 if timed_out.is_set() else 0


def run_calibrate(args: argparse.Namespace) -> int:
    try:
        result = fit(read_pairs(args.csv))
    except (OSError, CalibrationError) as e:
        print(f"gate thermometer calibrate: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"a": round(result.a, 4), "b": round(result.b, 4), "n": len(result.pairs),
                          "fixed_a": result.fixed_a, "rms_c": round(result.rms, 3),
                          "max_abs_c": round(result.max_abs, 3),
                          "residuals_c": [round(r, 3) for r in result.residuals]}))
        return 0
    print(f"body = object + a * ambient + b, least squares over {len(result.pairs)} paired readings")
    print(f"  a = {result.a:+.4f}" + ("   (ambient did not vary: a kept at its default, only b fitted)"
                                       if result.fixed_a else ""))
    print(f"  b = {result.b:+.4f} °C")
    print(f"  residual RMS {result.rms:.3f} °C, largest {result.max_abs:.3f} °C")
    print()
    print(f"  {'object':>7} {'ambient':>8} {'reference':>10} {'fitted':>7} {'residual':>9}")
    for p, res in zip(result.pairs, result.residuals, strict=True):
        fitted = p.object_c + result.a * p.ambient_c + result.b
        print(f"  {p.object_c:7.2f} {p.ambient_c:8.2f} {p.reference_c:10.2f} {fitted:7.2f} {res:+9.3f}")
    print()
    print(f"Use it: gate thermometer read ... --coef-a {result.a:.4f} --coef-b {result.b:.4f}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.action == "calibrate":
        return run_calibrate(args)
    return run_read(args)
