"""The shipped Boston and NYC 311 mappings on the real extracts, checked against the CSV.

The expected figures come from reading the CSV with the csv module here, not
from the importer: rows, closed rows and rows closed by the source's own due
time, per department.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections import Counter
from datetime import datetime

import pytest
import yaml
from click.testing import CliRunner

from generator.check import check_archive
from generator.cli import main
from tests.import_util import MAPPINGS, make_target, realdata

NOW = "2026-01-15T12:00:00-05:00"

CITIES = {
    # city: (csv, mapping, id col, dept col, status col, closed value, closed col, due col, time format)
    "boston": ("boston311/boston311_2022-01_qsv_100.csv", "boston311.yaml", "case_enquiry_id",
               "department", "case_status", "Closed", "closed_dt", "target_dt", "%Y-%m-%d %H:%M:%S"),
    "nyc": ("nyc311/nyc311_2019_qsv_100.csv", "nyc311.yaml", "Unique Key", "Agency", "Status", "Closed",
            "Closed Date", "Due Date", "%m/%d/%Y %I:%M:%S %p"),
}


def expected_from_csv(city: str) -> dict[str, Counter]:
    """Per department id: rows, closed rows, closed rows with a due time, and those closed by it."""
    src, mapping, _, dept_col, status_col, closed_value, closed_col, due_col, fmt = CITIES[city]
    dept_map = yaml.safe_load((MAPPINGS / mapping).read_text(encoding="utf-8"))["values"]["department"]
    out = {"rows": Counter(), "closed": Counter(), "judged": Counter(), "on_time": Counter()}
    with open(realdata() / src, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            dept = dept_map[row[dept_col]]
            out["rows"][dept] += 1
            if row[status_col] != closed_value or not row[closed_col]:
                continue
            out["closed"][dept] += 1
            if row[due_col]:
                out["judged"][dept] += 1
                closed = datetime.strptime(row[closed_col], fmt)
                due = datetime.strptime(row[due_col], fmt)
                out["on_time"][dept] += closed <= due
    return out


def test_boston_ontime_column_agrees_with_the_dates():
    """Boston's own ONTIME/OVERDUE flag agrees with closed_dt <= target_dt on every
    closed row that has a target, so judging by the legacy due time is Boston's view."""
    with open(realdata() / CITIES["boston"][0], newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["closed_dt"] and r["target_dt"]]
    assert rows
    for r in rows:
        assert (r["ontime"] == "ONTIME") == (r["closed_dt"] <= r["target_dt"]), r["case_enquiry_id"]


@pytest.fixture(scope="module", params=sorted(CITIES))
def imported(request, tmp_path_factory):
    """Import one city's extract once for the module's tests (none of them writes to it)."""
    tmp_path = tmp_path_factory.mktemp("realdata")
    city = request.param
    if not (realdata() / CITIES[city][0]).is_file():
        pytest.skip("real data extract not present")
    repo = make_target(tmp_path / city,
                       (MAPPINGS / f"{city}-departments.yaml").read_text(encoding="utf-8"),
                       (MAPPINGS / f"{city}-rules.yaml").read_text(encoding="utf-8"))
    res = CliRunner().invoke(main, [
        "import", str(realdata() / CITIES[city][0]), "--mapping", str(MAPPINGS / CITIES[city][1]),
        "--repo", str(repo), "--now", NOW, "--format", "json"])
    assert res.exit_code == 0, res.output
    return city, repo, json.loads(res.output)


def test_real_extract_imports_whole_and_passes_check(imported):
    city, repo, out = imported
    with open(realdata() / CITIES[city][0], newline="", encoding="utf-8") as fh:
        ids = [r[CITIES[city][2]] for r in csv.DictReader(fh)]
    assert out["rows_read"] == len(ids) == out["new_petitions"]
    assert out["problems"] == []
    archive = check_archive(repo, "main", use_cache=False)
    assert archive.problems == []
    assert sorted(c.petition.legacy.id for c in archive.cases.values()) == sorted(ids)


def test_real_extract_counts_and_on_time_match_the_csv(imported):
    city, repo, _ = imported
    expected = expected_from_csv(city)
    archive = check_archive(repo, "main", use_cache=False)
    got = {"rows": Counter(), "closed": Counter(), "judged": Counter(), "on_time": Counter()}
    for case in archive.cases.values():
        dept = next(e.get("to") for e in case.events if e.kind == "assigned")
        got["rows"][dept] += 1
        closed = [e for e in case.events if e.kind == "closed"]
        if not closed:
            continue
        got["closed"][dept] += 1
        due = case.petition.legacy.due_at
        if due is not None:
            got["judged"][dept] += 1
            got["on_time"][dept] += closed[0].at <= due
    for key in expected:
        assert got[key] == expected[key], key


def test_real_extract_sqlite_scorecards_match_the_csv(imported, tmp_path):
    city, repo, _ = imported
    res = CliRunner().invoke(main, ["export", "--format", "sqlite", "--out", str(tmp_path / "out"),
                                    "--repo", str(repo), "--now", NOW])
    assert res.exit_code == 0, res.output
    expected = expected_from_csv(city)
    con = sqlite3.connect(tmp_path / "out" / "wenzheng.sqlite")
    rows = con.execute("SELECT department, received, closed, judged, on_time FROM legacy_scorecards "
                       "WHERE period = 'all'").fetchall()
    assert {d: (n, c, j, o) for d, n, c, j, o in rows} == {
        d: (expected["rows"][d], expected["closed"][d], expected["judged"][d], expected["on_time"][d])
        for d in expected["rows"]}
    per_dept = dict(con.execute("SELECT department, COUNT(*) FROM cases GROUP BY department"))
    assert per_dept == dict(expected["rows"])
    con.close()


def test_re_importing_a_real_extract_adds_nothing(imported):
    city, repo, _ = imported
    res = CliRunner().invoke(main, [
        "import", str(realdata() / CITIES[city][0]), "--mapping", str(MAPPINGS / CITIES[city][1]),
        "--repo", str(repo), "--now", NOW, "--format", "json"])
    out = json.loads(res.output)
    assert (out["new_petitions"], out["new_events"], out["corrections"], out["commit"]) == (0, 0, 0, None)


def test_real_extract_keeps_no_phone_numbers(imported):
    """Boston's closure texts carry a staff phone number (781-853-9016); it is masked."""
    city, repo, _ = imported
    import subprocess

    dump = subprocess.run(["git", "-C", str(repo), "log", "-p", "--all"], capture_output=True,
                          text=True, check=True).stdout
    assert "781-853-9016" not in dump
    if city == "boston":
        assert "[电话号码已隐去]" in dump
