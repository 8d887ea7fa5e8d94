"""Township office tasks against a running server: enrollment tokens, risk level and
policy, list uploads, the daily report (zeros included), alarms, devices, staff accounts
(`user add|list|disable|enable|passwd`) and the audit log.

Accounts go through the administrator API, not straight to the database: one place holds
the rules (names, roles, password length, hashing, ending sessions) and writes the audit
log, and the command works against a remote server without the database's credentials.

The administrator token is read from $GATE_ADMIN_TOKEN or --admin-token-file and is
never printed.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

SERVER = "http://127.0.0.1:8470"
TOKEN_FILE = "var/admin-token"


def add_common(parser: argparse.ArgumentParser, after_action: bool = False) -> None:
    """--server and --admin-token-file, before or after the action: an action's parser
    sets them only when they are given there (SUPPRESS), so either place works."""
    parser.add_argument("--server", default=argparse.SUPPRESS if after_action else SERVER,
                        help=f"server URL (default: {SERVER})")
    parser.add_argument("--admin-token-file", default=argparse.SUPPRESS if after_action else TOKEN_FILE,
                        help=f"file with the admin token if $GATE_ADMIN_TOKEN is unset (default: {TOKEN_FILE})")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser)
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("token", help="create a one-time enrollment token for a gate")
    p.add_argument("--community", required=True)
    p.add_argument("--gate", required=True, help="the gate's name, e.g. east")
    p.add_argument("--device-id", default=None, help="default: COMMUNITY.GATE")
    p.add_argument("--ttl-hours", type=float, default=24)
    p.add_argument("--bare", action="store_true", help="print only the token (for scripts)")
    p = sub.add_parser("policy", help="set a community's risk level and thresholds")
    p.add_argument("--community", required=True)
    p.add_argument("--risk-level", required=True, choices=["low", "medium", "high"])
    p.add_argument("--fever-threshold", type=float, default=None, help="°C, default the gate's 37.3")
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                   help="any other policy value, e.g. --set visitors_allowed=false")
    p = sub.add_parser("list", help="replace one list of a community from a JSON file of rows")
    p.add_argument("--community", required=True)
    p.add_argument("--name", required=True, help="households, residents, passes, quarantine_orders, ... "
                                                  "(columns and an example of each: docs/sync.md)")
    p.add_argument("file", help="JSON: a list of row objects, or {\"rows\": [...]}; - for stdin")
    p = sub.add_parser("report", help="the daily report, one line per community (zeros included), "
                                      "or the whole report as JSON, CSV or XLSX")
    p.add_argument("--day", default=None, help="YYYY-MM-DD (default: today in the report time zone)")
    p.add_argument("--tz", default=None, help="IANA time zone of the day (default: the server's)")
    p.add_argument("--community", default=None, help="one community only")
    p.add_argument("--format", choices=["text", "json", "csv", "xlsx"], default="text",
                   help="text (default), json, csv or xlsx (Chinese headers; --lang en for English)")
    p.add_argument("--lang", choices=["zh", "en"], default="zh", help="headers of csv and xlsx")
    p.add_argument("--out", default=None, metavar="FILE", help="write to FILE (needed for xlsx)")
    p.add_argument("--json", action="store_true", help="the same as --format json")
    p = sub.add_parser("alarms", help="immediate reports since an id")
    p.add_argument("--after", type=int, default=0)
    sub.add_parser("devices", help="enrolled gates: last seen, acked seq, clock offset")
    p = sub.add_parser("revoke", help="revoke a gate's key (it gets 403 from then on)")
    p.add_argument("device_id")
    p = sub.add_parser("user", help="township staff accounts: add, list, disable, enable, passwd")
    users = p.add_subparsers(dest="user_action", required=True)
    u = users.add_parser("add", help="a new account (the password is asked for, never an argument)")
    u.add_argument("username", help="the login: letters, digits, '.', '_' or '-'")
    u.add_argument("--role", required=True, choices=["admin", "readonly", "community"],
                   help="admin: township administrator; readonly: township read-only; "
                        "community: one community's staff")
    u.add_argument("--community", default=None, help="the community, for --role community")
    u.add_argument("--password-stdin", action="store_true", help="read the password from stdin's first line")
    users.add_parser("list", help="accounts, roles, disabled or not")
    u = users.add_parser("disable", help="the account can no longer sign in; its sessions end now")
    u.add_argument("username")
    u = users.add_parser("enable", help="let a disabled account sign in again")
    u.add_argument("username")
    u = users.add_parser("passwd", help="set a new password; the user's open sessions end")
    u.add_argument("username")
    u.add_argument("--password-stdin", action="store_true", help="read the password from stdin's first line")
    p = sub.add_parser("audit", help="who changed what and when, newest first")
    p.add_argument("--community", default=None)
    p.add_argument("--limit", type=int, default=50)
    for action in [*sub.choices.values(), *users.choices.values()]:
        add_common(action, after_action=True)


def run(args) -> int:
    from sync.admin import Admin, AdminError
    from sync.auth import load_admin_token

    token = load_admin_token(args.admin_token_file)
    if not token:
        print("gate township: no admin token ($GATE_ADMIN_TOKEN or --admin-token-file)", file=sys.stderr)
        return 2
    admin = Admin(args.server, token)
    try:
        return _do(admin, args)
    except AdminError as exc:
        print(f"gate township: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"gate township: {exc}", file=sys.stderr)
        return 1
    finally:
        admin.close()


def _do(admin, args) -> int:
    import httpx
    try:
        if args.action == "token":
            t = admin.enrollment(args.community, args.gate, args.device_id, args.ttl_hours)
            if not args.bare:
                print(f"device {t['device_id']} ({t['community']} / {t['gate']}), token valid until "
                      f"{t['expires_utc']}:")
            print(t["token"])
        elif args.action == "policy":
            extra = {}
            for item in args.set:
                key, _, value = item.partition("=")
                extra[key] = json.loads(value)
            if args.fever_threshold is not None:
                extra["fever_c"] = args.fever_threshold
            p = admin.set_policy(args.community, risk_level=args.risk_level, **extra)
            print(f"policy of {args.community}: version {p['version']}")
        elif args.action == "list":
            text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{args.file} is not JSON ({exc.msg} at line {exc.lineno})") from None
            rows = data.get("rows") if isinstance(data, dict) else data
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise ValueError(f"{args.file}: give a JSON list of row objects, or {{\"rows\": [...]}}")
            p = admin.put_list(args.community, args.name, rows)
            print(f"{args.name} of {args.community}: {len(rows)} rows, version {p['version']}")
        elif args.action == "report":
            _report(admin, args)
        elif args.action == "alarms":
            alarms = admin.alarms(args.after)["alarms"]
            if not alarms:
                print(f"no alarms after #{args.after}" if args.after else "no alarms")
            for a in alarms:
                print(f"#{a['id']} {shown(a.get('at_utc'))} {a['community']}/{a['gate']} seq {a['seq']}: "
                      f"{a['action']} {'; '.join(a.get('reasons') or [])}")
        elif args.action == "devices":
            devices = admin.devices()
            if not devices:
                print("no gates enrolled yet (gate township token, then gate enroll on the gate)")
            for d in devices:
                offset = d.get("clock_offset_s")
                print(f"{d['device_id']:<24} {d['community']}/{d['gate']} {d['status']} "
                      f"last seen {shown(d.get('last_seen_utc'), 'never')} "
                      f"acked {shown(d.get('acked_seq'), 0)}/{shown(d.get('max_seq'), 0)} "
                      f"clock offset {'unknown' if offset is None else f'{offset:+.3f} s'}")
        elif args.action == "user":
            return _user(admin, args)
        elif args.action == "audit":
            records = admin.audit(limit=max(1, min(args.limit, 1000)), community=args.community)["records"]
            if not records:
                print("the audit log is empty")
            for r in records:
                detail = ", ".join(f"{k}={v}" for k, v in sorted(r["detail"].items()) if k != "policy")
                print(f"#{r['id']} {r['at_utc']} {r['actor']} ({r['role']}) {r['action']} "
                      f"{shown(r['community'])} {detail}")
        elif args.action == "revoke":
            admin.revoke(args.device_id)
            print(f"revoked {args.device_id}")
    except httpx.HTTPError as exc:
        print(f"gate township: cannot reach {args.server}: {exc}", file=sys.stderr)
        return 1
    return 0


def _report(admin, args) -> None:
    fmt = "json" if args.json else args.format
    if fmt in ("csv", "xlsx"):
        if fmt == "xlsx" and not args.out:
            raise ValueError("--format xlsx needs --out FILE")
        body = admin.report_file(fmt, args.day, args.tz, args.community, args.lang)
        if args.out:
            _write_private(Path(args.out), body)
            print(f"daily report written to {args.out} ({len(body)} bytes)", file=sys.stderr)
        else:
            sys.stdout.write(body.decode("utf-8-sig"))
        return
    rep = admin.daily_report(args.day, args.tz, args.community)
    if fmt == "json":
        text = json.dumps(rep, ensure_ascii=False, indent=1)
        if args.out:
            _write_private(Path(args.out), text.encode())
        else:
            print(text)
        return
    print(f"daily report {rep['day']} ({rep['tz']}), due {rep['due_utc']}")
    for c in rep["communities"]:
        f = c["figures"]
        actions = ", ".join(f"{k} {v}" for k, v in sorted(c["by_action"].items())) or "no entries"
        signed = f", signed by {c['submission']['leader']}" if c.get("submission") else ""
        signed += ", zero report" if c["zero_report"] else ""
        print(f"  {c['community']}: {c['entries']} entries ({actions}) [{c['status']}{signed}]; "
              f"fevers {f['fevers']}, yellow {f['yellow_codes']}, red {f['red_codes']}, "
              f"held {f['risk_area_held'] + f['abroad_held']}, breaches {f['quarantine_breaches']}, "
              f"overrides {f['overrides']}; immediate {c['immediate']}; gates {len(c['gates'])}"
              + "".join(f"; gate {g['gate']} not synced past the day" for g in c["gates"] if not g["synced"]))


def _write_private(path: Path, body: bytes) -> None:
    """The report is the township's: the file is the owner's only (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(body)


def _user(admin, args) -> int:
    if args.user_action == "list":
        users = admin.users()
        if not users:
            print("no accounts yet (gate township user add NAME --role admin)")
        for u in users:
            where = f" of {u['community']}" if u["community"] else ""
            state = f"disabled since {u['disabled_utc']}" if u["disabled_utc"] else "active"
            print(f"{u['username']:<20} {u['role']}{where}, {state}; password set {u['password_changed_utc']}")
    elif args.user_action == "add":
        u = admin.add_user(args.username, read_password(args.password_stdin), args.role, args.community)
        where = f" of {u['community']}" if u["community"] else ""
        print(f"added {u['username']} ({u['role']}{where})")
    elif args.user_action == "disable":
        admin.disable_user(args.username)
        print(f"disabled {args.username}; their sessions have ended")
    elif args.user_action == "enable":
        admin.enable_user(args.username)
        print(f"enabled {args.username}")
    elif args.user_action == "passwd":
        admin.set_password(args.username, read_password(args.password_stdin))
        print(f"new password set for {args.username}; their sessions have ended")
    return 0


def read_password(from_stdin: bool) -> str:
    """From stdin's first line (scripts), or asked twice on the terminal; never an argument
    (other users see a command line in `ps`), never printed."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        import getpass
        if not sys.stdin.isatty():
            raise ValueError("no terminal to ask the password on; give it on stdin with --password-stdin")
        try:
            password = getpass.getpass("password: ")
            if getpass.getpass("again: ") != password:
                raise ValueError("the two passwords differ")
        except EOFError:
            raise ValueError("no password given") from None
    if not password:
        raise ValueError("no password given")
    return password


def shown(value, missing: object = "-") -> object:
    """A value for a line of text: never Python's None."""
    return missing if value is None else value
