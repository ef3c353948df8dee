"""Issue #20, item 1: an import must leave the branch, the index and the work tree agreeing.

The attack: import into the checked-out branch, then make an ordinary commit
(`git add rules.yaml; git commit`). Before the fix the import moved the branch
but left the index at the old tree, so that commit recorded every imported
file as deleted, and `wenzheng check` said "ok".
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from generator.cli import main
from tests.import_util import MAPPINGS, git, make_target, realdata, tree_files

NOW = "2026-01-15T12:00:00-05:00"
ID = ["-c", "user.name=Clerk", "-c", "user.email=clerk@localhost"]


def _boston(tmp_path: Path) -> Path:
    return make_target(tmp_path / "boston",
                       (MAPPINGS / "boston-departments.yaml").read_text(encoding="utf-8"),
                       (MAPPINGS / "boston-rules.yaml").read_text(encoding="utf-8"))


def _import(repo: Path, *extra: str):
    return CliRunner().invoke(main, [
        "import", str(realdata() / "boston311" / "boston311_2022-01_qsv_100.csv"),
        "--mapping", str(MAPPINGS / "boston311.yaml"), "--repo", str(repo), "--now", NOW, *extra])


def test_commit_after_import_loses_nothing(tmp_path):
    repo = _boston(tmp_path)
    res = _import(repo)
    assert res.exit_code == 0, res.output
    imported = tree_files(repo)
    assert len(imported) > 300
    # The index and the work tree hold what the branch holds: nothing staged, nothing missing.
    assert git(repo, "status", "--porcelain") == ""
    some = sorted(imported)[0]
    assert (repo / some).read_text(encoding="utf-8") == imported[some]
    # An ordinary commit afterwards changes rules.yaml and nothing else.
    with open(repo / "rules.yaml", "a", encoding="utf-8") as fh:
        fh.write("# a clerk's note\n")
    git(repo, "add", "rules.yaml")
    git(repo, *ID, "commit", "-q", "-m", "note")
    assert git(repo, "diff", "--name-only", "HEAD~1", "HEAD").split() == ["rules.yaml"]
    assert tree_files(repo) == imported


def test_import_keeps_the_clerks_uncommitted_work(tmp_path):
    repo = _boston(tmp_path)
    (repo / "notes.txt").write_text("draft\n", encoding="utf-8")
    with open(repo / "departments.yaml", "a", encoding="utf-8") as fh:
        fh.write("# edited, not committed\n")
    res = _import(repo)
    assert res.exit_code == 0, res.output
    status = sorted(git(repo, "status", "--porcelain").splitlines())
    assert status == [" M departments.yaml", "?? notes.txt"]


def test_import_into_a_branch_not_checked_out_says_how_to_merge(tmp_path):
    repo = _boston(tmp_path)
    git(repo, "branch", "import-2022")
    res = _import(repo, "--branch", "import-2022")
    assert res.exit_code == 0, res.output
    assert "git merge import-2022" in res.output
    assert git(repo, "status", "--porcelain") == ""  # main, checked out, is untouched
    assert tree_files(repo) == {}


def test_import_refused_when_an_untracked_file_is_in_the_way(tmp_path):
    """A file on disk where the import would write one: nothing is written, the branch stays."""
    repo = _boston(tmp_path)
    dry = _import(repo, "--dry-run", "--format", "json")
    assert dry.exit_code == 0, dry.output
    before = git(repo, "rev-parse", "HEAD").strip()
    # Where the first petition will go: 2022's first number, in January 2022.
    blocker = repo / "petitions" / "2022" / "01" / "2022-000001" / "petition.yaml"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("mine\n", encoding="utf-8")
    res = _import(repo)
    assert res.exit_code == 1
    assert "petitions/2022/01/2022-000001/petition.yaml" in res.output
    assert git(repo, "rev-parse", "HEAD").strip() == before
    assert blocker.read_text(encoding="utf-8") == "mine\n"


def test_check_warns_when_a_commit_removes_petitions(tmp_path):
    repo = _boston(tmp_path)
    assert _import(repo).exit_code == 0
    folder = sorted(tree_files(repo))[0].rsplit("/", 1)[0]
    git(repo, "rm", "-q", "-r", folder)
    # Before the commit: the work tree check sees the deletion.
    res = CliRunner().invoke(main, ["check", "--repo", str(repo), "--worktree"])
    assert "removed-petition" in res.output and folder in res.output, res.output
    git(repo, *ID, "commit", "-q", "-m", "tidy")
    res = CliRunner().invoke(main, ["check", "--repo", str(repo)])
    assert "removed-petition" in res.output and folder in res.output, res.output
    assert "ok:" not in res.output
