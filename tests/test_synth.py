"""Tests of the synthetic archive generator (generator/synth.py).

Every property is checked by code written here, independently of the
generator: the roles are replayed from docs/formats.md, working days come
straight from chinese_calendar, file names from records.event_file_name, the
escalation ladder of the shipped rules.yaml is worked out by hand.
"""

from __future__ import annotations

import random
import subprocess
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import chinese_calendar
import pytest
import yaml
from click.testing import CliRunner

from generator import records, synth
from generator.gitio import read_blobs
from generator.cli import main

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=timezone(timedelta(hours=8)))
RULES = synth.load_rules((ROOT / "rules.yaml").read_bytes())
SPEC = synth.SynthSpec(count=300, seed=20261122, start=date(2026, 5, 25), months=6, now=NOW, rules=RULES)


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def git(repo: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True).stdout


def repo_files(repo: Path, rev: str = "HEAD") -> dict[str, bytes]:
    listing = git(repo, "ls-tree", "-r", "-z", rev).split(b"\0")
    paths = {}
    for record in filter(None, listing):
        meta, _, path = record.partition(b"\t")
        paths[path.decode()] = meta.split()[2].decode()
    blobs = read_blobs(repo, paths.values())
    return {path: blobs[oid] for path, oid in paths.items()}


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("archive")
    synth.write_into(SPEC, root)
    return read_tree(root)


@pytest.fixture(scope="module")
def cases(archive) -> dict[str, list[tuple[str, dict]]]:
    """Folder -> [(file name, parsed YAML)] in file-name order."""
    out: dict[str, list[tuple[str, dict]]] = {}
    # petition.yaml first, then the events in file-name (timeline) order
    for path in sorted(archive, key=lambda p: (p.rpartition("/")[0], not p.endswith("/petition.yaml"), p)):
        folder, _, name = path.rpartition("/")
        out.setdefault(folder, []).append((name, yaml.safe_load(archive[path])))
    return out


@pytest.fixture(scope="module")
def departments() -> dict[str, set[str]]:
    data = yaml.safe_load((ROOT / "departments.yaml").read_text())
    return {d["id"]: set(d["categories"]) for d in data["departments"]}


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(tmp_path, archive):
    synth.write_into(SPEC, tmp_path / "again")
    assert read_tree(tmp_path / "again") == archive
    other = synth.SynthSpec(300, 7, SPEC.start, SPEC.months, NOW, rules=RULES)
    synth.write_into(other, tmp_path / "other")
    assert read_tree(tmp_path / "other") != archive


def test_every_event_kind_and_outcome_is_present(cases):
    seen: dict[str, set] = {}
    for events in cases.values():
        for name, data in events[1:]:
            seen.setdefault("kind", set()).add(data["kind"])
            for key in ("resolution", "rating", "reason_code", "decision", "level", "stage", "final"):
                if key in data:
                    seen.setdefault(key, set()).add(data[key])
            if data["kind"] == "correction":
                seen.setdefault("correction", set()).add("retract" if data.get("retract") else "set")
                seen.setdefault("corrects", set()).add(data["corrects"].split("-", 1)[-1])
            if data["kind"] == "clarification_received":
                seen.setdefault("clarified_by", set()).add(data["by"])
    assert seen["kind"] == set(records.EVENT_KINDS)
    assert seen["resolution"] == set(records.RESOLUTIONS)
    assert seen["rating"] == set(records.RATINGS)
    assert seen["reason_code"] == set(records.REJECT_REASONS)
    assert seen["decision"] == set(records.DECISIONS)
    assert seen["level"] == set(records.ESCALATION_LEVELS)
    assert seen["stage"] == {"resolve"}  # the only stage rules.yaml escalates
    assert seen["final"] == {True, False}
    assert seen["correction"] == {"set", "retract"}
    assert {"petition.yaml", "reply.yaml"} <= seen["corrects"]


