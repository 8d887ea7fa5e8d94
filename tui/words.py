"""The console's own words (keys, titles, prompts), in Chinese and English.

What the gate decides and why is worded by kiosk/reasons.py and the forms' errors by
kiosk/records.py; this table holds only what belongs to the console's screens.
"""
from __future__ import annotations

import re

from kiosk import reasons, records

WORDS: dict[str, dict[str, str]] = {
    # the key bar
    "key_lookup": {"zh": "查询", "en": "Look up"},
    "key_register": {"zh": "登记", "en": "Register"},
    "key_temperature": {"zh": "手测体温", "en": "Temp"},
    "key_answers": {"zh": "问询", "en": "Ask"},
    "key_mask": {"zh": "已戴口罩", "en": "Mask"},
    "key_override": {"zh": "人工放行", "en": "Override"},
    "key_ack": {"zh": "确认上报", "en": "Ack alarm"},
    "key_start_shift": {"zh": "上岗", "en": "Start shift"},
    "key_end_shift": {"zh": "交班", "en": "End shift"},
    "key_cancel": {"zh": "取消", "en": "Cancel"},
    "key_refused": {"zh": "拒绝查验", "en": "Refuses"},
    "key_emergency": {"zh": "紧急外出", "en": "Emergency"},
    "key_today": {"zh": "今日统计", "en": "Today"},
    "key_report": {"zh": "日报预览", "en": "Report"},
    "key_quit": {"zh": "退出", "en": "Quit"},
    # the connection
    "connecting": {"zh": "正在连接卡口…", "en": "Connecting to the gate…"},
    "reconnecting": {"zh": "与卡口断开，正在重新连接（{s}秒后）", "en": "Gate unreachable: reconnecting (in {s} s)"},
    "connected": {"zh": "已连接", "en": "connected"},
    # the status line
    "on_duty": {"zh": "值守", "en": "On duty"},
    "leader": {"zh": "带班", "en": "leader"},
    "no_shift": {"zh": "无人上岗（按 s 上岗）", "en": "nobody on duty (s: start shift)"},
    "risk_low": {"zh": "低风险", "en": "low risk"},
    "risk_medium": {"zh": "中风险", "en": "medium risk"},
    "risk_high": {"zh": "高风险", "en": "high risk"},
    "camera": {"zh": "摄像头", "en": "camera"},
    "fps": {"zh": "帧/秒", "en": "fps"},
    "camera_ok": {"zh": "正常", "en": "OK"},
    "camera_opening": {"zh": "启动中", "en": "starting"},
    "camera_stalled": {"zh": "无画面", "en": "no frames"},
    "camera_lost": {"zh": "未连接，重试中", "en": "lost, retrying"},
    "camera_ended": {"zh": "已结束", "en": "ended"},
    "camera_closed": {"zh": "已关闭", "en": "closed"},
    "sync_online": {"zh": "已联网", "en": "online"},
    "sync_offline": {"zh": "未联网", "en": "offline"},
    "sync_not_enrolled": {"zh": "未注册上报", "en": "not enrolled"},
    "backlog": {"zh": "待上传{n}条", "en": "{n} to upload"},
    "clock_ok": {"zh": "时间已同步", "en": "clock synced"},
    "clock_bad": {"zh": "时间未同步", "en": "clock NOT synced"},
    "lists_age": {"zh": "名单{h}小时前", "en": "lists {h} h old"},
    "lists_none": {"zh": "无名单", "en": "no lists"},
    # the subject panel
    "waiting_for": {"zh": "已等待{s}秒", "en": "waiting {s} s"},
    "time_left": {"zh": "还剩{s}秒", "en": "{s} s left"},
    "temperature": {"zh": "体温", "en": "Temp"},
    "retest_pending": {"zh": "首次偏高，等待复测", "en": "first reading high: re-test"},
    "retested": {"zh": "复测", "en": "re-test"},
    "mask_yes": {"zh": "已戴口罩", "en": "mask on"},
    "subject_lookup": {"zh": "人工查询", "en": "looked up"},
    "subject_register": {"zh": "登记", "en": "registered"},
    "subject_code": {"zh": "扫码", "en": "code"},
    "unknown_person": {"zh": "不在名单上", "en": "not on the lists"},
    "quarantine_home_quarantine": {"zh": "居家隔离中", "en": "under home quarantine"},
    "quarantine_health_monitoring": {"zh": "居家健康监测中", "en": "under health monitoring"},
    "pass_yes": {"zh": "有出入证", "en": "has a pass"},
    "pass_no": {"zh": "无出入证", "en": "no pass"},
    "flags": {"zh": "请核实", "en": "check"},
    "last": {"zh": "上一位", "en": "Last"},
    "phase_waiting": {"zh": "等待下一位", "en": "Waiting for the next person"},
    "phase_measuring": {"zh": "测温中", "en": "Measuring"},
    "phase_retest": {"zh": "请复测", "en": "Re-test"},
    "phase_asking": {"zh": "请问询（按 w）", "en": "Ask the questions (w)"},
    "phase_decided": {"zh": "已判定", "en": "Decided"},
    # recent entries and alarms
    "recent": {"zh": "最近通行", "en": "Recent"},
    "recent_none": {"zh": "暂无记录", "en": "nothing yet"},
    "alarms": {"zh": "立即上报{n}条未确认", "en": "{n} immediate report(s) not acknowledged"},
    "alarm_hint": {"zh": "按 a 确认", "en": "a: acknowledge"},
    "acknowledged": {"zh": "已确认", "en": "Acknowledged"},
    # forms
    "submit_hint": {"zh": "回车 提交    Esc 返回", "en": "Enter submit    Esc back"},
    "sent": {"zh": "已提交", "en": "Sent"},
    "lookup_title": {"zh": "查询人员（无手机的居民）", "en": "Look a person up (no phone)"},
    "lookup_id": {"zh": "身份证号", "en": "ID number"},
    "lookup_or": {"zh": "或按姓名在住户内查找：", "en": "or by name within a household:"},
    "lookup_name": {"zh": "姓名", "en": "Name"},
    "lookup_household": {"zh": "住户编号", "en": "Household"},
    "lookup_direction": {"zh": "方向（进/出）", "en": "Direction (in/out)"},
    "lookup_found": {"zh": "找到{n}人：按数字键选择", "en": "{n} found: press a number to choose"},
    "lookup_none": {"zh": "未找到此人", "en": "Nobody found"},
    "lookup_need": {"zh": "请填写身份证号，或姓名和住户", "en": "Type an ID number, or a name and a household"},
    "household": {"zh": "住户", "en": "household"},
    "direction_bad": {"zh": "方向应为 进 或 出", "en": "direction is in or out"},
    "register_title": {"zh": "登记：1 访客  2 快递外卖  3 首返人员  4 车辆", "en":
                       "Register: 1 visitor  2 courier  3 returnee  4 vehicle"},
    "form_visitor": {"zh": "访客登记", "en": "Visitor"},
    "form_courier": {"zh": "快递外卖登记", "en": "Courier"},
    "form_returnee": {"zh": "首返人员登记", "en": "Returnee"},
    "form_vehicle": {"zh": "车辆登记", "en": "Vehicle"},
    "approved": {"zh": "社区已批准（是/否）", "en": "Approved by the community (yes/no)"},
    "transport_choices": {"zh": "可选：", "en": "choices: "},
    "temperature_title": {"zh": "手测体温（测温枪）", "en": "Manual temperature (hand-held gun)"},
    "temperature_field": {"zh": "体温 °C", "en": "Body °C"},
    "temperature_bad": {"zh": "体温应为30至45之间的数字，如 36.5", "en": "a number from 30 to 45, e.g. 36.5"},
    "answers_title": {"zh": "问询：按数字键切换，回车提交", "en": "Questions: a number toggles, Enter sends"},
    "q_symptoms": {"zh": "有发热、咳嗽等症状", "en": "Fever, cough or other symptoms"},
    "q_risk_area_travel": {"zh": "14天内去过中高风险地区", "en": "Medium/high-risk area in 14 days"},
    "q_case_contact": {"zh": "接触过确诊病例", "en": "Contact with a confirmed case"},
    "yes": {"zh": "是", "en": "yes"},
    "no": {"zh": "否", "en": "no"},
    "yes_no_bad": {"zh": "请填 是 或 否", "en": "yes or no"},
    "override_title": {"zh": "人工放行（必须填写理由，将记录并立即上报）",
                       "en": "Override (a reason is required; recorded and reported at once)"},
    "override_reason": {"zh": "理由", "en": "Reason"},
    "override_need_reason": {"zh": "请填写理由", "en": "a reason is required"},
    "override_confirm": {"zh": "确认人工放行？按 y 确认，Esc 返回", "en": "Let through? y: confirm, Esc: back"},
    "shift_title": {"zh": "上岗：工号、密码和健康自查", "en": "Start shift: guard, PIN and health check"},
    "guard_id": {"zh": "工号", "en": "Guard ID"},
    "pin": {"zh": "密码", "en": "PIN"},
    "leader_id": {"zh": "带班领导工号（可空）", "en": "Shift leader's ID (optional)"},
    "q_fever": {"zh": "本人今天发热", "en": "I have a fever today"},
    "q_cough": {"zh": "本人今天咳嗽", "en": "I have a cough today"},
    "pin_bad": {"zh": "密码为4至12位数字", "en": "a PIN is 4 to 12 digits"},
    "toggle_hint": {"zh": "Tab 切换输入项；F1/F2 切换两项健康自查", "en": "Tab moves; F1/F2 toggle the health check"},
    "end_shift_confirm": {"zh": "确认交班？按 y 确认，Esc 返回", "en": "End the shift? y: confirm, Esc: back"},
    "handover_title": {"zh": "交接班小结", "en": "Handover summary"},
    "handover_guard": {"zh": "值守人员", "en": "Guard"},
    "handover_period": {"zh": "时段", "en": "Period"},
    "handover_entries": {"zh": "共{n}人次", "en": "{n} in all"},
    "handover_immediate": {"zh": "立即上报{n}起", "en": "{n} immediate report(s)"},
    "handover_open": {"zh": "未确认的上报{n}条", "en": "{n} alarm(s) not acknowledged"},
    "handover_hint": {"zh": "按回车关闭", "en": "Enter to close"},
    "count": {"zh": "{action}{n}人次", "en": "{action}: {n}"},
    "nothing_to_ack": {"zh": "没有待确认的上报", "en": "No alarm to acknowledge"},
    "count_only": {"zh": "{n}人次", "en": "{n}"},
    "none": {"zh": "无", "en": "none"},
    "loading": {"zh": "正在读取…", "en": "Loading…"},
    "close_hint": {"zh": "回车或 Esc 关闭", "en": "Enter or Esc to close"},
    "choose_hint": {"zh": "先按数字键选择，Esc 返回", "en": "A number chooses first, Esc goes back"},
    # today's figures and the daily report preview
    "today_title": {"zh": "今日统计（本卡口）", "en": "Today at this gate"},
    "today_total": {"zh": "{day}  共{n}人次", "en": "{day}: {n} in all"},
    "today_total_short": {"zh": "共{n}人次", "en": "{n} in all"},
    "today_outcomes": {"zh": "结果", "en": "Outcomes"},
    "today_kinds": {"zh": "类别", "en": "By kind"},
    "today_fevers": {"zh": "发热{n}人次", "en": "{n} fever(s)"},
    "today_reasons": {"zh": "主要原因", "en": "Most given reasons"},
    "kind_resident": {"zh": "居民", "en": "Residents"},
    "kind_visitor": {"zh": "访客", "en": "Visitors"},
    "kind_courier": {"zh": "快递外卖", "en": "Couriers"},
    "kind_vehicle": {"zh": "车辆", "en": "Vehicles"},
    "report_title": {"zh": "今日日报预览", "en": "Today's daily report (preview)"},
    "report_title_day": {"zh": "今日日报预览（{day}，以镇防控办收到的为准）",
                         "en": "Daily report preview, {day} (the township counts what reaches it)"},
    "report_refusals": {"zh": "不予放行原因", "en": "Refusals by reason"},
    "report_hint": {"zh": "方向键滚动，回车或 Esc 关闭", "en": "Arrows scroll, Enter or Esc closes"},
    # refused and emergency exit
    "refused_confirm": {"zh": "此人拒绝配合查验？按 y 确认（不予放行并立即上报），Esc 返回",
                        "en": "The person refuses the check? y: confirm (refused, reported at once), Esc: back"},
    "emergency_title": {"zh": "紧急外出（急危重症）：放行外出，登记并立即上报",
                        "en": "Emergency exit: let out, recorded and reported at once"},
    "emergency_fever_clinic": {"zh": "送发热门诊", "en": "To the fever clinic"},
    "emergency_acute_illness": {"zh": "急危重症就医", "en": "Acute illness"},
    "emergency_pregnancy": {"zh": "孕产妇就医", "en": "Pregnancy, birth"},
    "emergency_dialysis": {"zh": "透析等定期治疗", "en": "Dialysis"},
    "emergency_other": {"zh": "其他紧急情况", "en": "Other emergency"},
    "emergency_id": {"zh": "身份证号（可空）", "en": "ID number (optional)"},
    "chosen": {"zh": "（已选）", "en": " (chosen)"},
    "emergency_id_hint": {"zh": "有身份证号请填写（记录是谁），回车提交",
                          "en": "Type the ID number if known, Enter sends"},
}

