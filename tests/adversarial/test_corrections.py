"""Corrections as an adversary sees them: a text corrected away must be gone
from everything the project publishes (issue 19).

A correction of ``petition.yaml`` (the centre masking a house number in the
title and body) and a correction of a reply's body are committed to a real git
repository; the site is built from it (incrementally, after a build without
the corrections, and afresh from a clone), and every file of it is searched:
pages in both languages, feeds, the search index (Pagefind's fragments are
gzip, its words split by zero-width spaces), the downloads. So is every format
of ``wenzheng export`` and ``wenzheng status`` in both languages. The original
lives only in git history. A correction ``check`` cannot accept (a key the
petition has not, a value the key does not take) is an error naming the
correction's file and line.
"""

from __future__ import annotations

import gzip
import json
import re
import sqlite3
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from generator.build import build_site
from generator.cli import main
from records_util import event_file, stamp
from site_util import NOW, commit, small_archive

ROOT = Path(__file__).resolve().parents[2]
FOLDER = "petitions/2026/11/2026-000004"

ORIGINAL_TITLE = "幸福里小区7号楼门口积水三天"
ORIGINAL_BODY = "我住幸福里7号楼302室，楼门口积水三天无人处理。"
ORIGINAL_REPLY = "已联系7号楼302室住户王某某，积水已排除。"
# An open case's title (site_util's 2026-000003), corrected too: an open case's
# products are kept between builds by another path than a settled one's.
OPEN_FOLDER = "petitions/2026/11/2026-000003"
OPEN_TITLE, NEW_OPEN_TITLE = "公交站台遮雨棚漏水", "公交站台遮雨棚需要维修"
# Pieces of the originals that none of the corrected texts holds.
SECRETS = (ORIGINAL_TITLE, "7号楼302室", "7号楼", "王某某", "楼门口积水三天无人处理", OPEN_TITLE)

NEW_TITLE = "（已遮盖门牌号）幸福里小区门口积水"
NEW_BODY = "幸福里小区门口积水三天无人处理，请尽快疏通。"
NEW_REPLY = "积水已排除，排水口已疏通。"

PETITION = (
    "id: '2026-000004'\n"
    "received_at: 2026-11-17T09:00:00+08:00\n"
    "channel: web\n"
    "category: complaint\n"
    f"title: {ORIGINAL_TITLE}\n"
    f"body: |\n  {ORIGINAL_BODY}\n"
    "petitioner: {display_name: 网友 zx81qa}\n"
    "location: {district: 东湖区}\n"
)
REPLY_AT = "2026-11-18T15:00:00+08:00"


def case_files() -> dict[str, str]:
    files = {f"{FOLDER}/petition.yaml": PETITION}
    for kind, at, by, fields in [
        ("assigned", "2026-11-17T09:30:00+08:00", "centre", {"to": "housing"}),
        ("accepted", "2026-11-17T10:00:00+08:00", "housing", {}),
        ("reply", REPLY_AT, "housing", {"final": True, "resolution": "resolved", "body": ORIGINAL_REPLY}),
        ("closed", "2026-11-19T09:00:00+08:00", "centre", {}),
    ]:
        path, text = event_file(kind, at, by, FOLDER, **fields)
        files[path] = text
    return files


def correction(at: str, by: str, corrects: str, reason: str, folder: str = FOLDER,
               **set_values: str) -> tuple[str, str]:
    text = yaml.safe_dump({"kind": "correction", "at": at, "by": by, "corrects": corrects,
                           "reason": reason, "set": set_values}, allow_unicode=True, sort_keys=False)
    return f"{folder}/{stamp(at)}-correction.yaml", text


def correction_files() -> dict[str, str]:
    a = correction("2026-11-20T09:00:00+08:00", "centre", "petition.yaml",
                   "标题和正文中含有门牌号，予以遮盖", title=NEW_TITLE, body=NEW_BODY)
    b = correction("2026-11-20T10:00:00+08:00", "housing", f"{stamp(REPLY_AT)}-reply.yaml",
                   "答复中含有住户信息，予以删除", body=NEW_REPLY)
    c = correction("2026-11-21T09:00:00+08:00", "centre", "petition.yaml", "标题不准确", OPEN_FOLDER,
                   title=NEW_OPEN_TITLE)
    return dict([a, b, c])