def test_outcomes_of_whole_cases(cases):
    """Cases end every way a case can end, and some are still open at now."""
    endings: dict[str, int] = {}
    reopened_and_closed_again = 0
    for events in cases.values():
        kinds = [data["kind"] for _, data in events[1:]]
        main_kinds = [k for k in kinds if k not in ("escalated", "correction", "feedback")]
        ending = main_kinds[-1] if main_kinds else "just received"
        endings[ending if ending in ("closed", "rejected", "withdrawn") else "open"] = \
            endings.get(ending if ending in ("closed", "rejected", "withdrawn") else "open", 0) + 1
        if "reopened" in kinds and kinds.index("reopened") < len(kinds) - 1 - kinds[::-1].index("closed"):
            reopened_and_closed_again += 1
    assert set(endings) == {"closed", "rejected", "withdrawn", "open"}
    assert endings["open"] >= 5
    assert reopened_and_closed_again >= 1


def test_times_increase_stop_at_now_and_carry_offsets(cases):
    for folder, events in cases.items():
        assert events[0][0] == "petition.yaml"
        received = events[0][1]["received_at"]
        assert received.utcoffset() == timedelta(hours=8), folder
        last = received
        for name, data in events:
            if name == "petition.yaml":
                continue
            at = data["at"]
            assert isinstance(at, datetime) and at.utcoffset() is not None, (folder, name)
            # the levels one escalation run records share its moment
            assert at > last or (at == last and data["kind"] == "escalated"), (folder, name)
            assert at <= NOW, (folder, name)
            last = at


def test_file_names_match_kind_and_time(cases):
    for folder, events in cases.items():
        for name, data in events:
            if name == "petition.yaml":
                continue
            seq = int(name[:-5].rsplit("-", 1)[1]) if name[:-5].rsplit("-", 1)[1].isdigit() else 1
            assert name == records.event_file_name(data["kind"], data["at"], seq), (folder, name)


def test_folders_and_ids(cases):
    """Folders by local received month; ids sequential per year in received order."""
    petitions = [dict(events)["petition.yaml"] for events in cases.values()]
    for folder, events in cases.items():
        p = dict(events)["petition.yaml"]
        assert folder == f"petitions/{p['received_at']:%Y}/{p['received_at']:%m}/{p['id']}"
    ordered = sorted(petitions, key=lambda p: p["id"])
    assert [p["id"] for p in ordered] == [f"2026-{i:06d}" for i in range(1, 301)]
    times = [p["received_at"] for p in ordered]
    assert times == sorted(times)
    assert times[0] >= datetime(2026, 5, 25, tzinfo=NOW.tzinfo) and times[-1] < NOW


def test_roles_follow_the_formats(cases, departments):
    centre_only = {"assigned", "transferred", "extension_decided", "closed", "reopened", "rejected"}
    holder_only = {"accepted", "reply", "clarification_requested", "extension_requested"}
    ids = {dict(events)["petition.yaml"]["id"] for events in cases.values()}
    for folder, events in cases.items():
        petition = dict(events)["petition.yaml"]
        holder = None
        authors = {"petition.yaml": "centre"}
        ended = False
        closed = False
        for name, data in events:
            if name == "petition.yaml":
                continue
            kind, by = data["kind"], data["by"]
            where = (folder, name)
            assert not ended, f"{where}: event after the case ended"
            if kind in centre_only:
                assert by == "centre", where
            if kind in holder_only:
                assert by == holder, where
            if kind == "assigned":
                assert holder is None and data["to"] in departments, where
                assert petition["category"] in departments[data["to"]], where
                holder = data["to"]
            elif kind == "transferred":
                assert data["from"] == holder and data["to"] in departments and data["to"] != holder, where
                assert data["reason"], where
                holder = data["to"]
            elif kind == "clarification_received":
                assert by in ("petitioner", "centre"), where
            elif kind in ("feedback", "withdrawn"):
                assert by == "petitioner", where
            elif kind == "escalated":
                assert by == "system" and data["department"] == holder, where
            elif kind == "extension_decided":
                assert data["request"] in authors and "extension_requested" in data["request"], where
                assert ("new_due" in data) == (data["decision"] == "approved"), where
            elif kind == "extension_requested":
                assert isinstance(data["new_due"], date) and data["reason"], where
            elif kind == "correction":
                assert data["corrects"] in authors, where
                assert by in (authors[data["corrects"]], "centre"), where
                assert ("set" in data) != bool(data.get("retract")), where
            elif kind == "rejected":
                assert holder is None, where
                if data["reason_code"] == "duplicate":
                    assert data["duplicate_of"] in ids and data["duplicate_of"] < petition["id"], where
                ended = True
            elif kind == "reply":
                assert ("resolution" in data) == data["final"], where
            if kind == "feedback":
                assert closed, f"{where}: feedback before closure"
            if kind == "closed":
                closed = True
            if kind == "reopened":
                closed = False
            if kind == "withdrawn":
                ended = True
            authors[name] = by


