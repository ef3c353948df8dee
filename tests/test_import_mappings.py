"""Issue #20, items 3 and 4: the shipped mappings on real exports they had not seen,
and the smaller defects, each on a real extract (or a row of one) where there is one.

Expected values are read from the CSV here with the csv module, or written by hand.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from generator import build
from generator import records as r
from generator.cli import main
from tests.import_util import MAPPINGS, ROOT, events_of, make_target, petitions_by_legacy, realdata, tree_files

NOW = "2026-01-15T12:00:00-05:00"


def target(tmp_path: Path, prefix: str, name: str = "archive") -> Path:
    return make_target(tmp_path / name,
                       (MAPPINGS / f"{prefix}-departments.yaml").read_text(encoding="utf-8"),
                       (MAPPINGS / f"{prefix}-rules.yaml").read_text(encoding="utf-8"))


def run_import(repo: Path, source: Path, mapping: Path, *extra: str):
    res = CliRunner().invoke(main, ["import", str(source), "--mapping", str(mapping), "--repo", str(repo),
                                    "--now", NOW, "--format", "json", *extra])
    return res, (json.loads(res.output) if res.output.lstrip().startswith("{") else None)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def check_ok(repo: Path) -> None:
    res = CliRunner().invoke(main, ["check", "--repo", str(repo), "--no-cache"])
    assert res.exit_code == 0, res.output


def require(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"real data extract {path.name} not present")
    return path


# -- the shipped mappings on real exports -------------------------------------------


@pytest.mark.parametrize("name, id_col, due_col", [
    ("boston311_2015-2024_upper_200.csv", "CASE_ENQUIRY_ID", "TARGET_DT"),  # upper-case headers
    ("boston311_2019_ckan_200.csv", "case_enquiry_id", "sla_target_dt"),  # target_dt renamed
])
def test_boston_mapping_takes_its_other_exports(tmp_path, name, id_col, due_col):
    src = require(realdata() / "boston311" / name)
    repo = target(tmp_path, "boston")
    res, out = run_import(repo, src, MAPPINGS / "boston311.yaml")
    assert res.exit_code == 0, res.output
    rows = read_csv(src)
    assert out["new_petitions"] == len(rows) and out["rows_rejected"] == 0
    pets = petitions_by_legacy(tree_files(repo))
    assert set(pets) == {row[id_col] for row in rows}
    for row in rows:
        legacy = pets[row[id_col]][1]["legacy"]
        if row[due_col]:
            due = datetime.fromisoformat(legacy["due_at"])
            assert due.replace(tzinfo=None) == datetime.strptime(row[due_col], "%Y-%m-%d %H:%M:%S")
        else:
            assert "due_at" not in legacy
    check_ok(repo)


def test_nyc_mapping_takes_the_2013_export(tmp_path):
    """The 2013 export lacks `Resolution Description` and `Open Data Channel Type`, and has HRA."""
    src = require(realdata() / "nyc311" / "nyc311_2013-12-25_200.csv")
    repo = target(tmp_path, "nyc")
    res, out = run_import(repo, src, MAPPINGS / "nyc311.yaml")
    assert res.exit_code == 0, res.output
    rows = read_csv(src)
    assert "Resolution Description" not in rows[0] and "Open Data Channel Type" not in rows[0]
    assert out["new_petitions"] == len(rows)
    files = tree_files(repo)
    pets = petitions_by_legacy(files)
    assert {p["channel"] for _, p in pets.values()} == {"phone"}  # defaults.channel
    hra = [row["Unique Key"] for row in rows if row["Agency"] == "HRA"]
    assert hra
    folder, _ = pets[hra[0]]
    assert events_of(files, folder)  # assigned to hra, a department of nyc-departments.yaml
    assert any(e.get("to") == "hra" for e in events_of(files, folder).values())
    closed = {row["Unique Key"] for row in rows if row["Status"] == "Closed" and row["Closed Date"]}
    assert closed
    for key in closed:
        kinds = {e["kind"] for e in events_of(files, pets[key][0]).values()}
        assert kinds == {"assigned", "reply", "closed"}
    check_ok(repo)


def test_sf_mapping_departments_by_pattern_and_pacific_times(tmp_path):
    src = require(realdata() / "sf311" / "sf311_2008-2018_300.csv")
    repo = target(tmp_path, "sf")
    res, out = run_import(repo, src, MAPPINGS / "sf311.yaml")
    assert res.exit_code == 0, res.output
    rows = read_csv(src)
    assert out["new_petitions"] == len(rows)
    files = tree_files(repo)
    pets = petitions_by_legacy(files)
    by_prefix = {"PUC": "public-utilities", "DPW": "public-works", "DBI": "building-inspection",
                 "DPH": "public-health", "311": "customer-service"}
    for row in rows:
        folder, pet = pets[row["unique_key"]]
        # "+00:00" in the export is Pacific local time, not UTC.
        assert pet["received_at"].startswith(row["created_date"][:19].replace(" ", "T"))
        assert pet["received_at"][-6:] in ("-07:00", "-08:00")
        assigned = [e for e in events_of(files, folder).values() if e["kind"] == "assigned"]
        assert assigned[0]["to"] == by_prefix[row["agency_name"].split()[0]]
    check_ok(repo)


def test_uk_foi_long_ids_and_closed_without_a_time(tmp_path):
    src = require(realdata() / "uk_foi_whatdotheyknow" / "wdtk_foi_requests_300.csv")
    repo = target(tmp_path, "uk-foi")
    res, out = run_import(repo, src, MAPPINGS / "uk-foi.yaml")
    assert res.exit_code == 0, res.output
    rows = read_csv(src)
    outside = {"Aberdeen City Council", "Aberdeenshire Council", "Angus Council", "Argyll and Bute Council",
               "Banbridge District Council"}
    kept = [row for row in rows if row["Authority Name"] not in outside
            and row["Status"] != "Withdrawn by the requester"]
    assert out["new_petitions"] == len(kept) and len(out["skipped"]) == len(rows) - len(kept)
    files = tree_files(repo)
    pets = petitions_by_legacy(files)
    long_ids = [row["Request URL"] for row in kept if len(row["Request URL"]) > 80]
    assert long_ids
    for url in long_ids:
        folder, pet = pets[url]
        assert pet["legacy"]["id"] == url  # whole, behind the short petition number
        assert len(folder.rsplit("/", 1)[1]) == len("2024-000001")
    answered = {"Successful", "Partially successful", "Information not held", "Refused",
                "Handled by postal mail"}
    for row in kept:
        folder, pet = pets[row["Request URL"]]
        events = events_of(files, folder)
        kinds = sorted(e["kind"] for e in events.values())
        if row["Status"] in answered:
            assert kinds == ["assigned", "closed", "reply"]
            closing = [e for e in events.values() if e["kind"] in ("reply", "closed")]
            for e in closing:
                assert "未记录办结时间" in e["note"] and "not when" in e["note"]
            closed = next(e for e in closing if e["kind"] == "closed")
            assert closed["at"] == "2025-01-01T00:00:00+00:00"
        else:
            assert kinds == ["assigned"]
        # A date alone is the whole day in London: received at its start.
        d = datetime.strptime(row["Request Date"], "%d/%m/%Y").date()
        assert pet["received_at"].startswith(f"{d.isoformat()}T00:00:00")
    check_ok(repo)


# -- the smaller defects ------------------------------------------------------------


def _boston_rows(*edits: dict[str, str]) -> str:
    """Return the Boston 2022 extract's header and its first rows with ``edits`` applied."""
    src = require(realdata() / "boston311" / "boston311_2022-01_qsv_100.csv")
    rows = read_csv(src)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row, edit in zip(rows, edits):
        writer.writerow({**row, **edit})
    return out.getvalue()


