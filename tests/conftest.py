"""Shared fixtures: small real git repositories built from a dict of files."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Callable, Mapping

import pytest

ROOT = Path(__file__).resolve().parent.parent


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True,
                          capture_output=True, text=True).stdout


def commit_files(repo: Path, files: Mapping[str, str | None], message: str = "change",
                 author: str = "Tester <tester@localhost>") -> str:
    """Write (or delete, with None) files in ``repo``, commit them, return the commit id."""
    for path, content in files.items():
        target = repo / path
        if content is None:
            target.unlink()
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=Tester", "-c", "user.email=tester@localhost",
        "commit", "-q", "--allow-empty", "-m", message, f"--author={author}")
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Path]:
    """Return a function that makes a git repository holding the given files.

    The shipped departments.yaml and rules.yaml are included unless the files
    given replace them (pass None to leave one out).
    """
    counter = iter(range(1000))

    def make(files: Mapping[str, str | None], with_config: bool = True) -> Path:
        repo = tmp_path / f"repo{next(counter)}"
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        everything: dict[str, str | None] = {}
        if with_config:
            for name in ("departments.yaml", "rules.yaml"):
                everything[name] = (ROOT / name).read_text(encoding="utf-8")
        everything.update(files)
        commit_files(repo, {k: v for k, v in everything.items() if v is not None}, "initial")
        return repo

    return make


@pytest.fixture
def root() -> Path:
    return ROOT
