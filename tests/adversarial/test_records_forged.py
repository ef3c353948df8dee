"""Records a department or the bot forges to get past the checks: a late
answer moved back in time by a correction, a correction written by the
system, a record named with a trailing newline, a petition id that looks like
another. Each is a pull request against a real repository, judged by the
pull-request check; what would be merged anyway is judged by the full check.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.cli import main
from tests.conftest import ROOT, commit_files, git
from tests.records_util import FOLDER, event_file, petition
from tests.test_governance import NOW, merged_case

LATE = "petitions/2026/11/2026-000003"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository on `main` holding a merged case, and a branch `pr` for the change."""
    path = tmp_path / "archive"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    files = {n: (ROOT / n).read_text(encoding="utf-8") for n in ("departments.yaml", "rules.yaml")}
    files.update(merged_case())
    files[f"{LATE}/petition.yaml"] = petition("2026-000003", "2026-11-02T09:00:00+08:00")
    name, text = event_file("assigned", "2026-11-02T09:30:00+08:00", "centre", LATE, to="housing")
    files[name] = text
    commit_files(path, files, "initial")
    git(path, "checkout", "-q", "-b", "pr")
    return path


def pr_check(repo: Path, author: str, now: str = NOW) -> list[tuple[str, str]]:
    result = CliRunner().invoke(main, ["check", "--repo", str(repo), "--base", "main", "--author", author,
                                       "--now", now, "--format", "json"])
    problems = json.loads(result.output)["problems"]
    assert (result.exit_code != 0) == any(p["severity"] == "error" for p in problems), result.output
    return [(p["code"], p["message"]) for p in problems if p["severity"] == "error"]


def merge(repo: Path) -> None:
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--ff-only", "pr")
    git(repo, "checkout", "-q", "pr")


def test_a_department_cannot_move_its_late_answer_back_in_time(repo):
    # housing signs for the case 18 days late; that is merged, late, as it is
    accepted, text = event_file("accepted", "2026-11-20T09:30:00+08:00", "housing", LATE)
    commit_files(repo, {accepted: text})
    assert pr_check(repo, "mh-housing") == []
    merge(repo)
    # then it "corrects" the time of its own record to the day of assignment
    at = "2026-11-20T10:30:00+08:00"
    name, _ = event_file("correction", at, "housing", LATE)
    commit_files(repo, {name: (f"kind: correction\nat: {at}\nby: housing\n"
                               f"corrects: {accepted.rsplit('/', 1)[1]}\nreason: 更正时间\n"
                               "set: {at: 2026-11-02T10:00:00+08:00}\n")})
    problems = pr_check(repo, "mh-housing", "2026-11-20T11:00:00+08:00")
    assert [code for code, _ in problems] == ["correction-time"]
    assert "only the centre" in problems[0][1]
    # the full check of the branch says the same
    full = CliRunner().invoke(main, ["check", "--repo", str(repo), "--rev", "pr", "--no-cache"])
    assert full.exit_code != 0 and "correction-time" in full.output, full.output


def test_the_centre_cannot_move_a_record_into_the_future(repo):
    accepted, text = event_file("accepted", "2026-11-03T09:30:00+08:00", "housing", LATE)
    commit_files(repo, {accepted: text})
    merge(repo)
    at = "2026-11-20T09:50:00+08:00"
    name, _ = event_file("correction", at, "centre", LATE)
    commit_files(repo, {name: (f"kind: correction\nat: {at}\nby: centre\n"
                               f"corrects: {accepted.rsplit('/', 1)[1]}\nreason: 更正时间\n"
                               "set: {at: 2027-01-01T09:00:00+08:00}\n")})
    assert [code for code, _ in pr_check(repo, "mh-centre-duty")] == ["correction-time"]


def test_the_bot_cannot_retract_or_change_its_own_records(repo):
    # the scheduled run records the late case's escalations on main
    git(repo, "checkout", "-q", "main")
    run = CliRunner().invoke(main, ["escalate", "--repo", str(repo), "--now", "2026-11-20T09:00:00+08:00",
                                    "--commit"])
    assert run.exit_code == 0 and "0 escalation step(s)" not in run.output, run.output
    git(repo, "checkout", "-q", "-B", "pr", "main")
    mine = sorted(n.rsplit("/", 1)[1] for n in git(repo, "ls-tree", "-r", "--name-only", "main", LATE).split()
                  if "-escalated" in n)
    at = "2026-11-20T09:50:00+08:00"
    correction, _ = event_file("correction", at, "system", LATE)
    for change in ("retract: true\n", "set: {note: 已处理}\n"):
        commit_files(repo, {correction: (f"kind: correction\nat: {at}\nby: system\ncorrects: {mine[-1]}\n"
                                         f"reason: x\n{change}")})
        codes = [code for code, _ in pr_check(repo, "wenzheng-bot")]
        assert "correction-author" in codes, codes
        git(repo, "reset", "-q", "--hard", "main")


def test_a_record_named_with_a_trailing_newline_is_refused(repo):
    name, text = event_file("reply", "2026-11-20T09:30:00+08:00", "housing", FOLDER, final=False,
                            body="补充说明。")
    commit_files(repo, {name + "\n": text})
    assert [code for code, _ in pr_check(repo, "mh-housing")] == ["stray-file"]


@pytest.mark.parametrize("pid", ["2026-00000１", "2026-00000١", "2026-0000001"],
                         ids=["full-width", "arabic-indic", "extra-zero"])
def test_a_petition_id_that_looks_like_another_is_refused(repo, pid):
    folder = f"petitions/2026/11/{pid}"
    commit_files(repo, {f"{folder}/petition.yaml": petition(pid, "2026-11-20T09:30:00+08:00")})
    codes = [code for code, _ in pr_check(repo, "wenzheng-bridge")]
    assert codes and set(codes) <= {"stray-file", "bad-id", "bad-value", "folder-mismatch"}, codes
