"""Attacks on ``wenzheng audit``: each test is a way to talk the audit round.

Every commit is made for real: signed with real SSH keys (ssh-keygen), by the
real bridge provider, the real escalation bot and the real department tools.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator import escalate
from generator.audit import audit_history, write_site
from generator.bridge.providers import Change
from generator.bridge.providers.local import LocalProvider
from generator.cli import main
from generator.depttools import write_event
from tests.conftest import ROOT, commit_files, git
from tests.records_util import FOLDER, event_file, good_case, petition

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
# The records' times are fixed and the commits' times are the clock's: the
# notarised-time check gets a window wide enough for both.
WINDOW = datetime.now(timezone.utc) - datetime(2026, 11, 1, tzinfo=timezone.utc) + timedelta(days=2)
HOURS = str(WINDOW.total_seconds() / 3600)


def open_case() -> dict[str, str]:
    """A case assigned to housing, accepted and answered, not closed yet."""
    return {p: t for p, t in good_case().items() if not p.endswith(("-closed.yaml",
                                                                     "-feedback.yaml"))}


def audit(repo: Path, *args: str):
    return CliRunner().invoke(main, ["audit", "--repo", str(repo), "--merge-window", HOURS,
                                     "--now", "2026-12-01T08:00:00+08:00", *args])


def key(tmp_path: Path, name: str) -> tuple[Path, str]:
    path = tmp_path / f"key-{name}"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)],
                   check=True)
    return path, (tmp_path / f"key-{name}.pub").read_text().strip()


def departments_with_keys(keys: dict[str, str]) -> str:
    text = (ROOT / "departments.yaml").read_text(encoding="utf-8")
    return text + "\nsigning_keys:\n" + "".join(f"  {a}: ['{k}']\n" for a, k in keys.items())


def signed_commit(repo: Path, files: dict[str, str | None], author: str, key: Path | None,
                  message: str = "change") -> str:
    for path, content in files.items():
        if content is None:
            (repo / path).unlink()
            continue
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(content, encoding="utf-8")
    git(repo, "add", "-A")
    sign = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={key}", "-c", "commit.gpgsign=true"] \
        if key else ["-c", "commit.gpgsign=false"]
    git(repo, *sign, "-c", f"user.name={author}", "-c", f"user.email={author}@example.org",
        "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def keyed(tmp_path):
    """An archive whose departments.yaml lists every account's key, with a case
    assigned to housing; every commit so far is signed by its maker."""
    keys = {a: key(tmp_path, a) for a in ("mh-centre-duty", "mh-housing", "wenzheng-bridge",
                                          "wenzheng-bot")}
    repo = tmp_path / "archive"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    signed_commit(repo, {"departments.yaml": departments_with_keys({a: k[1] for a, k in keys.items()}),
                         "rules.yaml": (ROOT / "rules.yaml").read_text(encoding="utf-8")},
                  "mh-centre-duty", keys["mh-centre-duty"][0], "found the archive")
    signed_commit(repo, {f"{FOLDER}/petition.yaml": petition()}, "wenzheng-bridge",
                  keys["wenzheng-bridge"][0])
    path, text = event_file("assigned", "2026-11-16T09:30:00+08:00", "centre", to="housing")
    signed_commit(repo, {path: text}, "mh-centre-duty", keys["mh-centre-duty"][0])
    path, text = event_file("accepted", "2026-11-16T10:00:00+08:00", "housing")
    signed_commit(repo, {path: text}, "mh-housing", keys["mh-housing"][0])
    path, text = event_file("reply", "2026-11-18T15:00:00+08:00", "housing", final=True,
                            resolution="resolved", body="已修复。")
    signed_commit(repo, {path: text}, "mh-housing", keys["mh-housing"][0])
    return repo, {a: k[0] for a, k in keys.items()}


def test_a_department_committing_under_the_centres_name_is_reported_when_keys_are_listed(keyed):
    repo, keys = keyed
    assert audit_history(repo, now=NOW, merge_window=WINDOW).violations == []
    # housing closes its own case, naming the centre's duty officer as the author,
    # but can only sign with its own key
    path, text = event_file("closed", "2026-11-19T09:00:00+08:00", "centre")
    forged = signed_commit(repo, {path: text}, "mh-centre-duty", keys["mh-housing"])
    report = audit_history(repo, now=NOW, merge_window=WINDOW)
    codes = {v.code for v in report.violations if v.commit == forged}
    assert "author-not-signer" in codes
    # and it is judged as housing, which may not close a case
    assert any(v.path == path and v.account == "mh-housing" for v in report.violations)
    assert report.signatures == "verified"
    # an unsigned commit under the centre's name is reported too
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    unsigned = signed_commit(repo, {path: text}, "mh-centre-duty", None)
    report = audit_history(repo, now=NOW, merge_window=WINDOW)
    assert {(v.commit, v.code) for v in report.violations} == {(unsigned, "unsigned")}


def test_an_open_violation_survives_an_incremental_audit(make_repo, tmp_path):
    files = open_case()
    reply = next(p for p in files if p.endswith("-reply.yaml"))
    repo = make_repo(files)
    bad = commit_files(repo, {reply: files[reply].replace("已修复。", "已妥善处理。")},
                       author="mh-housing <mh-housing@example.org>")
    site = tmp_path / "site"
    write_site(audit_history(repo, now=NOW, merge_window=WINDOW), site)
    assert json.loads((site / "audit.json").read_text())["ok"] is False

    # a later clean commit: the hourly incremental run replays only that one
    path, text = event_file("reply", "2026-11-20T09:00:00+08:00", "housing", final=False,
                            body="补充说明。")
    commit_files(repo, {path: text}, author="mh-housing <mh-housing@example.org>")
    result = audit(repo, "--previous", str(site / "audit.json"), "--incremental",
                   "--site", str(site))
    assert result.exit_code == 1, result.output
    published = json.loads((site / "audit.json").read_text())
    assert published["ok"] is False
    assert [(v["commit"], v["code"]) for v in published["violations"]] == [(bad, "append-only")]
    assert "违规" in (site / "audit" / "index.html").read_text(encoding="utf-8")

    # a department cannot acknowledge it ...
    ack = (f"commit: {bad}\ncode: append-only\npath: {reply}\n"
           "reason: 已恢复原答复并记录更正。The original reply was restored.\n")
    commit_files(repo, {"audit/acknowledgements/2026-12-01-append-only.yaml": ack},
                 author="mh-housing <mh-housing@example.org>")
    result = audit(repo, "--previous", str(site / "audit.json"), "--incremental",
                   "--site", str(site))
    assert result.exit_code == 1
    assert bad[:12] in result.output
    # ... the centre can, and then the page passes
    commit_files(repo, {"audit/acknowledgements/2026-12-01-append-only-centre.yaml": ack},
                 author="mh-centre-duty <mh-centre-duty@example.org>")
    result = audit(repo, "--previous", str(site / "audit.json"), "--incremental",
                   "--site", str(site))
    published = json.loads((site / "audit.json").read_text())
    codes = {v["code"] for v in published["violations"]}
    assert codes == {"centre-only"}, published["violations"]  # the department's attempt
    assert [v["commit"] for v in published["acknowledged"]] == [bad]


def test_a_missing_previous_report_is_an_error_naming_the_flag(make_repo, tmp_path):
    repo = make_repo(good_case())
    result = audit(repo, "--previous", str(tmp_path / "site" / "audit.json"), "--incremental")
    assert result.exit_code != 0
    assert "--previous" in result.output and "--first" in result.output
    assert audit(repo).exit_code != 0  # neither: the run must say it is the first
    result = audit(repo, "--first", "--report", str(tmp_path / "r.json"))
    assert result.exit_code == 0, result.output


def test_a_bad_config_commit_does_not_hide_later_violations(make_repo):
    files = good_case()
    reply = next(p for p in files if p.endswith("-reply.yaml"))
    repo = make_repo(files)
    depts = (ROOT / "departments.yaml").read_text(encoding="utf-8")
    broken = commit_files(repo, {"departments.yaml": depts.replace("level: city", "level: planet", 1)},
                          author="mh-centre-duty <mh-centre-duty@example.org>")
    edit = commit_files(repo, {reply: files[reply].replace("已修复。", "已妥善处理。")},
                        author="mh-housing <mh-housing@example.org>")
    report = audit_history(repo, now=NOW, merge_window=WINDOW)
    found = {(v.commit, v.path, v.code) for v in report.violations}
    assert (edit, reply, "append-only") in found
    assert (broken, "departments.yaml", "bad-level") in found
    assert not any(v.code == "base-config" for v in report.violations)


# -- the tools' own ordinary commits pass ---------------------------------------------


def _signing(repo: Path, key: Path | None) -> None:
    if key is not None:
        git(repo, "config", "gpg.format", "ssh")
        git(repo, "config", "user.signingkey", str(key))
        git(repo, "config", "commit.gpgsign", "true")


@pytest.mark.parametrize("signed", [False, True], ids=["no-keys", "keys-listed"])
def test_the_bridge_bot_and_department_tools_commits_pass(make_repo, keyed, tmp_path, signed):
    if signed:
        repo, keys = keyed
    else:
        repo, keys = make_repo(open_case()), {}
    # the department tools: a clerk whose git user.name is a person's, not the account
    clerk = tmp_path / "clerk"
    git(tmp_path, "clone", "-q", str(repo), str(clerk))
    git(clerk, "config", "user.name", "Wang Li")
    git(clerk, "config", "user.email", "clerk@example.org")
    git(clerk, "config", "wenzheng.account", "mh-housing")
    _signing(clerk, keys.get("mh-housing"))
    at = datetime(2026, 11, 19, 2, 0, tzinfo=timezone.utc)
    _, problems = write_event(clerk, "reply", "2026-000001", "mh-housing", at,
                              {"text": "补充说明：已加装防护罩。", "final": False}, commit=True)
    assert not [p for p in problems if p.severity == "error"]
    git(clerk, "push", "-q", "origin", "HEAD:refs/heads/housing-reply")
    git(repo, "-c", "user.name=mh-centre-duty", "-c", "user.email=mh-centre-duty@example.org",
        "-c", "commit.gpgsign=false", "merge", "-q", "--no-ff", "-m", "Merge housing's reply",
        "housing-reply")

    # the bridge: the local provider commits a petition on a branch and pushes it
    bridge = tmp_path / "bridge"
    provider = LocalProvider(str(bridge), str(repo))
    _signing(bridge, keys.get("wenzheng-bridge"))
    folder = "petitions/2026/11/2026-000002"
    provider.publish(Change("bridge/2026-000002", ((f"{folder}/petition.yaml",
                                                     petition("2026-000002").encode()),),
                            "New petition 2026-000002", "新诉求", "", ("petition",)))
    git(repo, "-c", "user.name=mh-centre-duty", "-c", "user.email=mh-centre-duty@example.org",
        "-c", "commit.gpgsign=false", "merge", "-q", "--no-ff", "-m", "Merge the bridge's petition",
        "bridge/2026-000002")
    git(repo, "checkout", "-q", "main")
    path, text = event_file("assigned", "2026-11-16T09:30:00+08:00", "centre", folder,
                            to="housing")
    signed_commit(repo, {path: text}, "mh-centre-duty", keys.get("mh-centre-duty"))

    # the escalation bot commits on main
    _signing(repo, keys.get("wenzheng-bot"))
    made = escalate.run(repo, datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc), commit=True)
    assert made.commit is not None
    assert git(repo, "log", "-1", "--format=%an", "main").strip() == "wenzheng-bot"

    report = audit_history(repo, now=NOW, merge_window=WINDOW)
    assert report.violations == [], "\n".join(v.render() for v in report.violations)
    assert report.signatures == ("verified" if signed else "not checked")


def test_the_merger_the_forge_recorded_is_compared_with_the_claimed_author(make_repo):
    repo = make_repo(open_case())
    # housing's branch claims the centre's duty officer closed the case ...
    git(repo, "checkout", "-q", "-b", "close-it")
    path, text = event_file("closed", "2026-11-19T09:00:00+08:00", "centre")
    commit_files(repo, {path: text}, author="mh-centre-duty <mh-centre-duty@example.org>")
    git(repo, "checkout", "-q", "main")
    # ... and housing merged it on the forge, which wrote its login as the merger
    git(repo, "-c", "user.name=mh-housing", "-c", "user.email=4242+mh-housing@users.noreply.github.com",
        "merge", "-q", "--no-ff", "-m", "Merge pull request #7", "close-it")
    merge = git(repo, "rev-parse", "HEAD").strip()
    report = audit_history(repo, now=NOW, merge_window=WINDOW)
    assert (merge, "merger-mismatch") in {(v.commit, v.code) for v in report.violations}
    # the centre merging a department's change is the ordinary case
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    git(repo, "checkout", "-q", "-b", "reply")
    path, text = event_file("reply", "2026-11-20T09:00:00+08:00", "housing", final=False,
                            body="补充说明。")
    commit_files(repo, {path: text}, author="mh-housing <mh-housing@example.org>")
    git(repo, "checkout", "-q", "main")
    git(repo, "-c", "user.name=mh-centre-duty",
        "-c", "user.email=77+mh-centre-duty@users.noreply.github.com",
        "merge", "-q", "--no-ff", "-m", "Merge pull request #8", "reply")
    assert audit_history(repo, now=NOW, merge_window=WINDOW).violations == []


def test_an_incremental_audit_after_a_bad_config_commit_still_judges_by_the_last_good_one(
        make_repo, tmp_path):
    files = open_case()
    reply = next(p for p in files if p.endswith("-reply.yaml"))
    repo = make_repo(files)
    depts = (ROOT / "departments.yaml").read_text(encoding="utf-8")
    commit_files(repo, {"departments.yaml": depts.replace("level: city", "level: planet", 1)},
                 author="mh-centre-duty <mh-centre-duty@example.org>")
    site = tmp_path / "site"
    assert audit(repo, "--first", "--site", str(site)).exit_code == 1
    edit = commit_files(repo, {reply: files[reply].replace("已修复。", "已妥善处理。")},
                        author="mh-housing <mh-housing@example.org>")
    result = audit(repo, "--previous", str(site / "audit.json"), "--incremental",
                   "--site", str(site))
    assert result.exit_code == 1
    published = json.loads((site / "audit.json").read_text())
    assert (edit, "append-only") in {(v["commit"], v["code"]) for v in published["violations"]}


def test_a_merge_commit_cannot_carry_changes_under_the_merged_branchs_signature(keyed):
    repo, keys = keyed
    git(repo, "checkout", "-q", "-b", "reply")
    path, text = event_file("reply", "2026-11-20T09:00:00+08:00", "housing", final=False,
                            body="补充说明。")
    signed_commit(repo, {path: text}, "mh-housing", keys["mh-housing"])
    git(repo, "checkout", "-q", "main")
    # whoever merges by hand slips in a second reply that housing never signed,
    # which would pass as housing's under the merged head's signature
    git(repo, "-c", "commit.gpgsign=false", "merge", "-q", "--no-ff", "--no-commit", "reply")
    extra, text = event_file("reply", "2026-11-20T09:10:00+08:00", "housing", final=False,
                             body="此事已无须处理。")
    (repo / extra).write_text(text, encoding="utf-8")
    git(repo, "add", extra)
    git(repo, "-c", "user.name=mh-centre-duty", "-c", "user.email=mh-centre-duty@example.org",
        "-c", "commit.gpgsign=false", "commit", "-q", "-m", "Merge")
    merge = git(repo, "rev-parse", "HEAD").strip()
    report = audit_history(repo, now=NOW, merge_window=WINDOW)
    assert (merge, "merge-adds-changes") in {(v.commit, v.code) for v in report.violations}


# -- history kept only through a merge's second parent ---------------------------------


def _answered(make_repo) -> tuple[Path, str, str, str]:
    """A case assigned and accepted (commit c3), then answered (head H).
    Returns the repository, c3, H and the reply's path."""
    repo = make_repo({f"{FOLDER}/petition.yaml": petition()})
    path, text = event_file("assigned", "2026-11-16T09:30:00+08:00", "centre", to="housing")
    commit_files(repo, {path: text}, author="mh-centre-duty <mh-centre-duty@example.org>")
    path, text = event_file("accepted", "2026-11-16T10:00:00+08:00", "housing")
    c3 = commit_files(repo, {path: text}, author="mh-housing <mh-housing@example.org>")
    reply, text = event_file("reply", "2026-11-18T15:00:00+08:00", "housing", final=True,
                             resolution="resolved", body="已修复。")
    head = commit_files(repo, {reply: text}, author="mh-housing <mh-housing@example.org>")
    return repo, c3, head, reply


