"""evaluate_case on cases built by hand; expected values reasoned in comments.

Shipped rules (宿迁): accept 3 calendar hours from assignment; resolve 5 working
days (end of day 24:00), extension to at most 15 working days in total; ladder
reminder -1 working day, notice 0 hours, supervision +2 working days,
accountability +5 working days. 2025 National Day: Oct 1-8 off, Sun 9-28 and
Sat 10-11 worked.
"""

from __future__ import annotations

from datetime import timedelta

from generator.evaluate import evaluate_case
from tests.clock_util import ROOT, end_of, example_rules, make_case, shipped_rules, t

R = shipped_rules()
RECEIVED = "2025-09-30 15:00"


def stage(state, name, dept=None, rnd=0):
    [s] = [s for s in state.stages if s.stage == name and (dept is None or s.department == dept) and s.round == rnd]
    return s


def base_events():
    return [("assigned", "2025-09-30 15:00", "centre", {"to": "housing"})]


def test_a_case_answered_one_day_late():
    case = make_case(RECEIVED, base_events() + [
        ("accepted", "2025-09-30 17:00", "housing", {}),
        ("reply", "2025-10-10 09:00", "housing", {"final": False, "body": "正在处理"}),
        ("reply", "2025-10-15 10:00", "housing", {"final": True, "resolution": "resolved", "body": "已修"}),
        ("closed", "2025-10-16 09:00", "centre", {}),
        ("feedback", "2025-10-16 20:00", "petitioner", {"rating": "satisfied"}),
    ])
    s = evaluate_case(case, R, t("2025-11-01 00:00"))
    # accept due 15:00 + 3 h = 18:00; accepted 17:00 -> on time.
    acc = stage(s, "accept")
    assert (acc.deadline.due_at, acc.status, acc.done_at) == (t("2025-09-30 18:00"), "on_time", t("2025-09-30 17:00"))
    # resolve due end of 10-14 (the fact); the interim reply does not complete it;
    # the final reply at 10-15 10:00 is 10 hours late (from 10-15 00:00).
    res = stage(s, "resolve")
    assert res.deadline.due_at == end_of("2025-10-14")
    assert (res.status, res.late_by, res.done_at) == ("late", timedelta(hours=10), t("2025-10-15 10:00"))
    # Done 10 hours after the due time: notice (0 h) reached; supervision (+2 working
    # days, end of 10-16) not.
    assert res.escalation == "notice"
    assert res.role == "resolve" and acc.role == "accept"
    assert (s.status, s.holder, s.closed_at, s.rating, s.resolution) == (
        "closed", "housing", t("2025-10-16 09:00"), "satisfied", "resolved")
    assert s.final_reply_at == t("2025-10-15 10:00")
    # closed: nothing is overdue any more
    assert (s.overdue_level, s.escalation) == ("not_due", None)


def test_overdue_levels_and_ladder_as_time_passes():
    case = make_case(RECEIVED, base_events() + [("accepted", "2025-09-30 16:00", "housing", {})])
    # resolve due end of 10-14 (10-15 00:00).
    # 10-10 10:00: now + 1 working day = end of Sat 10-11 (make-up) < due -> not due.
    s = evaluate_case(case, R, t("2025-10-10 10:00"))
    assert (stage(s, "resolve").status, s.overdue_level, s.escalation) == ("pending", "not_due", None)
    # 10-13 10:00: now + 1 working day = end of 10-14 >= due -> due soon; reminder is at
    # the end of the working day before 10-14, i.e. end of 10-13: not yet.
    s = evaluate_case(case, R, t("2025-10-13 10:00"))
    assert (s.overdue_level, s.escalation) == ("due_soon", None)
    # 10-14 09:00: past the end of 10-13 -> reminder.
    s = evaluate_case(case, R, t("2025-10-14 09:00"))
    assert (s.overdue_level, s.escalation) == ("due_soon", "reminder")
    # 10-15 00:00 is the due time itself: not yet overdue (due means "by").
    assert evaluate_case(case, R, end_of("2025-10-14")).overdue_level == "due_soon"
    # 10-15 08:00: overdue by 8 h; notice.
    s = evaluate_case(case, R, t("2025-10-15 08:00"))
    res = stage(s, "resolve")
    assert (res.status, res.late_by, s.overdue_level, s.escalation) == ("overdue", timedelta(hours=8), "overdue", "notice")
    # supervision at +2 working days: end of Thu 10-16; accountability +5: 10-15, 16, 17,
    # 20, 21 -> end of Tue 10-21.
    assert evaluate_case(case, R, t("2025-10-16 23:59")).escalation == "notice"
    assert evaluate_case(case, R, t("2025-10-17 00:01")).escalation == "supervision"
    assert evaluate_case(case, R, t("2025-10-21 23:00")).escalation == "supervision"
    assert evaluate_case(case, R, t("2025-10-22 00:00")).escalation == "accountability"


