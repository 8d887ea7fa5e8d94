"""Run the gate: camera, thermometer, checkpoint, relay, local API and uploader, all day.

  gate run --config /etc/gate/gate.toml
  gate run --camera codes/ --port /dev/ttyUSB0 --trust trust.json --exit-when-done
  gate run --camera sim --port sim --api-tcp 127.0.0.1:8088      # simulated devices

Flags override the configuration file. `gate config example` prints an annotated
configuration with every key and its default (docs/config.md). SIGTERM or Ctrl-C stops
it cleanly; under systemd it reports READY=1 and pets the watchdog.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys

from kiosk import config as gate_config
from kiosk.daemon import Daemon, DaemonError, Options


def _int(text: str) -> int:
    return int(text, 0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="gate.toml (default: $GATE_CONFIG, else ./gate.toml if present)")
    parser.add_argument("--db", help="the store file (default: [store] path)")
    parser.add_argument("--camera", metavar="SRC", help="as gate scan --source, or sim (default: [camera] source)")
    parser.add_argument("--port", help="thermometer serial port, or sim (default: [thermometer] port)")
    parser.add_argument("--protocol", choices=("gy-mcu90614", "modbus", "ascii"),
                        help="thermometer protocol (default: [thermometer] protocol)")
    parser.add_argument("--address", type=_int, help="modbus device address")
    parser.add_argument("--register", type=_int, help="modbus object temperature register")
    parser.add_argument("--ambient-register", type=_int, help="modbus ambient register")
    parser.add_argument("--scale", type=float, help="modbus degrees C per unit")
    parser.add_argument("--function", type=_int, choices=(3, 4), help="modbus function")
    parser.add_argument("--trust", help="trust list file (default: the keys the township pushed down)")
    parser.add_argument("--lists", help="JSON object of lists by name, for a gate not yet enrolled")
    parser.add_argument("--api-socket", help="the local API's Unix socket (default: [api] socket)")
    parser.add_argument("--api-tcp", metavar="HOST:PORT", help="also serve the local API on TCP")
    parser.add_argument("--exit-when-done", action="store_true",
                        help="stop when a file, folder or video source is used up and the last person decided")


def run(args: argparse.Namespace) -> int:
    cfg = gate_config.load(args.config)
    therm = {k: v for k, v in (("address", args.address), ("register", args.register),
                               ("ambient_register", args.ambient_register), ("scale", args.scale),
                               ("function", args.function)) if v is not None}
    opts = Options(db=args.db, camera=args.camera, port=args.port, protocol=args.protocol, trust=args.trust,
                   lists=args.lists, api_socket=args.api_socket, api_tcp=args.api_tcp,
                   exit_when_done=args.exit_when_done, thermometer=therm)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        daemon = Daemon(cfg, opts)
    except DaemonError as exc:
        print(f"gate run: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: daemon.stop_event.set())
    try:
        daemon.start()
        return daemon.run()
    except DaemonError as exc:
        print(f"gate run: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        daemon.stop()