def _fast_forward_over(repo: Path, base: str, old_head: str) -> None:
    """Make main a fast-forward of ``old_head`` that keeps ``base``'s line as
    its first parents: a merge with ``-s ours`` of the old head."""
    git(repo, "checkout", "-q", "-b", "rw", base)
    git(repo, "-c", "user.name=mh-housing", "-c", "user.email=mh-housing@example.org",
        "merge", "-q", "-s", "ours", "-m", "Merge", old_head)
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--ff-only", "rw")


@pytest.mark.parametrize("incremental", [False, True], ids=["full", "incremental"])
def test_a_fast_forward_that_drops_a_merged_record_is_a_rewritten_history(
        make_repo, tmp_path, incremental):
    repo, c3, old_head, reply = _answered(make_repo)
    report = tmp_path / "a.json"
    assert audit(repo, "--first", "--report", str(report)).exit_code == 0
    _fast_forward_over(repo, c3, old_head)
    assert git(repo, "merge-base", "--is-ancestor", old_head, "main") == ""  # a fast-forward
    assert not (repo / reply).exists()  # the reply is gone from main
    result = audit(repo, "--previous", str(report), *(["--incremental"] * incremental),
                   "--report", str(tmp_path / "b.json"))
    assert result.exit_code == 1, result.output
    published = json.loads((tmp_path / "b.json").read_text())
    assert (old_head, "history-rewritten") in {(v["commit"], v["code"])
                                               for v in published["violations"]}