def test_transfer_gives_the_new_department_its_own_clocks():
    case = make_case("2025-10-09 09:00", [
        ("assigned", "2025-10-09 09:00", "centre", {"to": "housing"}),
        ("transferred", "2025-10-10 10:00", "centre", {"from": "housing", "to": "transport", "reason": "职责"}),
        ("accepted", "2025-10-10 11:00", "transport", {}),
        ("reply", "2025-10-16 15:00", "transport", {"final": True, "resolution": "resolved", "body": "好"}),
    ])
    s = evaluate_case(case, R, t("2025-10-20 09:00"))
    assert s.holder == "transport" and s.transfers == 1
    assert [(h.department, h.transferred_out) for h in s.holdings] == [("housing", True), ("transport", False)]
    # housing never accepted: due 12:00 on 10-09, transfer at 10-10 10:00 -> late by 22 h.
    h_acc = stage(s, "accept", "housing")
    assert (h_acc.status, h_acc.late_by) == ("late", timedelta(hours=22))
    # housing's resolve (due end of 10-16) ended by the transfer before its due time: void.
    assert stage(s, "resolve", "housing").status == "void"
    # transport: accept due 10-10 13:00, accepted 11:00 on time. resolve from day 0
    # Fri 10-10: 1 Sat 10-11 (make-up), 2 Mon 10-13, 3 10-14, 4 10-15, 5 10-16.
    t_acc, t_res = stage(s, "accept", "transport"), stage(s, "resolve", "transport")
    assert (t_acc.deadline.due_at, t_acc.status) == (t("2025-10-10 13:00"), "on_time")
    assert (t_res.deadline.due_at, t_res.status) == (end_of("2025-10-16"), "on_time")


def test_a_reply_by_another_department_does_not_count():
    case = make_case(RECEIVED, base_events() + [
        ("reply", "2025-10-09 10:00", "transport", {"final": True, "resolution": "explained", "body": "x"}),
    ])
    s = evaluate_case(case, R, t("2025-10-10 10:00"))
    assert stage(s, "resolve").status == "pending"


def test_clock_stopped_while_waiting_for_the_citizen():
    events = [
        ("assigned", "2025-10-09 09:00", "centre", {"to": "housing"}),
        ("accepted", "2025-10-09 09:30", "housing", {}),
        ("clarification_requested", "2025-10-10 11:00", "housing", {"body": "请提供地址"}),
    ]
    # While waiting: the clock is stopped and has no due time.
    s = evaluate_case(make_case("2025-10-09 09:00", events), R, t("2025-10-30 10:00"))
    res = stage(s, "resolve")
    assert (res.status, res.deadline.due_at, s.clock_stopped_now, s.overdue_level) == ("stopped", None, True, "not_due")
    # Answer on Mon 10-13 16:00: Oct 10-13 not counted; 1 10-14 ... 5 Mon 10-20 (see golden test).
    events.append(("clarification_received", "2025-10-13 16:00", "petitioner", {"body": "湖滨路12号"}))
    s = evaluate_case(make_case("2025-10-09 09:00", events), R, t("2025-10-15 10:00"))
    assert stage(s, "resolve").deadline.due_at == end_of("2025-10-20")
    assert s.clock_stopped_now is False