def test_yaml_has_the_schema_comment_and_parses(archive):
    for path, content in archive.items():
        first = content.split(b"\n", 1)[0].decode()
        if "-escalated" in path:  # written as `wenzheng escalate` writes it
            assert first == "kind: escalated" and isinstance(yaml.safe_load(content), dict), path
            continue
        schema = "petition" if path.endswith("petition.yaml") else "event"
        assert first == f"# yaml-language-server: $schema=../../../../generator/schemas/{schema}.schema.json"
        assert isinstance(yaml.safe_load(content), dict), path


def test_department_actions_are_mostly_in_office_hours_on_working_days(cases):
    actions = [data["at"] for events in cases.values() for name, data in events
               if name != "petition.yaml" and data["by"] not in ("centre", "petitioner", "system")]
    def in_office(at: datetime) -> bool:
        minutes = at.hour * 60 + at.minute
        return chinese_calendar.is_workday(at.date()) and (
            510 <= minutes <= 720 or 840 <= minutes <= 1050)
    share = sum(map(in_office, actions)) / len(actions)
    assert len(actions) > 500 and share > 0.9
    nights = [p["received_at"] for events in cases.values() for n, p in events if n == "petition.yaml"
              and (p["received_at"].hour < 6 or not chinese_calendar.is_workday(p["received_at"].date()))]
    assert len(nights) > 20  # petitions arrive at night and on rest days too


def test_repository_holds_exactly_the_files_of_into(tmp_path, archive):
    extra = [("departments.yaml", (ROOT / "departments.yaml").read_bytes())]
    summary = synth.write_repo(SPEC, tmp_path / "repo", extra_files=extra)
    files = repo_files(tmp_path / "repo")
    assert files.pop("departments.yaml") == extra[0][1]
    assert files == archive
    assert summary.petitions == 300 and summary.commits == 1
    git(tmp_path / "repo", "fsck", "--strict")
    assert git(tmp_path / "repo", "status", "--porcelain") == b""


def test_monthly_commits_end_at_the_same_tree_and_hold_only_past_records(tmp_path, archive):
    summary = synth.write_repo(SPEC, tmp_path / "repo", commit_per_month=True)
    repo = tmp_path / "repo"
    assert repo_files(repo) == archive
    log = git(repo, "log", "--reverse", "--format=%H %ct").decode().split("\n")
    commits = [line.split() for line in log if line]
    assert len(commits) == summary.commits == 7  # May to November
    previous = 0
    for commit, stamp in commits:
        assert int(stamp) >= previous
        previous = int(stamp)
        for path in git(repo, "diff-tree", "-r", "--root", "--name-only", "--no-commit-id", commit).decode().split():
            name = path.rsplit("/", 1)[1]
            if name != "petition.yaml":
                at = yaml.safe_load(archive[path])["at"]
                assert at.timestamp() <= int(stamp), (commit, path)


