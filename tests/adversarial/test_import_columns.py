"""Case-insensitive column names must not pick one of two columns silently.

The attack: a file with both `department` and `DEPARTMENT` (a hand-edited
export, or one column added beside the original). Matching names whatever
their case, the importer must not read whichever comes last.
"""

from __future__ import annotations

import json

from click.testing import CliRunner

from generator.cli import main
from tests.import_util import MAPPINGS, make_target

HEADER = "case_enquiry_id,open_dt,case_status,department,type,source,DEPARTMENT\n"
ROW = "101,2022-01-03 09:00:00,Open,PWDx,Pothole Repair,Constituent Call,BTDT\n"


def test_two_columns_that_differ_only_in_case_are_refused(tmp_path):
    repo = make_target(tmp_path / "a", (MAPPINGS / "boston-departments.yaml").read_text(encoding="utf-8"),
                       (MAPPINGS / "boston-rules.yaml").read_text(encoding="utf-8"))
    src = tmp_path / "b.csv"
    src.write_text(HEADER + ROW, encoding="utf-8")
    res = CliRunner().invoke(main, ["import", str(src), "--mapping", str(MAPPINGS / "boston311.yaml"),
                                    "--repo", str(repo), "--now", "2026-01-15T12:00:00-05:00",
                                    "--format", "json"])
    assert res.exit_code == 1
    out = json.loads(res.output)
    assert out["new_petitions"] == 0
    (problem,) = [p for p in out["problems"] if p["code"] == "ambiguous-column"]
    assert "'department'" in problem["message"] and "'DEPARTMENT'" in problem["message"]