@pytest.mark.parametrize("incremental", [False, True], ids=["full", "incremental"])
def test_a_reply_rewritten_under_the_same_author_and_dates_is_a_rewritten_history(
        make_repo, tmp_path, incremental):
    repo, c3, old_head, reply = _answered(make_repo)
    report = tmp_path / "a.json"
    assert audit(repo, "--first", "--report", str(report)).exit_code == 0
    # the reply commit again, with other words, the same author and the same dates
    dates = git(repo, "log", "-1", "--format=%aI%n%cI", old_head).split()
    text = git(repo, "show", f"{old_head}:{reply}")
    git(repo, "checkout", "-q", "-b", "forged", c3)
    (repo / reply).write_text(text.replace("已修复。", "无须处理。"), encoding="utf-8")
    git(repo, "add", "-A")
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=mh-housing",
                    "-c", "user.email=mh-housing@example.org", "commit", "-q", "-m", "change",
                    "--author=mh-housing <mh-housing@example.org>"], check=True,
                   env={**os.environ, "GIT_AUTHOR_DATE": dates[0], "GIT_COMMITTER_DATE": dates[1]})
    _fast_forward_over(repo, "forged", old_head)
    assert "无须处理" in (repo / reply).read_text(encoding="utf-8")
    result = audit(repo, "--previous", str(report), *(["--incremental"] * incremental),
                   "--report", str(tmp_path / "b.json"))
    assert result.exit_code == 1, result.output
    published = json.loads((tmp_path / "b.json").read_text())
    assert (old_head, "history-rewritten") in {(v["commit"], v["code"])
                                               for v in published["violations"]}