def test_open_row_with_a_placeholder_closed_date_is_open(tmp_path):
    text = _boston_rows({"case_status": "Open", "closed_dt": "1900-01-01 00:00:00"})
    src = tmp_path / "b.csv"
    src.write_text(text, encoding="utf-8")
    repo = target(tmp_path, "boston")
    res, out = run_import(repo, src, MAPPINGS / "boston311.yaml")
    assert res.exit_code == 0, res.output
    (only,) = petitions_by_legacy(tree_files(repo)).values()
    files = tree_files(repo)
    assert [e["kind"] for e in events_of(files, only[0]).values()] == ["assigned"]


def test_closed_row_with_only_a_placeholder_says_so(tmp_path):
    text = _boston_rows({"case_status": "Closed", "closed_dt": "1900-01-01 00:00:00"})
    src = tmp_path / "b.csv"
    src.write_text(text, encoding="utf-8")
    repo = target(tmp_path, "boston")
    res, out = run_import(repo, src, MAPPINGS / "boston311.yaml")
    assert res.exit_code == 1
    (problem,) = out["problems"]
    assert problem["code"] == "closed-without-time" and "placeholder ('1900-01-01 00:00:00')" in problem["message"]
    assert "closed_without_time" in problem["hint"]


def test_long_district_kept_and_longer_one_cut_with_a_warning(tmp_path):
    fenway = "Fenway / Kenmore / Audubon Circle / Longwood"  # a real Boston neighborhood, 44 characters
    too_long = "Neighborhood " * 8  # 104 characters, 103 once the last space goes
    text = _boston_rows({"neighborhood": fenway}, {"neighborhood": too_long})
    src = tmp_path / "b.csv"
    src.write_text(text, encoding="utf-8")
    repo = target(tmp_path, "boston")
    res, out = run_import(repo, src, MAPPINGS / "boston311.yaml")
    assert res.exit_code == 0, res.output
    rows = read_csv(src)
    pets = petitions_by_legacy(tree_files(repo))
    assert pets[rows[0]["case_enquiry_id"]][1]["location"]["district"] == fenway
    cut = pets[rows[1]["case_enquiry_id"]][1]["location"]["district"]
    assert len(cut) == 80 and cut.endswith("…")
    (warning,) = [p for p in out["problems"] if p["code"] == "truncated"]
    assert warning["severity"] == "warning" and warning["line"] == 3 and "'neighborhood'" in warning["message"]
    assert "103 characters" in warning["message"]


