"""The pull-request check, on real repositories: each rule with a pull request
that must pass and the tampering attempts that must be refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.cli import main
from tests.conftest import commit_files, git
from tests.records_util import FOLDER, event_file, petition

NOW = "2026-11-20T10:00:00+08:00"
OTHER = "petitions/2026/11/2026-000002"


def merged_case() -> dict[str, str]:
    """A case held by housing: assigned, accepted, a final reply (not yet closed)."""
    files = {f"{FOLDER}/petition.yaml": petition()}
    for kind, at, by, fields in [
        ("assigned", "2026-11-16T09:30:00+08:00", "centre", {"to": "housing"}),
        ("accepted", "2026-11-16T10:00:00+08:00", "housing", {}),
        ("reply", "2026-11-18T15:00:00+08:00", "housing",
         {"final": True, "resolution": "resolved", "body": "已修复。"}),
    ]:
        path, text = event_file(kind, at, by, FOLDER, **fields)
        files[path] = text
    # a second case, held by transport, with an open extension request
    files[f"{OTHER}/petition.yaml"] = petition("2026-000002", "2026-11-17T08:00:00+08:00")
    for kind, at, by, fields in [
        ("assigned", "2026-11-17T09:00:00+08:00", "centre", {"to": "transport"}),
        ("extension_requested", "2026-11-19T09:00:00+08:00", "transport",
         {"reason": "需要协调施工单位", "new_due": "2026-12-04"}),
    ]:
        path, text = event_file(kind, at, by, OTHER, **fields)
        files[path] = text
    return files


@pytest.fixture
def archive(make_repo) -> Path:
    repo = make_repo(merged_case())
    git(repo, "checkout", "-q", "-b", "pr")
    return repo


def pr_check(repo: Path, author: str, now: str = NOW, *extra: str):
    """Run the check exactly as the workflow does; return (exit code, problems)."""
    result = CliRunner().invoke(main, ["check", "--repo", str(repo), "--base", "main",
                                       "--author", author, "--now", now, "--format", "json",
                                       *extra])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.output)["problems"]


def codes(problems) -> set[tuple[str, str]]:
    return {(p["path"].rsplit("/", 1)[-1], p["code"]) for p in problems if p["severity"] == "error"}


def test_bridge_adds_a_petition_and_a_department_may_not(archive):
    new = "petitions/2026/11/2026-000003/petition.yaml"
    commit_files(archive, {new: petition("2026-000003", "2026-11-20T09:40:00+08:00")})
    assert pr_check(archive, "wenzheng-bridge") == (0, [])
    code, problems = pr_check(archive, "mh-housing")
    assert code == 1
    assert codes(problems) == {("petition.yaml", "bridge-only")}
    assert "public form" in problems[0]["hint"]


def test_the_holding_department_closes_its_work_and_the_centre_closes_the_case(archive):
    path, text = event_file("reply", "2026-11-20T09:30:00+08:00", "housing", FOLDER,
                            final=False, body="补充说明：已加装防护罩。")
    commit_files(archive, {path: text})
    assert pr_check(archive, "mh-housing") == (0, [])
    git(archive, "reset", "-q", "--hard", "main")
    path, text = event_file("closed", "2026-11-20T09:45:00+08:00", "centre", FOLDER)
    commit_files(archive, {path: text})
    assert pr_check(archive, "mh-centre-duty") == (0, [])


def test_editing_a_merged_reply_is_refused(archive):
    reply = next(p for p in merged_case() if p.endswith("-reply.yaml"))
    text = (archive / reply).read_text(encoding="utf-8").replace("已修复。", "已于当日修复。")
    commit_files(archive, {reply: text})
    code, problems = pr_check(archive, "mh-housing")
    assert code == 1
    assert codes(problems) == {(reply.rsplit("/", 1)[1], "append-only")}
    assert "correction" in problems[0]["hint"]


def test_a_correction_is_the_way_to_fix_a_merged_reply(archive):
    reply = next(p for p in merged_case() if p.endswith("-reply.yaml")).rsplit("/", 1)[1]
    path, _ = event_file("correction", "2026-11-20T09:50:00+08:00", "housing", FOLDER)
    text = ("kind: correction\nat: 2026-11-20T09:50:00+08:00\nby: housing\n"
            f"corrects: {reply}\nreason: 日期有误\nset: {{body: 已于当日修复。}}\n")
    commit_files(archive, {path: text})
    assert pr_check(archive, "mh-housing") == (0, [])


def test_deleting_or_renaming_a_petition_is_refused(archive):
    commit_files(archive, {f"{OTHER}/petition.yaml": None})
    code, problems = pr_check(archive, "mh-centre-lead")
    assert code == 1
    found = codes(problems)
    assert ("petition.yaml", "append-only") in found
    refusal = next(p for p in problems if p["code"] == "append-only")
    assert "deleted" in refusal["message"] and "rejected" in refusal["hint"]
    git(archive, "reset", "-q", "--hard", "main")
    git(archive, "mv", FOLDER, "petitions/2026/11/2026-000009")
    commit_files(archive, {})
    code, problems = pr_check(archive, "mh-centre-lead")
    assert code == 1
    renamed = [p for p in problems if p["code"] == "append-only"]
    assert renamed and all(p["path"].startswith(FOLDER) for p in renamed)
    assert all("renamed" in p["message"] for p in renamed)


def test_backdating_or_future_dating_a_reply_is_refused(archive):
    # 2 hours of tolerance (rules.yaml): 07:59 is one minute too old at 10:00
    path, text = event_file("reply", "2026-11-20T07:59:00+08:00", "housing", FOLDER,
                            final=False, body="补充说明。")
    commit_files(archive, {path: text})
    code, problems = pr_check(archive, "mh-housing")
    assert code == 1 and codes(problems) == {(path.rsplit("/", 1)[1], "backdated")}
    # the same record checked at 09:59 is within the tolerance
    assert pr_check(archive, "mh-housing", "2026-11-20T09:59:00+08:00") == (0, [])
    # and checked before its own time it is in the future
    code, problems = pr_check(archive, "mh-housing", "2026-11-20T07:58:59+08:00")
    assert codes(problems) == {(path.rsplit("/", 1)[1], "future-time")}


def test_an_event_slipped_into_the_past_of_the_case_is_refused(archive):
    # timed before the merged final reply: refused even with a tolerant clock
    path, text = event_file("reply", "2026-11-18T14:00:00+08:00", "housing", FOLDER,
                            final=False, body="补充说明。")
    commit_files(archive, {path: text})
    code, problems = pr_check(archive, "mh-housing", "2026-11-18T14:30:00+08:00")
    assert code == 1
    assert (path.rsplit("/", 1)[1], "out-of-order") in codes(problems)


def test_replying_for_another_department_is_refused(archive):
    path, text = event_file("reply", "2026-11-20T09:30:00+08:00", "transport", OTHER,
                            final=True, resolution="resolved", body="已处理。")
    commit_files(archive, {path: text})
    assert pr_check(archive, "mh-transport") == (0, [])
    code, problems = pr_check(archive, "mh-housing")
    assert code == 1
    assert codes(problems) == {(path.rsplit("/", 1)[1], "not-your-account")}
    assert "by: housing" in problems[0]["hint"] and "transfer" in problems[0]["hint"]


def test_replying_to_a_petition_held_elsewhere_is_refused(archive):
    path, text = event_file("reply", "2026-11-20T09:30:00+08:00", "housing", OTHER,
                            final=True, resolution="resolved", body="已处理。")
    commit_files(archive, {path: text})
    code, problems = pr_check(archive, "mh-housing")
    assert code == 1
    assert codes(problems) == {(path.rsplit("/", 1)[1], "not-holder")}
    assert "transport" in problems[0]["message"]


def test_approving_ones_own_extension_is_refused(archive):
    request = next(p for p in merged_case() if p.endswith("-extension_requested.yaml"))
    fields = {"request": request.rsplit("/", 1)[1], "decision": "approved",
              "new_due": "2026-12-04"}
    path, as_centre = event_file("extension_decided", "2026-11-20T09:30:00+08:00", "centre",
                                 OTHER, **fields)
    commit_files(archive, {path: as_centre})
    assert pr_check(archive, "mh-centre-duty") == (0, [])
    code, problems = pr_check(archive, "mh-transport")
    assert code == 1 and codes(problems) == {(path.rsplit("/", 1)[1], "not-your-account")}
    assert "extension_requested" in problems[0]["hint"]
    # writing itself as the approver is refused by the record rules too
    _, as_itself = event_file("extension_decided", "2026-11-20T09:30:00+08:00", "transport",
                              OTHER, **fields)
    commit_files(archive, {path: as_itself})
    code, problems = pr_check(archive, "mh-transport")
    assert code == 1 and codes(problems) == {(path.rsplit("/", 1)[1], "wrong-actor")}


def test_forging_a_citizens_feedback_is_refused(archive):
    closed, ctext = event_file("closed", "2026-11-19T09:00:00+08:00", "centre", FOLDER)
    commit_files(archive, {closed: ctext})
    git(archive, "checkout", "-q", "main")
    git(archive, "merge", "-q", "--ff-only", "pr")
    git(archive, "checkout", "-q", "-b", "feedback")
    path, text = event_file("feedback", "2026-11-20T09:30:00+08:00", "petitioner", FOLDER,
                            rating="satisfied")
    commit_files(archive, {path: text})
    assert pr_check(archive, "wenzheng-bridge") == (0, [])
    for forger in ("mh-housing", "mh-centre-duty"):
        code, problems = pr_check(archive, forger)
        assert code == 1
        assert codes(problems) == {(path.rsplit("/", 1)[1], "not-your-account")}
        assert "bridge" in problems[0]["hint"]


def test_a_pull_request_cannot_grant_itself_rights(archive):
    depts = (archive / "departments.yaml").read_text(encoding="utf-8")
    depts = depts.replace("members: [mh-centre-duty, mh-centre-lead]",
                          "members: [mh-centre-duty, mh-centre-lead, mh-stranger]")
    path, text = event_file("closed", "2026-11-20T09:30:00+08:00", "centre", FOLDER)
    commit_files(archive, {"departments.yaml": depts, path: text})
    code, problems = pr_check(archive, "mh-stranger")
    assert code == 1
    assert codes(problems) == {("departments.yaml", "unknown-account")}
    code, problems = pr_check(archive, "mh-housing")
    assert ("departments.yaml", "centre-only") in codes(problems)
    assert ("20261120T013000Z-closed.yaml", "not-your-account") in codes(problems)
    assert pr_check(archive, "mh-centre-lead") == (0, [])


def test_the_check_reads_only_the_changed_folders(archive):
    # an old, broken folder elsewhere in the archive is not the author's business
    git(archive, "checkout", "-q", "main")
    commit_files(archive, {"petitions/2026/10/2026-000100/petition.yaml": "id: [broken\n"})
    git(archive, "checkout", "-q", "-b", "accept")
    path, text = event_file("accepted", "2026-11-20T09:30:00+08:00", "transport", OTHER)
    commit_files(archive, {path: text})
    result = CliRunner().invoke(main, ["check", "--repo", str(archive), "--base", "main",
                                       "--author", "mh-transport", "--now", NOW])
    assert result.exit_code == 0, result.output
    assert "ok: 1 petition folder(s) checked" in result.output
    full = CliRunner().invoke(main, ["check", "--repo", str(archive)])
    assert full.exit_code == 1 and "2026-000100" in full.output


def test_imports_by_the_centre_keep_their_historical_times(archive):
    folder = "petitions/2024/03/2024-000042"
    files = {f"{folder}/petition.yaml": petition(
        "2024-000042", "2024-03-05T09:00:00+08:00",
        extra="legacy: {system: 旧热线平台, id: RX-2024-42}\n")}
    path, text = event_file("assigned", "2024-03-05T10:00:00+08:00", "centre", folder,
                            to="water")
    files[path] = text
    path, text = event_file("reply", "2024-03-07T10:00:00+08:00", "water", folder,
                            final=True, resolution="explained", body="已答复。")
    files[path] = text
    commit_files(archive, files)
    assert pr_check(archive, "mh-centre-lead") == (0, [])
    code, problems = pr_check(archive, "wenzheng-bridge")
    assert code == 1 and ("petition.yaml", "backdated") in codes(problems)


def _with_maintainer(archive: Path, account: str = "mh-maintainer") -> None:
    """Make ``account`` a maintainer on main (the base of the next pull request)."""
    git(archive, "checkout", "-q", "main")
    depts = (archive / "departments.yaml").read_text(encoding="utf-8")
    commit_files(archive, {"departments.yaml": depts + f"\nmaintainers: [{account}]\n"})
    git(archive, "checkout", "-q", "-B", "pr", "main")


@pytest.mark.parametrize("path", ["generator/governance.py", ".github/workflows/check.yml",
                                  ".gitlab-ci.yml", ".gitattributes", "pyproject.toml"])
def test_only_a_maintainer_changes_the_project_itself(archive, path):
    _with_maintainer(archive)
    commit_files(archive, {path: "# changed\n"})
    for account in ("mh-housing", "mh-centre-lead", "wenzheng-bridge", "wenzheng-bot"):
        code, problems = pr_check(archive, account)
        assert code == 1
        assert codes(problems) == {(path.rsplit("/", 1)[-1], "maintainers-only")}
        assert "maintainer" in problems[0]["hint"]
    assert pr_check(archive, "mh-maintainer") == (0, [])


def test_a_maintainer_is_not_an_actor_of_the_archive(archive):
    _with_maintainer(archive)
    path, text = event_file("closed", "2026-11-20T09:30:00+08:00", "centre", FOLDER)
    commit_files(archive, {path: text, "README.md": "# changed\n"})
    code, problems = pr_check(archive, "mh-maintainer")
    assert code == 1
    assert codes(problems) == {("20261120T013000Z-closed.yaml", "unknown-account")}
    # nor does a maintainer change the centre's configuration
    git(archive, "reset", "-q", "--hard", "main")
    commit_files(archive, {"rules.yaml": (archive / "rules.yaml").read_text(encoding="utf-8") + "\n"})
    code, problems = pr_check(archive, "mh-maintainer")
    assert codes(problems) == {("rules.yaml", "centre-only")}


def test_a_pull_request_cannot_make_its_author_a_maintainer(archive):
    depts = (archive / "departments.yaml").read_text(encoding="utf-8")
    commit_files(archive, {"departments.yaml": depts + "\nmaintainers: [mh-housing]\n",
                           "generator/governance.py": "def check_pull_request(*a):\n    return []\n"})
    code, problems = pr_check(archive, "mh-housing")
    assert code == 1
    assert codes(problems) == {("departments.yaml", "centre-only"),
                               ("governance.py", "maintainers-only")}
