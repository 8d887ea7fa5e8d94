"""The daily report as a table: CSV and XLSX from the same rows, Chinese headers by default.

One row per community (卡口 = 合计) followed by one row per gate of it; the columns are
the report's figures (reports.FIGURES, with the unit: 放行（人次）), the headcounts from the
quarantine list, the status and who signed, then one column per reason that refused
someone that day (不予放行：<the rules' words for it>, from kiosk/reasons.py) in the
rules' reason order. The CSV is UTF-8 with a byte-order mark, which Excel and WPS need
to read Chinese; the XLSX opens in both.
"""
from __future__ import annotations

import csv
import io
from typing import Any

from kiosk import reasons
from sync.server.reports import FIGURES, HEADCOUNTS, STATUS_TEXT, UNITS, CommunityDay, DailyReport

FORMATS = ("json", "csv", "xlsx")
MEDIA = {"csv": "text/csv; charset=utf-8",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
WORDS = {
    "day": {"zh": "日期", "en": "Day"},
    "community": {"zh": "社区", "en": "Community"},
    "gate": {"zh": "卡口", "en": "Gate"},
    "all_gates": {"zh": "合计", "en": "All gates"},
    "status": {"zh": "上报状态", "en": "Status"},
    "zero": {"zh": "零报告", "en": "Zero report"},
    "leader": {"zh": "带班领导", "en": "Shift leader"},
    "submitted_by": {"zh": "填报人", "en": "Submitted by"},
    "submitted_utc": {"zh": "填报时间", "en": "Submitted at"},
    "synced": {"zh": "已同步", "en": "Synced"},
    "not_synced": {"zh": "未同步", "en": "Not synced"},
    "yes": {"zh": "是", "en": "yes"},
    "refused_for": {"zh": "不予放行：", "en": "Not admitted: "},
    "sheet": {"zh": "日报", "en": "Daily report"},
    "title": {"zh": "疫情防控卡口日报 {day}（{tz}）", "en": "Gate daily report {day} ({tz})"},
}


def _w(key: str, lang: str) -> str:
    return WORDS[key][lang]


def _reason_order(report: DailyReport) -> list[str]:
    """The reasons that refused someone that day, in the order of the words table."""
    seen = {r for c in report.communities for r in c.refusals}
    known = [r for r in reasons.REASON_TEXT if r in seen]
    return known + sorted(seen - set(known))


def table(report: DailyReport, lang: str = "zh") -> tuple[list[str], list[list[Any]]]:
    """The header and the rows (numbers as numbers) both exports write."""
    why = _reason_order(report)
    header = [_w("day", lang), _w("community", lang), _w("gate", lang), _w("status", lang)]
    header += [f"{zh if lang == 'zh' else en}（{UNITS[unit][0]}）" if lang == "zh"
               else f"{en} ({UNITS[unit][1]})" for zh, en, unit in FIGURES.values()]
    header += [f"{zh}（{UNITS['people'][0]}）" if lang == "zh" else f"{en} ({UNITS['people'][1]})"
               for zh, en in HEADCOUNTS.values()]
    header += [_w("leader", lang), _w("submitted_by", lang), _w("submitted_utc", lang)]
    header += [_w("refused_for", lang) + reasons.reason_text(r, lang) for r in why]
    rows: list[list[Any]] = []
    for c in report.communities:
        rows.append(_row(report.day, c, _w("all_gates", lang), _status(c, lang), c, why, lang, c))
        for g in c.gates:
            rows.append(_row(report.day, c, g.gate, _w("synced" if g.synced else "not_synced", lang), g, why,
                             lang, None))
    return header, rows


def _status(c: CommunityDay, lang: str) -> str:
    text = STATUS_TEXT[c.status][lang]
    if c.zero_report:
        text += f"（{_w('zero', lang)}）" if lang == "zh" else f" ({_w('zero', lang)})"
    return text


def _row(day: str, c: CommunityDay, gate: str, status: str, counts: Any, why: list[str], lang: str,
         whole: CommunityDay | None) -> list[Any]:
    row: list[Any] = [day, c.community, gate, status]
    row += [counts.figures[f] for f in FIGURES]
    row += [whole.headcounts[k] if whole else None for k in HEADCOUNTS]
    s = whole.submission if whole else None
    row += [s.leader, s.submitted_by, s.submitted_utc] if s else [None, None, None]
    row += [counts.refusals.get(r, 0) for r in why]
    return row


def to_csv(report: DailyReport, lang: str = "zh") -> bytes:
    header, rows = table(report, lang)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(header)
    w.writerows([["" if v is None else v for v in r] for r in rows])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(report: DailyReport, lang: str = "zh") -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    header, rows = table(report, lang)
    wb = Workbook()
    ws = wb.active
    assert ws is not None  # a new workbook has its sheet
    ws.title = _w("sheet", lang)
    ws.append([_w("title", lang).format(day=report.day, tz=report.tz)])
    ws["A1"].font = Font(bold=True, size=13)
    ws.append(header)
    for cell in ws[2]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    for r in rows:
        ws.append(r)
        if r[2] == _w("all_gates", lang):
            for cell in ws[ws.max_row]:
                cell.font = Font(bold=True)
    ws.freeze_panes = "E3"
    for i, name in enumerate(header, start=1):
        ws.column_dimensions[get_column_letter(i)].width = max(8, min(24, 2 * len(name) + 2))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def filename(report: DailyReport, fmt: str) -> str:
    return f"daily-report-{report.day}.{fmt}"