def _extension_case(decision, new_due):
    return make_case(RECEIVED, base_events() + [
        ("accepted", "2025-09-30 16:00", "housing", {}),
        ("extension_requested", "2025-10-13 10:00", "housing", {"reason": "需现场勘查", "new_due": new_due},
         "20251013T020000Z-extension_requested.yaml"),
        ("extension_decided", "2025-10-14 10:00", "centre",
         {"request": "20251013T020000Z-extension_requested.yaml", "decision": decision, "new_due": new_due, "reason": "同意"}),
    ])


def test_approved_extension_is_capped_at_15_working_days():
    # Asked to 2025-11-05; the cap is 15 working days from day 0 Tue 9-30: end of 10-28
    # (1 10-09, 2 10-10, 3 10-11, 4 10-13, 5 10-14, 6 10-15, 7 10-16, 8 10-17, 9 10-20,
    # 10 10-21, 11 10-22, 12 10-23, 13 10-24, 14 10-27, 15 10-28).
    s = evaluate_case(_extension_case("approved", "2025-11-05"), R, t("2025-10-29 10:00"))
    res = stage(s, "resolve")
    assert res.deadline.due_at == end_of("2025-10-28") and res.extended
    assert [x.kind for x in res.deadline.steps][-2:] == ["extension", "cap"]
    assert (res.status, res.late_by, res.escalation) == ("overdue", timedelta(hours=10), "notice")
    assert (s.extensions_requested, s.extensions_granted) == (1, 1)


def test_approved_extension_within_the_cap():
    s = evaluate_case(_extension_case("approved", "2025-10-20"), R, t("2025-10-16 10:00"))
    assert stage(s, "resolve").deadline.due_at == end_of("2025-10-20")


def test_refused_extension_leaves_the_due_time():
    # due stays end of 10-14. At 10-20 12:00: supervision was due at end of 10-16,
    # accountability at end of 10-21 -> supervision.
    s = evaluate_case(_extension_case("refused", "2025-10-20"), R, t("2025-10-20 12:00"))
    res = stage(s, "resolve")
    assert res.deadline.due_at == end_of("2025-10-14") and not res.extended
    assert (res.status, s.escalation) == ("overdue", "supervision")
    assert (s.extensions_requested, s.extensions_granted) == (1, 0)


def _departments():
    from generator.validate import Report, check_departments
    from generator.yamlio import parse

    return check_departments(Report(), "departments.yaml", parse((ROOT / "departments.yaml").read_bytes()))


DEPTS = _departments()


def made(received, events, **kw):
    """Return the case as wenzheng makes it from its records: validate.check_case
    checks the timeline and applies the corrections."""
    from generator.validate import Report, check_case

    raw = make_case(received, events, **kw)
    report = Report()
    case = check_case(report, raw.petition, raw.events, DEPTS, raw.folder)
    assert case is not None, [(p.file, p.message) for p in report.pending]
    return case