# The gate refuses a command with a stable code (docs/api.md "Errors"); the guard reads it in
# the console's language, whatever the gate's. A code not here is shown as the gate said it.
REFUSALS: dict[str, dict[str, str]] = {
    "check_under_way": {"zh": "正在查验他人：请先完成或按 x 取消",
                        "en": "A check is under way: finish it or cancel it (x)"},
    "not_measuring": {"zh": "当前没有人在测温", "en": "Nobody is being measured now"},
    "bad_temperature": {"zh": "体温应在30至45°C之间", "en": "A body temperature is 30 to 45 °C"},
    "not_checking": {"zh": "当前没有人在查验", "en": "Nobody is being checked now"},
    "reason_required": {"zh": "人工放行须填写理由", "en": "An override needs a reason"},
    "nobody_to_admit": {"zh": "当前没有可放行的人", "en": "Nobody to let through"},
    "no_lists": {"zh": "本卡口尚无名单：不能查询或登记", "en": "This gate has no lists yet"},
    "no_store": {"zh": "本卡口无记录库", "en": "This gate has no store"},
    "no_such_alarm": {"zh": "没有待确认的上报", "en": "No such open alarm"},
    "gate_busy": {"zh": "卡口繁忙，请稍后再试", "en": "The gate is busy: try again"},
    "bad_command": {"zh": "卡口不接受此操作，请核对后重试", "en": "The gate cannot take this: check and try again"},
    "unknown_command": {"zh": "卡口不认识此操作（版本不一致？）", "en": "The gate does not know this command"},
    "out_of_bounds": {"zh": "输入超出允许范围", "en": "A value is out of bounds"},
}