def test_public_office_number_kept_other_numbers_masked(tmp_path):
    reply = ("Case Resolved. For bulk item pickup call the Public Works office at 617-635-4900; "
             "resident asked us to call back on (617) 555-0142.")
    text = _boston_rows({"case_status": "Closed", "closure_reason": reply,
                         "closed_dt": "2022-01-22 10:00:00"})
    src = tmp_path / "b.csv"
    src.write_text(text, encoding="utf-8")
    mapping = yaml.safe_load((MAPPINGS / "boston311.yaml").read_text(encoding="utf-8"))
    mapping["privacy"]["public_phones"] = ["617-635-4900"]
    mp = tmp_path / "m.yaml"
    mp.write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
    repo = target(tmp_path, "boston")
    res, out = run_import(repo, src, mp)
    assert res.exit_code == 0, res.output
    assert not out["problems"]
    files = tree_files(repo)
    (folder, _), = petitions_by_legacy(files).values()
    (body,) = [e["body"] for e in events_of(files, folder).values() if e["kind"] == "reply"]
    assert "617-635-4900" in body
    assert "555-0142" not in body and "[电话号码已隐去]" in body


def test_missing_column_hint_lists_whole_names(tmp_path):
    src = require(realdata() / "nyc311" / "nyc311_2019_qsv_100.csv")
    mapping = (MAPPINGS / "nyc311.yaml").read_text(encoding="utf-8").replace(
        "department: Agency", "department: Agency Code")
    mp = tmp_path / "m.yaml"
    mp.write_text(mapping, encoding="utf-8")
    repo = target(tmp_path, "nyc")
    res, out = run_import(repo, src, mp)
    assert res.exit_code == 1
    (problem,) = out["problems"]
    assert problem["code"] == "missing-column" and "'Agency Code'" in problem["message"]
    header = list(read_csv(src)[0])
    listed = problem["hint"].split("the file's columns are: ", 1)[1].split("; ", 1)[0]
    names, _, more = listed.partition(" and ")
    for name in names.split(", "):
        assert name in header, name  # never a name cut mid-word
    shown = len(names.split(", "))
    assert shown == len(header) or more == f"{len(header) - shown} more"


def test_imported_archive_site_is_titled_with_its_city(tmp_path):
    repo = target(tmp_path, "boston")
    config = build._site_config(repo, "HEAD")
    assert config["site_name"] == "波士顿市问政"
    assert config["extra"]["site_name_en"] == "City of Boston Wenzheng"
    assert "明湖" not in json.dumps(config, ensure_ascii=False)


def test_department_levels_are_documented():
    text = (ROOT / "docs" / "import.md").read_text(encoding="utf-8")
    section = text.split("### The target archive's departments.yaml", 1)[1].split("\n## ", 1)[0]
    for level in r.DEPARTMENT_LEVELS:
        assert f"`{level}`" in section


