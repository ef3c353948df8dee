"""Open311 GeoReport v2 and SQLite exports of a small archive written by hand."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.cli import main
from tests.records_util import event_file, good_case, petition

NOW = "2026-11-25T12:00:00+08:00"

# GeoReport v2, GET requests: every field of a service request and its JSON type
# (str or None; lat/long numbers or None), from the spec at wiki.open311.org/GeoReport_v2.
REQUEST_FIELDS = {
    "service_request_id": (str,), "status": (str,), "status_notes": (str, type(None)),
    "service_name": (str,), "service_code": (str,), "description": (str, type(None)),
    "agency_responsible": (str, type(None)), "service_notice": (str, type(None)),
    "requested_datetime": (str,), "updated_datetime": (str, type(None)),
    "expected_datetime": (str, type(None)), "address": (str, type(None)),
    "address_id": (str, type(None)), "zipcode": (str, type(None)),
    "lat": (float, int, type(None)), "long": (float, int, type(None)), "media_url": (str, type(None)),
}
# GET services: each service's fields.
SERVICE_FIELDS = {"service_code": (str,), "service_name": (str,), "description": (str,),
                  "metadata": (bool,), "type": (str,), "keywords": (str,), "group": (str,)}
# W3C ISO 8601 with a zone, as the spec requires for every date/time.
W3C_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:Z|[+-]\d\d:\d\d)$")

OPEN_FOLDER = "petitions/2026/11/2026-000002"
GONE_FOLDER = "petitions/2026/11/2026-000003"


@pytest.fixture
def archive(make_repo):
    files = good_case()  # 2026-000001: housing, replied, closed, rated satisfied
    files[f"{OPEN_FOLDER}/petition.yaml"] = petition(
        "2026-000002", "2026-11-20T14:00:00+08:00", category="help",
        extra="legacy: {system: oldhotline, id: 'L-9', due_at: '2026-11-27T18:00:00+08:00', status: 办理中}\n")
    path, text = event_file("assigned", "2026-11-20T14:10:00+08:00", "centre", OPEN_FOLDER, to="transport")
    files[path] = text
    files[f"{GONE_FOLDER}/petition.yaml"] = petition("2026-000003", "2026-11-21T08:00:00+08:00")
    path, text = event_file("rejected", "2026-11-21T09:00:00+08:00", "centre", GONE_FOLDER,
                            reason_code="spam")
    files[path] = text
    return make_repo(files)


def export(repo: Path, fmt: str, out: Path) -> None:
    res = CliRunner().invoke(main, ["export", "--format", fmt, "--out", str(out), "--repo", str(repo),
                                    "--now", NOW])
    assert res.exit_code == 0, res.output


def test_open311_follows_the_georeport_v2_field_list(archive, tmp_path):
    export(archive, "open311", tmp_path / "o")
    services = json.loads((tmp_path / "o" / "services.json").read_text(encoding="utf-8"))
    requests = json.loads((tmp_path / "o" / "requests.json").read_text(encoding="utf-8"))
    for s in services:
        assert set(s) == set(SERVICE_FIELDS)
        for key, types in SERVICE_FIELDS.items():
            assert isinstance(s[key], types), key
        assert s["type"] in ("realtime", "batch", "blackbox")
    assert {s["service_code"] for s in services} == {
        "consultation", "complaint", "help", "suggestion", "report"}
    assert len(requests) == 3
    for req in requests:
        assert set(req) == set(REQUEST_FIELDS)
        for key, types in REQUEST_FIELDS.items():
            assert isinstance(req[key], types), (key, req[key])
        assert req["status"] in ("open", "closed")
        assert req["service_code"] in {s["service_code"] for s in services}
        for key in ("requested_datetime", "updated_datetime", "expected_datetime"):
            assert req[key] is None or W3C_TIME.match(req[key]), req[key]
    by_id = {r["service_request_id"]: r for r in requests}
    done, open_, gone = by_id["2026-000001"], by_id["2026-000002"], by_id["2026-000003"]
    # Written by hand from the records above.
    assert (done["status"], done["status_notes"], done["updated_datetime"]) == (
        "closed", "已修复。", "2026-11-19T20:00:00+08:00")
    assert done["agency_responsible"].startswith("市住房和城乡建设局")
    # Our deadline, not the legacy one: assigned Fri 2026-11-20 14:10, 5 working
    # days (day 0 Fri 20th; Sat 21st and Sun 22nd skipped; days 23rd..27th) end
    # at the end of Fri 2026-11-27.
    assert (open_["status"], open_["expected_datetime"], open_["service_code"]) == (
        "open", "2026-11-28T00:00:00+08:00", "help")
    assert (gone["status"], gone["agency_responsible"]) == ("closed", None)
    assert open_["address"] == "东湖区"


def test_sqlite_opens_and_answers_queries(archive, tmp_path):
    export(archive, "sqlite", tmp_path / "s")
    con = sqlite3.connect(tmp_path / "s" / "wenzheng.sqlite")
    tables = {n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"metadata", "departments", "cases", "events", "scorecards", "legacy_scorecards"}
    indexes = {n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'index' "
                                         "AND name NOT LIKE 'sqlite_%'")}
    assert {"cases_department", "cases_received_at", "events_kind"} <= indexes
    assert dict(con.execute("SELECT status, COUNT(*) FROM cases GROUP BY status")) == {
        "closed": 1, "open": 1, "rejected": 1}
    # good_case has five events, the open case one, the rejected one one.
    assert con.execute("SELECT COUNT(*) FROM events").fetchone() == (7,)
    assert con.execute(
        "SELECT c.id, d.name_zh FROM cases c JOIN departments d ON d.id = c.department "
        "WHERE c.rating = 'satisfied'").fetchall() == [("2026-000001", "市住房和城乡建设局")]
    row = con.execute("SELECT legacy_system, legacy_id, legacy_due_at, due_at, due_basis, on_time, "
                      "legacy_on_time FROM cases WHERE id = '2026-000002'").fetchone()
    # Both due times side by side (ours worked out in the Open311 test above).
    assert row == ("oldhotline", "L-9", "2026-11-27T18:00:00+08:00", "2026-11-28T00:00:00+08:00",
                   "wenzheng", None, None)
    # 2026-000001: final reply Wed 2026-11-18 15:00, due end of Mon 2026-11-23: on time.
    assert con.execute("SELECT on_time FROM cases WHERE id = '2026-000001'").fetchone() == (1,)
    official = dict(((d, f), (n, den)) for d, f, n, den in con.execute(
        "SELECT department, figure, numerator, denominator FROM scorecards WHERE period = 'all'"))
    assert official[("housing", "replied_on_time")] == (1, 1)
    assert official[("transport", "received")] == (1, None)
    # 2026-11-16 09:00 to 2026-11-19 09:00 is exactly 3 days.
    assert con.execute("SELECT days_to_close FROM cases WHERE id = '2026-000001'").fetchone() == (3.0,)
    assert con.execute("SELECT department, received, closed FROM legacy_scorecards WHERE period = '2026-11' "
                       "ORDER BY department").fetchall() == [("housing", 1, 1), ("transport", 1, 0)]
    kinds = [k for (k,) in con.execute("SELECT kind FROM events WHERE case_id = '2026-000001' ORDER BY seq")]
    assert kinds == ["assigned", "accepted", "reply", "closed", "feedback"]
    meta = dict(con.execute("SELECT key, value FROM metadata"))
    assert meta["timezone"] == "Asia/Shanghai" and meta["cases"] == "3" and len(meta["rev"]) == 40
    con.close()


def test_interop_reads_each_case_as_the_evaluator_does(root):
    """The open-data tables read statuses from the timeline themselves; on the
    whole demo archive (every event kind and outcome) they must agree with the
    evaluator, or the downloads would contradict the site."""
    from datetime import datetime

    from generator import export as ex
    from generator import interop
    from generator.check import check_archive

    archive = check_archive(root)
    ev = ex.evaluate_archive(archive.cases.values(), archive.rules,
                             datetime.fromisoformat(NOW), archive.departments.departments)
    assert len(ev.cases) >= 300
    for case, state in zip(ev.cases, ev.states):
        facts = interop.case_facts(case)
        assert (facts.status, facts.department, facts.closed_at, facts.rating, facts.resolution) == (
            state.status, state.holder, state.closed_at, state.rating, state.resolution), case.id
