"""Escalation records and digests on a real repository."""

from __future__ import annotations

from click.testing import CliRunner

from generator.audit import audit_history
from generator.cli import main
from generator.yamlio import parse
from tests.conftest import git
from tests.records_util import FOLDER, event_file, petition


def assigned_only() -> dict[str, str]:
    # received Monday 2026-11-16, assigned to housing at 09:30 and never accepted
    files = {f"{FOLDER}/petition.yaml": petition()}
    path, text = event_file("assigned", "2026-11-16T09:30:00+08:00", "centre", to="housing")
    files[path] = text
    return files


def escalated(repo):
    names = git(repo, "ls-tree", "--name-only", "main", FOLDER + "/").split()
    return [parse(git(repo, "show", f"main:{n}")) for n in names if n.endswith(".yaml")
            and "-escalated" in n]


def test_crossed_steps_are_recorded_once_by_the_bot(make_repo, tmp_path):
    repo = make_repo(assigned_only())
    # rules.yaml's ladder applies to the resolution clock: 5 working days after the
    # assignment on Monday the 16th, i.e. the end of Monday the 23rd. By Wednesday
    # the 25th 10:00 its reminder (a working day before) and notice (at the due
    # time) are crossed; the supervision notice (2 working days after the due
    # time, the end of the 25th at the earliest) is not.
    now = "2026-11-25T10:00:00+08:00"
    result = CliRunner().invoke(main, ["escalate", "--repo", str(repo), "--now", now,
                                       "--commit", "--digests", str(tmp_path / "digests")])
    assert result.exit_code == 0, result.output
    records = escalated(repo)
    assert sorted((e["level"], e["stage"], e["department"]) for e in records) == [
        ("notice", "resolve", "housing"), ("reminder", "resolve", "housing")]
    assert all(e["by"] == "system" and e["at"] == now for e in records)
    assert all(e["due_at"] == "2026-11-24T00:00:00+08:00" for e in records)
    author = git(repo, "log", "-1", "--format=%an", "main").strip()
    assert author == "wenzheng-bot"
    digest = (tmp_path / "digests" / "housing.md").read_text(encoding="utf-8")
    assert "2026-000001" in digest and "抄告单" in digest
    assert "已逾期 / Overdue (2)" in digest and "即将到期 / Due soon (0)" in digest
    assert "已逾期 / Overdue (0)" in (tmp_path / "digests" / "water.md").read_text(encoding="utf-8")

    # the same moment again: nothing new
    again = CliRunner().invoke(main, ["escalate", "--repo", str(repo), "--now", now, "--commit"])
    assert again.exit_code == 0 and "0 escalation step(s)" in again.output
    assert len(escalated(repo)) == 2
    # two days later the supervision notice is due, and only it is added
    later = "2026-11-27T10:00:00+08:00"
    third = CliRunner().invoke(main, ["escalate", "--repo", str(repo), "--now", later, "--commit"])
    assert third.exit_code == 0, third.output
    assert sorted(e["level"] for e in escalated(repo)) == ["notice", "reminder", "supervision"]
    now = later

    # the bot's commit obeys the pull-request rules, as the audit proves
    git(repo, "reset", "-q", "--hard", "main")
    report = audit_history(repo, now=__import__("datetime").datetime.fromisoformat(now))
    bot_commit = git(repo, "rev-parse", "main").strip()
    assert bot_commit not in {v.commit for v in report.violations}


def test_the_shipped_demo_passes_the_check_and_escalate_adds_nothing(make_repo, root):
    """The demo archive (petitions/, judged as of the Makefile's DEMO_NOW) is
    consistent by construction: every record passes `wenzheng check`, every
    escalation is what the scheduled run wrote, and the run at DEMO_NOW finds
    nothing left to record; it has escalations at every level."""
    demo_now = next(line.split("?=")[1].strip() for line in
                    (root / "Makefile").read_text(encoding="utf-8").splitlines()
                    if line.startswith("DEMO_NOW"))
    files = {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
             for p in sorted((root / "petitions").rglob("*.yaml"))}
    assert len([p for p in files if p.endswith("/petition.yaml")]) == 300
    levels = {parse(text)["level"] for path, text in files.items() if "-escalated" in path}
    assert levels == {"reminder", "notice", "supervision", "accountability"}
    repo = make_repo(files)
    check = CliRunner().invoke(main, ["check", "--repo", str(repo), "--no-cache"])
    assert check.exit_code == 0, check.output
    assert "300 petition folder(s) checked, no problems" in check.output
    run = CliRunner().invoke(main, ["escalate", "--repo", str(repo), "--now", demo_now])
    assert run.exit_code == 0 and "0 escalation step(s)" in run.output, run.output
