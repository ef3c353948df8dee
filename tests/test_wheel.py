"""The package as the publish jobs install it: the wheel, non-editable, in a
fresh venv, building a city's archive that holds only its records and
configuration (no ``site_templates/``, ``mkdocs.yml`` or ``docs/`` of its own),
so every template, theme override and document the site shows must come from
the wheel. The package is installed by the publish jobs' own install line. pip
asks no index: the pinned dependencies (and the build backend) come from the
wheelhouse of tests/forge_runner.py, standing for pip's cache."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

from generator.shipped import FILES, PACKED
from tests.conftest import ROOT, git
from tests.forge_runner import wheelhouse

pytestmark = pytest.mark.slow
NOW = "2026-11-22T10:00:00+08:00"
# What a city's archive keeps of the demo: its records and its two configuration files.
ARCHIVE_KEEPS = ("petitions/", "departments.yaml", "rules.yaml")


def offline_env() -> dict[str, str]:
    return dict(os.environ, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheelhouse()),
                PIP_DISABLE_PIP_VERSION_CHECK="1")


def tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def publish_install_lines() -> set[str]:
    """The install line of the publish job of each forge."""
    github, gitea = (yaml.safe_load((ROOT / f / "workflows" / "publish.yml").read_text(encoding="utf-8"))
                     for f in (".github", ".gitea"))
    lines = {step["run"] for doc in (github, gitea) for job in doc["jobs"].values()
             for step in job.get("steps", []) if "pip install" in step.get("run", "")}
    gitlab = yaml.safe_load((ROOT / ".gitlab-ci.yml").read_text(encoding="utf-8"))
    return lines | {line for line in gitlab["default"]["before_script"] if "pip install" in line}


def source_copy(into: Path) -> Path:
    """Copy the work tree's project files (not the demo archive, tests or
    benchmarks) into ``into``, so that building it leaves the checkout clean."""
    listed = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for path in listed:
        if path and not path.startswith(("petitions/", "tests/", "bench/")) and (ROOT / path).is_file():
            (into / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / path, into / path)
    return into


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """Return the bin folder of a fresh venv into which the publish jobs' own
    install line (``pip install -c constraints.txt .``: pip builds the wheel
    and installs it, not editable) put this work tree's package."""
    base = tmp_path_factory.mktemp("wheel")
    source = source_copy(base / "source")
    [line] = publish_install_lines()
    assert line == "pip install -c constraints.txt ."
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = dict(offline_env(), PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}")
    subprocess.run(["bash", "-e", "-c", line], cwd=source, check=True, capture_output=True, env=env)
    [site_packages] = (venv / "lib").glob("python*/site-packages")
    assert not list(site_packages.glob("__editable__*")) and not list(site_packages.glob("*.egg-link"))
    assert (site_packages / "generator" / "_shipped" / "site_templates" / "petition.html").is_file()
    shutil.rmtree(source)  # nothing of the source is left to read
    return venv / "bin"


def test_the_source_distribution_builds_a_wheel_carrying_the_site_files(tmp_path):
    """``python -m build`` goes through the sdist: MANIFEST.in must carry what setup.py copies."""
    source = source_copy(tmp_path / "source")
    tool = tmp_path / "tool"
    subprocess.run([sys.executable, "-m", "venv", str(tool)], check=True)
    subprocess.run([str(tool / "bin" / "pip"), "install", "--quiet", "setuptools>=77"], check=True,
                   capture_output=True, env=offline_env())
    subprocess.run([str(tool / "bin" / "python"), "-c",
                    f"from setuptools import build_meta; build_meta.build_sdist({str(tmp_path / 'dist')!r})"],
                   cwd=source, check=True, capture_output=True)
    [sdist] = (tmp_path / "dist").glob("wenzheng-*.tar.gz")
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    [unpacked] = (tmp_path / "unpacked").iterdir()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path / "wheel"),
                    str(unpacked)], check=True, capture_output=True, env=offline_env())
    [wheel] = (tmp_path / "wheel").glob("wenzheng-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in FILES:
        top = ROOT / name
        expected = [p.relative_to(ROOT).as_posix() for p in top.rglob("*") if p.is_file()] if top.is_dir() \
            else [name]
        assert expected and {f"generator/{PACKED}/{e}" for e in expected} <= names, name


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """A clone of the demo archive holding only its records and configuration."""
    repo = tmp_path_factory.mktemp("archive") / "city"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    drop = [p for p in git(repo, "ls-files", "-z").split("\0") if p and not p.startswith(ARCHIVE_KEEPS)]
    for start in range(0, len(drop), 500):
        git(repo, "rm", "-q", "--", *drop[start:start + 500])
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "the archive alone")
    assert not (repo / "site_templates").exists() and not (repo / "mkdocs.yml").exists()
    return repo