def test_corrections_retract_and_set():
    reply = ("reply", "2025-10-09 10:00", "housing", {"final": False, "body": "x"}, "20251009T020000Z-reply.yaml")
    # `set` turns the interim reply into a final one: resolve done 10-09 10:00.
    fix = ("correction", "2025-10-09 11:00", "housing",
           {"corrects": "20251009T020000Z-reply.yaml", "reason": "应为最终答复",
            "set": {"final": True, "resolution": "resolved"}},
           "20251009T030000Z-correction.yaml")
    case = made(RECEIVED, base_events() + [reply, fix])
    s = evaluate_case(case, R, t("2025-10-10 10:00"))
    assert stage(s, "resolve").done_at == t("2025-10-09 10:00")
    assert s.resolution == "resolved" and s.status == "open"
    # The case holds the corrected reply, and the correction as a record of the change.
    assert [(e.kind, e.get("final")) for e in case.events[-2:]] == [("reply", True), ("correction", None)]
    # A later correction retracting the first correction restores the interim reply.
    undo = ("correction", "2025-10-09 12:00", "centre",
            {"corrects": "20251009T030000Z-correction.yaml", "reason": "误操作", "retract": True})
    case = made(RECEIVED, base_events() + [reply, fix, undo])
    assert stage(evaluate_case(case, R, t("2025-10-10 10:00")), "resolve").status == "pending"
    assert "20251009T030000Z-correction.yaml" not in {e.name for e in case.events}
    assert [e.get("final") for e in case.events if e.kind == "reply"] == [False]
    # Retracting the reply itself: it is gone from the case.
    gone = ("correction", "2025-10-09 12:00", "housing",
            {"corrects": "20251009T020000Z-reply.yaml", "reason": "发错", "retract": True})
    final = ("reply", "2025-10-09 10:00", "housing", {"final": True, "resolution": "resolved", "body": "x"},
             "20251009T020000Z-reply.yaml")
    case = made(RECEIVED, base_events() + [final, gone])
    s = evaluate_case(case, R, t("2025-10-10 10:00"))
    assert stage(s, "resolve").status == "pending" and s.final_reply_at is None
    assert [e.kind for e in case.events] == ["assigned", "correction"]


def test_a_corrected_time_moves_the_event_and_its_clock():
    # The final reply was recorded at 10-15 10:00 (10 hours late, resolve due end of
    # 10-14); the centre (only the centre may move a record in time) corrects it
    # to 10-14 17:00: on time, and it now comes before the interim reply of
    # 10-14 18:00 in the case's timeline.
    final = ("reply", "2025-10-15 10:00", "housing", {"final": True, "resolution": "resolved", "body": "已修"},
             "20251015T020000Z-reply.yaml")
    interim = ("reply", "2025-10-14 18:00", "housing", {"final": False, "body": "处理中"})
    fix = ("correction", "2025-10-15 11:00", "centre",
           {"corrects": "20251015T020000Z-reply.yaml", "reason": "时间录入有误",
            "set": {"at": "2025-10-14T17:00:00+08:00"}})
    s = evaluate_case(made(RECEIVED, base_events() + [interim, final]), R, t("2025-10-20 10:00"))
    assert stage(s, "resolve").status == "late"
    case = made(RECEIVED, base_events() + [interim, final, fix])
    assert [e.get("final") for e in case.events if e.kind == "reply"] == [True, False]
    res = stage(evaluate_case(case, R, t("2025-10-20 10:00")), "resolve")
    assert (res.status, res.done_at) == ("on_time", t("2025-10-14 17:00"))


def test_a_corrected_petition_is_the_case_s_petition():
    fix = ("correction", "2025-10-01 09:00", "centre",
           {"corrects": "petition.yaml", "reason": "分类有误，标题含门牌号",
            "set": {"category": "help", "title": "（已遮盖门牌号）路灯坏了", "location": {"district": "西岭区"}}})
    case = made(RECEIVED, base_events() + [fix])
    p = case.petition
    assert (p.category, p.title, p.district, p.body) == ("help", "（已遮盖门牌号）路灯坏了", "西岭区", "路灯坏了三周。")
    s = evaluate_case(case, R, t("2025-10-10 10:00"))
    assert (s.category, s.district) == ("help", "西岭区")


def test_reopened_restarts_the_resolve_clock():
    case = make_case(RECEIVED, base_events() + [
        ("accepted", "2025-09-30 16:00", "housing", {}),
        ("reply", "2025-10-09 10:00", "housing", {"final": True, "resolution": "resolved", "body": "x"}),
        ("closed", "2025-10-09 12:00", "centre", {}),
        ("reopened", "2025-10-10 09:00", "centre", {"reason": "群众不满意"}),
    ])
    s = evaluate_case(case, R, t("2025-10-13 10:00"))
    assert (s.status, s.reopened_count, s.closed_at) == ("open", 1, None)
    assert stage(s, "resolve", rnd=0).status == "on_time"
    # Round 1 starts at the reopen, Fri 10-10: 1 Sat 10-11, 2 10-13, 3 10-14, 4 10-15, 5 10-16.
    r1 = stage(s, "resolve", rnd=1)
    assert (r1.deadline.due_at, r1.status) == (end_of("2025-10-16"), "pending")
    # accept does not restart
    assert len([x for x in s.stages if x.stage == "accept"]) == 1


