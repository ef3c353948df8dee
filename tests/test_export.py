"""wenzheng export, status and deadline, run in-process on real repositories."""

from __future__ import annotations

import csv
import json
import pickle
import re
import shutil

import pytest
from click.testing import CliRunner

from generator.cli import main
from tests.records_util import event_file, good_case, petition

NOW = "2026-11-22T10:00:00+08:00"


def _archive(make_repo):
    files = good_case()
    # An open complaint assigned on Friday 2026-11-13 at 16:00 to transport,
    # never accepted: accept was due 19:00 that day; resolve (5 working days,
    # day 0 = Fri 13th, skip Sat 14th/Sun 15th, days 16..20) was due at the
    # end of Fri 2026-11-20, so at NOW it is overdue.
    folder = "petitions/2026/11/2026-000002"
    files[f"{folder}/petition.yaml"] = petition("2026-000002", "2026-11-13T15:00:00+08:00")
    path, text = event_file("assigned", "2026-11-13T16:00:00+08:00", "centre", folder, to="transport")
    files[path] = text
    return make_repo(files)


def test_json_export_has_every_case_and_scorecard(make_repo, root):
    repo = _archive(make_repo)
    result = CliRunner().invoke(main, ["export", "--repo", str(repo), "--now", NOW])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    by_id = {c["id"]: c for c in doc["cases"]}
    assert set(by_id) == {"2026-000001", "2026-000002"}
    late = by_id["2026-000002"]
    assert late["status"] == "open" and late["holder"] == "transport"
    resolve = [s for s in late["stages"] if s["stage"] == "resolve"][0]
    assert resolve["due_at"] == "2026-11-21T00:00:00+08:00"
    assert resolve["status"] == "overdue"
    assert late["overdue_level"] == "overdue"
    done = by_id["2026-000001"]
    assert (done["status"], done["resolution"], done["rating"]) == ("closed", "resolved", "satisfied")
    # Every field written is documented.
    documented = set(re.findall(r"^\| `([a-z_]+)`", (root / "docs/export.md").read_text(), re.M))
    documented |= {name for row in re.findall(r"^\| `[^|]+\|", (root / "docs/export.md").read_text(), re.M)
                   for name in re.findall(r"`([a-z_]+)`", row)}
    assert set(done) <= documented, set(done) - documented
    assert set(resolve) <= documented, set(resolve) - documented
    cards = doc["scorecards"]
    housing_all = [c for c in cards["departments"] if c["department"] == "housing" and c["period"] == "all"][0]
    assert housing_all["received"] == 1
    assert housing_all["replied_on_time"]["numerator"] == 1