def build(wenzheng: Path, repo: Path, out: str) -> subprocess.CompletedProcess:
    shutil.rmtree(repo / ".git" / "wenzheng-cache", ignore_errors=True)  # each build from scratch
    return subprocess.run([str(wenzheng), "build", "--now", NOW, "--out", out], cwd=repo,
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=""))


def test_the_installed_wheel_builds_the_demo_site_the_editable_install_builds(installed, archive):
    wheel_build = build(installed / "wenzheng", archive, "site")
    assert wheel_build.returncode == 0, wheel_build.stderr + wheel_build.stdout
    site = archive / "site"
    for page in ("index.html", "en/index.html", "search/index.html", "en/search/index.html",
                 "p/2026-000014.html", "en/p/2026-000014.html", "assets/wz-deadline.js"):
        assert (site / page).is_file(), page
    assert list((site / "pagefind").glob("*/pagefind-entry.json"))
    # the field documentation of the downloads, from the wheel's docs/export*.md
    assert "received_at" in (site / "open-data" / "index.html").read_text(encoding="utf-8")
    assert "received_at" in (site / "en" / "open-data" / "index.html").read_text(encoding="utf-8")
    # the theme overrides (custom_dir) and the shell's title (mkdocs.yml), from the wheel
    home = (site / "index.html").read_text(encoding="utf-8")
    assert "stylesheets/wenzheng.css?v=" in home and "本站使用" in home and "明湖市问政" in home
    assert "Made with" in (site / "en" / "index.html").read_text(encoding="utf-8")

    editable = build(Path(sys.executable).parent / "wenzheng", archive, "site-editable")
    assert editable.returncode == 0, editable.stderr + editable.stdout
    assert tree(site) == tree(archive / "site-editable")


def test_a_city_template_in_its_archive_is_used_over_the_wheels(installed, archive, tmp_path):
    city = tmp_path / "city"
    subprocess.run(["git", "clone", "-q", str(archive), str(city)], check=True)
    ours = (ROOT / "site_templates" / "petition.html").read_text(encoding="utf-8")
    marker = "<!-- the city's own petition page -->"
    (city / "site_templates").mkdir()
    (city / "site_templates" / "petition.html").write_text(marker + "\n" + ours, encoding="utf-8")
    css = (ROOT / "site_templates" / "overrides" / "assets" / "stylesheets" / "wenzheng.css").read_text()
    (city / "site_templates" / "overrides" / "assets" / "stylesheets").mkdir(parents=True)
    (city / "site_templates" / "overrides" / "assets" / "stylesheets" / "wenzheng.css").write_text(
        css + "\n/* the city's colours */\n")
    git(city, "add", "site_templates")
    git(city, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "own templates")
    result = build(installed / "wenzheng", city, "site")
    assert result.returncode == 0, result.stderr + result.stdout
    page = (city / "site" / "p" / "2026-000014.html").read_text(encoding="utf-8")
    assert marker in page and marker in (city / "site" / "en" / "p" / "2026-000014.html").read_text()
    # the other templates still come from the wheel: the listing is the package's
    assert (city / "site" / "l" / "all" / "index.html").is_file()
    styles = [p for p in (city / "site" / "assets").rglob("wenzheng*.css")]
    assert styles and all("the city's colours" in p.read_text() for p in styles)


def test_the_projects_own_checkout_builds_with_its_work_tree_templates(tmp_path):
    """In the demo (the editable install's checkout) an uncommitted template
    edit is what `wenzheng serve` rebuilds with, not the committed template."""
    from generator import build, shipped

    assert build._site_templates(ROOT, "HEAD", tmp_path) == shipped.path("site_templates") == ROOT / "site_templates"
    assert not (tmp_path / "site-templates").exists()