def test_rejected_and_withdrawn_are_never_overdue():
    for kind, fields in (("rejected", {"reason_code": "spam"}), ("withdrawn", {"reason": "已自行解决"})):
        by = "centre" if kind == "rejected" else "petitioner"
        case = make_case(RECEIVED, base_events() + [(kind, "2025-10-20 10:00", by, fields)])
        s = evaluate_case(case, R, t("2025-12-01 10:00"))
        assert (s.status, s.overdue_level, s.escalation) == (kind, "not_due", None)
        # resolve was due at the end of 10-14 and the case ended at 10-20 10:00: late,
        # late by 5 days 10 hours, but no longer running.
        res = stage(s, "resolve")
        assert (res.status, res.late_by) == ("late", timedelta(days=5, hours=10))


def test_events_after_now_are_not_seen():
    case = make_case(RECEIVED, base_events() + [("accepted", "2025-09-30 17:00", "housing", {})])
    s = evaluate_case(case, R, t("2025-09-30 16:00"))
    assert stage(s, "accept").status == "pending"


def test_unassigned_case_runs_only_receipt_clocks():
    # 银川: first_response starts on receipt. Received Thu 2025-10-09 12:30 (lunch, rest
    # time) -> 8 hours -> 20:30. resolve starts at assignment: none yet.
    case = make_case("2025-10-09 12:30", [])
    s = evaluate_case(case, example_rules("yinchuan.yaml"), t("2025-10-09 20:00"))
    assert s.holder is None and [x.stage for x in s.stages] == ["first_response"]
    fr = s.stages[0]
    assert (fr.deadline.due_at, fr.status, fr.overdue_level) == (t("2025-10-09 20:30"), "pending", "due_soon")
    # due_soon is 1 hour in this regime: at 19:00, 20:00 < 20:30 -> not due.
    assert evaluate_case(case, example_rules("yinchuan.yaml"), t("2025-10-09 19:00")).overdue_level == "not_due"


def test_provisional_case_in_2027_and_legacy_due():
    case = make_case("2026-12-30 10:00", [("assigned", "2026-12-30 10:00", "centre", {"to": "housing"})],
                     pid="2026-000009", legacy_due="2027-01-06 18:00")
    s = evaluate_case(case, R, t("2026-12-31 10:00"))
    # resolve: 1 Thu 12-31, 2 Fri 1-01 (assumed working), 3 Mon 1-04, 4 Tue 1-05, 5 Wed 1-06.
    assert stage(s, "resolve").deadline.due_at == end_of("2027-01-06")
    assert s.provisional is True and stage(s, "accept").deadline.provisional is False
    assert s.legacy_due_at == t("2027-01-06 18:00")


def test_ruian_feedback_done_by_closure():
    # 瑞安: reply 1 working day (any reply), feedback 5 working days (final reply or closed).
    case = make_case(RECEIVED, base_events() + [
        ("reply", "2025-10-09 09:00", "housing", {"final": False, "body": "收到"}),
        ("closed", "2025-10-13 09:00", "centre", {}),
    ])
    s = evaluate_case(case, example_rules("ruian.yaml"), t("2025-10-20 10:00"))
    # reply due end of 10-09 (Oct 1-8 off): on time. feedback due end of 10-14; closed 10-13: on time.
    assert [(x.stage, x.status) for x in s.stages] == [("reply", "on_time"), ("feedback", "on_time")]
    assert s.final_reply_at is None and s.status == "closed"
