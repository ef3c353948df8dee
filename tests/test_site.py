"""The public site: figures worked out by hand, equality with generator.metrics,
byte-identical rebuilds, incremental rebuilds, a failed build leaving the last
good site, golden files."""

from __future__ import annotations

import gzip
import hashlib
import json
import marshal
import os
import re
import shutil
import subprocess
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.build import BuildError, build_site
from generator.cli import main
from site_util import NOW, REPLY_PHRASE, _git, add_reply, commit, small_archive

GOLDEN = Path(__file__).parent / "golden" / "site"
# Files compared with the golden copy: our own pages and data, not the theme's assets.
GOLDEN_GLOBS = ["p/*.html", "en/p/*.html", "l/all/index.html", "data/*", "feeds/*.xml",
                "feeds/p/*.xml", "r/month/*/index.html", "d/transport/index.html"]


def tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("site")
    repo = small_archive(base / "repo")
    out = base / "site"
    result = CliRunner().invoke(main, ["build", "--repo", str(repo), "--now", NOW, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return repo, out


def figure(html: str, key: str) -> str:
    m = re.search(rf'data-figure="{key}">([^<]*)<', html)
    assert m, key
    return m.group(1)


def test_home_figures_worked_out_by_hand(built):
    # 2026-000001: final reply 11-18 within 5 working days of 11-16, closed, satisfied.
    # 2026-000002: help, assigned 11-10, accepted, no reply: resolve due end of 11-17, overdue.
    # 2026-000003: assigned 11-20 11:30, never accepted: accept due 14:30, overdue.
    # reply 1/3, on time 1 of the 2 settled answers, closed 1/3, satisfied 1/1, overdue 2.
    _, out = built
    home = (out / "index.html").read_text(encoding="utf-8")
    assert figure(home, "reply_rate") == "33.3%"
    assert figure(home, "on_time_rate") == "50.0%"
    assert figure(home, "completion_rate") == "33.3%"
    assert figure(home, "satisfaction_rate") == "100.0%"
    assert figure(home, "overdue_now") == "2"
    assert "数据截至 <strong>2026-11-22 10:00</strong>" in home


def test_pages_show_the_figures_of_wenzheng_export(built, tmp_path):
    """Home, department and report pages carry the numbers `wenzheng export` gives,
    and the site's export.json is that command's output."""
    repo, out = built
    exported = tmp_path / "export.json"
    result = CliRunner().invoke(main, ["export", "--repo", str(repo), "--now", NOW, "--out", str(exported)])
    assert result.exit_code == 0, result.output
    data = json.loads(exported.read_text(encoding="utf-8"))
    assert json.loads((out / "data" / "export.json").read_text(encoding="utf-8")) == data
    cards = data["scorecards"]
    head = next(h for h in cards["headlines"] if h["period"] == "all")
    home = (out / "index.html").read_text(encoding="utf-8")
    for key in ("reply_rate", "on_time_rate", "completion_rate", "satisfaction_rate"):
        assert figure(home, key) == f"{100 * head[key]['value']:.1f}%"
    assert figure(home, "overdue_now") == str(head["overdue_now"])
    card = next(c for c in cards["departments"] if c["department"] == "transport" and c["period"] == "all")
    dept = (out / "d" / "transport" / "index.html").read_text(encoding="utf-8")
    assert f"<td>{card['replied']['numerator']}</td><td>{card['replied']['denominator']}</td>" in dept
    assert f"<td>{card['received']}</td>" in dept
    month = next(h for h in cards["headlines"] if h["period"] == "2026-11")
    report = (out / "r" / "month" / "2026-11" / "index.html").read_text(encoding="utf-8")
    assert f"<td>{month['received']}</td>" in report
    assert (f"{100 * month['reply_rate']['value']:.1f}% <small>{month['reply_rate']['numerator']}/"
            f"{month['reply_rate']['denominator']}</small>") in report


def test_petition_page_has_timeline_deadlines_and_commits(built):
    repo, out = built
    page = (out / "p" / "2026-000002.html").read_text(encoding="utf-8")
    assert "市交通运输局" in page
    # 5 working days after 2026-11-10 (Tue): 11, 12, 13, 16, 17 -> due end of 17 Nov.
    assert "2026-11-18 00:00" in page and "第5个工作日：2026-11-17" in page
    assert "已逾期" in page
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert head[:10] in page
    en = (out / "en" / "p" / "2026-000002.html").read_text(encoding="utf-8")
    assert "Overdue" in en and "Working day 5: 2026-11-17" in en
    assert 'href="/p/2026-000002.html"' in en and 'href="/en/p/2026-000002.html"' in page


def test_reports_name_as_best_only_cases_handled_well_and_as_worst_only_cases_handled_badly(built):
    _, out = built
    lines = (out / "data" / "cases.jsonl").read_text(encoding="utf-8").splitlines()
    cases = {c["id"]: c for c in map(json.loads, lines)}

    def late(c):
        return any(s["status"] in ("late", "overdue") for s in c["stages"])

    reports = sorted(out.glob("r/*/*/index.html"))
    assert reports
    for page in reports:
        html = page.read_text(encoding="utf-8")
        _, best_part, rest = re.split(r"<h2>办理较好的诉求</h2>|<h2>办理较差的诉求</h2>", html)
        worst_part = rest.split("<h2>", 1)[0]
        best, worst = (re.findall(r'href="/p/(\d{4}-\d{6})\.html"', part) for part in (best_part, worst_part))
        assert not set(best) & set(worst), page
        for pid in best:
            c = cases[pid]
            assert c["status"] == "closed" and not late(c) and c["rating"] != "dissatisfied", (page, pid)
        for pid in worst:
            assert late(cases[pid]) or cases[pid]["rating"] == "dissatisfied", (page, pid)
        if page.parent.name == "2026-11":  # every petition of the archive was received in 2026-11
            assert sorted(worst) == sorted(pid for pid, c in cases.items() if late(c) or c["rating"] == "dissatisfied")
            assert sorted(best) == sorted(pid for pid, c in cases.items()
                                          if c["status"] == "closed" and not late(c) and c["rating"] != "dissatisfied")
            assert worst and (best or "<p>无</p>" in best_part)


def test_listings_feeds_and_open_data(built):
    _, out = built
    assert "2026-000003" in (out / "l" / "status" / "overdue" / "index.html").read_text(encoding="utf-8")
    assert "2026-000001" in (out / "l" / "status" / "closed" / "index.html").read_text(encoding="utf-8")
    rows = [json.loads(line) for line in (out / "data" / "cases.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == ["2026-000001", "2026-000002", "2026-000003"]
    assert {r["id"]: r["status"] for r in rows}["2026-000001"] == "closed"
    assert (out / "data" / "cases.csv").read_text().splitlines()[0].startswith("id,received_at,")
    # one header line, then the events: 5 + 2 + 1
    assert len((out / "data" / "events.csv").read_text().splitlines()) == 1 + 5 + 2 + 1
    feed = (out / "feeds" / "petitions.xml").read_text(encoding="utf-8")
    assert feed.count("<entry>") == 3 and "公交站台遮雨棚漏水" in feed
    assert (out / "feeds" / "p" / "2026-000001.xml").is_file()
    svg = (out / "d" / "housing" / "on-time.svg").read_text(encoding="utf-8")
    assert "<title" in svg and "<desc" in svg and "2026-11: 100.0" in svg
    # The open-data page offers what the site holds, described in its language, and no link leads nowhere.
    for page, words in ((out / "open-data" / "index.html", "一行一件诉求"),
                        (out / "en" / "open-data" / "index.html", "one petition per line")):
        html = page.read_text(encoding="utf-8")
        article = html.split("<article", 1)[1].split("</article>", 1)[0]
        links = re.findall(r'<a href="([^"#]+)"', article)
        assert links and words in html and "一行一件诉求 /" not in html
        for link in links:
            assert not link.endswith(".md") and "://" not in link, (page, link)
            assert (out / link.lstrip("/")).exists() or (out / link.lstrip("/") / "index.html").exists(), (page, link)


def manifest(folder: Path) -> dict[str, str]:
    """The manifest of the site ``folder``, kept beside it (build state, not published)."""
    from generator.render.writer import manifest_path

    return json.loads(manifest_path(folder).read_text(encoding="utf-8"))


def test_same_commit_and_now_give_the_same_bytes(built, tmp_path, monkeypatch):
    """Every file is byte-identical, Pagefind's shards included (Pagefind 1.5
    writes its filters in hash-map order, which the build puts in order:
    generator/render/pagefind_job.py), whether the cases are read or kept."""
    repo, out = built
    shutil.rmtree(repo / ".git" / "wenzheng-cache")
    # This time the cases are read and evaluated in the check's worker processes...
    monkeypatch.setattr("generator.check.POOL_FROM", 1)
    again = tmp_path / "again"
    build_site(repo, "HEAD", datetime.fromisoformat(NOW), again)
    # ...and then the settled ones come from the cache (generator/settled.py),
    # with the downloads, listings and pages made in the build process, as when
    # forking it would not fit in memory.
    monkeypatch.setattr("generator.build.room_to_fork", lambda children: False)
    third = tmp_path / "third"
    build_site(repo, "HEAD", datetime.fromisoformat(NOW), third)
    assert list((repo / ".git" / "wenzheng-cache").glob("settled-site-*"))

    assert tree(again) == tree(out) == tree(third)
    assert manifest(again) == manifest(out) == manifest(third)
    for folder in (out, again, third):
        entries = [json.loads(p.read_text()) for p in sorted((folder / "pagefind").glob("*/pagefind-entry.json"))]
        assert sum(e["languages"]["zh"]["page_count"] for e in entries) == 3


def test_one_reply_rewrites_only_what_changed_and_a_bad_build_keeps_the_site(tmp_path):
    repo = small_archive(tmp_path / "repo")
    out = tmp_path / "site"
    now = datetime.fromisoformat(NOW)
    first = build_site(repo, "HEAD", now, out)
    before = tree(out)
    drawings = repo / ".git" / "wenzheng-cache" / "site"
    drawn_before = {p.name for p in drawings.glob("chart-*.svg")}
    shard = out / "pagefind" / "2026-11"
    inodes = {p: p.stat().st_ino for p in shard.rglob("*") if p.is_file()}
    add_reply(repo)
    second = build_site(repo, "HEAD", now, out)
    after = tree(out)
    # The month is indexed again; Pagefind's files that came out the same
    # (the other petitions' fragments) were not moved in: the site's stay.
    assert second.search_shards == ["2026-11"]
    kept = [p for p in shard.rglob("*") if p.is_file() and inodes.get(p) == p.stat().st_ino]
    assert any(p.suffix == ".pf_fragment" for p in kept) and (shard / "pagefind.js") in kept
    assert all(before[p.relative_to(out).as_posix()] == after[p.relative_to(out).as_posix()] for p in kept)
    assert {k for k in manifest(out) if k.startswith("pagefind/2026-11/")} == \
        {p.relative_to(out).as_posix() for p in shard.rglob("*") if p.is_file()} | {"pagefind/2026-11/.key"}
    # The reply changes the department's trend: its new drawing replaces the old one in the cache.
    drawn_after = {p.name for p in drawings.glob("chart-*.svg")}
    assert drawn_after != drawn_before and len(drawn_after) == len(drawn_before)
    changed = {p for p in after if before.get(p) != after[p]}
    assert "p/2026-000002.html" in changed and "p/2026-000001.html" not in changed
    assert "p/2026-000003.html" not in changed and "en/p/2026-000001.html" not in changed
    assert second.written < first.written / 2
    assert REPLY_PHRASE in (out / "p" / "2026-000002.html").read_text(encoding="utf-8")
    # A broken record: the build fails, names the file, and the site stays as it was.
    commit(repo, {"petitions/2026/11/2026-000002/20261121T050000Z-reply.yaml": "kind: reply\nat: nonsense\n"},
           "bad record", when="2026-11-21T14:00:00+08:00")
    with pytest.raises(BuildError) as info:
        build_site(repo, "HEAD", now, out)
    assert any("20261121T050000Z-reply.yaml" in p.path for p in info.value.problems)
    assert tree(out) == after
    result = CliRunner().invoke(main, ["build", "--repo", str(repo), "--now", NOW, "--out", str(out)])
    assert result.exit_code == 1 and "unchanged" in result.output


def test_a_settled_case_is_taken_from_the_cache_only_while_its_files_are_in_the_site(tmp_path, monkeypatch):
    """A settled case kept from the last build is not read again while the site
    holds its pages and feed made from the same inputs; a missing page, or a
    change to the code that renders pages, makes it again."""
    from generator.render import pages, products

    repo = small_archive(tmp_path / "repo")
    out = tmp_path / "site"
    now = datetime.fromisoformat(NOW)
    made: list[tuple[str, bool]] = []
    real_make = products.make

    def counting(case, *args, **kwargs):
        result = real_make(case, *args, **kwargs)
        made.append((case.id, result[0].settled_last is not None))
        return result

    monkeypatch.setattr(products, "make", counting)
    build_site(repo, "HEAD", now, out)
    settled = sorted(pid for pid, done in made if done)
    open_ids = sorted(pid for pid, done in made if not done)
    assert settled and open_ids and len(made) == 3
    first = tree(out)

    # The petition folders are as the last build left them: they are not listed again.
    from generator.render.writer import SiteWriter
    listed: list[str] = []
    real_names = SiteWriter.names
    monkeypatch.setattr(SiteWriter, "names", lambda self, folder: listed.append(folder) or real_names(self, folder))
    made.clear()
    build_site(repo, "HEAD", now, out)
    # The settled ones came from the cache; the open ones, evaluated again as
    # of the same moment, from the last build's products (their reuse keys).
    assert made == []
    assert tree(out) == first
    assert listed == []

    for folder, suffix in (("p", ".html"), ("en/p", ".html"), ("feeds/p", ".xml")):
        gone = settled[0]
        (out / folder / f"{gone}{suffix}").unlink()
        made.clear()
        build_site(repo, "HEAD", now, out)
        assert sorted(pid for pid, _ in made) == [gone], folder
        assert tree(out) == first
        assert listed == ["p", "en/p", "feeds/p"]  # the deletion changed the folder: listed
        listed.clear()

    monkeypatch.setattr(pages, "CODE_DIGEST", "another renderer")
    made.clear()
    report = build_site(repo, "HEAD", now, out)
    assert sorted(pid for pid, _ in made) == sorted(open_ids + settled)
    assert report.written >= 3 * len(made)  # every petition's two pages and feed written again


def test_an_open_case_is_made_again_only_when_what_it_is_made_from_changed(tmp_path, monkeypatch):
    """An open case is evaluated again on every build; its products are taken
    from the last build's while its records, their commits, its state and what
    its view takes from ``now`` are the same and the site holds its files. An
    overdue case is late by more at every moment (its download line shows it
    to the hundredth of an hour) and is made again each time; a moment that
    changes a case's state (a due time passed) makes it again too. Either way
    the site is the one a build with nothing kept makes, byte for byte."""
    from datetime import timedelta

    from site_util import event_file, petition

    from generator.render import products

    repo = small_archive(tmp_path / "repo")
    f4 = "petitions/2026/11/2026-000004"  # assigned at 09:30: to be accepted by 12:30, not due yet at 10:00
    path, text = event_file("assigned", "2026-11-22T09:30:00+08:00", "centre", f4, to="transport")
    commit(repo, {f"{f4}/petition.yaml": petition("2026-000004", "2026-11-22T09:00:00+08:00"), path: text},
           "a petition received this morning", when="2026-11-22T09:40:00+08:00")
    out = tmp_path / "site"
    now = datetime.fromisoformat(NOW)
    made: list[str] = []
    real_make = products.make

    def counting(case, *args, **kwargs):
        result = real_make(case, *args, **kwargs)
        if result[0].settled_last is None:
            made.append(case.id)
        return result

    monkeypatch.setattr(products, "make", counting)
    build_site(repo, "HEAD", now, out)
    assert sorted(made) == ["2026-000002", "2026-000003", "2026-000004"]  # the open ones; two overdue

    def comparable(folder: Path) -> dict[str, str]:
        """The site's files and its manifest."""
        files = tree(folder)
        files.update({f"manifest:{k}": v for k, v in manifest(folder).items()})
        return files

    def fresh_site(at: datetime, name: str) -> dict[str, str]:
        """Return :func:`comparable` of a build at ``at`` with nothing kept (the cache moved aside)."""
        cache = repo / ".git" / "wenzheng-cache"
        aside = tmp_path / f"{name}-cache"
        cache.rename(aside)
        try:
            build_site(repo, "HEAD", at, tmp_path / name)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
            aside.rename(cache)
        return comparable(tmp_path / name)

    # A minute later the petition not yet due shows the same: taken as it was.
    made.clear()
    soon = now + timedelta(minutes=1)
    build_site(repo, "HEAD", soon, out)
    assert sorted(made) == ["2026-000002", "2026-000003"]
    assert comparable(out) == fresh_site(soon, "fresh-soon")

    # At 13:00 its acceptance is overdue: made again.
    made.clear()
    later = now.replace(hour=13)
    build_site(repo, "HEAD", later, out)
    assert sorted(made) == ["2026-000002", "2026-000003", "2026-000004"]
    assert comparable(out) == fresh_site(later, "fresh-later")

    # Only the last build's open products are kept, under its config and code.
    assert len(list((repo / ".git" / "wenzheng-cache" / "site").glob("open-products-*.pickle"))) == 1

def test_a_rewritten_history_makes_kept_cases_again_with_their_new_commits(tmp_path, monkeypatch):
    """A settled case kept from the last build shows the commit that added each
    of its records; when the history is rewritten (the last build's commit is
    no longer an ancestor), a kept case whose records now come from another
    commit is made again, and its page names the new commit."""
    from generator import gitio
    from generator.render import products

    repo = small_archive(tmp_path / "repo")
    out = tmp_path / "site"
    now = datetime.fromisoformat(NOW)
    build_site(repo, "HEAD", now, out)
    old = gitio.rev_parse(repo, "HEAD")
    assert old[:10] in (out / "p" / "2026-000001.html").read_text(encoding="utf-8")
    made: list[str] = []
    real_make = products.make

    def counting(case, *args, **kwargs):
        made.append(case.id)
        return real_make(case, *args, **kwargs)

    monkeypatch.setattr(products, "make", counting)
    build_site(repo, "HEAD", now, out)
    assert "2026-000001" not in made  # settled, kept
    _git(repo, "commit", "-q", "--amend", "-m", "initial archive, reworded", when="2026-11-21T12:05:00+08:00")
    new = gitio.rev_parse(repo, "HEAD")
    assert new != old
    made.clear()
    build_site(repo, "HEAD", now, out)
    assert "2026-000001" in made
    page = (out / "p" / "2026-000001.html").read_text(encoding="utf-8")
    assert new[:10] in page and old[:10] not in page


def test_downloads_equal_wenzheng_export_and_only_the_changed_month_is_made_again(tmp_path, root, monkeypatch):
    """The downloads of a four-month archive are `wenzheng export`'s bytes
    (JSON, CSV) before and after a reply to a case of an earlier month; the
    rebuild makes only that month's lines again and copies every other month's
    bytes from the published files, where the build's cache says they lie."""
    from datetime import date

    from generator import gitio, load, synth
    from generator.render import pages, products

    now = datetime.fromisoformat(NOW)
    spec = synth.SynthSpec(count=160, seed=11, start=date(2026, 7, 1), months=4, now=now)
    repo, out = tmp_path / "repo", tmp_path / "site"
    synth.write_repo(spec, repo, extra_files=[(n, (root / n).read_bytes()) for n in ("departments.yaml", "rules.yaml")])
    ranges = load.cache_dir(repo) / "site" / "data-ranges.json"
    # The downloads are made in the build process (not a fork), to be watched.
    monkeypatch.setattr("generator.build.room_to_fork", lambda children: False)
    copied: list[tuple[str, int]] = []
    made_months: list[str] = []
    real_copy, real_unpacked = pages.copy_range, products.PayloadStore.unpacked

    def copy(source, target, offset, length):
        copied.append((Path(target.name).name, length))
        return real_copy(source, target, offset, length)

    def unpacked(self, members):
        if any(frame.function == "_case_downloads" for frame in __import__("inspect").stack()[1:3]):
            made_months.extend({m.lite["month"] for m in members})
        return real_unpacked(self, members)

    monkeypatch.setattr(pages, "copy_range", copy)
    monkeypatch.setattr(products.PayloadStore, "unpacked", unpacked)
    # The scorecards' sums of a month's settled cases are kept (generator.build._scorecard_sums).
    from generator import build as build_module

    summed: list[int] = []  # the number of cases in each sum made

    def accumulate(facts):
        facts = list(facts)
        summed.append(len(facts))
        return real_accumulate(facts)

    real_accumulate = build_module.accumulate
    monkeypatch.setattr(build_module, "accumulate", accumulate)

    def same_as_export() -> None:
        exported, folder = tmp_path / "export.json", tmp_path / "csv"
        shutil.rmtree(folder, ignore_errors=True)
        for args in (["--out", str(exported)], ["--format", "csv", "--out", str(folder)]):
            result = CliRunner().invoke(main, ["export", "--repo", str(repo), "--now", NOW, *args])
            assert result.exit_code == 0, result.output
        assert (out / "data" / "export.json").read_bytes() == exported.read_bytes()
        for name in ("cases.csv", "events.csv", "scorecards.csv"):
            assert (out / "data" / name).read_bytes() == (folder / name).read_bytes(), name
        cases = json.loads(exported.read_bytes())["cases"]
        lines = (out / "data" / "cases.jsonl").read_text(encoding="utf-8").splitlines()
        assert [json.loads(line) for line in lines] == cases
        events = [json.loads(line) for line in (out / "data" / "events.jsonl").read_text(encoding="utf-8").splitlines()]
        rows = (folder / "events.csv").read_text(encoding="utf-8").splitlines()[1:]  # one per event, as exported
        assert [(e["petition"], e["file"]) for e in events] == [tuple(row.split(",")[:2]) for row in rows]

    build_site(repo, "HEAD", now, out)
    same_as_export()
    assert sum(summed) == 160 and len(summed) > 2  # each case once: the open ones, and a sum per month
    months = {json.loads(line)["received_at"][:7] for line in (out / "data" / "cases.jsonl").read_text().splitlines()}
    assert len(months) >= 4 and sorted(made_months) == sorted(months) and not copied
    before = json.loads(ranges.read_text())
    assert sorted(before) == ["cases.csv", "cases.jsonl", "events.csv", "events.jsonl", "export.json"]
    assert all(len(entry["months"]) == len(months) for entry in before.values())

    doc = json.loads((out / "data" / "export.json").read_bytes())
    target = next(c for c in doc["cases"] if c["status"] == "closed" and c["received_at"][:7] == min(months))
    with gitio.ArchiveWriter(repo, "main") as writer:
        writer.commit([(f"{target['folder']}/20261122T010000Z-reopened.yaml",
                        "kind: reopened\nat: 2026-11-22T09:00:00+08:00\nby: centre\nreason: 市民反映问题仍未解决\n"
                        .encode())], "reopen one case", when=int(now.timestamp()), parent=gitio.rev_parse(repo, "main"))
    made_months.clear()
    summed.clear()
    build_site(repo, "HEAD", now, out)
    same_as_export()
    assert made_months == [min(months)]  # the month of the reopened case, alone
    # The open cases are summed, and the settled ones of that month (one fewer now).
    assert len(summed) == 2 and 0 < summed[1] < sum(1 for c in doc["cases"] if c["received_at"][:7] == min(months))
    after = json.loads(ranges.read_text())
    for name, entry in after.items():
        assert len(set(entry["months"]) - set(before[name]["months"])) == 1, name
        # Every other month's bytes were copied from the last build's file.
        assert sorted(length for file, length in copied if file == name) == sorted(
            length for month, (offset, length) in entry["months"].items() if month in before[name]["months"])
    assert len(copied) == 5 * (len(months) - 1)
    # A build of the same archive without the cache (nor a site) makes the same bytes.
    shutil.rmtree(load.cache_dir(repo) / "site")
    clean = tmp_path / "clean"
    build_site(repo, "HEAD", now, clean)
    assert tree(clean / "data") == tree(out / "data")
    # A published download changed by hand since (not what the cache says) is
    # not copied from: the next build makes all of its months again.
    (out / "data" / "events.csv").write_bytes(b"changed\n")
    other = next(c for c in doc["cases"] if c["status"] == "closed" and c["received_at"][:7] == max(months))
    with gitio.ArchiveWriter(repo, "main") as writer:
        writer.commit([(f"{other['folder']}/20261122T020000Z-reopened.yaml",
                        "kind: reopened\nat: 2026-11-22T10:00:00+08:00\nby: centre\nreason: 市民反映问题仍未解决\n"
                        .encode())], "reopen another", when=int(now.timestamp()), parent=gitio.rev_parse(repo, "main"))
    made_months.clear()
    build_site(repo, "HEAD", now, out)
    same_as_export()
    assert sorted(made_months) == sorted(months)


def test_a_second_build_of_the_same_archive_waits_for_the_first(tmp_path, caplog):
    """Builds of one archive share its caches, so they run one at a time: a
    build started while another holds the archive's build lock says so and
    waits, touching nothing, until the lock is released."""
    import fcntl
    import threading
    import time

    from generator import load

    repo = small_archive(tmp_path / "repo")
    now = datetime.fromisoformat(NOW)
    lock_path = load.cache_dir(repo) / "site" / "build.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    done = threading.Event()
    with open(lock_path, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a running build holds it
        worker = threading.Thread(target=lambda: (build_site(repo, "HEAD", now, tmp_path / "site"), done.set()))
        worker.start()
        deadline = time.monotonic() + 30
        while "waiting for another build" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "waiting for another build of this archive to finish" in caplog.text
        time.sleep(1)
        assert not done.is_set() and not (tmp_path / ".site.pending").exists() and not (tmp_path / "site").exists()
    worker.join(120)
    assert done.is_set() and (tmp_path / "site" / "index.html").is_file()


def test_the_trend_charts_are_drawn_ahead_once_and_taken_from_the_cache(built):
    """The build draws the departments' changed trend charts in a process of its
    own (pages.draw_charts) before their pages are made: each drawing once, into
    the site cache, whole (written then renamed); the pages use those drawings."""
    from generator import load
    from generator.check import check_archive
    from generator.export import evaluate_archive
    from generator.render import pages as pg

    repo, out = built
    archive = check_archive(repo, "HEAD")
    cards = evaluate_archive(archive.cases.values(), archive.rules, datetime.fromisoformat(NOW),
                             departments=tuple(archive.departments.departments)).cards
    cache = load.cache_dir(repo) / "site"
    kept = sorted(cache.glob("chart-*.svg"))
    assert kept and not list(cache.glob("chart-*.tmp*"))
    assert pg.draw_charts(sorted(archive.departments.departments), cards, cache) == 0  # the build drew them all
    for path in kept:
        path.unlink()
    assert pg.draw_charts(sorted(archive.departments.departments), cards, cache) == len(kept)
    assert sorted(cache.glob("chart-*.svg")) == kept
    for path in kept:  # each drawing is one that a department's chart was labelled from
        tail = path.read_text(encoding="utf-8")[-300:]
        assert any(page.read_text(encoding="utf-8").endswith(tail) for page in (out / "d").rglob("*.svg"))


def test_golden_files(built):
    """Our pages and data equal the golden copy; to accept an intended change run
    `WENZHENG_REGEN_GOLDEN=1 pytest tests/test_site.py -k golden` and review the diff."""
    _, out = built
    produced = {p.relative_to(out).as_posix(): p.read_text(encoding="utf-8")
                for g in GOLDEN_GLOBS for p in sorted(out.glob(g)) if p.is_file()}
    if os.environ.get("WENZHENG_REGEN_GOLDEN"):
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for rel, text in produced.items():
            (GOLDEN / rel).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / rel).write_text(text, encoding="utf-8")
    expected = {p.relative_to(GOLDEN).as_posix(): p.read_text(encoding="utf-8")
                for p in sorted(GOLDEN.rglob("*")) if p.is_file()}
    assert sorted(produced) == sorted(expected)
    generator = re.compile(r'<meta name="generator" content="([^"]*)">')
    for rel in expected:
        made, kept = generator.search(produced[rel]), generator.search(expected[rel])
        if made and kept and made[1] != kept[1]:  # a page names the versions that made it
            pytest.fail(f"{rel} was made with {made[1]}, the golden copy with {kept[1]}: install the versions in "
                        "constraints.txt (`make test` does), or after `make lock` regenerate the golden copy")
        assert produced[rel] == expected[rel], rel


def test_a_build_killed_while_moving_its_files_in_is_completed_by_the_next(tmp_path, monkeypatch):
    """The commit phase is journalled: a crash after some files were moved into
    the site leaves a journal, and the next build rolls it forward, giving the
    same site as a clean build of the same commit."""
    import generator.render.writer as writer

    repo = small_archive(tmp_path / "repo")
    out = tmp_path / "site"
    now = datetime.fromisoformat(NOW)
    build_site(repo, "HEAD", now, out)
    add_reply(repo)
    real_replace, calls = os.replace, []

    def dies_on_the_fourth(src, dst):  # the fourth file moved into the site (not the build's cache)
        if Path(dst).is_relative_to(out):
            calls.append(dst)
            if len(calls) == 4:
                raise OSError("power cut")
        real_replace(src, dst)

    monkeypatch.setattr(writer.os, "replace", dies_on_the_fourth)
    with pytest.raises(OSError, match="power cut"):
        build_site(repo, "HEAD", now, out)
    monkeypatch.setattr(writer.os, "replace", real_replace)
    journal, pending = tmp_path / ".site.journal", tmp_path / ".site.pending"
    assert journal.is_file() and pending.is_dir()
    plan = json.loads(journal.read_text())
    assert "p/2026-000002.html" in plan["write"]
    # The new manifest waits beside the last one, moved in with the files.
    waiting = tmp_path / ".site.manifest.json.next"
    assert json.loads(waiting.read_text())["p/2026-000002.html"] != manifest(out)["p/2026-000002.html"]

    assert writer.recover(out) is True
    assert not journal.exists() and not pending.exists() and not waiting.exists()
    clean = tmp_path / "clean"
    build_site(repo, "HEAD", now, clean)

    assert tree(out) == tree(clean)
    assert REPLY_PHRASE in (out / "p" / "2026-000002.html").read_text(encoding="utf-8")
    assert manifest(out) == manifest(clean)


def test_a_large_file_replaced_is_freed_after_the_site_is_in_place(tmp_path, monkeypatch):
    """Replacing a large file (the downloads) frees its blocks, which takes
    time in proportion to its size: the old file keeps a link in the trash
    beside the site while the new one moves in, and is deleted afterwards; a
    trash left by a process that stopped is emptied by the next build."""
    import generator.render.writer as writer

    out = tmp_path / "site"
    first = writer.SiteWriter(out)
    first.start()
    first.file("data/big.jsonl", b"old\n" * 10)
    first.file("small.html", b"<p>old</p>")
    first.finish()
    writer._empty_trash(first.trash)
    assert not first.trash.exists()

    monkeypatch.setattr(writer, "LARGE", 20)  # "big" is 40 bytes, "small" 10
    held: list = []

    class Held:  # the freeing thread, held back to look at the trash
        def __init__(self, target, args, name):
            held.append((target, args))

        def start(self):
            pass

    monkeypatch.setattr(writer.threading, "Thread", Held)
    second = writer.SiteWriter(out)
    second.start()
    second.file("data/big.jsonl", b"new\n" * 10)
    second.file("small.html", b"<p>new</p>")
    second.finish()
    assert (out / "data" / "big.jsonl").read_bytes() == b"new\n" * 10
    assert (out / "small.html").read_bytes() == b"<p>new</p>"
    kept = [p.read_bytes() for p in second.trash.iterdir()]
    assert b"old\n" * 10 in kept and b"<p>old</p>" not in kept  # large files only (the manifest is one too)
    assert len(held) == 1 and held[0][1][0] == second.trash

    monkeypatch.undo()
    writer._freeing.pop(second.trash, None)  # as if that process had stopped
    third = writer.SiteWriter(out)
    third.start()
    assert not third.trash.exists()
    third.file("data/big.jsonl", b"newer\n" * 10)
    third.finish()
    writer._empty_trash(third.trash)  # waits for the freeing thread
    assert not third.trash.exists() and (out / "data" / "big.jsonl").read_bytes() == b"newer\n" * 10


@pytest.mark.parametrize("kept_as", [".wenzheng-manifest.json", ".wenzheng-manifest.json.gz"])
def test_a_site_with_the_manifest_of_earlier_versions_is_still_built_incrementally(tmp_path, kept_as):
    """Earlier versions kept the manifest in the site, plain or gzipped: the
    first build after an upgrade reads it (rewriting only what changed),
    deletes it from the site and keeps it beside the site."""
    import generator.render.writer as writer

    out = tmp_path / "site"
    first = writer.SiteWriter(out)
    first.start()
    first.file("a.html", b"<p>a</p>")
    first.file("b.html", b"<p>b</p>")
    first.finish()
    state = writer.manifest_path(out)
    assert state == tmp_path / ".site.manifest.json" and sorted(p.name for p in out.iterdir()) == ["a.html", "b.html"]
    data = state.read_bytes()
    (out / kept_as).write_bytes(gzip.compress(data) if kept_as.endswith(".gz") else data)
    state.unlink()

    second = writer.SiteWriter(out)
    second.start()
    assert set(second.old_manifest) == {"a.html", "b.html"}
    second.file("a.html", b"<p>a</p>")
    second.file("b.html", b"<p>b, changed</p>")
    second.finish()
    assert (second.written, second.skipped) == (1, 1)
    assert sorted(p.name for p in out.iterdir()) == ["a.html", "b.html"]
    assert set(json.loads(state.read_text(encoding="utf-8"))) == {"a.html", "b.html"}
    assert (out / "b.html").read_bytes() == b"<p>b, changed</p>"


def test_a_busy_recent_month_is_indexed_in_six_parts_and_searched_as_one(monkeypatch):
    """A month of more than SPLIT_ABOVE petitions, ``now``'s or the one before,
    is split into shards by day of receipt (1-5, 6-10, ..., 26 on); older months
    stay whole. The search page still offers the month (or a small year) as
    one choice, searching its shards together, newest first."""
    from generator.render import search

    def view(day: str) -> dict:
        return {"month": day[:7], "year": int(day[:4]), "received": f"{day} 09:00"}

    days = ("2026-10-31", "2026-11-01", "2026-11-05", "2026-11-06", "2026-11-20", "2026-11-21", "2026-11-26",
            "2026-09-01", "2026-09-11", "2026-09-21", "2026-09-30", "2026-10-01")
    views = [view(d) for d in days]
    now = datetime.fromisoformat(NOW)
    monkeypatch.setattr(search, "SPLIT_ABOVE", 3)
    assert search.shard_names(views, now) == ["2026-10", "2026-11-1", "2026-11-1", "2026-11-2", "2026-11-4",
                                              "2026-11-5", "2026-11-6", "2026-09", "2026-09", "2026-09", "2026-09",
                                              "2026-10"]
    sizes = Counter(search.shard_names(views, now))  # petitions a shard
    assert search.choices(sizes) == [search.Choice("2026", ("2026-11-6", "2026-11-5", "2026-11-4", "2026-11-2",
                                                            "2026-11-1", "2026-10", "2026-09"))]
    monkeypatch.setattr(search, "YEAR_SEARCH_LIMIT", 11)  # 2026 has 12
    assert search.choices(sizes) == [search.Choice("2026-11", ("2026-11-6", "2026-11-5", "2026-11-4", "2026-11-2",
                                                               "2026-11-1")),
                                     search.Choice("2026-10", ("2026-10",)),
                                     search.Choice("2026-09", ("2026-09",))]
    # A month later, November is the month before: still split; two months later it is whole.
    assert search.shard_names(views, datetime(2026, 12, 1, tzinfo=now.tzinfo))[1:7] == \
        ["2026-11-1", "2026-11-1", "2026-11-2", "2026-11-4", "2026-11-5", "2026-11-6"]
    assert search.shard_names(views, datetime(2027, 1, 1, tzinfo=now.tzinfo))[1:7] == ["2026-11"] * 6
    monkeypatch.setattr(search, "SPLIT_ABOVE", 6)  # November has six
    assert search.shard_names(views, now) == [v["month"] for v in views]


def test_pagefind_reads_its_records_from_memory_when_it_can(tmp_path):
    """Pagefind's input records go to the in-memory folder when it is there,
    writable and roomy enough, else to the default temporary folder; an
    indexer removes its own folder when it closes."""
    from generator.render import search

    roomy = tmp_path / "shm"
    roomy.mkdir()
    assert search.scratch_dir(roomy, room=1) == str(roomy)
    assert search.scratch_dir(tmp_path / "missing", room=1) is None
    assert search.scratch_dir(roomy, room=1 << 62) is None  # more than any disk has free
    roomy.chmod(0o500)
    try:
        if not os.access(roomy, os.W_OK):  # root may write anyway
            assert search.scratch_dir(roomy, room=1) is None
    finally:
        roomy.chmod(0o700)
    indexer = search.Indexer(scratch=roomy)
    assert indexer.tmp.parent == roomy and indexer.tmp.is_dir()
    indexer.close()
    assert list(roomy.iterdir()) == []


def test_the_commits_that_added_records_are_kept_by_month(tmp_path):
    """The commit that added each record (shown on its page) is kept one file
    per folder month: a later commit rewrites the files of the months it adds
    records to, and a month is read only when one of its paths is asked for."""
    from generator import gitio
    from generator.build import AddedBy, added_by

    repo = small_archive(tmp_path / "repo")
    cache = tmp_path / "cache"
    kept = cache / AddedBy.FORMAT
    first = gitio.rev_parse(repo, "HEAD")
    known, continued = added_by(repo, "HEAD", cache)
    assert not continued
    assert known.get("petitions/2026/11/2026-000002/petition.yaml") == first
    assert known.get("petitions/2026/11/2026-000002/nothing.yaml") == ""
    inodes = {p.name: p.stat().st_ino for p in kept.glob("*.marshal")}
    assert "2026-11.marshal" in inodes

    commit(repo, {"petitions/2025/03/2025-000009/petition.yaml": "id: 2025-000009\n"}, "a record of another month")
    second = gitio.rev_parse(repo, "HEAD")
    known, continued = added_by(repo, "HEAD", cache)
    assert continued
    assert known.get("petitions/2025/03/2025-000009/petition.yaml") == second
    assert known.get("petitions/2026/11/2026-000002/petition.yaml") == first
    after = {p.name: p.stat().st_ino for p in kept.glob("*.marshal")}
    assert after["2026-11.marshal"] == inodes["2026-11.marshal"]  # not written again
    assert set(after) == set(inodes) | {"2025-03.marshal"}

    again = AddedBy(kept)
    assert again.get("petitions/2025/03/2025-000009/petition.yaml") == second
    assert list(again._months) == ["2025-03"]  # only the month asked for was read

    # A record added to a folder already known: each of its records keeps its own commit.
    reply = "petitions/2026/11/2026-000002/20261121T020000Z-note.yaml"
    commit(repo, {reply: "kind: note\n"}, "a record in a folder already known")
    third = gitio.rev_parse(repo, "HEAD")
    known, continued = added_by(repo, "HEAD", cache)
    assert continued and third not in (first, second)
    assert AddedBy(kept).get(reply) == third
    assert AddedBy(kept).get("petitions/2026/11/2026-000002/petition.yaml") == first
    inodes = {p.name: p.stat().st_ino for p in kept.glob("*.marshal")}

    (kept / "2025-03.marshal").unlink()  # a month lost: worked out again from the whole history
    known, continued = added_by(repo, "HEAD", cache)
    assert not continued and known.get("petitions/2025/03/2025-000009/petition.yaml") == second

    (kept / "2026-11.marshal").write_bytes(b"\x00damaged")
    with pytest.raises(RuntimeError, match="delete .*added-by-2 and build again"):
        AddedBy(kept).get("petitions/2026/11/2026-000002/petition.yaml")
    (kept / "2026-11.marshal").write_bytes(marshal.dumps(["not", "a", "dict"]))
    with pytest.raises(RuntimeError, match="a list, not a dict.*delete .*added-by-2 and build again"):
        AddedBy(kept).get("petitions/2026/11/2026-000002/petition.yaml")

    # The format before (one entry per path, in "added-by") is removed, never read.
    old = cache / "added-by"
    old.mkdir()
    (old / "2026-11.marshal").write_bytes(marshal.dumps({"petitions/2026/11/2026-000002/petition.yaml": "x"}))
    shutil.rmtree(kept)
    known, _ = added_by(repo, "HEAD", cache)
    assert not old.exists() and known.get("petitions/2026/11/2026-000002/petition.yaml") == first
