"""The CI workflow files: valid YAML, the documented triggers and jobs, and the
``wenzheng`` commands they run, run here against a real repository."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from generator.cli import main
from generator.render.writer import manifest_path
from tests.conftest import ROOT, commit_files, git
from tests.records_util import FOLDER, event_file
from tests.test_governance import merged_case

GITHUB = {name: ROOT / ".github" / "workflows" / f"{name}.yml" for name in ("check", "publish", "audit")}
GITEA = {name: ROOT / ".gitea" / "workflows" / f"{name}.yml" for name in ("check", "publish", "audit")}
NOW = "2026-11-25T10:00:00+08:00"


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def triggers(doc: dict) -> dict:
    # YAML 1.1 reads the bare key `on` as true
    value = doc.get("on", doc.get(True))
    return value if isinstance(value, dict) else {k: None for k in value}


def steps(doc: dict) -> list[dict]:
    return [s for job in doc["jobs"].values() for s in job.get("steps", [])]


def cron_fields(doc: dict) -> list[list[str]]:
    return [entry["cron"].split() for entry in triggers(doc)["schedule"]]


@pytest.mark.parametrize("files", [GITHUB, GITEA], ids=["github", "gitea"])
def test_actions_workflows_have_the_documented_triggers_and_jobs(files):
    check, publish, audit = (load(files[n]) for n in ("check", "publish", "audit"))
    # the base branch's workflow judges a pull request, not the pull request's own
    assert set(triggers(check)) == {"pull_request_target"}
    assert triggers(check)["pull_request_target"]["branches"] == ["main"]
    assert set(triggers(publish)) == {"push", "schedule", "workflow_dispatch"}
    assert triggers(publish)["push"]["branches"] == ["main"]
    [minute, hour, dom, month, dow] = cron_fields(publish)[0]
    assert minute.isdigit() and (hour, dom, month, dow) == ("*", "*", "*", "*")  # hourly
    assert set(triggers(audit)) == {"schedule", "workflow_dispatch"}
    [minute, hour, dom, month, dow] = cron_fields(audit)[0]
    assert minute.isdigit() and hour.isdigit() and dom == month == "*" and dow.isdigit()  # weekly
    for doc in (check, publish, audit):
        checkouts = [s for s in steps(doc) if s.get("uses", "").startswith("actions/checkout")]
        assert checkouts[-1]["with"]["fetch-depth"] == 0
        runs = " ".join(s.get("run", "") for s in steps(doc))
        # nothing is downloaded at run time beyond the package install
        assert "curl" not in runs and "wget" not in runs
        if doc is not check:
            assert "pip install -c constraints.txt ." in runs  # the versions make test ran with
    # the checker is installed from the base commit, the pull request is only read
    trusted, pull = (s["with"] for s in steps(check) if s.get("uses", "").startswith("actions/checkout"))
    assert trusted == {"ref": "${{ github.event.pull_request.base.sha }}", "path": "trusted",
                       "persist-credentials": False}
    assert pull["ref"] == "${{ github.event.pull_request.head.sha }}" and pull["path"] == "pull-request"
    assert [s["run"] for s in steps(check) if "pip" in s.get("run", "")] == [
        "pip install -c trusted/constraints.txt ./trusted"]
    cache = next(s for s in steps(publish) if s.get("uses", "").startswith("actions/cache"))
    # the build's caches, the last site and its manifest (kept beside it), for an incremental build
    assert set(cache["with"]["path"].split()) == {".git/wenzheng-cache", "site", manifest_path(Path("site")).as_posix()}
    assert cache["with"]["restore-keys"].startswith("wenzheng-site-")


def test_github_publishes_to_pages_with_the_official_actions():
    publish = load(GITHUB["publish"])
    uses = [s.get("uses", "") for s in steps(publish)]
    assert any(u.startswith("actions/upload-pages-artifact@") for u in uses)
    assert any(u.startswith("actions/deploy-pages@") for u in uses)
    assert publish["permissions"] == {"contents": "write", "pages": "write", "id-token": "write"}
    assert publish["jobs"]["deploy"]["needs"] == "build"


def test_gitlab_ci_has_the_same_jobs_with_rules():
    doc = load(ROOT / ".gitlab-ci.yml")
    assert {"check", "pages", "audit"} <= set(doc)
    conditions = {job: " | ".join(r["if"] for r in doc[job]["rules"]) for job in ("check", "pages", "audit")}
    assert "merge_request_event" in conditions["check"]
    assert '"push"' in conditions["pages"] and "CI_DEFAULT_BRANCH" in conditions["pages"]
    assert '"schedule"' in conditions["pages"] and '"schedule"' in conditions["audit"]
    assert doc["pages"]["artifacts"]["paths"] == ["public"]
    assert set(doc["pages"]["cache"]["paths"]) == {".git/wenzheng-cache", "public",
                                                   manifest_path(Path("public")).as_posix()}
    assert doc["variables"]["GIT_DEPTH"] == "0"
    # the check installs the checker from the diff base, not the merge request's code
    assert doc["check"]["before_script"] == []
    assert 'pip install -c "$TRUSTED/constraints.txt" "$TRUSTED"' in doc["check"]["script"]
    assert not any(line.startswith("pip install") and "TRUSTED" not in line
                   for line in doc["check"]["script"])


# -- running the commands ------------------------------------------------------------


def commands_of(path: Path) -> list[tuple[dict, str]]:
    """Return (environment expressions, command line) for each `wenzheng` line."""
    doc = load(path)
    found = []
    if path.name == ".gitlab-ci.yml":
        for job in doc.values():
            if isinstance(job, dict) and "script" in job:
                found += [({}, line) for line in job["script"] if line.startswith("wenzheng ")]
        return found
    for step in steps(doc):
        for line in step.get("run", "").splitlines():
            if line.strip().startswith("wenzheng "):
                found.append((step.get("env", {}), line.strip()))
    return found


def expand(line: str, env: dict, values: dict) -> list[str]:
    line = line.split(" || ")[0]  # the shell fallback that keeps publishing going
    for name, expr in env.items():
        inner = re.fullmatch(r"\$\{\{\s*(.+?)\s*\}\}", expr)
        values = {**values, name: values[inner[1]] if inner else expr}
    return shlex.split(re.sub(r"\$\{?(\w+)\}?", lambda m: values[m[1]], line))


def run_line(args: list[str]):
    assert args[0] == "wenzheng"
    return CliRunner().invoke(main, args[1:])


@pytest.fixture
def pr_repo(make_repo, monkeypatch):
    repo = make_repo(merged_case())
    git(repo, "checkout", "-q", "-b", "pr")
    path, text = event_file("reply", "2026-11-25T09:30:00+08:00", "housing", FOLDER,
                            final=False, body="补充说明：已加装防护罩。")
    commit_files(repo, {path: text})
    monkeypatch.chdir(repo)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1795572000")  # 2026-11-25T10:00:00+08:00
    return repo


@pytest.mark.parametrize("path", [GITHUB["check"], GITEA["check"], ROOT / ".gitlab-ci.yml"],
                         ids=["github", "gitea", "gitlab"])
def test_the_pull_request_command_passes_a_good_change_and_refuses_tampering(pr_repo, path,
                                                                          monkeypatch):
    lines = [(env, line) for env, line in commands_of(path) if line.startswith("wenzheng check")]
    assert len(lines) == 1
    env, line = lines[0]
    # the job checks the pull request's clone from outside it (tests/adversarial/test_gate.py
    # runs the whole job): GitHub's and Gitea's is the folder pull-request
    (pr_repo.parent / "pull-request").symlink_to(pr_repo)
    monkeypatch.chdir(pr_repo.parent)
    base = git(pr_repo, "rev-parse", "main").strip()
    values = {"github.event.pull_request.base.sha": base,
              "github.event.pull_request.user.login": "mh-housing",
              "CI_MERGE_REQUEST_DIFF_BASE_SHA": base, "GITLAB_USER_LOGIN": "mh-housing",
              "CI_PROJECT_DIR": str(pr_repo)}
    result = run_line(expand(line, env, values))
    assert result.exit_code == 0, result.output
    values["github.event.pull_request.user.login"] = values["GITLAB_USER_LOGIN"] = "mh-water"
    result = run_line(expand(line, env, values))
    assert result.exit_code == 1 and "not-your-account" in result.output


@pytest.mark.parametrize("files", [GITHUB, GITEA], ids=["github", "gitea"])
def test_the_publish_and_audit_commands_run_on_a_real_archive(pr_repo, files):
    git(pr_repo, "checkout", "-q", "main")
    lines = commands_of(files["publish"]) + commands_of(files["audit"])
    names = [line.split()[1] for _, line in lines]
    assert names == ["escalate", "build", "audit", "audit"]
    # the archive's first audit, as the city declares it (WENZHENG_FIRST_AUDIT=true)
    # for the hourly run; the weekly run then finds the report it published
    first = "vars.WENZHENG_FIRST_AUDIT == 'true' && '--first' || "
    values = {"NOW": NOW, "github.run_id": "1",
              first + "'--previous previous-audit.json --incremental'": "--first",
              first + "'--previous site/audit.json'": "--previous site/audit.json"}
    for env, line in lines:
        args = expand(line, env, values)
        if args[1] not in main.commands:
            assert args[1] == "build"  # the site builder, from its own branch
            continue
        result = run_line(args)
        assert result.exit_code == 0, (line, result.output)
    # the hourly run recorded the transport case's crossed steps as the bot
    assert git(pr_repo, "log", "-1", "--format=%an", "main").strip() == "wenzheng-bot"
    published = json.loads((pr_repo / "site" / "audit.json").read_text(encoding="utf-8"))
    assert published["ok"] and published["head"] == git(pr_repo, "rev-parse", "main").strip()
    weekly = json.loads((pr_repo / "audit-report.json").read_text(encoding="utf-8"))
    assert weekly["ok"] and weekly["commits_checked"] == weekly["commits"] == 2
