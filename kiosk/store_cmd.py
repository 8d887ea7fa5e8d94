"""The local store: check it, purge by retention, list and acknowledge alarms, list entries.

  gate db check             integrity check and migrations (reports a corrupt file; the
                            gate itself sets it aside when it next opens the store)
  gate db purge [--days N]  delete acknowledged entries older than N days (default: config)
  gate db alarms [--ack ID] open alarms; --ack acknowledges one
  gate db stats             entries, unsynced entries, last seq
  gate db entries [--after SEQ] [--json]
                            the entries, as a table or one JSON object a line
  gate db backup [--to DIR] [--keep N]
                            an online copy (SQLite's backup API), checked, 0600; the
                            newest N stay (default: [backup] folder and keep)

`--db FILE` goes before or after the subcommand. These commands never create a store:
a missing file is an error (exit 2), and so is anything the store refuses.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from typing import Any

from kiosk import config as gate_config
from kiosk import reasons
from kiosk.store import Entry, Store, StoreError

# Words for the entries table (one place: the reasons module holds the actions' words).
DIRECTION = {"in": {"zh": "进", "en": "in"}, "out": {"zh": "出", "en": "out"}}
SUBJECT = {"resident": {"zh": "居民", "en": "resident"}, "visitor": {"zh": "访客", "en": "visitor"},
           "courier": {"zh": "快递外卖", "en": "courier"}, "vehicle": {"zh": "车辆", "en": "vehicle"}}
COLOUR = {"green": {"zh": "绿码", "en": "green"}, "yellow": {"zh": "黄码", "en": "yellow"},
          "red": {"zh": "红码", "en": "red"}}
# Short words for a code that did not verify (the verifier's own messages are sentences).
CODE_RESULT = {
    "no_code": {"zh": "未出示", "en": "no code"}, "not_a_code": {"zh": "非健康码", "en": "not a code"},
    "bad_encoding": {"zh": "码已损坏", "en": "damaged"}, "unknown_key": {"zh": "签发方未知", "en": "unknown signer"},
    "bad_signature": {"zh": "签名无效", "en": "bad signature"},
    "wrong_purpose": {"zh": "签发方无权", "en": "wrong signer"}, "revoked": {"zh": "已注销", "en": "revoked"},
    "wrong_community": {"zh": "非本小区", "en": "other community"},
    "not_yet_valid": {"zh": "未生效", "en": "not yet valid"}, "too_old": {"zh": "已超时", "en": "too old"},
    "expired": {"zh": "已过期", "en": "expired"}}
HEADERS = {"zh": ("序号", "时间（UTC）", "进出", "对象", "健康码", "体温", "处理", "上报", "姓名", "原因"),
           "en": ("seq", "time (UTC)", "dir", "subject", "code", "body °C", "action", "report", "name",
                  "reasons")}
NO_ALARMS = {"zh": "没有未确认的告警", "en": "no open alarms"}
NO_ENTRIES = {"zh": "没有记录", "en": "no entries"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="database file (default: [store] path in the config)")
    # The same option after the subcommand; SUPPRESS keeps the value given before it.
    db_after = argparse.ArgumentParser(add_help=False)
    db_after.add_argument("--db", default=argparse.SUPPRESS, help="database file (default: [store] path)")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("check", parents=[db_after],
                   help="open the store, run the integrity check and migrations")
    purge = sub.add_parser("purge", parents=[db_after],
                           help="delete acknowledged entries older than the retention period")
    purge.add_argument("--days", type=float, help="retention in days (default: config)")
    alarms = sub.add_parser("alarms", parents=[db_after], help="list open alarms")
    alarms.add_argument("--ack", type=int, metavar="ID", help="acknowledge alarm ID")
    sub.add_parser("stats", parents=[db_after], help="entry counts and the last seq per device")
    entries = sub.add_parser("entries", parents=[db_after],
                             help="the entries: a table, or one JSON object a line with --json")
    entries.add_argument("--after", type=int, default=0, metavar="SEQ", help="only entries with a higher seq")
    entries.add_argument("--json", action="store_true", help="one JSON object a line, for scripts")
    backup = sub.add_parser("backup", parents=[db_after],
                            help="copy the store while the gate runs, check the copy, keep the newest N")
    backup.add_argument("--to", metavar="DIR", help="the backup folder (default: [backup] folder)")
    backup.add_argument("--keep", type=int, metavar="N", help="copies to keep (default: [backup] keep)")


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (StoreError, gate_config.ConfigError) as exc:
        print(f"gate: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    lang = reasons.default_lang()
    cfg = gate_config.load()
    if args.action == "backup":  # opens the store itself, read-only, for the copy
        from kiosk import backup
        b = cfg["backup"]
        made = backup.make(args.db or cfg["store"]["path"], args.to or b["folder"],
                           args.keep if args.keep is not None else b["keep"])
        print(json.dumps({"backup": str(made.path), "bytes": made.bytes, "entries": made.entries,
                          "integrity": "ok", "seconds": made.seconds, "removed": made.removed},
                         ensure_ascii=False))
        return 0
    with Store.open(args.db or cfg["store"]["path"], create=False) as store:
        if args.action == "check":
            print(json.dumps({"path": str(store.path), "integrity": "ok",
                              "schema_version": store.schema_version(),
                              "alarms": len(store.alarms())}, ensure_ascii=False))
        elif args.action == "purge":
            days = args.days if args.days is not None else cfg["store"]["retention_days"]
            print(json.dumps({"purged": store.purge(days), "retention_days": days}))
        elif args.action == "alarms":
            if args.ack is not None:
                store.acknowledge_alarm(args.ack)
            open_alarms = store.alarms()
            for alarm in open_alarms:
                print(json.dumps(alarm, ensure_ascii=False))
            if not open_alarms:
                print(NO_ALARMS[lang], file=sys.stderr)
        elif args.action == "stats":
            print(json.dumps(store.stats(), ensure_ascii=False))
        elif args.action == "entries":
            rows = (entry_json(e) for e in store.iter_entries(args.after))
            shown = print_json_lines(rows) if args.json else print_table(rows, lang)
            if not shown:
                print(NO_ENTRIES[lang], file=sys.stderr)
    return 0


def entry_json(e: Entry) -> dict[str, Any]:
    """What `gate db entries --json` prints: what a script checking a run needs, and no more
    of the person than the guard's screen shows (masked name; no person reference, no details)."""
    return {"device_id": e.device_id, "seq": e.seq, "at": e.created_utc, "direction": e.direction,
            "subject_kind": e.subject_kind, "code_kind": e.code_kind, "code_colour": e.code_colour,
            "code_result": e.code_result,
            "readings": [{**r, "body_c": r.get("body_c")} for r in e.readings if isinstance(r, dict)],
            "action": e.action, "reasons": e.reasons, "report": e.report,
            "masked_name": e.masked_name, "synced": e.synced_at is not None}


