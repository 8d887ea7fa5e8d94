"""Words for the guard and the resident, in Chinese and English: the one place for them.

Every text a guard or a resident reads goes through `text()`: the rules' actions and
reasons, the verifier's verdicts, the thermometer's status, the demo's labels. The
language is the caller's `lang`, else $GATE_LANG, else Chinese. Codes are stable
(scripts and the township match on them); the words may improve. The devices layer
names conditions by code only (it imports nothing from the gate), and the gate words them here.
"""
from __future__ import annotations

import os

LANGS = ("zh", "en")

ACTION_TEXT = {
    "admit": {"zh": "放行", "en": "Admit"},
    "measure": {"zh": "请测温", "en": "Measure temperature"},
    "retest": {"zh": "请复测体温", "en": "Re-test temperature"},
    "refuse": {"zh": "不予放行", "en": "Refuse entry"},
    "isolate": {"zh": "带至临时留观点，立即上报", "en": "Take to the holding spot; report at once"},
    "hold": {"zh": "留观登记，移交社区，立即上报", "en": "Hold, register and hand over; report at once"},
    "abandoned": {"zh": "未完成查验", "en": "Check not completed"},
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
    "risk_area_travel": {"zh": "14天内有中高风险地区旅居史：带至临时留观点，登记并移交社区",
                         "en": "Medium/high-risk area in the last 14 days: hold, register, hand over to the community"},
    "arrival_from_abroad": {"zh": "境外来（返）人员：带至临时留观点，登记并移交社区",
                            "en": "Arrival from abroad: hold, register, hand over to the community"},
    "case_contact": {"zh": "与确诊病例有接触：带至临时留观点，登记并移交社区",
                     "en": "Contact with a confirmed case: hold, register, hand over to the community"},
    "check_refused": {"zh": "拒不配合查验：不予放行，立即上报", "en": "Refused the check: not admitted, reported at once"},
    "no_mask": {"zh": "未戴口罩：请戴好口罩后通行", "en": "No mask: put a mask on, then go in"},
    "no_recent_test": {"zh": "无规定时限内核酸检测结果", "en": "No nucleic-acid test within the required time"},
    "visited_home_quarantined": {"zh": "被访住户正在居家隔离：谢绝来访", "en": "The household visited is under home quarantine: no visits"},
    "visitors_not_allowed": {"zh": "按镇防控办要求，暂停外来人员来访", "en": "The township has stopped all visits for now"},
    "worker_registered": {"zh": "复工复产人员：已登记", "en": "Back-to-work person: registered"},
    "worker_approved": {"zh": "复工复产人员：已批准，已登记", "en": "Back-to-work person: approved and registered"},
    "worker_not_approved": {"zh": "严格管控：复工复产人员须经批准", "en": "Strict control: back-to-work people need approval"},
    "emergency_exit": {"zh": "紧急外出（就医等）：放行，已登记并立即上报",
                       "en": "Emergency exit (medical): let out, registered and reported at once"},
    "lists_stale": {"zh": "名单未及时更新，请联系镇防控办", "en": "The township's lists are out of date: contact the township"},
    "timeout_measuring": {"zh": "未测温即离开", "en": "Left before the temperature was taken"},
    "timeout_retest": {"zh": "未复测即离开", "en": "Left before the re-test"},
    "timeout_asking": {"zh": "未完成问询即离开", "en": "Left before the questions were answered"},
    "cancelled": {"zh": "值班人员取消", "en": "Cancelled by the guard"},
    "home_quarantine_exit": {"zh": "居家隔离人员不得外出：劝返并立即上报", "en": "Under home quarantine: may not leave; send back home and report at once"},
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


# The verifier's verdicts (kiosk/codes/verify.py), by Reason value; "valid" when there is none.
CODE_TEXT = {
    "valid": {"zh": "验证通过", "en": "Valid"},
    "not_a_code": {"zh": "不是健康码或出入证", "en": "Not a health code or pass"},
    "bad_encoding": {"zh": "码已损坏或格式错误", "en": "The code is damaged or malformed"},
    "unknown_key": {"zh": "签发机构不在信任列表中", "en": "Signed by a key that is not trusted"},
    "bad_signature": {"zh": "签名无效，疑似伪造或被篡改", "en": "Invalid signature: forged or altered"},
    "wrong_purpose": {"zh": "签发机构无权签发此类码", "en": "The signer may not sign this kind of code"},
    "revoked": {"zh": "出入证已注销", "en": "This pass has been revoked"},
    "wrong_community": {"zh": "非本小区出入证", "en": "A pass for another community"},
    "not_yet_valid": {"zh": "码尚未生效（请核对设备时间）", "en": "Not valid yet (check the clock)"},
    "too_old": {"zh": "码已超时，疑似截图，请刷新后再出示", "en": "Too old, likely a screenshot: refresh the code"},
    "expired": {"zh": "码已过期", "en": "The code has expired"},
}

# The thermometer's status (devices.thermometer.Status values).
THERMOMETER_TEXT = {
    "ok": {"zh": "测温正常", "en": "thermometer OK"},
    "port_missing": {"zh": "测温仪未连接", "en": "thermometer not connected"},
    "disconnected": {"zh": "测温仪连接断开，正在重连", "en": "thermometer disconnected, reconnecting"},
    "no_data": {"zh": "测温仪无数据", "en": "no data from thermometer"},
    "garbage": {"zh": "测温仪数据异常", "en": "garbled data from thermometer"},
    "partial_frame": {"zh": "测温仪数据不完整", "en": "incomplete frame from thermometer"},
    "checksum_error": {"zh": "测温仪校验错误", "en": "checksum error from thermometer"},
    "timeout": {"zh": "测温仪无应答", "en": "thermometer does not answer"},
    "device_exception": {"zh": "测温仪报告错误", "en": "thermometer reports an error"},
    "stuck": {"zh": "测温仪读数不变，可能故障", "en": "thermometer value stuck, possibly faulty"},
    "internal_error": {"zh": "测温程序内部错误", "en": "internal error in thermometer reader"},
}

# Labels the demo prints beside each person.
LABEL_TEXT = {
    "resident": {"zh": "居民", "en": "resident"},
    "visitor": {"zh": "访客", "en": "visitor"},
    "courier": {"zh": "快递外卖", "en": "courier"},
    "green": {"zh": "绿码", "en": "green code"},
    "yellow": {"zh": "黄码", "en": "yellow code"},
    "red": {"zh": "红码", "en": "red code"},
    "no_code_read": {"zh": "未识别到码", "en": "no code read"},
    "temperature": {"zh": "体温", "en": "temp"},
    "synced": {"zh": "已同步至镇防控办：", "en": "Synced to the township: "},
    "daily_report": {"zh": "日报 ", "en": "Daily report "},
    "alarm": {"zh": "立即上报 ", "en": "ALARM "},
    "simulated_gate": {"zh": "模拟卡口：摄像头（合成画面），GY-MCU90614 测温模块 ",
                       "en": "Simulated gate: camera (rendered frames), GY-MCU90614 thermometer on "},
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


def thermometer_text(status: str, lang: str | None = None) -> str:
    return text(THERMOMETER_TEXT, status, lang)


# The screen facing the queue: what the person in front of the gate reads from two metres.
QUEUE_TEXT = {
    "waiting": {"zh": "请出示健康码", "en": "Please show your health code"},
    "measuring": {"zh": "请测温", "en": "Please stand for the temperature check"},
    "retest": {"zh": "请复测", "en": "Please re-test"},
    "asking": {"zh": "请稍候", "en": "Please wait"},
    "admit": {"zh": "请通行", "en": "Please go in"},
    "refuse": {"zh": "暂不能进入", "en": "Entry not possible now"},
    "isolate": {"zh": "暂不能进入", "en": "Entry not possible now"},
    "hold": {"zh": "暂不能进入", "en": "Entry not possible now"},
    "abandoned": {"zh": "请出示健康码", "en": "Please show your health code"},
    "decided": {"zh": "请出示健康码", "en": "Please show your health code"},
}

NEXT_STEP_TEXT = {
    "waiting": {"zh": "将手机健康码对准摄像头", "en": "Hold your phone's code up to the camera"},
    "measuring": {"zh": "请站在测温仪前，额头对准测温仪", "en": "Stand in front of the thermometer, forehead towards it"},
    "retest": {"zh": "请到避风处休息片刻，再测一次", "en": "Rest a moment out of the wind, then measure again"},
    "asking": {"zh": "工作人员正在核实，请回答工作人员的问题", "en": "The guard is checking: please answer the guard's questions"},
    "admit": {"zh": "请戴好口罩通行", "en": "Keep your mask on and go in"},
    "refuse": {"zh": "请听从工作人员安排", "en": "Please follow the guard's instructions"},
    "isolate": {"zh": "请到临时留观点等候，工作人员会联系您", "en": "Please wait at the holding spot; staff will help you"},
    "hold": {"zh": "请到临时留观点等候，工作人员会为您登记", "en": "Please wait at the holding spot; staff will register you"},
    "abandoned": {"zh": "将手机健康码对准摄像头", "en": "Hold your phone's code up to the camera"},
    "decided": {"zh": "将手机健康码对准摄像头", "en": "Hold your phone's code up to the camera"},
}

# The reason on the queue screen: what the person reads, in words that explain and never
# accuse (the guard's console has the instruction for the guard, REASON_TEXT). One line
# for every reason the rules give (tests/test_queue_screen.py checks the two tables agree).
QUEUE_REASON_TEXT = {
    "all_checks_passed": {"zh": "健康码绿码，体温正常", "en": "Green code, normal temperature"},
    "exit_allowed": {"zh": "可以外出", "en": "You may go out"},
    "no_code": {"zh": "未识别到健康码，工作人员会协助您", "en": "No health code read: the guard will help you"},
    "invalid_code": {"zh": "健康码无法核验（已过期或为截图）", "en": "The code cannot be verified (expired or a screenshot)"},
    "yellow_code": {"zh": "健康码为黄码", "en": "Yellow health code"},
    "red_code": {"zh": "健康码为红码", "en": "Red health code"},
    "not_measured": {"zh": "尚未测温", "en": "Temperature not taken yet"},
    "implausible_reading": {"zh": "未测到体温，请正对测温仪", "en": "No temperature read: face the thermometer"},
    "fever_retest": {"zh": "体温偏高，需要再测一次", "en": "Temperature high: it is measured once more"},
    "fever_confirmed": {"zh": "复测体温仍偏高", "en": "The second measurement is still high"},
    "symptoms": {"zh": "有发热、咳嗽等症状", "en": "Symptoms such as fever or a cough"},
    "risk_area_travel": {"zh": "14天内到过中高风险地区", "en": "A medium or high-risk area in the last 14 days"},
    "arrival_from_abroad": {"zh": "境外来（返）人员", "en": "Arriving from abroad"},
    "case_contact": {"zh": "与确诊病例有接触", "en": "Contact with a confirmed case"},
    "check_refused": {"zh": "查验未完成", "en": "The check was not completed"},
    "no_mask": {"zh": "请戴好口罩", "en": "Please wear a mask"},
    "no_recent_test": {"zh": "无规定时限内核酸检测结果", "en": "No nucleic-acid test within the required time"},
    "visited_home_quarantined": {"zh": "被访住户正在居家隔离，暂不接待来访", "en": "The household you visit is under home quarantine"},
    "visitors_not_allowed": {"zh": "按镇防控办要求，暂停外来人员来访", "en": "The township has suspended visits for now"},
    "worker_registered": {"zh": "复工复产人员，已登记", "en": "Back to work: registered"},
    "worker_approved": {"zh": "复工复产人员，已批准", "en": "Back to work: approved"},
    "worker_not_approved": {"zh": "严格管控期间，复工复产须经批准", "en": "Strict control: going back to work needs approval"},
    "emergency_exit": {"zh": "紧急外出，已登记", "en": "Emergency exit: registered"},
    "lists_stale": {"zh": "名单未及时更新，工作人员会为您核实", "en": "The gate's lists are out of date: the guard will check"},
    "timeout_measuring": {"zh": "未完成测温", "en": "Temperature not taken"},
    "timeout_retest": {"zh": "未完成复测", "en": "Second measurement not taken"},
    "timeout_asking": {"zh": "未完成问询", "en": "Questions not answered"},
    "cancelled": {"zh": "工作人员已取消本次查验", "en": "The guard cancelled this check"},
    "home_quarantine_exit": {"zh": "居家隔离期间请勿外出", "en": "Under home quarantine: please stay at home"},
    "home_quarantine_breach": {"zh": "居家隔离期间，工作人员会协助您", "en": "Under home quarantine: the guard will help you"},
    "health_monitoring_exit": {"zh": "健康监测期间外出，已登记", "en": "Under health monitoring: exit registered"},
    "visitor_registered": {"zh": "访客，已登记", "en": "Visitor: registered"},
    "visitor_approved": {"zh": "访客，社区已批准", "en": "Visitor: approved by the community"},
    "visitor_not_approved": {"zh": "封闭管理期间，来访须经社区批准", "en": "Closed management: visits need the community's approval"},
    "visitors_turned_away": {"zh": "严格管控期间，谢绝外来访客", "en": "Strict control: no visitors for now"},
    "courier_registered": {"zh": "快递外卖，已登记", "en": "Courier: registered"},
    "courier_dropoff_only": {"zh": "快递外卖请放至指定投放点", "en": "Couriers: please use the drop-off point"},
    "no_pass": {"zh": "封闭管理期间请出示出入证", "en": "Closed management: please show your resident pass"},
    "essential_exit_approved": {"zh": "必要外出，已批准", "en": "Essential exit: approved"},
    "essential_exit_only": {"zh": "严格管控期间，仅限经批准的必要外出", "en": "Strict control: approved essential exits only"},
    "vehicle_registered": {"zh": "车辆已登记", "en": "Vehicle registered"},
    "vehicle_not_admitted": {"zh": "非本小区车辆暂不能进入", "en": "Vehicles from outside the community cannot enter now"},
    "vehicle_exit_limit": {"zh": "车辆今日已外出一次", "en": "This vehicle has already gone out today"},
    "override": {"zh": "工作人员已核实", "en": "Checked by the guard"},
}

# Where the next step depends on the reason more than on the action (a refusal the person
# can put right, or a place to go); otherwise NEXT_STEP_TEXT by action.
QUEUE_NEXT_BY_REASON = {
    "invalid_code": {"zh": "请刷新健康码后重新出示", "en": "Refresh your code and show it again"},
    "no_mask": {"zh": "请戴好口罩后重新查验", "en": "Put a mask on, then check again"},
    "no_code": {"zh": "请向工作人员出示身份证件", "en": "Show your ID card to the guard"},
    "implausible_reading": {"zh": "请摘下帽子，额头对准测温仪", "en": "Take off your hat; forehead towards the thermometer"},
    "yellow_code": {"zh": "请在一旁稍候，工作人员会为您登记", "en": "Please wait aside; the guard will register you"},
    "red_code": {"zh": "请在一旁稍候，工作人员会为您登记", "en": "Please wait aside; the guard will register you"},
    "home_quarantine_exit": {"zh": "请返回家中，社区工作人员会联系您", "en": "Please go back home; community staff will contact you"},
    "no_pass": {"zh": "请向工作人员出示出入证", "en": "Show your resident pass to the guard"},
    "visited_home_quarantined": {"zh": "请与被访住户电话联系", "en": "Please call the household you visit"},
    "visitor_not_approved": {"zh": "请联系被访住户向社区申请", "en": "Ask the household you visit to apply to the community"},
    "visitors_turned_away": {"zh": "请与被访住户电话联系", "en": "Please call the household you visit"},
    "visitors_not_allowed": {"zh": "请与被访住户电话联系", "en": "Please call the household you visit"},
    "courier_dropoff_only": {"zh": "请将物品放至指定投放点", "en": "Leave the delivery at the drop-off point"},
    "lists_stale": {"zh": "请稍候，工作人员会为您核实", "en": "Please wait; the guard will check"},
}

# Small words around the queue screen's lines.
QUEUE_LABEL_TEXT = {
    "temperature": {"zh": "体温", "en": "Temperature"},
    "celsius": {"zh": "℃", "en": " °C"},  # one character in Chinese text, no Latin letter
    "offline": {"zh": "正在连接卡口…", "en": "Connecting to the gate…"},
    "offline_headline": {"zh": "请稍候", "en": "Please wait"},
    "offline_next": {"zh": "请听从工作人员安排", "en": "Please follow the guard's instructions"},
    "title": {"zh": "卡口", "en": "Gate"},
}

SHIFT_TEXT = {
    "pin_shape": {"zh": "密码为4至12位数字", "en": "A PIN is 4 to 12 digits"},
    "unfit_to_work": {"zh": "有发热或咳嗽症状，不能上岗：请报告值班领导并换班",
                      "en": "Fever or a cough: may not work this shift; tell the duty leader"},
    "wrong_pin": {"zh": "工号或密码不对", "en": "Unknown guard or wrong PIN"},
    "not_a_leader": {"zh": "带班领导不在值守人员名单上", "en": "The shift leader is not a leader on the guards list"},
    "no_shift": {"zh": "当前没有在岗班次", "en": "No shift is on duty"},
}

# gate doctor: what a helper reads when the gate misbehaves (never a person's data).
DOCTOR_TEXT = {
    "title": {"zh": "门岗诊断", "en": "gate doctor"},
    "versions": {"zh": "版本", "en": "versions"},
    "config": {"zh": "配置", "en": "configuration"},
    "devices": {"zh": "设备", "en": "devices"},
    "store": {"zh": "数据库", "en": "store"},
    "sync": {"zh": "同步", "en": "sync"},
    "clock": {"zh": "时钟", "en": "clock"},
    "problems": {"zh": "发现的问题", "en": "problems found"},
    "no_problems": {"zh": "未发现问题", "en": "no problems found"},
    "yes": {"zh": "是", "en": "yes"},
    "no": {"zh": "否", "en": "no"},
    "present": {"zh": "存在", "en": "present"},
    "missing": {"zh": "不存在", "en": "missing"},
    "valid": {"zh": "有效", "en": "valid"},
    "unknown": {"zh": "未知", "en": "unknown"},
    "not_checked": {"zh": "未检查", "en": "not checked"},
    "never": {"zh": "从未", "en": "never"},
    "file": {"zh": "文件", "en": "file"},
    "device": {"zh": "门岗编号", "en": "device id"},
    "community": {"zh": "小区", "en": "community"},
    "salt": {"zh": "人员编码盐值文件", "en": "person salt file"},
    "daemon": {"zh": "门岗程序", "en": "gate daemon"},
    "running": {"zh": "运行中", "en": "running"},
    "not_running": {"zh": "未运行（本地接口无应答）", "en": "not running (the local API does not answer)"},
    "camera": {"zh": "摄像头", "en": "camera"},
    "thermometer": {"zh": "测温仪", "en": "thermometer"},
    "relay": {"zh": "闸门继电器", "en": "gate relay"},
    "simulated": {"zh": "模拟", "en": "simulated"},
    "path": {"zh": "路径", "en": "path"},
    "size": {"zh": "大小", "en": "size"},
    "integrity": {"zh": "完整性检查", "en": "integrity check"},
    "schema": {"zh": "结构版本", "en": "schema version"},
    "entries": {"zh": "记录数", "en": "entries"},
    "backlog": {"zh": "待上传", "en": "backlog (not uploaded)"},
    "oldest_backlog": {"zh": "最早待上传记录", "en": "oldest entry not uploaded"},
    "open_alarms": {"zh": "未确认告警", "en": "open alarms"},
    "free_space": {"zh": "剩余空间", "en": "free space"},
    "backups": {"zh": "备份", "en": "backups"},
    "newest": {"zh": "最新", "en": "newest"},
    "enrolled": {"zh": "已注册", "en": "enrolled"},
    "server": {"zh": "镇防控办服务器", "en": "township server"},
    "last_upload": {"zh": "最近上传", "en": "last upload"},
    "lists_fetched": {"zh": "名单更新时间", "en": "lists fetched"},
    "synchronised": {"zh": "已同步", "en": "synchronised"},
    "now_utc": {"zh": "当前时间（UTC）", "en": "now (UTC)"},
    "ntp_service": {"zh": "对时服务", "en": "time service"},
    "unsynced_entries": {"zh": "对时前的记录", "en": "entries made before time sync"},
    # problems
    "p_config": {"zh": "配置文件有误", "en": "the configuration is wrong"},
    "p_demo_ids": {"zh": "门岗编号或小区仍是演示用的，门岗程序不会启动", "en": "the demo's device id or community: the gate will not start"},
    "p_salt": {"zh": "盐值文件不可用，按身份证号查询无法使用", "en": "the salt file is unusable: look-ups by ID number will fail"},
    "p_salt_mode": {"zh": "盐值文件可被其他用户读取（应为 0600 或 0640）", "en": "the salt file is readable by others (should be 0600 or 0640)"},
    "p_daemon": {"zh": "门岗程序未运行：journalctl -u gate 查看原因", "en": "the gate is not running: see journalctl -u gate"},
    "p_camera": {"zh": "摄像头未找到", "en": "no camera found"},
    "p_thermometer": {"zh": "测温仪串口未找到", "en": "the thermometer's serial port is missing"},
    "p_relay": {"zh": "继电器的 GPIO 芯片未找到", "en": "the relay's GPIO chip is missing"},
    "p_store_missing": {"zh": "数据库尚未建立（门岗程序首次启动时建立）", "en": "no store yet (the gate makes it when it first starts)"},
    "p_store": {"zh": "数据库无法读取或已损坏", "en": "the store cannot be read or is damaged"},
    "p_backlog": {"zh": "积压的待上传记录超过一天", "en": "entries waiting for upload for more than a day"},
    "p_alarms": {"zh": "有未确认的告警", "en": "there are open alarms"},
    "p_disk": {"zh": "存储卡剩余空间不足 100 MB", "en": "less than 100 MB free on the card"},
    "p_no_backup": {"zh": "还没有备份", "en": "no backup yet"},
    "p_not_enrolled": {"zh": "尚未在镇防控办注册（gate enroll），记录只留在本机", "en": "not enrolled with the township (gate enroll): entries stay on the gate"},
    "p_enrolled_other": {"zh": "注册凭据的门岗编号与配置不一致", "en": "the enrollment's device id differs from the configuration's"},
    "p_clock": {"zh": "时钟未同步：记录会标为对时前，由服务器校正", "en": "the clock is not synchronised: entries are marked so and the server re-dates them"},
}

# Alarms that are no decision's reason (those are worded by REASON_TEXT, by the alarm's kind).
ALARM_TEXT = {
    "relay_fault": {"zh": "开闸继电器无响应：请人工开闸，并联系维护人员",
                    "en": "The gate's relay did not respond: open by hand and call maintenance"},
    "store": {"zh": "记录库写入失败：本次未放行，请人工登记并联系维护人员",
              "en": "The store could not record: not admitted; register by hand and call maintenance"},
    "store_recovered": {"zh": "记录库损坏，已另存并新建：未上传的记录可能丢失，请通知镇防控办",
                        "en": "The store was corrupt and was replaced: unsent entries may be lost; tell the township"},
}