def readable(path: Path, data: bytes) -> str:
    """Return what a file says as text: gzip unpacked (Pagefind's files, the
    sitemap), Pagefind's zero-width word breaks removed, JSON's escapes read."""
    while data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if data.startswith(b"SQLite format 3\0"):
        con = sqlite3.connect(path)
        try:
            return "\n".join(con.iterdump())
        finally:
            con.close()
    text = data.decode("utf-8", errors="replace").replace("\u200b", "")
    # JSON may write a character as \\uXXXX: read such escapes back.
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)


def leaks(folder: Path, secrets=SECRETS) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            text = readable(path, path.read_bytes())
            hits = [s for s in secrets if s in text]
            if hits:
                found[path.relative_to(folder).as_posix()] = hits
    return found


def shows(folder: Path, rel: str, *texts: str) -> None:
    text = readable(folder / rel, (folder / rel).read_bytes())
    for t in texts:
        assert t in text, f"{rel} does not show {t!r}"


@pytest.fixture(scope="module")
def corrected(tmp_path_factory) -> tuple[Path, Path]:
    """The archive with the corrections, and its site built incrementally: first
    without them (the cache then holds the uncorrected case), then with them."""
    base = tmp_path_factory.mktemp("corrections")
    repo = small_archive(base / "repo")
    commit(repo, case_files(), "petition 2026-000004", when="2026-11-21T12:30:00+08:00")
    out = base / "site"
    now = datetime.fromisoformat(NOW)
    first = build_site(repo, "HEAD", now, out)
    assert leaks(out), "the test is void: the uncorrected site must show the originals"
    untouched = (out / "p" / "2026-000001.html").stat().st_ino
    commit(repo, correction_files(), "corrections of 2026-000004", when="2026-11-21T13:00:00+08:00")
    second = build_site(repo, "HEAD", now, out)
    # Incremental: the kept products of the other (settled) cases were reused.
    assert second.written < first.written / 2
    assert (out / "p" / "2026-000001.html").stat().st_ino == untouched
    return repo, out


def test_check_accepts_the_corrections(corrected):
    repo, _ = corrected
    result = CliRunner().invoke(main, ["check", "--repo", str(repo)])
    assert result.exit_code == 0, result.output


def test_no_file_of_the_site_built_incrementally_holds_a_corrected_away_text(corrected):
    _, out = corrected
    assert leaks(out) == {}
    for rel in ("p/2026-000004.html", "en/p/2026-000004.html", "feeds/p/2026-000004.xml", "data/cases.csv",
                "data/cases.jsonl", "data/export.json"):
        shows(out, rel, NEW_TITLE)
    for rel in ("p/2026-000004.html", "en/p/2026-000004.html"):
        shows(out, rel, NEW_BODY, NEW_REPLY)
    shows(out, "p/2026-000003.html", NEW_OPEN_TITLE)
    shows(out, "data/events.jsonl", NEW_REPLY)
    shows(out, "data/events.csv", NEW_REPLY)
    fragments = [readable(p, p.read_bytes()) for p in out.glob("pagefind/**/*.pf_fragment")]
    assert any(NEW_TITLE in f for f in fragments), "the search index must find the corrected title"