def test_deadline_received_error_names_received(tmp_path):
    res = CliRunner().invoke(main, ["deadline", "--received", "2025-09-30 15:00",
                                    "--rules", str(ROOT / "rules.yaml")])
    assert res.exit_code == 2
    assert "--received" in res.output and "--now" not in res.output


# -- a Chinese message board (智慧政务 留言板) XLSX: the department named in the answer --------


def _message_board(tmp_path: Path, rows: list[tuple]) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Sheet1"
    sheet.append(["留言编号", "留言用户", "留言主题", "留言时间", "留言详情", "答复意见", "答复时间"])
    for row in rows:
        sheet.append(list(row))
    path = tmp_path / "board.xlsx"
    book.save(path)
    return path


def test_message_board_department_from_the_answer_and_date_only_times(tmp_path):
    src = _message_board(tmp_path, [
        # A date alone as the answer's time (as the board exports it): the whole day of 24 April.
        (2549, "A00045581", "A市经济学院寒假过年期间组织学生去工厂工作", "2018/4/20 15:51:28",
         "学校组织学生寒假去工厂打工，每天工作十几个小时。",
         "网友您好！您的留言已收悉。经市教育局调查核实，现答复如下：学校已停止该项安排。", "2018/4/24"),
        (2554, "A00023583", "A市西湖建筑集团占道施工有安全隐患", "2019-04-11 14:48:12",
         "建筑集团在人行道上堆放材料。",
         "网友您好！市城市管理局已责令施工方清理，已解决。", "2019-04-15 10:20:00"),
        # An answer that names no unit we know: reported, the others imported.
        (2555, "A00099999", "咨询户籍迁移", "2019/5/6 9:00:00", "如何办理户口迁移？",
         "网友您好！请到户籍所在地派出所办理。", "2019/5/8"),
    ])
    repo = make_target(tmp_path / "archive", (ROOT / "departments.yaml").read_text(encoding="utf-8"),
                       (ROOT / "rules.yaml").read_text(encoding="utf-8"))
    res, out = run_import(repo, src, MAPPINGS / "message-board.yaml")
    assert res.exit_code == 1, res.output  # one row not usable
    assert (out["new_petitions"], out["rows_rejected"]) == (2, 1)
    (problem,) = [p for p in out["problems"] if p["severity"] == "error"]
    assert problem["line"] == 4 and problem["code"] == "unmapped-department"
    assert "value_patterns.department" in problem["message"]
    files = tree_files(repo)
    pets = petitions_by_legacy(files)
    folder, pet = pets["2549"]
    events = events_of(files, folder)
    assigned = next(e for e in events.values() if e["kind"] == "assigned")
    reply = next(e for e in events.values() if e["kind"] == "reply")
    closed = next(e for e in events.values() if e["kind"] == "closed")
    assert assigned["to"] == "education" and reply["by"] == "education"
    # 24 April in Shanghai, not the 23rd: the end of the day named.
    assert reply["at"].startswith("2018-04-24T23:59:5") and closed["at"] == "2018-04-24T23:59:59+08:00"
    assert "A00045581" not in json.dumps(files, ensure_ascii=False)  # the poster's account never read
    folder, _ = pets["2554"]
    events = events_of(files, folder)
    assert next(e for e in events.values() if e["kind"] == "assigned")["to"] == "urban-management"
    check_ok(repo)


def test_uk_foi_reimport_with_a_later_export_time_adds_nothing(tmp_path):
    """The stand-in closing time moves with each export; the records written stay, unwarned."""
    src = require(realdata() / "uk_foi_whatdotheyknow" / "wdtk_foi_requests_300.csv")
    repo = target(tmp_path, "uk-foi")
    res, _ = run_import(repo, src, MAPPINGS / "uk-foi.yaml")
    assert res.exit_code == 0, res.output
    later = tmp_path / "later.yaml"
    later.write_text((MAPPINGS / "uk-foi.yaml").read_text(encoding="utf-8").replace(
        '"2025-01-01T00:00:00+00:00"', '"2025-06-01T00:00:00+01:00"'), encoding="utf-8")
    res, out = run_import(repo, src, later)
    assert res.exit_code == 0, res.output
    assert (out["new_petitions"], out["new_events"], out["commit"]) == (0, 0, None)
    assert not [p for p in out["problems"] if p["code"] == "changed-event"]
