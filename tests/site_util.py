"""A small archive for the site tests, committed with fixed dates so that commit
ids (shown on petition pages for auditors) are the same on every run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from records_util import event_file, good_case, petition

ROOT = Path(__file__).resolve().parent.parent
NOW = "2026-11-22T10:00:00+08:00"
REPLY_PHRASE = "井盖已于当日更换"


def _git(repo: Path, *args: str, when: str = "2026-11-21T12:00:00+08:00") -> None:
    env = dict(os.environ, GIT_AUTHOR_DATE=when, GIT_COMMITTER_DATE=when, GIT_AUTHOR_NAME="Tester",
               GIT_AUTHOR_EMAIL="tester@localhost", GIT_COMMITTER_NAME="Tester",
               GIT_COMMITTER_EMAIL="tester@localhost")
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


def commit(repo: Path, files: dict[str, str], message: str, when: str = "2026-11-21T12:00:00+08:00") -> None:
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text, encoding="utf-8")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message, when=when)


def small_archive(repo: Path) -> Path:
    """Make the test archive: three petitions, one closed and rated, one overdue
    for resolution, one overdue for acceptance. Its figures are worked out by
    hand in test_site.py."""
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    files = {n: (ROOT / n).read_text(encoding="utf-8") for n in ("departments.yaml", "rules.yaml")}
    files.update(good_case())
    f2 = "petitions/2026/11/2026-000002"
    files[f"{f2}/petition.yaml"] = petition("2026-000002", "2026-11-10T09:00:00+08:00", category="help")
    for kind, at, by, fields in [("assigned", "2026-11-10T09:30:00+08:00", "centre", {"to": "transport"}),
                                 ("accepted", "2026-11-10T15:00:00+08:00", "transport", {})]:
        path, text = event_file(kind, at, by, f2, **fields)
        files[path] = text
    f3 = "petitions/2026/11/2026-000003"
    files[f"{f3}/petition.yaml"] = petition("2026-000003", "2026-11-20T11:00:00+08:00",
                                            category="consultation").replace("小区门口路灯损坏三周无人修", "公交站台遮雨棚漏水")
    path, text = event_file("assigned", "2026-11-20T11:30:00+08:00", "centre", f3, to="transport")
    files[path] = text
    commit(repo, files, "initial archive")
    return repo


def add_reply(repo: Path) -> None:
    """Commit a final reply by transport on petition 2026-000002."""
    path, text = event_file("reply", "2026-11-21T10:00:00+08:00", "transport",
                            "petitions/2026/11/2026-000002", final=True, resolution="resolved",
                            body=REPLY_PHRASE + "，请市民放心通行。")
    commit(repo, {path: text}, "transport replies", when="2026-11-21T13:00:00+08:00")