def test_no_file_of_a_site_built_afresh_holds_a_corrected_away_text(corrected, tmp_path):
    repo, _ = corrected
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    out = tmp_path / "site"
    result = CliRunner().invoke(main, ["build", "--repo", str(clone), "--now", NOW, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert leaks(out) == {}
    shows(out, "p/2026-000004.html", NEW_TITLE, NEW_BODY, NEW_REPLY)


@pytest.mark.parametrize("fmt", ["json", "csv", "open311", "sqlite"])
def test_no_export_holds_a_corrected_away_text(corrected, tmp_path, fmt):
    repo, _ = corrected
    out = tmp_path / ("export.json" if fmt == "json" else "export")
    result = CliRunner().invoke(main, ["export", "--repo", str(repo), "--now", NOW, "--format", fmt,
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    folder = out.parent if fmt == "json" else out
    assert leaks(folder) == {}
    text = "".join(readable(p, p.read_bytes()) for p in folder.rglob("*") if p.is_file())
    assert NEW_TITLE in text
    if fmt in ("csv", "open311", "sqlite"):  # the JSON export has no events
        assert NEW_REPLY in text
    if fmt == "json":  # and on standard output
        result = CliRunner().invoke(main, ["export", "--repo", str(repo), "--now", NOW])
        assert result.exit_code == 0
        assert not [s for s in SECRETS if s in readable(out, result.stdout_bytes)]
        assert NEW_TITLE in readable(out, result.stdout_bytes)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_status_shows_the_corrected_petition(corrected, lang):
    repo, _ = corrected
    result = CliRunner().invoke(main, ["status", "2026-000004", "--repo", str(repo), "--now", NOW,
                                       "--lang", lang])
    assert result.exit_code == 0, result.output
    assert [s for s in SECRETS if s in result.output] == []
    assert NEW_TITLE in result.output
    # The timeline says what was corrected (the keys, never the old values).
    said = "更正" if lang == "zh" else "corrects"
    assert f"({said} petition.yaml: title, body)" in result.output
    assert f"({said} {stamp(REPLY_AT)}-reply.yaml: body)" in result.output


# -- the shipped demo archive ------------------------------------------------------


def demo_title_corrections() -> list[tuple[str, str, str]]:
    """Return (id, original title, corrected title) of every centre correction of
    a petition's title in the shipped archive, read from its files."""
    found = []
    for path in sorted((ROOT / "petitions").glob("*/*/*/*-correction.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        new = (data.get("set") or {}).get("title") if data.get("corrects") == "petition.yaml" else None
        if new:
            original = yaml.safe_load((path.parent / "petition.yaml").read_text(encoding="utf-8"))["title"]
            found.append((path.parent.name, original, new))
    return found


def test_the_demo_sites_corrected_titles_are_gone(tmp_path):
    """The issue's case 2026-000294 (and each other title correction the demo
    carries): built, exported and shown by ``status``, never the original.
    An original that no other record says (the demo's titles repeat, and a
    reply may quote a title) is looked for in every file; each, in the
    corrected case's export record, page title and ``status``."""
    corrections = demo_title_corrections()
    assert corrections, "the demo archive carries title corrections (synth.correct_petition)"
    texts = {p: p.read_text(encoding="utf-8") for p in (ROOT / "petitions").rglob("*.yaml")}
    unique = tuple(o for pid, o, _ in corrections
                   if not any(o in text for p, text in texts.items()
                              if not (p.parent.name == pid and p.name == "petition.yaml")))
    assert "2026-000294" not in {pid for pid, _, _ in corrections} or unique
    clone = tmp_path / "demo"
    subprocess.run(["git", "clone", "-q", "--no-local", str(ROOT), str(clone)], check=True)
    out = tmp_path / "site"
    result = CliRunner().invoke(main, ["build", "--repo", str(clone), "--now", NOW, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert leaks(out, unique) == {}
    exported = tmp_path / "export" / "export.json"
    exported.parent.mkdir()
    result = CliRunner().invoke(main, ["export", "--repo", str(clone), "--now", NOW, "--out", str(exported)])
    assert result.exit_code == 0, result.output
    assert leaks(exported.parent, unique) == {}
    records = {c["id"]: c for c in json.loads(exported.read_text(encoding="utf-8"))["cases"]}
    for pid, original, new in corrections:
        assert records[pid]["title"] == new
        for rel in (f"p/{pid}.html", f"en/p/{pid}.html", f"feeds/p/{pid}.xml"):
            shows(out, rel, new)
        for rel in (f"p/{pid}.html", f"en/p/{pid}.html"):
            head = re.search(r"<title>(.*?)</title>", (out / rel).read_text(encoding="utf-8"), re.S)
            assert head and new in head.group(1) and original not in head.group(1), rel
        for lang in ("zh", "en"):
            result = CliRunner().invoke(main, ["status", pid, "--repo", str(clone), "--now", NOW, "--lang", lang])
            assert result.exit_code == 0, result.output
            assert original not in result.output and new in result.output


# -- corrections that check must refuse ---------------------------------------------


BAD_CORRECTIONS = [
    # (what the correction sets, the key path named, a piece of the message)
    ({"titel": "新标题"}, "set.titel", "unknown key"),
    ({"title": ""}, "set.title", "non-empty text"),
    ({"title": "长" * 101}, "set.title", "more than 100"),
    ({"category": "complain"}, "set.category", "not allowed"),
    ({"received_at": "2026-11-17 09:00"}, "set.received_at", "UTC offset"),
    ({"location": {"district": "东湖区", "adress": "幸福里"}}, "set.location.adress", "unknown key"),
    ({"petitioner": {}}, "set.petitioner", "display_name"),
    ({"id": "2026-000005"}, "set.id", "cannot"),
    ({"body": None}, "set.body", "required"),
]


@pytest.mark.parametrize("values,where,words", BAD_CORRECTIONS)
def test_check_refuses_a_correction_of_the_petition_it_could_not_apply(make_repo, values, where, words):
    at = "2026-11-20T09:00:00+08:00"
    text = yaml.safe_dump({"kind": "correction", "at": at, "by": "centre", "corrects": "petition.yaml",
                           "reason": "更正", "set": values}, allow_unicode=True, sort_keys=False)
    name = f"{stamp(at)}-correction.yaml"
    repo = make_repo({**case_files(), f"{FOLDER}/{name}": text})
    result = CliRunner().invoke(main, ["check", "--repo", str(repo), "--format", "json"])
    assert result.exit_code == 1, result.output
    problems = json.loads(result.output)["problems"]
    mine = [p for p in problems if p["path"] == f"{FOLDER}/{name}"]
    assert mine, problems
    assert any(words in p["message"] for p in mine), mine
    assert any(where in p["message"] for p in mine), mine
    # The line named is the line of the offending key in the correction.
    key = where.split(".")[1]
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.strip().startswith(f"{key}:"))
    assert any(p["line"] is not None and p["line"] >= line for p in mine), (mine, line)


def test_check_refuses_a_correction_of_an_event_it_could_not_apply(make_repo):
    at = "2026-11-20T10:00:00+08:00"
    target = f"{stamp(REPLY_AT)}-reply.yaml"
    bad = {"rating": "satisfied", "resolution": "fixed", "final": False}
    text = yaml.safe_dump({"kind": "correction", "at": at, "by": "housing", "corrects": target,
                           "reason": "更正", "set": bad}, allow_unicode=True, sort_keys=False)
    name = f"{stamp(at)}-correction.yaml"
    repo = make_repo({**case_files(), f"{FOLDER}/{name}": text})
    result = CliRunner().invoke(main, ["check", "--repo", str(repo), "--format", "json"])
    assert result.exit_code == 1, result.output
    messages = [p["message"] for p in json.loads(result.output)["problems"] if p["path"] == f"{FOLDER}/{name}"]
    assert any("set.rating" in m and "unknown key" in m for m in messages), messages
    assert any("set.resolution" in m for m in messages), messages


def test_check_judges_the_timeline_as_corrected(make_repo):
    """A correction moving the case to another department leaves the holder's
    later records unjustified: check says so, naming the correction; a wrong
    assignment retracted and made again is a sound timeline."""
    assigned = f"{FOLDER}/{stamp('2026-11-17T09:30:00+08:00')}-assigned.yaml"
    moved = correction("2026-11-20T09:00:00+08:00", "centre", assigned.rsplit("/", 1)[1], "分派有误",
                       to="transport")
    repo = make_repo({**case_files(), moved[0]: moved[1]})
    result = CliRunner().invoke(main, ["check", "--repo", str(repo), "--format", "json"])
    assert result.exit_code == 1, result.output
    problems = json.loads(result.output)["problems"]
    accepted = [p for p in problems if p["path"].endswith("-accepted.yaml")]
    assert accepted and accepted[0]["code"] == "not-holder", problems
    assert "transport" in accepted[0]["message"] and moved[0].rsplit("/", 1)[1] in accepted[0]["message"]

    files = case_files()
    wrong = event_file("assigned", "2026-11-17T09:20:00+08:00", "centre", FOLDER, to="transport")
    undo = (f"{FOLDER}/{stamp('2026-11-17T09:25:00+08:00')}-correction.yaml",
            yaml.safe_dump({"kind": "correction", "at": "2026-11-17T09:25:00+08:00", "by": "centre",
                            "corrects": wrong[0].rsplit("/", 1)[1], "reason": "分派有误", "retract": True}))
    repo = make_repo({**files, wrong[0]: wrong[1], undo[0]: undo[1]})
    result = CliRunner().invoke(main, ["check", "--repo", str(repo)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["status", "2026-000004", "--repo", str(repo), "--now", NOW, "--lang", "en"])
    assert result.exit_code == 0 and "Transport" not in result.output.split("Deadlines:")[1], result.output
