"""Forged system records: an ``escalated`` event is valid only if it is exactly
what ``wenzheng escalate`` would have written at its time.

The case: received Monday 2026-11-16, assigned to housing at 09:30 and never
answered. Under the shipped rules.yaml (worked by hand, not by the code under
test) the resolve stage (5 working days from the assignment) is due at the end
of Monday 2026-11-23, i.e. 2026-11-24T00:00:00+08:00, and its ladder crosses:
reminder at the end of Friday the 20th (2026-11-21T00:00), notice at the due
time, supervision at the end of Wednesday the 25th (2026-11-26T00:00),
accountability at the end of Monday the 30th (2026-12-01T00:00). Only the
resolve stage escalates.

Every forgery is committed by the bot's own account, so the only thing wrong
with it is its content; each must be refused by the full check and by the
pull-request check, naming the file, the rule and what to do.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.cli import main
from tests.conftest import commit_files, git
from tests.records_util import FOLDER, event_file, petition

BOT = "wenzheng-bot <wenzheng-bot@localhost>"
DUE = "2026-11-24T00:00:00+08:00"


def note(level_zh: str, level_en: str, stage: str, due: str) -> str:
    day = due[:10] + " " + due[11:16]
    return f"'{level_zh}：{stage} 阶段于 {day} 到期 / {level_en}: {stage} due {day}'"


LEVELS = {"reminder": ("到期提醒", "reminder"), "notice": ("抄告单", "notice"),
          "supervision": ("督办通知书", "supervision notice"), "accountability": ("问责", "accountability")}


def escalation(at: str, level: str, stage: str = "resolve", department: str = "housing",
               due: str = DUE, seq: int = 1) -> tuple[str, str]:
    path, text = event_file("escalated", at, "system", level=level, stage=stage,
                            department=department, due_at=due,
                            note=note(*LEVELS[level], stage, due))
    if seq > 1:
        path = path.replace("-escalated.yaml", f"-escalated-{seq}.yaml")
    return path, text


@pytest.fixture
def archive(make_repo) -> Path:
    files = {f"{FOLDER}/petition.yaml": petition()}
    path, text = event_file("assigned", "2026-11-16T09:30:00+08:00", "centre", to="housing")
    files[path] = text
    repo = make_repo(files)
    git(repo, "checkout", "-q", "-b", "pr")
    return repo


def full_check(repo: Path):
    result = CliRunner().invoke(main, ["check", "--repo", str(repo), "--rev", "pr", "--no-cache",
                                       "--format", "json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.output)["problems"]


def pr_check(repo: Path, now: str):
    result = CliRunner().invoke(main, ["check", "--repo", str(repo), "--base", "main",
                                       "--author", "wenzheng-bot", "--now", now, "--no-cache",
                                       "--format", "json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.output)["problems"]


def refused(repo: Path, now: str, path: str, code: str) -> None:
    """Assert that both checks refuse ``path`` with ``code`` and say what to do."""
    for exit_code, problems in (full_check(repo), pr_check(repo, now)):
        errors = [p for p in problems if p["severity"] == "error"]
        assert exit_code == 1, problems
        mine = [p for p in errors if p["path"] == path and p["code"] == code]
        assert mine, errors
        assert "wenzheng escalate" in mine[0]["hint"]
        assert "rules.yaml" in mine[0]["message"] or "rules.yaml" in mine[0]["hint"]


def test_what_escalate_writes_passes_both_checks(archive):
    now = "2026-11-25T10:00:00+08:00"
    result = CliRunner().invoke(main, ["escalate", "--repo", str(archive), "--branch", "pr",
                                       "--now", now, "--commit"])
    assert result.exit_code == 0 and "2 escalation step(s)" in result.output, result.output
    assert full_check(archive) == (0, [])
    assert pr_check(archive, now) == (0, [])


def test_a_stage_that_does_not_escalate_is_refused(archive):
    # accept is due three hours after the assignment, and is overdue, but the
    # ladder applies to resolve alone
    now = "2026-11-25T10:00:00+08:00"
    path, text = escalation(now, "notice", stage="accept", due="2026-11-16T12:30:00+08:00")
    commit_files(archive, {path: text}, author=BOT)
    refused(archive, now, path, "escalation-stage")


def test_a_department_that_does_not_hold_the_case_is_refused(archive):
    now = "2026-11-25T10:00:00+08:00"
    files = dict([escalation(now, "reminder", department="water"),
                  escalation(now, "notice", department="water", seq=2)])
    commit_files(archive, files, author=BOT)
    for path in files:
        refused(archive, now, path, "escalation-department")


def test_a_due_time_the_evaluator_does_not_give_is_refused(archive):
    now = "2026-11-25T10:00:00+08:00"
    files = dict([escalation(now, "reminder", due="1999-01-01T00:00:00+08:00"),
                  escalation(now, "notice", due="1999-01-01T00:00:00+08:00", seq=2)])
    commit_files(archive, files, author=BOT)
    for path in files:
        refused(archive, now, path, "escalation-due")


def test_a_level_issued_before_it_is_crossed_is_refused(archive):
    # supervision is crossed at 2026-11-26T00:00; on the 25th only reminder and notice are
    now = "2026-11-25T10:00:00+08:00"
    files = dict([escalation(now, "reminder"), escalation(now, "notice", seq=2),
                  escalation(now, "supervision", seq=3)])
    commit_files(archive, files, author=BOT)
    supervision = [p for p in files if p.endswith("-3.yaml")][0]
    refused(archive, now, supervision, "escalation-early")
    exit_code, problems = full_check(archive)
    assert {p["path"] for p in problems if p["severity"] == "error"} == {supervision}


def test_a_skipped_level_is_refused(archive):
    # by the 27th reminder, notice and supervision are all crossed: the run
    # writes all three; supervision alone skips two levels
    now = "2026-11-27T10:00:00+08:00"
    path, text = escalation(now, "supervision")
    commit_files(archive, {path: text}, author=BOT)
    refused(archive, now, path, "escalation-skipped")


def test_an_escalation_recorded_twice_is_refused(archive):
    first = "2026-11-25T10:00:00+08:00"
    files = dict([escalation(first, "reminder"), escalation(first, "notice", seq=2)])
    commit_files(archive, files, author=BOT)
    git(archive, "branch", "-f", "main", "pr")
    now = "2026-11-25T11:00:00+08:00"
    path, text = escalation(now, "notice")
    commit_files(archive, {path: text}, author=BOT)
    refused(archive, now, path, "escalation-duplicate")


def test_the_audit_finds_a_forged_escalation_in_history(archive):
    # merged straight onto main by the bot account: the replay judges it as the
    # pull-request check would have, and names the commit and the file
    from datetime import datetime

    from generator.audit import audit_history

    now = "2026-11-25T10:00:00+08:00"
    git(archive, "checkout", "-q", "main")
    path, text = escalation(now, "notice", stage="accept", due="2026-11-16T12:30:00+08:00")
    forged = commit_files(archive, {path: text}, author=BOT)
    report = audit_history(archive, now=datetime.fromisoformat(now))
    found = [(v.commit, v.path, v.code, v.account) for v in report.violations]
    assert (forged, path, "escalation-stage", "wenzheng-bot") in found, found


def test_a_merged_forgery_is_repaired_by_the_centres_retraction(archive):
    # merged before anyone noticed: records are append-only, so the centre
    # retracts it; the retracted record no longer counts, and the run then
    # records the real notice (the forged one named the same level and due time)
    now = "2026-11-24T01:00:00+08:00"
    path, text = escalation("2026-11-23T09:00:00+08:00", "notice")  # a day before its crossing
    commit_files(archive, {path: text}, author=BOT)
    assert ("escalation-early" in {p["code"] for p in full_check(archive)[1]})
    name = path.rsplit("/", 1)[1]
    fix, fix_text = event_file("correction", "2026-11-23T11:00:00+08:00", "centre", corrects=name,
                               reason="'系统误发，予以撤回'", retract=True)
    commit_files(archive, {fix: fix_text})
    assert full_check(archive) == (0, [])
    result = CliRunner().invoke(main, ["escalate", "--repo", str(archive), "--branch", "pr",
                                       "--now", now, "--commit"])
    assert result.exit_code == 0 and "2 escalation step(s)" in result.output, result.output
    assert full_check(archive) == (0, [])
