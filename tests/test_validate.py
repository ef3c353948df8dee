"""Bad input: every problem named with file and line, all at once."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from generator.check import check_archive
from generator.cli import main
from tests.records_util import FOLDER, event_file, good_case, petition, stamp

ROOT_RULES = Path(__file__).resolve().parent.parent / "rules.yaml"


def codes(archive):
    return sorted((p.path, p.code) for p in archive.problems if p.severity == "error")


def test_a_sound_case_has_no_problems(make_repo):
    repo = make_repo(good_case())
    archive = check_archive(repo)
    assert archive.problems == []
    assert list(archive.cases) == ["2026-000001"]
    assert [e.kind for e in archive.cases["2026-000001"].events] == [
        "assigned", "accepted", "reply", "closed", "feedback"]


def test_malformed_yaml_names_file_and_line_and_others_are_still_checked(make_repo):
    files = good_case()
    files[f"{FOLDER}/{stamp('2026-11-16T10:00:00+08:00')}-accepted.yaml"] = (
        "kind: accepted\nat: 2026-11-16T10:00:00+08:00\nby: [housing\n")
    other = "petitions/2026/11/2026-000002"
    files[f"{other}/petition.yaml"] = petition("2026-000002").replace("channel: web", "channel: fax")
    repo = make_repo(files)
    archive = check_archive(repo)
    by_code = {p.code: p for p in archive.problems}
    assert by_code["yaml"].path.endswith("-accepted.yaml")
    assert by_code["yaml"].line == 4  # the flow sequence is never closed; libyaml stops at EOF
    assert by_code["bad-choice"].path == f"{other}/petition.yaml"
    assert by_code["bad-choice"].line == 3
    assert "fax" in by_code["bad-choice"].message and "web" in by_code["bad-choice"].hint


def test_unknown_keys_wrong_types_and_times_without_offset_all_at_once(make_repo):
    text = petition(extra="colour: red\n").replace(
        "received_at: 2026-11-16T09:00:00+08:00", "received_at: 2026-11-16T09:00:00")
    text = text.replace("category: complaint", "category: complain")
    files = {f"{FOLDER}/petition.yaml": text}
    path, ev = event_file("reply", "2026-11-18T15:00:00+08:00", "housing",
                          final="yes", body="好")
    files[path] = ev
    repo = make_repo(files)
    archive = check_archive(repo)
    found = {(p.code, p.line) for p in archive.problems}
    assert ("unknown-key", 10) in found          # colour, line 10 of petition.yaml
    assert ("bad-value", 2) in found             # received_at without offset
    assert ("bad-choice", 4) in found            # complain
    assert ("bad-value", 4) in {(p.code, p.line) for p in archive.problems
                                if p.path == path}  # final: yes is not a bool
    offset = [p for p in archive.problems if p.code == "bad-value" and p.line == 2][0]
    assert "+08:00" in offset.message
    suggestion = [p for p in archive.problems if p.code == "bad-choice"][0]
    assert "complaint" in suggestion.message  # did you mean


def test_impossible_orders(make_repo):
    files = {f"{FOLDER}/petition.yaml": petition()}
    for kind, at, by, fields in [
        ("reply", "2026-11-16T09:10:00+08:00", "housing", {"final": False, "body": "收到"}),
        ("assigned", "2026-11-16T09:30:00+08:00", "centre", {"to": "housing"}),
        ("closed", "2026-11-17T09:00:00+08:00", "centre", {}),
        ("feedback", "2026-11-17T09:30:00+08:00", "petitioner", {"rating": "satisfied"}),
    ]:
        path, text = event_file(kind, at, by, **fields)
        files[path] = text
    path, text = event_file("closed", "2026-11-18T09:00:00+08:00", "centre")
    files[path] = text
    repo = make_repo(files)
    archive = check_archive(repo)
    assert {p.code for p in archive.errors} == {"before-assignment", "closed-twice", "after-terminal"}
    assert archive.cases == {}


def test_unknown_departments_and_wrong_actors(make_repo):
    files = {f"{FOLDER}/petition.yaml": petition()}
    for kind, at, by, fields in [
        ("assigned", "2026-11-16T09:30:00+08:00", "centre", {"to": "housng"}),
        ("accepted", "2026-11-16T10:00:00+08:00", "transport", {}),
        ("extension_decided", "2026-11-16T11:00:00+08:00", "housing",
         {"request": "20261116T020000Z-extension_requested.yaml", "decision": "refused"}),
    ]:
        path, text = event_file(kind, at, by, **fields)
        files[path] = text
    archive = check_archive(make_repo(files))
    msgs = {p.code: p for p in archive.errors}
    assert "housing" in msgs["unknown-department"].message  # did you mean 'housing'?
    assert {"unknown-department", "wrong-actor", "unknown-request"} <= set(msgs)


def test_event_for_unknown_petition_and_duplicate_ids(make_repo):
    files = good_case()
    lonely = "petitions/2026/11/2026-000009"
    path, text = event_file("assigned", "2026-11-16T09:30:00+08:00", "centre", lonely, to="housing")
    files[path] = text
    files.update(good_case("petitions/2026/12/2026-000001"))
    files["petitions/2026/12/2026-000001/petition.yaml"] = petition(
        received_at="2026-12-01T09:00:00+08:00")
    files["petitions/README.txt"] = "stray"
    archive = check_archive(make_repo(files))
    got = codes(archive)
    assert (f"{lonely}/petition.yaml", "missing-petition") in got
    assert ("petitions/2026/12/2026-000001/petition.yaml", "duplicate-id") in got
    assert ("petitions/README.txt", "stray-file") in got


def test_file_name_must_agree_with_content(make_repo):
    files = {f"{FOLDER}/petition.yaml": petition()}
    files[f"{FOLDER}/20261116T013000Z-accepted.yaml"] = (
        "kind: assigned\nat: 2026-11-16T09:31:00+08:00\nby: centre\nto: housing\n")
    archive = check_archive(make_repo(files))
    assert {p.code for p in archive.errors} == {"kind-mismatch", "time-mismatch"}
    mismatch = [p for p in archive.errors if p.code == "time-mismatch"][0]
    assert "20261116T013100Z-assigned.yaml" in mismatch.hint


def test_cli_exit_code_and_json(make_repo):
    files = good_case()
    files[f"{FOLDER}/petition.yaml"] = petition().replace("category: complaint", "category: x")
    repo = make_repo(files)
    runner = CliRunner()
    result = runner.invoke(main, ["check", "--repo", str(repo), "--format", "json"])
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc["errors"] == 1
    assert doc["problems"][0]["path"] == f"{FOLDER}/petition.yaml"
    assert doc["problems"][0]["line"] == 4
    ok = runner.invoke(main, ["check", "--repo", str(make_repo(good_case()))])
    assert ok.exit_code == 0, ok.output
    assert "1 petition folder(s) checked" in ok.output


def test_bad_departments_yaml_reports_everything(make_repo):
    bad = (
        "city: {zh: 明湖市}\n"
        "centre: {id: centre, name: {zh: 中心, en: Centre}, members: []}\n"
        "departments:\n"
        "  - {id: housing, name: {zh: 住建局, en: Housing}, level: city, categories: [complaint]}\n"
        "  - {id: housing, name: {zh: 住建局, en: Housing}, level: city}\n"
        "  - {id: roads, name: {zh: 路, en: Roads}, level: province, parent: nowhere, colour: 1}\n"
    )
    repo = make_repo({"departments.yaml": bad, **good_case()})
    archive = check_archive(repo)
    found = {(p.code, p.line) for p in archive.problems}
    assert ("bad-name", 1) in found
    assert ("centre-members", 2) in found
    assert ("duplicate-department", 5) in found
    assert ("bad-level", 6) in found
    assert ("unknown-key", 6) in found
    assert ("not-checked", None) in found


def test_worktree_mode_checks_uncommitted_files(make_repo):
    repo = make_repo(good_case())
    draft = repo / FOLDER / f"{stamp('2026-11-20T10:00:00+08:00')}-reply.yaml"
    draft.write_text("kind: reply\nat: 2026-11-20T10:00:00+08:00\nby: housing\nfinal: maybe\n",
                     encoding="utf-8")
    assert check_archive(repo).ok
    archive = check_archive(repo, worktree=True)
    assert not archive.ok
    assert {p.code for p in archive.errors} >= {"bad-value", "missing-key"}


def test_changed_since_checks_only_the_change(make_repo):
    from tests.conftest import commit_files, git

    files = good_case()
    files.update(good_case("petitions/2026/11/2026-000002", "2026-000002"))
    files["petitions/2026/11/2026-000002/petition.yaml"] = petition("2026-000002")
    repo = make_repo(files)
    base = git(repo, "rev-parse", "HEAD").strip()
    folder3 = "petitions/2026/11/2026-000003"
    commit_files(repo, {f"{folder3}/petition.yaml": petition("2026-000003").replace(
        "channel: web", "channel: pigeon")})
    archive = check_archive(repo, changed_since=base)
    assert archive.folders_checked == 1
    assert [p.path for p in archive.errors] == [f"{folder3}/petition.yaml"]


def test_cached_verdicts_follow_the_config(make_repo):
    from tests.conftest import commit_files

    repo = make_repo(good_case())
    first = check_archive(repo)
    assert first.ok and (repo / ".git/wenzheng-cache").is_dir()
    again = check_archive(repo, need_cases=False)
    assert again.ok and again.folders_checked == 1 and again.cases == {}
    # Drop the housing department: the same folder (same tree id) is now wrong.
    text = (repo / "departments.yaml").read_text(encoding="utf-8")
    start = text.index("  - id: housing")
    end = text.index("  - id: transport")
    commit_files(repo, {"departments.yaml": text[:start] + text[end:]})
    after = check_archive(repo)
    assert "unknown-department" in {p.code for p in after.errors}
    # The verdicts made under the old departments.yaml are gone, not kept beside the new ones.
    stores = {p.name.rsplit("-", 1)[0] for p in (repo / ".git/wenzheng-cache").glob("verdicts-*.pickle")}
    assert stores == {f"verdicts-{after.config_digest}"}


def test_a_damaged_cache_is_rebuilt_not_trusted(make_repo):
    repo = make_repo(good_case())
    check_archive(repo)
    for f in (repo / ".git/wenzheng-cache").iterdir():
        f.write_bytes(b"not a pickle")
    archive = check_archive(repo)
    assert archive.ok and list(archive.cases) == ["2026-000001"]


def test_worker_processes_find_what_one_process_finds(make_repo, monkeypatch):
    """A large archive is read in worker processes (generator.check.POOL_FROM
    folders or more): the problems and the sound cases are the same, whether
    the cases are wanted (export, build) or not (a plain check)."""
    files = good_case()
    other = "petitions/2026/11/2026-000002"
    files[f"{other}/petition.yaml"] = petition("2026-000002").replace("channel: web", "channel: fax")
    third = "petitions/2026/11/2026-000003"
    files[f"{third}/petition.yaml"] = petition("2026-000003")
    repo = make_repo(files)

    def seen(**options):
        archive = check_archive(repo, use_cache=False, **options)
        return sorted((p.path, p.line, p.code) for p in archive.problems), sorted(archive.cases)

    alone = seen(), seen(need_cases=False)
    monkeypatch.setattr("generator.check.POOL_FROM", 1)
    pooled = seen(), seen(need_cases=False)
    assert pooled == alone
    assert alone[0][1] == ["2026-000001", "2026-000003"] and alone[1][1] == []
    assert [code for _, _, code in alone[0][0]] == ["bad-choice"]


def test_cached_cases_are_transformed_in_lower_priority_workers_that_start_at_once(monkeypatch):
    """Cached cases to transform again go to worker processes as soon as
    _transform_stored returns (before its results are asked for), which run
    at TRANSFORM_NICE below the caller; closing the result stops them."""
    import os
    import pickle

    from generator import check

    monkeypatch.setattr(check, "POOL_FROM", 1)
    items = [((f"folder-{i}", "tree"), ([], ()), pickle.dumps(i)) for i in range(6)]
    transforms = check._transform_stored(items, lambda n: (n * n, os.getpid(), os.nice(0)), workers=2)
    try:
        started = [p.pid for p in transforms._pool._processes.values()]
        assert len(started) == 2  # running before anything is read from it
        got = list(transforms)
    finally:
        transforms.close()
    assert [(key[0], value[0]) for key, _, value in got] == [(f"folder-{i}", i * i) for i in range(6)]
    assert {value[1] for _, _, value in got} <= set(started) and os.getpid() not in {value[1] for _, _, value in got}
    assert {value[2] for _, _, value in got} == {min(19, os.nice(0) + check.TRANSFORM_NICE)}
    assert transforms._pool is None
    monkeypatch.setattr(check, "POOL_FROM", 2)
    small = check._transform_stored(items[:1], lambda n: (n, os.getpid()))  # too few: transformed here, when read
    assert [value for _, _, value in small] == [(0, os.getpid())]


def test_a_kept_listing_patched_with_the_changes_equals_a_fresh_listing(make_repo, monkeypatch):
    """The whole-archive listing is kept between checks and patched with what
    changed (generator.load.snapshot_at, reuse=True): after new records, a new
    and a deleted folder, stray files at every depth, a config change and a
    rewritten history, it equals the listing made from scratch, and the check
    reports the same problems."""
    from tests.conftest import commit_files, git

    from generator import load

    other = "petitions/2026/11/2026-000002"
    repo = make_repo({**good_case(), **good_case(other, "2026-000002"), "petitions/README.txt": "stray"})

    whole: list[str] = []  # the listings made from scratch (not patched)
    real_listed = load._listed

    def listed(root, commit, folders):
        if folders is None:
            whole.append(commit)
        return real_listed(root, commit, folders)

    monkeypatch.setattr(load, "_listed", listed)

    def same(patched: bool = True) -> None:
        before = len(whole)
        kept = load.snapshot_at(repo, "HEAD", reuse=True)
        assert (len(whole) == before) is patched
        fresh = load.snapshot_at(repo, "HEAD")
        assert kept.rev == fresh.rev
        assert kept.folders == fresh.folders and kept.config == fresh.config
        assert kept.strays == fresh.strays
        assert codes(check_archive(repo)) == codes(check_archive(repo, use_cache=False))

    same(patched=False)  # the first: listed and kept
    assert list((load.cache_dir(repo)).glob("snapshot-*.marshal"))
    path, text = event_file("accepted", "2026-11-16T10:00:00+08:00", "housing", other)
    third = "petitions/2026/12/2026-000003"
    commit_files(repo, {path: text, **good_case(third, "2026-000003"),
                        "petitions/2026/notes.txt": "stray", "petitions/2026/11/loose.yaml": "stray",
                        f"{third}/drafts/reply.yaml": "stray", "petitions/README.txt": None})
    same()
    commit_files(repo, {name: None for name in good_case(other, "2026-000002")}
                 | {"rules.yaml": (ROOT_RULES.read_text(encoding="utf-8") + "\n# a comment\n"),
                    f"{third}/drafts/reply.yaml": None})
    same()
    assert other not in load.snapshot_at(repo, "HEAD", reuse=True).folders
    # A rewritten history: the kept listing's commit is no longer an ancestor...
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    commit_files(repo, {"petitions/2026/11/elsewhere.txt": "stray"})
    same()
    # ...and then no longer in the repository at all.
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    commit_files(repo, {"petitions/2026/11/elsewhere.txt": "moved"})
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    same(patched=False)  # listed again from scratch