def test_csv_export_agrees_with_json(make_repo, tmp_path):
    repo = _archive(make_repo)
    out = tmp_path / "csv"
    result = CliRunner().invoke(main, ["export", "--repo", str(repo), "--now", NOW,
                                       "--format", "csv", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with (out / "cases.csv").open(encoding="utf-8") as fh:
        rows = {r["id"]: r for r in csv.DictReader(fh)}
    assert rows["2026-000002"]["resolve_status"] == "overdue"
    assert rows["2026-000002"]["resolve_due_at"] == "2026-11-21T00:00:00+08:00"
    with (out / "events.csv").open(encoding="utf-8") as fh:
        events = list(csv.DictReader(fh))
    assert len(events) == 6
    assert (out / "scorecards.csv").read_text().startswith("department,period,received")


def test_export_csv_needs_a_folder(make_repo):
    result = CliRunner().invoke(main, ["export", "--repo", str(_archive(make_repo)),
                                       "--format", "csv", "--now", NOW])
    assert result.exit_code == 2 and "--out" in result.output


def test_status_shows_the_arithmetic(make_repo):
    repo = _archive(make_repo)
    result = CliRunner().invoke(main, ["status", "2026-000002", "--repo", str(repo), "--now", NOW,
                                       "--lang", "en"])
    assert result.exit_code == 0, result.output
    assert "2026-11-14 skipped: Saturday" in result.output
    assert "Working day 5: 2026-11-20" in result.output
    missing = CliRunner().invoke(main, ["status", "2026-000099", "--repo", str(repo), "--now", NOW])
    assert missing.exit_code == 1 and "no petition 2026-000099" in missing.output


def test_deadline_calculator_matches_the_national_day_fact(root):
    result = CliRunner().invoke(main, ["deadline", "--received", "2025-09-30T15:00:00+08:00",
                                       "--rules", str(root / "rules.yaml"), "--format", "json"])
    assert result.exit_code == 0, result.output
    stages = {(d["stage"], d["basis"]): d for d in json.loads(result.output)}
    # 5 working days after 2025-09-30 15:00 ends at the end of 2025-10-14.
    assert stages[("resolve", "default")]["due_at"] == "2025-10-15T00:00:00+08:00"
    bad = CliRunner().invoke(main, ["deadline", "--received", "2025-09-30T15:00:00"])
    assert bad.exit_code == 2 and "UTC offset" in bad.output


def test_scorecards_table(make_repo):
    result = CliRunner().invoke(main, ["scorecards", "--repo", str(_archive(make_repo)),
                                       "--now", NOW, "--lang", "en"])
    assert result.exit_code == 0, result.output
    assert "Municipal Housing and Urban-Rural Development Bureau" in result.output
    assert "100.0% (1/1)" in result.output
    assert "not ranked" in result.output


@pytest.mark.parametrize("pool", [False, True], ids=["in-process", "worker-processes"])
def test_settled_cases_come_from_the_cache_with_the_same_export(tmp_path, root, pool, monkeypatch):
    """A warm export takes settled cases from the cache (generator/settled.py) and
    gives exactly the bytes a fresh export gives: as of the same now, as of an
    earlier now (before some cached cases' last events), and after a settled
    case is reopened (its tree changes)."""
    from datetime import date, datetime

    from generator import gitio, load, synth

    spec = synth.SynthSpec(count=200, seed=5, start=date(2026, 8, 1), months=4, now=datetime.fromisoformat(NOW))
    if pool:  # read and evaluate the folders in worker processes, as a large archive is
        monkeypatch.setattr("generator.check.POOL_FROM", 1)
    repo = tmp_path / "repo"
    synth.write_repo(spec, repo, extra_files=[(n, (root / n).read_bytes()) for n in ("departments.yaml", "rules.yaml")])
    cache = load.cache_dir(repo)

    def export(now: str, fresh: bool = False) -> bytes:
        if fresh:
            shutil.rmtree(cache, ignore_errors=True)
        out = tmp_path / "export.json"
        result = CliRunner().invoke(main, ["export", "--repo", str(repo), "--now", now, "--out", str(out)])
        assert result.exit_code == 0, result.output
        return out.read_bytes()

    cold = export(NOW, fresh=True)
    stored = sorted(p.name for p in cache.glob("settled-export-*"))
    assert stored, "the cold export keeps its settled cases"
    doc = json.loads(cold)
    settled = [c for c in doc["cases"] if c["status"] != "open"
               and all(s["status"] in ("on_time", "late", "void") for s in c["stages"])]
    assert len(settled) > 50
    assert export(NOW) == cold  # warm, from the cache
    from generator import export as ex
    from generator.check import check_archive
    from generator.settled import SettledCache

    kept = SettledCache(repo, "export")
    now = datetime.fromisoformat(NOW)
    # A run that keeps every case it reads (the escalation run's plain check)
    # does not make the export evaluate the settled ones again.
    assert len(check_archive(repo, "HEAD").cases) == 200
    archive = check_archive(repo, "HEAD", skip_case=kept.skipper(now), transform=ex.summarising(now),
                             keep_case=ex.unsettled)
    assert len(archive.sound) == 200 and len(archive.cases) == 200 - len(settled) == 200 - kept.hits

    def open_cases_kept() -> int:
        return sum(len(pickle.loads(p.read_bytes())[1]) for p in cache.glob("open-cases-*.pickle"))

    earlier = "2026-10-01T10:00:00+08:00"
    warm_earlier = export(earlier)
    assert warm_earlier == export(earlier, fresh=True)
    assert open_cases_kept() > 200 - len(settled)  # open as of October, some settled since
    assert export(NOW) == cold
    assert open_cases_kept() == 200 - len(settled)  # the settled ones are dropped from the open cases' store
    # Reopen a settled case: its folder's tree changes, so it is evaluated again.
    target = next(c for c in settled if c["status"] == "closed")
    export(NOW, fresh=True)
    with gitio.ArchiveWriter(repo, "main") as writer:
        writer.commit([(f"{target['folder']}/20261122T010000Z-reopened.yaml",
                        "kind: reopened\nat: 2026-11-22T09:00:00+08:00\nby: centre\nreason: 市民反映问题仍未解决\n"
                        .encode())], "reopen one case", when=int(datetime.fromisoformat(NOW).timestamp()),
                      parent=gitio.rev_parse(repo, "main"))
    warm = export(NOW)
    assert warm == export(NOW, fresh=True)
    again = {c["id"]: c for c in json.loads(warm)["cases"]}[target["id"]]
    assert again["status"] == "open" and again["reopened"] == 1