def test_an_ordinary_merge_on_main_keeps_the_proved_head_on_the_first_parent_line(
        make_repo, tmp_path):
    repo, _, old_head, _ = _answered(make_repo)
    report = tmp_path / "a.json"
    assert audit(repo, "--first", "--report", str(report)).exit_code == 0
    git(repo, "checkout", "-q", "-b", "more", old_head)
    path, text = event_file("reply", "2026-11-20T09:00:00+08:00", "housing", final=False,
                            body="补充说明。")
    commit_files(repo, {path: text}, author="mh-housing <mh-housing@example.org>")
    git(repo, "checkout", "-q", "main")
    git(repo, "-c", "user.name=mh-centre-duty", "-c", "user.email=mh-centre-duty@example.org",
        "merge", "-q", "--no-ff", "-m", "Merge", "more")
    for extra in ([], ["--incremental"]):
        result = audit(repo, "--previous", str(report), *extra)
        assert result.exit_code == 0, result.output


# -- file names that are not UTF-8, and the exit status of a failed audit -------------


def _run_cli(repo: Path, *args: str) -> subprocess.CompletedProcess:
    """``wenzheng audit`` as the publish workflow runs it: a process of its own."""
    return subprocess.run([sys.executable, "-m", "generator", "audit", "--repo", str(repo),
                           "--merge-window", HOURS, "--now", "2026-12-01T08:00:00+08:00", *args],
                          capture_output=True, text=True, cwd=ROOT)