def test_repo_with_history_gets_one_more_commit_keeping_its_files(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("hello\n")
    git(repo, "add", "README.md")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    base = git(repo, "rev-parse", "HEAD").decode().strip()
    small = synth.SynthSpec(20, 1, SPEC.start, 1, datetime(2026, 6, 20, tzinfo=NOW.tzinfo), rules=RULES)
    synth.write_repo(small, repo)
    assert git(repo, "rev-parse", "HEAD^").decode().strip() == base
    files = repo_files(repo)
    assert files["README.md"] == b"hello\n" and sum(p.endswith("petition.yaml") for p in files) == 20
    with pytest.raises(synth.SynthError, match="already has petitions/"):
        synth.write_repo(small, repo)


def test_append_changes_adds_next_steps_of_open_cases(tmp_path):
    repo = tmp_path / "repo"
    synth.write_repo(SPEC, repo)
    before = repo_files(repo)
    later = NOW + timedelta(hours=3)
    change = synth.append_changes(repo, 10, seed=5, now=later)
    after = repo_files(repo)
    added = sorted(set(after) - set(before))
    assert added == sorted(change.files) and len(added) == 10
    assert {p for p in before} <= set(after) and all(before[p] == after[p] for p in before)
    assert git(repo, "rev-parse", "HEAD^").decode().strip() == change.base
    for path in added:
        folder = path.rsplit("/", 1)[0]
        data = yaml.safe_load(after[path])
        assert path.rsplit("/", 1)[1] == records.event_file_name(data["kind"], data["at"])
        times = [yaml.safe_load(c)["at"] for p, c in before.items()
                 if p.startswith(folder + "/") and not p.endswith("petition.yaml")]
        assert max(times) < data["at"] <= later
        kinds = [yaml.safe_load(c) for p, c in sorted(before.items()) if p.startswith(folder + "/")]
        holder = [e["to"] for e in kinds if e.get("kind") in ("assigned", "transferred")][-1]
        if data["kind"] in ("accepted", "reply"):
            assert data["by"] == holder
        elif data["kind"] in ("closed", "extension_decided"):
            assert data["by"] == "centre"
    assert git(repo, "status", "--porcelain") == b""


def workday_walk(d: date, n: int) -> date:
    """The n-th working day after (n < 0: before) ``d``, walked with chinese_calendar."""
    step = 1 if n >= 0 else -1
    while n:
        d += timedelta(days=step)
        n -= step * chinese_calendar.is_workday(d)
    return d


def test_local_time_follows_the_rules_calendar_and_office_hours():
    """The actors' clock agrees with walking the days of chinese_calendar and
    with rules.yaml's office hours (08:30-12:00, 14:00-17:30)."""
    rs = RULES.rule_sets[0]
    cal = synth.LocalTime(RULES, rs, 8 * 3600)
    tz = NOW.tzinfo
    rng = random.Random(3)
    for _ in range(300):
        t = datetime(2026, 1, 1, tzinfo=tz) + timedelta(seconds=rng.randrange(300 * 86400))
        n = rng.randrange(0, 16)
        got = cal.moment(cal.working_days_after(cal.seconds(t), n))
        assert got == datetime.combine(workday_walk(t.date(), n), datetime.min.time(), tz), (t, n)
    # National Day 2026: Oct 1-7 off, Sat Oct 10 worked (调休).
    t = cal.seconds(datetime(2026, 9, 30, 15, 0, tzinfo=tz))
    assert cal.moment(cal.working_days_after(t, 1)).date() == date(2026, 10, 8)
    assert cal.moment(cal.working_days_after(t, 3)).date() == date(2026, 10, 10)
    holiday_eve = datetime(2026, 9, 30, 17, 0, tzinfo=tz)
    after = cal.moment(cal.add_office(cal.seconds(holiday_eve), 3600))
    assert after == datetime(2026, 10, 8, 9, 0, tzinfo=tz)  # 30 min before the holiday, 30 after
    assert cal.office_between(cal.seconds(holiday_eve), cal.seconds(after)) == 3600
    assert cal.iso(cal.seconds(holiday_eve)) == "2026-09-30T17:00:00+08:00"


def as_time(value) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def test_escalations_are_the_scheduled_runs_under_the_shipped_rules(cases):
    """Worked out here from chinese_calendar and rules.yaml's text: only the
    resolve stage escalates, for the department holding the case; its due
    time is the end of the 5th working day after the holding began; a level
    (reminder 1 working day before, notice at, supervision 2 and
    accountability 5 working days after the due time) is recorded by the
    hourly run (five past) right after it is crossed, once, and never without
    the levels below."""
    tz = NOW.tzinfo
    offsets = {"reminder": -1, "notice": 0, "supervision": 2, "accountability": 5}
    order = list(offsets)

    def end_of(d: date) -> datetime:
        return datetime.combine(d + timedelta(days=1), datetime.min.time(), tz)

    checked = 0
    levels_seen = set()
    for folder, events in cases.items():
        kinds = {data["kind"] for _, data in events[1:]}
        # clock stops, extensions and reopenings move the due time: the rest is worked by hand
        plain = not kinds & {"clarification_requested", "extension_decided", "reopened"}
        holder = start = None
        recorded: list[tuple[str, datetime, datetime]] = []
        for name, data in events[1:]:
            if data["kind"] in ("assigned", "transferred"):
                holder, start = data["to"], data["at"]
            if data["kind"] != "escalated":
                continue
            level, due, at = data["level"], as_time(data["due_at"]), data["at"]
            assert data["stage"] == "resolve" and data["department"] == holder, (folder, name)
            assert (level, due) not in [(lv, d) for lv, d, _ in recorded], (folder, name)
            below = order[:order.index(level)]
            assert all((lv, due) in [(x, d) for x, d, _ in recorded] for lv in below), (folder, name)
            recorded.append((level, due, at))
            levels_seen.add(level)
            if not plain:
                continue
            due_day = workday_walk(start.astimezone(tz).date(), 5)
            assert due == end_of(due_day), (folder, name)
            crossed = end_of(workday_walk(due_day, offsets[level]))
            assert at == crossed + timedelta(minutes=5), (folder, name)  # the first run after
            checked += 1
    assert levels_seen == set(order)
    assert checked > 50


def test_synth_follows_the_archive_rules_or_says_where_they_are_missing(tmp_path):
    bare = synth.SynthSpec(5, 1, SPEC.start, 1, datetime(2026, 6, 20, tzinfo=NOW.tzinfo))
    with pytest.raises(synth.SynthError, match="has no rules.yaml"):
        synth.write_into(bare, tmp_path / "none")
    (tmp_path / "city").mkdir()
    (tmp_path / "city" / "rules.yaml").write_text("rule_sets: [1]\n", encoding="utf-8")
    with pytest.raises(synth.SynthError, match="rules.yaml has errors"):
        synth.write_into(bare, tmp_path / "city")
    assert not (tmp_path / "city" / "petitions").exists()


def test_text_tables_match_departments_yaml(departments):
    from generator import synth_text
    data = yaml.safe_load((ROOT / "departments.yaml").read_text())
    names = {d["id"]: d["name"]["zh"] for d in data["departments"]}
    assert {k: v[0] for k, v in synth_text.DEPARTMENTS.items()} == names
    assert {k: set(v[1]) for k, v in synth_text.DEPARTMENTS.items()} == departments
    for topic in synth_text.TOPICS:
        for category in topic.categories:
            for district, *_ in synth_text.DISTRICTS:
                found = synth.departments_for(topic, category, district)
                assert found and all(category in departments[d] for d in found), (topic.key, category)


def test_cli_writes_into_a_folder_and_refuses_to_overwrite(tmp_path):
    runner = CliRunner()
    args = ["synth", "--count", "30", "--seed", "4", "--months", "2", "--now", "2026-07-01T09:00:00+08:00",
            "--into", str(tmp_path), "--config-from", str(ROOT)]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "wrote 30 petitions" in result.output
    assert len(list((tmp_path / "petitions").rglob("petition.yaml"))) == 30
    again = runner.invoke(main, args)
    assert again.exit_code != 0 and "--replace" in again.output
    both = runner.invoke(main, ["synth", "--into", str(tmp_path), "--repo", str(tmp_path / "r")])
    assert both.exit_code == 2 and "exactly one of --repo PATH or --into DIR" in both.output
    naive = runner.invoke(main, ["synth", "--into", str(tmp_path / "x"), "--now", "2026-07-01T09:00:00"])
    assert naive.exit_code == 2 and "no UTC offset" in naive.output


def test_cli_help_ends_with_an_example():
    result = CliRunner().invoke(main, ["synth", "--help"])
    assert result.exit_code == 0 and "Example:" in result.output and "wenzheng synth" in result.output
