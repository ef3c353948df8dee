"""wenzheng import on crafted files: good rows in, every bad row reported, re-import adds nothing."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.cli import main
from tests.import_util import ROOT, events_of, git, make_target, petitions_by_legacy, tree_files

NOW = "2026-03-01T12:00:00+08:00"

MAPPING = """\
system: oldhotline
timezone: Asia/Shanghai
columns:
  id: 工单编号
  received_at: 受理时间
  category: 诉求类型
  channel: 来源
  department: 承办单位
  title: 标题
  text: [内容]
  reply_text: 答复内容
  closed_at: 办结时间
  status: 状态
  due_at: 办理时限
  district: 区县
time_formats:
  default: ["%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M"]
values:
  category: {投诉: complaint, 咨询: consultation, 求助: help}
  channel: {电话: phone, 网站: web}
  status: {已办结: closed, 办理中: open}
  department: {住建局: housing, 交通局: transport}
resolution:
  rules:
    - {contains: 不属于, resolution: not_in_remit}
  default: resolved
"""

HEADER = "工单编号,受理时间,诉求类型,来源,承办单位,标题,内容,答复内容,办结时间,状态,办理时限,区县"


def csv_text(*rows: str) -> str:
    return HEADER + "\n" + "\n".join(rows) + "\n"


GOOD_OPEN = "A1,2025-11-03 09:00:00,投诉,电话,住建局,路灯坏了,小区门口路灯坏了三周,,,办理中,2025-11-10 18:00:00,东湖区"
GOOD_CLOSED = ("A2,2025-11-04 10:30:00,咨询,网站,交通局,公交线路咨询,请问12路公交何时恢复,已于11月6日恢复。,"
               "2025-11-06 16:00:00,已办结,2025-11-07 18:00:00,西湖区")


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return make_target(tmp_path / "archive", (ROOT / "departments.yaml").read_text(encoding="utf-8"),
                       (ROOT / "rules.yaml").read_text(encoding="utf-8"))


def run(tmp_path: Path, repo: Path, source: Path, mapping: str = MAPPING, *extra: str):
    mp = tmp_path / "mapping.yaml"
    mp.write_text(mapping, encoding="utf-8")
    return CliRunner().invoke(main, ["import", str(source), "--mapping", str(mp), "--repo", str(repo),
                                     "--now", NOW, "--format", "json", *extra])


def write(tmp_path: Path, text: str, name: str = "src.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def check_ok(repo: Path) -> None:
    res = CliRunner().invoke(main, ["check", "--repo", str(repo), "--no-cache"])
    assert res.exit_code == 0, res.output


def test_good_rows_become_records_in_one_commit(tmp_path, target):
    before = git(target, "rev-parse", "main").strip()
    res = run(tmp_path, target, write(tmp_path, csv_text(GOOD_OPEN, GOOD_CLOSED)))
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert (out["new_petitions"], out["rows_rejected"]) == (2, 0)
    # One commit on top of the config commit.
    assert git(target, "rev-list", "--count", f"{before}..main").strip() == "1"
    check_ok(target)
    files = tree_files(target)
    by_legacy = petitions_by_legacy(files)
    # Ids in received order: A1 (Nov 3) is 2025-000001, A2 (Nov 4) 2025-000002.
    folder1, pet1 = by_legacy["A1"]
    folder2, pet2 = by_legacy["A2"]
    assert folder1 == "petitions/2025/11/2025-000001"
    assert folder2 == "petitions/2025/11/2025-000002"
    assert pet1["legacy"] == {"system": "oldhotline", "id": "A1",
                              "due_at": "2025-11-10T18:00:00+08:00", "status": "办理中"}
    assert pet1["category"] == "complaint" and pet1["channel"] == "phone"
    assert pet1["location"] == {"district": "东湖区"}
    ev1 = events_of(files, folder1)
    assert ev1 == {"20251103T010000Z-assigned.yaml": {
        "kind": "assigned", "at": "2025-11-03T09:00:00+08:00", "by": "centre", "to": "housing"}}
    ev2 = events_of(files, folder2)
    # 16:00 +08:00 is 08:00Z; the reply one second before the closure.
    assert sorted(ev2) == ["20251104T023000Z-assigned.yaml", "20251106T075959Z-reply.yaml",
                           "20251106T080000Z-closed.yaml"]
    reply = ev2["20251106T075959Z-reply.yaml"]
    assert (reply["by"], reply["final"], reply["resolution"], reply["body"]) == (
        "transport", "true", "resolved", "已于11月6日恢复。")


def test_importing_again_adds_nothing_and_an_update_adds_only_new_events(tmp_path, target):
    src = write(tmp_path, csv_text(GOOD_OPEN, GOOD_CLOSED))
    assert run(tmp_path, target, src).exit_code == 0
    head = git(target, "rev-parse", "main").strip()
    again = run(tmp_path, target, src)
    out = json.loads(again.output)
    assert (out["new_petitions"], out["new_events"], out["unchanged"], out["commit"]) == (0, 0, 2, None)
    assert git(target, "rev-parse", "main").strip() == head

    # A1 is now closed, with a later legacy due time; a new row A3 appears.
    updated = csv_text(
        "A1,2025-11-03 09:00:00,投诉,电话,住建局,路灯坏了,小区门口路灯坏了三周,已修复,"
        "2025-11-12 11:00:00,已办结,2025-11-14 18:00:00,东湖区",
        GOOD_CLOSED,
        "A3,2025-12-01 08:00:00,求助,电话,住建局,楼道漏水,楼道漏水,,,办理中,,东湖区")
    before = set(tree_files(target))
    res = run(tmp_path, target, write(tmp_path, updated, "src2.csv"))
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert (out["new_petitions"], out["new_events"], out["corrections"], out["unchanged"]) == (1, 3, 1, 1)
    files = tree_files(target)
    added = sorted(set(files) - before)
    assert added == [
        "petitions/2025/11/2025-000001/20251112T025959Z-reply.yaml",
        "petitions/2025/11/2025-000001/20251112T030000Z-closed.yaml",
        "petitions/2025/11/2025-000001/20260301T040000Z-correction.yaml",
        "petitions/2025/12/2025-000003/20251201T000000Z-assigned.yaml",
        "petitions/2025/12/2025-000003/petition.yaml",
    ]
    # Nothing already written was changed.
    assert all(files[p] == t for p, t in tree_files(target, "main~1").items())
    corr = events_of(files, "petitions/2025/11/2025-000001")["20260301T040000Z-correction.yaml"]
    assert corr["corrects"] == "petition.yaml"
    assert corr["set"]["legacy"] == {"system": "oldhotline", "id": "A1",
                                     "due_at": "2025-11-14T18:00:00+08:00", "status": "已办结"}
    check_ok(target)
    third = json.loads(run(tmp_path, target, write(tmp_path, updated, "src3.csv")).output)
    assert (third["new_petitions"], third["new_events"], third["corrections"]) == (0, 0, 0)


def test_every_bad_row_is_reported_and_nothing_of_them_is_written(tmp_path, target):
    rows = [
        GOOD_OPEN,                                                                       # row 2
        "B1,2025-02-30 09:00:00,投诉,电话,住建局,日期不存在,二月三十日,,,办理中,,东湖区",          # row 3
        "B2,2025-11-05 09:00:00,投诉,电话,住建局,先办结后受理,内容,已处理,2025-11-04 09:00:00,已办结,,东湖区",  # 4
        "B3,2025-11-05 09:00:00,投诉,电话,住建局,重复一,内容,,,办理中,,东湖区",                   # row 5
        "B3,2025-11-06 09:00:00,投诉,电话,住建局,重复二,内容,,,办理中,,东湖区",                   # row 6
        "B4,2025-11-05 09:00:00,投诉,电话,水务局,未知单位,内容,,,办理中,,东湖区",                 # row 7
        "B5,2025-11-05 09:00:00,表扬,电话,住建局,未知类型,内容,,,办理中,,东湖区",                 # row 8
        "B6,2025-11-05 09:00:00,投诉,电话,住建局,办结无时间,内容,,,已办结,,东湖区",               # row 9
        ",2025-11-05 09:00:00,投诉,电话,住建局,没有编号,内容,,,办理中,,东湖区",                    # row 10
        "B7,2025-11-05 25:00:00,投诉,电话,住建局,小时不存在,内容,,,办理中,2025-13-01 00:00:00,东湖区",  # 11
        GOOD_CLOSED,                                                                     # row 12
    ]
    res = run(tmp_path, target, write(tmp_path, csv_text(*rows)))
    assert res.exit_code == 1
    out = json.loads(res.output)
    errors = [p for p in out["problems"] if p["severity"] == "error"]
    by_row: dict[int, set[str]] = {}
    for p in errors:
        by_row.setdefault(p["line"], set()).add(p["code"])
        assert p["path"] == "src.csv" and f"row {p['line']}" in p["message"] and p["hint"]
    assert by_row == {
        3: {"bad-time"}, 4: {"before-received"}, 5: {"duplicate-id"}, 6: {"duplicate-id"},
        7: {"unmapped-department"}, 8: {"unmapped-category"}, 9: {"closed-without-time"},
        10: {"missing-id"}, 11: {"bad-time"},
    }
    # Row 11 has two bad times; both are named.
    assert sum(1 for p in errors if p["line"] == 11) == 2
    assert out["rows_rejected"] == 9 and out["new_petitions"] == 2
    legacy = petitions_by_legacy(tree_files(target))
    assert sorted(legacy) == ["A1", "A2"]
    check_ok(target)


def test_a_missing_column_stops_the_import_and_names_the_mapping_line(tmp_path, target):
    head = git(target, "rev-parse", "main").strip()
    text = csv_text(GOOD_OPEN).replace("区县", "街道")
    res = run(tmp_path, target, write(tmp_path, text))
    assert res.exit_code == 1
    out = json.loads(res.output)
    [problem] = [p for p in out["problems"] if p["code"] == "missing-column"]
    assert problem["path"].endswith("mapping.yaml")
    # `district: 区县` is line 15 of MAPPING (counted by hand).
    assert problem["line"] == 15 and "区县" in problem["message"]
    assert out["new_petitions"] == 0 and git(target, "rev-parse", "main").strip() == head


def test_mapping_errors_come_all_at_once_with_lines(tmp_path, target):
    bad = (MAPPING.replace("timezone: Asia/Shanghai", "timezone: Mars/Olympus")
           .replace("住建局: housing", "住建局: housingg")
           .replace("已办结: closed", "已办结: finished")
           .replace("  id: 工单编号\n", ""))
    res = run(tmp_path, target, write(tmp_path, csv_text(GOOD_OPEN)), bad)
    assert res.exit_code == 1
    probs = {p["code"]: p for p in json.loads(res.output)["problems"]}
    assert set(probs) >= {"bad-timezone", "unknown-department", "bad-mapped-value", "missing-column-key"}
    assert probs["bad-timezone"]["line"] == 2
    # `住建局: housingg` is line 22 of MAPPING, 21 once the id line is gone (counted by hand).
    assert probs["unknown-department"]["line"] == 21 and "housingg" in probs["unknown-department"]["message"]


def test_wrong_encoding_is_reported_per_row_and_a_gb18030_file_is_detected(tmp_path, target):
    declared_utf8 = MAPPING.replace("timezone:", "source: {encoding: utf-8}\ntimezone:")
    # A UTF-8 file with one row pasted in from a GB 18030 export (row 3).
    pasted = "C1,2025-11-05 09:00:00,投诉,电话,住建局,楼道灯,楼道灯坏了,,,办理中,,东湖区\n"
    mixed = ((HEADER + "\n" + GOOD_OPEN + "\n").encode("utf-8") + pasted.encode("gb18030")
             + (GOOD_CLOSED + "\n").encode("utf-8"))
    (tmp_path / "mixed.csv").write_bytes(mixed)
    out = json.loads(run(tmp_path, target, tmp_path / "mixed.csv", declared_utf8).output)
    assert [(p["line"], p["code"]) for p in out["problems"]] == [(3, "bad-encoding")]
    assert out["new_petitions"] == 2

    # A whole GB 18030 file declared as UTF-8: the header cannot be read; nothing is written.
    head = git(target, "rev-parse", "main").strip()
    gbk = csv_text("G1,2025-11-06 09:00:00,投诉,电话,住建局,Street lamp,lamp,,,办理中,,东湖区")
    res = run(tmp_path, target, write(tmp_path, gbk, "gbk.csv", encoding="gb18030"), declared_utf8)
    out = json.loads(res.output)
    assert res.exit_code == 1
    assert [(p["line"], p["code"]) for p in out["problems"]] == [(1, "bad-encoding")]
    assert "gb18030" in out["problems"][0]["hint"]
    assert git(target, "rev-parse", "main").strip() == head
    # Without a declared encoding the same bytes are read as GB 18030.
    out = json.loads(run(tmp_path, target, tmp_path / "gbk.csv").output)
    assert (out["encoding"], out["new_petitions"]) == ("gb18030", 1)
    titles = {d["title"] for _, d in petitions_by_legacy(tree_files(target)).values()}
    assert titles == {"路灯坏了", "公交线路咨询", "Street lamp"}


def test_contact_details_are_masked_before_they_reach_git(tmp_path, target):
    row = ("D1,2025-11-05 09:00:00,投诉,电话,住建局,联系13912345678,请回电13912345678或写信到 zhang.san@example.com，"
           "身份证11010519491231002X,,,办理中,,东湖区")
    res = run(tmp_path, target, write(tmp_path, csv_text(row)))
    assert res.exit_code == 0, res.output
    dump = git(target, "log", "-p", "--all")
    for secret in ("13912345678", "zhang.san@example.com", "11010519491231002X"):
        assert secret not in dump
    pet = next(iter(petitions_by_legacy(tree_files(target)).values()))[1]
    assert pet["title"] == "联系[手机号已隐去]"
    assert "[邮箱已隐去]" in pet["body"] and "[身份证号已隐去]" in pet["body"]


def test_skip_rules_and_dry_run(tmp_path, target):
    mapping = MAPPING + "skip:\n  - {column: 状态, equals: [草稿], reason: drafts are not petitions}\n"
    draft = "E1,2025-11-05 09:00:00,投诉,电话,住建局,草稿,内容,,,草稿,,东湖区"
    head = git(target, "rev-parse", "main").strip()
    res = run(tmp_path, target, write(tmp_path, csv_text(GOOD_OPEN, draft)), mapping, "--dry-run")
    out = json.loads(res.output)
    assert res.exit_code == 0
    assert out["skipped"] == [{"row": 3, "reason": "drafts are not petitions"}]
    assert out["new_petitions"] == 1 and out["commit"] is None
    assert git(target, "rev-parse", "main").strip() == head


def test_xlsx_with_date_cells(tmp_path, target):
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "工单"
    sheet.append(HEADER.split(","))
    sheet.append(["X1", datetime(2025, 11, 3, 9, 0), "投诉", "电话", "住建局", "路灯", "路灯坏了", "已修好",
                  datetime(2025, 11, 5, 17, 30), "已办结", "2025/11/10 18:00", "东湖区"])
    sheet.append([20251104, "2025-11-04 10:00:00", "咨询", "网站", "交通局", "公交", "公交线路", None, None,
                  "办理中", None, None])
    sheet.append(["X3", "not a time", "咨询", "网站", "交通局", "公交", "公交线路", None, None, "办理中", None, None])
    path = tmp_path / "src.xlsx"
    book.save(path)
    res = run(tmp_path, target, path, MAPPING.replace("timezone:", "source: {sheet: 工单}\ntimezone:"))
    out = json.loads(res.output)
    assert [(p["line"], p["code"]) for p in out["problems"]] == [(4, "bad-time")]
    legacy = petitions_by_legacy(tree_files(target))
    assert sorted(legacy) == ["20251104", "X1"]
    assert legacy["X1"][1]["legacy"]["due_at"] == "2025-11-10T18:00:00+08:00"
    files = tree_files(target)
    assert "20251105T093000Z-closed.yaml" in events_of(files, legacy["X1"][0])
    check_ok(target)


def test_batches_make_one_commit_each(tmp_path, target):
    rows = [f"F{i},2025-11-{i + 1:02d} 09:00:00,投诉,电话,住建局,标题{i},内容,,,办理中,,东湖区" for i in range(5)]
    before = git(target, "rev-parse", "main").strip()
    res = run(tmp_path, target, write(tmp_path, csv_text(*rows)), MAPPING, "--batch-size", "2")
    assert res.exit_code == 0, res.output
    assert git(target, "rev-list", "--count", f"{before}..main").strip() == "3"
    check_ok(target)


def test_a_failed_write_leaves_the_branch_as_it_was(tmp_path, target):
    from generator.importer import Plan, write_plan

    # The stream breaks off after the first batch's first file (an interrupted
    # import): the archive writer must not move the branch.
    head = git(target, "rev-parse", "main").strip()
    plan = Plan(files=[("petitions/2025/11/2025-000001/petition.yaml", b"id: x\n"),
                       ("petitions/2025/11/2025-000002/petition.yaml", None)])
    with pytest.raises(TypeError):
        write_plan(target, "main", plan, "broken", datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert git(target, "rev-parse", "main").strip() == head