NEEDS_LIMIT = {"too_long", "not_a_count"}  # worded with a limit only the gate's sentence holds


def refusal(exc: Exception, lang: str) -> str:
    """The gate's refusal of a command, in the guard's language: by its code, a form's fields by
    their own codes (kiosk/records.py), a shift's by kiosk/reasons.py; else as the gate said it."""
    code, fields = getattr(exc, "code", ""), getattr(exc, "fields", {})
    if fields and not set(fields.values()) & NEEDS_LIMIT:
        sep = "；" if lang == "zh" else "; "
        return sep.join(records.FieldError(f, c).text(lang) for f, c in fields.items())
    if code in REFUSALS:
        return REFUSALS[code][lang]
    if code in reasons.SHIFT_TEXT:
        return reasons.text(reasons.SHIFT_TEXT, code, lang)
    return str(exc)


# The gate stores an alarm's message in its own language ("#12 王*明 不予放行：红码：立即上报");
# its `kind` is the reason's code, so the console says it in the guard's language, keeping
# the entry's number and masked name (a masked name always holds a *).
ALARM_PREFIX = re.compile(r"#(\d+)(?: (\S*\*\S*))?")


def alarm_text(alarm: dict, lang: str) -> str:
    kind, message = str(alarm.get("kind") or ""), str(alarm.get("message") or "")
    table = reasons.REASON_TEXT if kind in reasons.REASON_TEXT else reasons.ALARM_TEXT
    if kind not in table:
        return message  # a kind this console does not know: as the gate worded it
    m = ALARM_PREFIX.match(message)
    who = (f"#{m[1]} {m[2]} " if m[2] else f"#{m[1]} ") if m else ""
    return who + reasons.text(table, kind, lang)


def w(key: str, lang: str, **values: object) -> str:
    """A console word in `lang`, with {placeholders} filled."""
    return reasons.text(WORDS, key, lang).format(**values) if values else reasons.text(WORDS, key, lang)
