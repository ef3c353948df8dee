"""Department commands and the pre-commit hook, in real repositories."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from generator.cli import main
from tests.conftest import ROOT, git
from tests.records_util import FOLDER, event_file
from tests.test_governance import OTHER, merged_case

NOW = "2026-11-20T10:00:00+08:00"


@pytest.fixture
def archive(make_repo) -> Path:
    repo = make_repo(merged_case())
    git(repo, "config", "user.name", "Desk")
    git(repo, "config", "user.email", "desk@example.org")
    return repo


def run(repo: Path, *args: str, account: str | None = None, env: dict | None = None):
    extra = ["--account", account] if account else []
    return CliRunner().invoke(main, [*args, "--repo", str(repo), "--now", NOW, *extra], env=env)


def test_accept_writes_a_correct_event_and_commits_it(archive):
    result = run(archive, "accept", "2026-000002", "--commit", account="mh-transport")
    assert result.exit_code == 0, result.output
    name = "20261120T020000Z-accepted.yaml"  # 10:00 in Beijing is 02:00 UTC
    assert f"committed: {OTHER}/{name}" in result.output
    text = (archive / OTHER / name).read_text(encoding="utf-8")
    assert yaml.safe_load(text.replace("at: ", "at: '").replace("+08:00", "+08:00'")) == {
        "kind": "accepted", "at": "2026-11-20T10:00:00+08:00", "by": "transport"}
    assert git(archive, "log", "-1", "--format=%s").strip() == "accepted 2026-000002"
    assert git(archive, "status", "--porcelain").strip() == ""


def test_the_account_comes_from_git_config(archive):
    git(archive, "config", "wenzheng.account", "mh-transport")
    result = run(archive, "accept", "2026-000002")
    assert result.exit_code == 0, result.output
    assert "by: transport" in (archive / OTHER / "20261120T020000Z-accepted.yaml").read_text()


def test_reply_text_comes_from_the_editor(archive, tmp_path):
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nprintf '补充说明：\\n已加装防护罩。\\n' >> \"$1\"\n")
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    result = run(archive, "reply", "2026-000001", account="mh-housing",
                 env={"EDITOR": str(editor), "VISUAL": str(editor)})
    assert result.exit_code == 0, result.output
    path = archive / FOLDER / "20261120T020000Z-reply.yaml"
    text = path.read_text(encoding="utf-8")
    assert "final: false" in text and "by: housing" in text
    assert "body: |\n  补充说明：\n  已加装防护罩。\n" in text
    # the written file passes the pull-request check CI will run
    git(archive, "add", "-A")
    git(archive, "commit", "-q", "-m", "reply")
    check = CliRunner().invoke(main, ["check", "--repo", str(archive), "--base", "HEAD~1",
                                      "--author", "mh-housing", "--now", NOW])
    assert check.exit_code == 0, check.output


def test_a_department_cannot_answer_a_case_it_does_not_hold(archive):
    result = run(archive, "reply", "2026-000002", "-m", "已处理", account="mh-housing")
    assert result.exit_code == 1
    assert "held by 'transport'" in result.output and "transfer" in result.output
    assert not list((archive / OTHER).glob("20261120*"))


def test_a_draft_that_fails_the_checks_is_removed(archive):
    # the centre closes the case; a department's reply after that is refused by the checks
    closed, text = event_file("closed", "2026-11-19T09:00:00+08:00", "centre", FOLDER)
    (archive / closed).write_text(text, encoding="utf-8")
    git(archive, "add", "-A")
    git(archive, "commit", "-q", "-m", "closed")
    result = run(archive, "reply", "2026-000001", "-m", "再补充", account="mh-housing")
    assert result.exit_code == 1
    assert "after-terminal" in result.output
    assert not (archive / FOLDER / "20261120T020000Z-reply.yaml").exists()
    assert git(archive, "status", "--porcelain").strip() == ""


def test_the_centre_decides_the_open_extension_transfers_and_closes(archive):
    result = run(archive, "extend", "2026-000002", "--new-due", "2026-12-04", "-m", "同意",
                 "--commit", account="mh-centre-lead")
    assert result.exit_code == 0, result.output
    text = (archive / OTHER / "20261120T020000Z-extension_decided.yaml").read_text()
    assert "request: \"20261119T010000Z-extension_requested.yaml\"" in text
    assert "decision: \"approved\"" in text and "new_due: \"2026-12-04\"" in text
    later = "2026-11-20T10:05:00+08:00"
    result = CliRunner().invoke(main, ["transfer", "2026-000002", "--to", "water", "-m",
                                       "属供水管网", "--repo", str(archive), "--now", later,
                                       "--account", "mh-centre-duty", "--commit"])
    assert result.exit_code == 0, result.output
    assert "from: \"transport\"" in (archive / OTHER / "20261120T020500Z-transferred.yaml").read_text()
    result = run(archive, "close", "2026-000001", "--commit", account="mh-centre-duty")
    assert result.exit_code == 0, result.output
    # a department may not transfer or close
    result = run(archive, "close", "2026-000002", account="mh-water")
    assert result.exit_code == 1 and "only the centre closes" in result.output


def test_a_department_asks_for_an_extension_with_reason_and_date(archive):
    result = run(archive, "extend", "2026-000001", "-m", "需协调", account="mh-housing")
    assert result.exit_code == 1 and "--new-due" in result.output
    result = run(archive, "extend", "2026-000001", "--new-due", "2026-12-01", "-m", "需协调",
                 account="mh-housing")
    assert result.exit_code == 0, result.output
    text = (archive / FOLDER / "20261120T020000Z-extension_requested.yaml").read_text()
    assert "reason: \"需协调\"" in text and "new_due: \"2026-12-01\"" in text


def test_tools_work_in_a_sparse_checkout(archive, tmp_path):
    clone = tmp_path / "desk"
    subprocess.run(["git", "clone", "-q", "--no-checkout", str(archive), str(clone)], check=True)
    git(clone, "sparse-checkout", "set", OTHER)
    git(clone, "checkout", "-q", "main")
    assert not (clone / FOLDER).exists() and (clone / OTHER).exists()
    result = run(clone, "accept", "2026-000002", "--commit", account="mh-transport")
    assert result.exit_code == 0, result.output
    result = run(clone, "accept", "2026-000001", account="mh-housing")
    assert result.exit_code == 1
    assert f"git sparse-checkout add {FOLDER}" in result.output


def test_the_pre_commit_hook_runs_the_same_checks(archive):
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    hook = {h["id"]: h for h in hooks}["wenzheng-check"]
    assert hook["language"] == "python" and hook["pass_filenames"] is False
    entry = shlex.split(hook["entry"])
    assert entry[0] == "wenzheng"
    git(archive, "config", "wenzheng.account", "mh-housing")
    # a staged edit of a merged reply: refused
    reply = next(p for p in merged_case() if p.endswith("-reply.yaml"))
    (archive / reply).write_text((archive / reply).read_text() + "note: 改一下\n", encoding="utf-8")
    git(archive, "add", "-A")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SOURCE_DATE_EPOCH": "1795600800"}
    cmd = [os.sys.executable, "-m", "generator", *entry[1:]]
    proc = subprocess.run(cmd, cwd=archive, env=env, capture_output=True, text=True)
    assert proc.returncode == 1 and "append-only" in proc.stdout
    git(archive, "reset", "-q", "--hard")
    # a sound new event: passes (SOURCE_DATE_EPOCH 1795600800 is 2026-11-25T18:00:00+08:00)
    path, text = event_file("reply", "2026-11-25T17:30:00+08:00", "housing", FOLDER,
                            final=False, body="补充说明。")
    (archive / path).write_text(text, encoding="utf-8")
    git(archive, "add", "-A")
    proc = subprocess.run(cmd, cwd=archive, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