def print_json_lines(rows: Iterable[dict[str, Any]]) -> int:
    n = 0
    for row in rows:
        print(json.dumps(row, ensure_ascii=False))
        n += 1
    return n


def print_table(rows: Iterable[dict[str, Any]], lang: str) -> int:
    """A compact table: one line an entry, tab-separated so it pastes into a spreadsheet."""
    def word(table: dict[str, dict[str, str]], code: str | None) -> str:
        return table[code][lang] if code in table else (code or "—")

    n = 0
    for row in rows:
        if not n:
            print("\t".join(HEADERS[lang]))
        body = [r["body_c"] for r in row["readings"] if isinstance(r.get("body_c"), (int, float))]
        if row["code_result"] in (None, "valid") and row["code_colour"]:
            code = word(COLOUR, row["code_colour"])
        else:
            code = word(CODE_RESULT, row["code_result"])
        print("\t".join([
            str(row["seq"]), (row["at"] or "")[:19].replace("T", " "), word(DIRECTION, row["direction"]),
            word(SUBJECT, row["subject_kind"]), code, f"{body[-1]:.1f}" if body else "—",
            reasons.action_text(row["action"], lang), reasons.text(reasons.REPORT_TEXT, row["report"], lang),
            row["masked_name"] or "—",
            "；".join(reasons.reason_text(r, lang) for r in row["reasons"]) if lang == "zh"
            else "; ".join(reasons.reason_text(r, lang) for r in row["reasons"])]))
        n += 1
    return n