def _commit_raw_name(repo: Path, name: bytes, author: str) -> str:
    """Commit a file whose name is the bytes ``name`` (not UTF-8) directly on main."""
    blob = subprocess.run(["git", "-C", str(repo), "hash-object", "-w", "--stdin"],
                          input=b"text\n", capture_output=True, check=True).stdout.strip()
    subprocess.run([b"git", b"-C", bytes(repo), b"update-index", b"--add", b"--cacheinfo",
                    b"100644," + blob + b"," + name], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=x", "-c", "user.email=x@localhost",
                    "commit", "-q", "-m", "change", f"--author={author}"], check=True)
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.mark.parametrize("name,author,code", [
    (b"docs-\xff.md", "mh-housing <mh-housing@example.org>", "maintainers-only"),
    (FOLDER.encode() + b"/\xff.yaml", "mh-housing <mh-housing@example.org>", "stray-file"),
], ids=["project-file", "record-folder"])
def test_a_file_name_that_is_not_utf8_is_a_violation_not_a_crash(make_repo, tmp_path, name,
                                                                 author, code):
    repo = make_repo(open_case())
    site = tmp_path / "site"
    assert _run_cli(repo, "--first", "--site", str(site)).returncode == 0
    bad = _commit_raw_name(repo, name, author)
    shown = name.decode("utf-8", "backslashreplace")
    for extra in (["--incremental"], []):
        run = _run_cli(repo, "--previous", str(site / "audit.json"), *extra, "--site", str(site))
        assert run.returncode == 1, run.stderr
        assert "Traceback" not in run.stderr
        published = json.loads((site / "audit.json").read_text(encoding="utf-8"))
        assert (bad, shown, code) in {(v["commit"], v["path"], v["code"])
                                      for v in published["violations"]}
        assert "\\xff" in run.stdout
    # a later run starts from a tree that holds the name
    commit_files(repo, {"README.md": "x\n"}, author="Tester <tester@localhost>")
    run = _run_cli(repo, "--previous", str(site / "audit.json"), "--incremental", "--site", str(site))
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr


def test_an_audit_that_cannot_finish_exits_3_naming_the_commit(make_repo, tmp_path, monkeypatch):
    repo = make_repo(open_case())
    path, text = event_file("reply", "2026-11-20T09:00:00+08:00", "housing", final=False,
                            body="补充说明。")
    later = commit_files(repo, {path: text}, author="mh-housing <mh-housing@example.org>")
    from generator import governance

    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(governance, "check_pull_request", broken)
    result = audit(repo, "--first", "--site", str(tmp_path / "site"))
    assert result.exit_code == 3, (result.exit_code, result.output)
    line = result.output.strip()
    assert "\n" not in line and later in line and "KeyError" in line


def test_a_damaged_repository_stops_the_audit_with_exit_3_not_1(make_repo, tmp_path):
    repo = make_repo(open_case())
    site = tmp_path / "site"
    assert _run_cli(repo, "--first", "--site", str(site)).returncode == 0
    path, text = event_file("reply", "2026-11-20T09:00:00+08:00", "housing", final=False,
                            body="补充说明。")
    later = commit_files(repo, {path: text}, author="mh-housing <mh-housing@example.org>")
    blob = git(repo, "rev-parse", f"HEAD:{path}").strip()
    (repo / ".git" / "objects" / blob[:2] / blob[2:]).unlink()
    run = _run_cli(repo, "--previous", str(site / "audit.json"), "--incremental", "--site", str(site))
    assert run.returncode == 3, (run.returncode, run.stderr)
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert blob in run.stderr and later in run.stderr
    assert not (site / "audit.json.tmp").exists()
