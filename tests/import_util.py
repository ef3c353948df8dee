"""Helpers for import tests: target archives and reading them back with plain git."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
MAPPINGS = ROOT / "docs" / "import-mappings"


def realdata() -> Path:
    """Return the shared real-data folder next to the repository (or /work/shared)."""
    near = ROOT.parent / "shared" / "realdata"
    return near if near.is_dir() else Path("/work/shared/realdata")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout


def make_target(path: Path, departments: str, rules: str) -> Path:
    """Create a git repository holding only departments.yaml and rules.yaml."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "departments.yaml").write_text(departments, encoding="utf-8")
    (path / "rules.yaml").write_text(rules, encoding="utf-8")
    git(path, "add", "-A")
    git(path, "-c", "user.name=T", "-c", "user.email=t@localhost", "commit", "-q", "-m", "config")
    return path


def tree_files(repo: Path, rev: str = "main") -> dict[str, str]:
    """Return every petition file at ``rev`` with its text, read with plain git."""
    names = [n for n in git(repo, "ls-tree", "-r", "--name-only", rev).splitlines()
             if n.startswith("petitions/")]
    return {n: git(repo, "show", f"{rev}:{n}") for n in names}


def petitions_by_legacy(files: dict[str, str]) -> dict[str, tuple[str, dict]]:
    """Return legacy id -> (folder, petition data) from the files of a tree."""
    out = {}
    for path, text in files.items():
        if path.endswith("/petition.yaml"):
            data = yaml.safe_load(text)
            out[str(data["legacy"]["id"])] = (path.rsplit("/", 1)[0], data)
    return out


def events_of(files: dict[str, str], folder: str) -> dict[str, dict]:
    """Return file name -> event data for one folder."""
    return {p.rsplit("/", 1)[1]: yaml.load(t, Loader=yaml.BaseLoader)
            for p, t in files.items()
            if p.startswith(folder + "/") and not p.endswith("petition.yaml")}
