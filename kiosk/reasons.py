"""Words for the guard and the resident: every reason code and action, in Chinese and English.

Codes are stable (scripts and the township match on them); the words may improve.
"""
from __future__ import annotations

import os

LANGS = ("zh", "en")

ACTION_TEXT = {
    "admit": {"zh": "放行", "en": "Admit"},
    "measure": {"zh": "请测温", "en": "Measure temperature"},
    "retest": {"zh": "请复测体温", "en": "Re-test temperature"},
    "refuse": {"zh": "禁止通行", "en": "Refuse entry"},
    "isolate": {"zh": "隔离等候，立即上报", "en": "Isolate and report now"},
}

REASON_TEXT = {
    "all_checks_passed": {"zh": "健康码绿码，体温正常", "en": "Green code, normal temperature"},
    "exit_allowed": {"zh": "可以外出", "en": "May go out"},
    "no_code": {"zh": "未出示健康码：请查询本人信息获取", "en": "No health code: look the person up"},
    "invalid_code": {"zh": "健康码无效（伪造、过期或截图）", "en": "Invalid health code (forged, expired or a screenshot)"},
    "yellow_code": {"zh": "黄码：登记并上报", "en": "Yellow code: register and report"},
    "red_code": {"zh": "红码：立即上报", "en": "Red code: report at once"},
    "not_measured": {"zh": "尚未测温", "en": "Temperature not measured yet"},
    "implausible_reading": {"zh": "读数异常（非体温），请重新测量", "en": "Implausible reading (not a body temperature): measure again"},
    "fever_retest": {"zh": "体温偏高：休息片刻后复测", "en": "High temperature: rest briefly, then re-test"},
    "fever_confirmed": {"zh": "复测仍发热：到隔离点等候，通知值班领导，送发热门诊（不乘公共交通）",
                        "en": "Fever confirmed: wait at the isolation spot, tell the duty leader, "
                              "take to the fever clinic (no public transport)"},
    "symptoms": {"zh": "有发热、咳嗽等症状", "en": "Reports symptoms (fever, cough…)"},
    "risk_area_travel": {"zh": "14天内有中高风险地区旅居史", "en": "Medium/high-risk area travel in the last 14 days"},
    "case_contact": {"zh": "与确诊病例有接触", "en": "Contact with a confirmed case"},
    "home_quarantine_exit": {"zh": "居家隔离人员不得外出：报警并上报", "en": "Under home quarantine: may not leave; alarm and report"},
    "home_quarantine_breach": {"zh": "居家隔离人员在外：隔离等候，立即上报", "en": "Under home quarantine but outside: hold apart and report"},
    "health_monitoring_exit": {"zh": "健康监测人员外出：已登记", "en": "Under health monitoring: exit registered"},
    "visitor_registered": {"zh": "访客：已登记", "en": "Visitor: registered"},
    "visitor_approved": {"zh": "访客：社区已批准，已登记", "en": "Visitor: approved by the community, registered"},
    "visitor_not_approved": {"zh": "封闭管理：访客须经社区批准", "en": "Closed management: visitors need community approval"},
    "visitors_turned_away": {"zh": "严格管控：外来访客一律劝回", "en": "Strict control: all visitors are turned away"},
    "courier_registered": {"zh": "快递外卖：按规定登记进入", "en": "Courier: admitted under the courier rule"},
    "courier_dropoff_only": {"zh": "快递外卖：请放至指定投放点", "en": "Courier: drop-off point only"},
    "no_pass": {"zh": "封闭管理期间须持出入证", "en": "A resident pass is required"},
    "essential_exit_approved": {"zh": "必要外出：已批准，已登记", "en": "Essential exit: approved and counted"},
    "essential_exit_only": {"zh": "严格管控：仅限经批准的必要外出", "en": "Strict control: approved essential exits only"},
    "vehicle_registered": {"zh": "车辆已登记", "en": "Vehicle registered"},
    "vehicle_not_admitted": {"zh": "非本小区车辆不得进入（保供、急救车辆须值班人员放行）",
                             "en": "Non-resident vehicles not admitted (supply/emergency: guard override)"},
    "vehicle_exit_limit": {"zh": "车辆今日已外出：每天外出不超过一次", "en": "Vehicle already went out today: one exit a day"},
    "override": {"zh": "值班人员人工放行（已记录并上报）", "en": "Guard override (recorded and reported)"},
}

REPORT_TEXT = {
    "none": {"zh": "无需上报", "en": "No report"},
    "daily": {"zh": "纳入日报", "en": "In the daily report"},
    "immediate": {"zh": "立即上报", "en": "Report at once"},
}


def default_lang() -> str:
    lang = os.environ.get("GATE_LANG", "zh")
    return lang if lang in LANGS else "zh"


def text(table: dict, code: str, lang: str | None = None) -> str:
    words = table.get(code)
    return words[lang or default_lang()] if words else code


def reason_text(code: str, lang: str | None = None) -> str:
    return text(REASON_TEXT, code, lang)


def action_text(code: str, lang: str | None = None) -> str:
    return text(ACTION_TEXT, code, lang)

# The screen facing the queue: what the person in front of the gate reads from two metres.
QUEUE_TEXT = {
    "waiting": {"zh": "请出示健康码", "en": "Please show your health code"},
    "measuring": {"zh": "请测温", "en": "Please stand for the temperature check"},
    "retest": {"zh": "请复测", "en": "Please re-test"},
    "asking": {"zh": "请稍候，工作人员核实", "en": "Please wait: the guard is checking"},
    "admit": {"zh": "请通行", "en": "Please go in"},
    "refuse": {"zh": "暂不能进入", "en": "Entry not possible now"},
    "isolate": {"zh": "暂不能进入", "en": "Entry not possible now"},
    "abandoned": {"zh": "请出示健康码", "en": "Please show your health code"},
    "decided": {"zh": "请出示健康码", "en": "Please show your health code"},
}

NEXT_STEP_TEXT = {
    "waiting": {"zh": "将手机健康码对准摄像头", "en": "Hold your phone's code up to the camera"},
    "measuring": {"zh": "请站在测温仪前，额头对准测温仪", "en": "Stand in front of the thermometer, forehead towards it"},
    "retest": {"zh": "请到避风处休息片刻，再测一次", "en": "Rest a moment out of the wind, then measure again"},
    "asking": {"zh": "请回答工作人员的问题", "en": "Please answer the guard's questions"},
    "admit": {"zh": "请戴好口罩通行", "en": "Keep your mask on and go in"},
    "refuse": {"zh": "请听从工作人员安排", "en": "Please follow the guard's instructions"},
    "isolate": {"zh": "请到临时留观点等候，工作人员会联系您", "en": "Please wait at the holding spot; staff will help you"},
    "abandoned": {"zh": "将手机健康码对准摄像头", "en": "Hold your phone's code up to the camera"},
    "decided": {"zh": "将手机健康码对准摄像头", "en": "Hold your phone's code up to the camera"},
}
