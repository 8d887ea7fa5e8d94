"""Simulated devices on pseudo-terminals, for the demo, the tests and bench work.

  gate sim thermometer --protocol gy-mcu90614
  gate sim thermometer --protocol modbus --object 36.5,36.7 --ambient 20 --fault exception:every=4
  gate sim thermometer --protocol ascii --script temps.txt --link /tmp/gate/ttyTHERM \\
        --fault disconnect:at=10,for=2

The first line on stdout is the port path to open (the --link path when given).
What the simulator does (faults played, reappearing) goes to stderr. Ctrl-C stops it.
"""
from __future__ import annotations

import argparse
import signal
import sys
import time


def _temps(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of temperatures: {text!r}") from None


def _int(text: str) -> int:
    return int(text, 0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from devices.thermometer import emulator  # stdlib only: cheap to import for --help
    sub = parser.add_subparsers(dest="action", required=True, metavar="DEVICE")
    t = sub.add_parser("thermometer", help="an infrared thermometer on a pty",
                       description=emulator.__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--protocol", required=True, choices=("gy-mcu90614", "modbus", "ascii"))
    t.add_argument("--object", type=_temps, default=[34.5, 34.4, 34.6, 34.5, 34.3],
                   help="object temperatures, comma-separated, cycled "
                        "(default 34.5,34.4,34.6,34.5,34.3: a healthy forehead at 20 °C)")
    t.add_argument("--ambient", type=_temps, default=[20.0],
                   help="ambient temperatures, comma-separated, cycled (default 20.0)")
    t.add_argument("--no-ambient", action="store_true", help="ascii/modbus: the device has no ambient sensor")
    t.add_argument("--script", help="file of `object[,ambient]` lines; overrides --object/--ambient")
    t.add_argument("--fault", action="append", default=[], metavar="NAME[:every=N|at=N][,for=S]",
                   help="inject a fault (repeatable): noise, bad-checksum, partial, exception, "
                        "stuck, silence, disconnect")
    t.add_argument("--interval", type=float, default=None,
                   help="seconds between streamed frames (default: gy-mcu90614 1/14, ascii 0.2)")
    t.add_argument("--no-auto-output", action="store_true",
                   help="gy-mcu90614: do not stream from power-on (as configured by A5 52 F7); "
                        "answer queries, stream after A5 45 EA")
    t.add_argument("--link", help="keep a symlink here to the current pty (survives disconnect faults)")
    t.add_argument("--pace", type=int, default=0, metavar="BAUD",
                   help="delay answers by the time the bytes take on a real line at BAUD (a pty has no baud rate)")
    t.add_argument("--seed", type=int, default=0, help="random seed for noise")
    t.add_argument("--address", type=_int, default=1, help="modbus device address (default 1)")
    t.add_argument("--register", type=_int, default=0x12, help="modbus object register (default 0x12)")
    t.add_argument("--ambient-register", type=_int, default=0x14, help="modbus ambient register (default 0x14)")
    t.add_argument("--scale", type=float, default=0.1, help="modbus °C per unit (default 0.1)")
    t.add_argument("--split-lines", action="store_true",
                   help="ascii: print TO:<object> and TA:<ambient> on lines of their own")
    t.add_argument("--echo", action="store_true",
                   help="modbus: echo each request first, like a half-duplex RS-485 adapter")


def run(args: argparse.Namespace) -> int:
    from devices.thermometer.emulator import EMULATORS, EmulatorError, FaultSpec, read_script
    try:
        faults = [FaultSpec.parse(f) for f in args.fault]
        if args.script:
            values = read_script(args.script)
        else:
            n = max(len(args.object), len(args.ambient))
            values = [(args.object[i % len(args.object)],
                       None if args.no_ambient else args.ambient[i % len(args.ambient)]) for i in range(n)]
    except (EmulatorError, OSError) as e:
        print(f"gate sim: {e}", file=sys.stderr)
        return 2
    kw = dict(faults=faults, interval=args.interval, link=args.link, pace_baud=args.pace or None,
              seed=args.seed)
    if args.protocol == "modbus":
        kw.update(address=args.address, register=args.register,
                  ambient_register=args.ambient_register, scale=args.scale, echo=args.echo)
    if args.protocol == "ascii":
        kw["split"] = args.split_lines
    if args.interval is None:
        kw["interval"] = {"gy-mcu90614": 1 / 14, "ascii": 0.2}.get(args.protocol, 0.1)
    if args.protocol == "gy-mcu90614" and args.no_auto_output:
        kw["stream"] = False
    try:
        emu = EMULATORS[args.protocol](values, **kw)
    except OSError as e:
        print(f"gate sim: cannot create the pseudo-terminal: {e}", file=sys.stderr)
        return 2
    print(emu.path, flush=True)
    print(f"gate sim: {args.protocol} thermometer on {emu.line.slave_path}", file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: emu.request_stop())
    emu.start()
    shown = 0
    try:
        while emu.alive():
            time.sleep(0.2)
            for line in emu.log[shown:]:
                print(f"gate sim: {line}", file=sys.stderr, flush=True)
            shown = len(emu.log)
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
    return 0
