"""Adversarial: the published site can be checked by rebuilding it.

Two builds of the demo archive, cold, in different folders, at different
moments, with different hash seeds and time zones but the same commit and
``--now``, must be identical under ``diff -r``: otherwise ``wenzheng audit
--rebuild-at REV --published SITE`` can never pass, and a figure changed by
hand hides among the files that differ anyway. The audit must then pass on an
untouched site and name the one file, and the figure, changed by hand.

The demo (``petitions/``, ``departments.yaml``, ``rules.yaml``, ``mkdocs.yml``
at HEAD) is committed alone into a fresh repository, so that the audit's
replay of history has nothing to report and its verdict is the rebuild's.
A cold demo build takes about 15 s here, so those tests are marked slow
(``make test`` runs them); the search index's own tests are quick.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from generator.render import pagefind_job, search

ROOT = Path(__file__).resolve().parents[2]
NOW = "2026-11-22T10:00:00+08:00"
DEMO = ("departments.yaml", "rules.yaml", "mkdocs.yml", "petitions")
FIGURE = re.compile(r"\b(\d{2}\.\d)%")


def _git(repo: Path, *args: str) -> str:
    when = "2026-11-22T09:00:00+08:00"
    env = dict(os.environ, GIT_AUTHOR_DATE=when, GIT_COMMITTER_DATE=when, GIT_AUTHOR_NAME="Centre",
               GIT_AUTHOR_EMAIL="centre@localhost", GIT_COMMITTER_NAME="Centre",
               GIT_COMMITTER_EMAIL="centre@localhost")
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout


def _demo_repo(where: Path) -> Path:
    """Commit the demo archive of HEAD alone into a new repository at ``where``."""
    where.mkdir(parents=True)
    _git(where, "init", "-q", "-b", "main")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", "HEAD", *DEMO],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive, check=True)
    _git(where, "add", "-A")
    _git(where, "commit", "-q", "-m", "the demo archive")
    return where


def _wenzheng(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "generator", *args], cwd=cwd, capture_output=True, text=True,
                          env=dict(os.environ, **(env or {})))


def _build(repo: Path, out: Path, cwd: Path, env: dict[str, str]) -> str:
    cwd.mkdir(parents=True, exist_ok=True)
    proc = _wenzheng("build", "--repo", str(repo), "--now", NOW, "--out", str(out), cwd=cwd, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# -- the search index: Pagefind writes its filters in a random order --------------------


def _records(n: int = 40) -> list[tuple[str, str]]:
    """Return ``n`` search records (id, HTML) shaped as generator.render.search.record
    writes them, spread over several values of every filter."""
    categories, statuses = ["投诉", "求助", "咨询", "建议", "举报"], ["已受理", "办理中", "已办结", "已逾期"]
    departments = ["市交通运输局", "市住房和城乡建设局", "市生态环境局", "市卫生健康委员会", "东湖区人民政府"]
    out = []
    for i in range(n):
        pid = f"2026-{i + 1:06d}"
        out.append((pid, f'<html lang="zh"><body data-pagefind-body><h1>第{i}号诉求 路灯损坏</h1>'
                         f'<span data-pagefind-meta="date:2026-11-{i % 28 + 1:02d} 09:00"></span>'
                         f'<span data-pagefind-filter="status:{statuses[i % 4]}"></span>'
                         f'<span data-pagefind-filter="year:2026"></span>'
                         f'<p>{pid} <span data-pagefind-filter="category">{categories[i % 5]}</span> '
                         f'<span data-pagefind-filter="department">{departments[i * 3 % 5]}</span></p>'
                         f'<p>井盖缺失{i}处，夜间无照明。</p></body></html>'))
    return out


def _index(tmp_path: Path, name: str) -> Path:
    """Index the records of :func:`_records` as a build does (generator.render.search.Indexer)."""
    into = tmp_path / name
    indexer = search.Indexer(scratch=tmp_path)
    try:
        items = [(pid, f"petitions/2026/11/{pid}", pickle.dumps((html,)), "", "") for pid, html in _records()]
        indexer.add("2026-11", lambda: items, into)
        assert indexer.results()["2026-11"]
    finally:
        indexer.close()
    return into


def _pagefind(tmp_path: Path, name: str) -> Path:
    """Run Pagefind alone on the same records; return its output folder as it wrote it."""
    site, into = tmp_path / f"{name}-records", tmp_path / name
    (site / "p").mkdir(parents=True)
    for pid, html in _records():
        (site / "p" / f"{pid}.html").write_text(html, encoding="utf-8")
    subprocess.run([str(search.BINARY), "--site", str(site), "--output-path", str(into), "--force-language", "zh",
                    "--quiet"], check=True, capture_output=True)
    return into


def test_the_same_records_give_the_same_search_index(tmp_path):
    runs = [_index(tmp_path, f"run{i}") for i in range(3)]
    for other in runs[1:]:
        proc = subprocess.run(["diff", "-r", str(runs[0]), str(other)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout
    assert len(list((runs[0] / "filter").iterdir())) == 4


def _entry_hash(folder: Path) -> str:
    """Return the name of the metadata file pagefind-entry.json points at."""
    return json.loads((folder / "pagefind-entry.json").read_text(encoding="utf-8"))["languages"]["zh"]["hash"]


def test_the_index_files_keep_the_names_pagefind_gives_their_content(tmp_path):
    """A filter with one value (the year) is already in order: putting the index
    in order keeps the name Pagefind itself gave that filter's file, so the new
    names are Pagefind's (a SHA-1 of the content); the entry file names the
    metadata file that is there."""
    raw = _pagefind(tmp_path, "raw")
    ordered = _index(tmp_path, "ordered")
    # gunzipped: Pagefind's signature, then CBOR: an array of 2, the text "year"
    year = [p.name for p in (raw / "filter").iterdir()
            if gzip.decompress(p.read_bytes()).startswith(pagefind_job.SIGNATURE + b"\x82\x64year")]
    assert len(year) == 1 and (ordered / "filter" / year[0]).is_file()
    assert [p.name for p in ordered.glob("pagefind.*.pf_meta")] == [f"pagefind.{_entry_hash(ordered)}.pf_meta"]


def test_an_index_not_as_pagefind_1_5_writes_it_is_refused_and_left_alone(tmp_path):
    raw = _pagefind(tmp_path, "raw")
    meta = next(raw.glob("pagefind.zh_*.pf_meta"))
    meta.write_bytes(gzip.compress(pagefind_job.SIGNATURE + b"\xa1\x01\x02"))  # a CBOR map: not Pagefind's
    before = sorted(p.relative_to(raw).as_posix() for p in raw.rglob("*"))
    problem = pagefind_job.normalise(raw)
    assert problem is not None and meta.name in problem
    assert sorted(p.relative_to(raw).as_posix() for p in raw.rglob("*")) == before


# -- the demo, built twice ----------------------------------------------------------------


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory) -> tuple[Path, Path, Path]:
    """Two cold builds of the demo, each from its own copy of the archive (its
    own caches), in its own folder: return the first copy and both sites."""
    base = tmp_path_factory.mktemp("reproducible")
    first = _demo_repo(base / "one" / "archive")
    second = _demo_repo(base / "two" / "elsewhere" / "archive")
    a, b = base / "one" / "site", base / "two" / "public"
    started = time.time()
    _build(first, a, base / "one" / "cwd", {"PYTHONHASHSEED": "1", "TZ": "UTC"})
    time.sleep(max(0.0, 1.5 - (time.time() - started)))  # another second of the wall clock
    _build(second, b, base / "two", {"PYTHONHASHSEED": "2024", "TZ": "America/New_York"})
    return first, a, b


@pytest.mark.slow
def test_two_cold_builds_of_the_demo_are_identical_under_diff(two_builds):
    _, a, b = two_builds
    proc = subprocess.run(["diff", "-r", str(a), str(b)], capture_output=True, text=True)
    assert proc.returncode == 0, f"the two builds differ:\n{proc.stdout[:4000]}"
    # ... and the search index is among what they hold.
    assert list((a / "pagefind").glob("*/pagefind-entry.json")) and list((a / "pagefind").glob("*/filter/*"))


@pytest.mark.slow
def test_the_published_folder_holds_no_build_state(two_builds):
    _, a, _ = two_builds
    hidden = sorted(p.relative_to(a).as_posix() for p in a.rglob(".*"))
    assert hidden == [], f"build state in the published folder: {hidden}"


@pytest.mark.slow
def test_a_second_build_into_the_same_folder_writes_nothing_and_stays_identical(two_builds, tmp_path):
    repo, a, b = two_builds
    out = _build(repo, a, tmp_path, {"PYTHONHASHSEED": "77"})
    assert ", 0 files written," in out, out
    assert subprocess.run(["diff", "-r", str(a), str(b)], capture_output=True).returncode == 0


@pytest.mark.slow
def test_the_audit_passes_on_an_untouched_site_and_names_the_figure_changed_by_hand(two_builds, tmp_path):
    repo, a, _ = two_builds
    published = tmp_path / "published"
    shutil.copytree(a, published)
    clean = _wenzheng("audit", "--first", "--repo", str(repo), "--now", NOW, "--rebuild-at", "HEAD",
                      "--published", str(published), cwd=tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "rebuild:" not in clean.stdout and "differences: 0" in clean.stdout

    # Tamper: one ranking figure, e.g. 82.1% made 99.9%.
    page = published / "ranking" / "index.html"
    text = page.read_text(encoding="utf-8")
    figure = next(m for m in FIGURE.finditer(text) if m[1] != "99.9")
    page.write_text(text[:figure.start(1)] + "99.9" + text[figure.end(1):], encoding="utf-8")

    tampered = _wenzheng("audit", "--first", "--repo", str(repo), "--now", NOW, "--rebuild-at", "HEAD",
                         "--published", str(published), cwd=tmp_path)
    assert tampered.returncode == 1, tampered.stdout + tampered.stderr
    found = [line for line in tampered.stdout.splitlines() if line.startswith("rebuild:")]
    assert len(found) == 1, tampered.stdout
    assert "ranking/index.html" in found[0], found
    assert figure[1] in found[0] and "99.9" in found[0], found
    assert "differences: 1" in tampered.stdout
