"""Attacks on petition ids: another channel takes the id the bridge was about
to use. A bridge submission must keep its own id, its receipt must show its own
case, a rating through it must land on that case, and the pull-request check
must refuse a petition whose id is already in the archive.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner

from generator.cli import main
from tests.bridge.kit import (BridgeServer, close_petition, free_port, git, merge_branch, seed_archive,
                              solve, wait_for, write_config)
from tests.conftest import commit_files
from tests.conftest import git as git_text
from tests.records_util import petition

CST = timezone(timedelta(hours=8))
MINE = "我的诉求：楼下路灯坏了三周"
THEIRS = "热线来电：夜间施工噪音扰民"


@pytest.fixture(scope="module")
def key_pair() -> tuple[str, str]:
    from generator.bridge.privacy import new_key_pair
    return new_key_pair()


def centre_adds_petition(centre: Path, pid: str, at: datetime) -> str:
    """The centre enters a hotline petition straight on main (as an import or a
    clerk's commit does, without the bridge); return its folder."""
    git(centre, "fetch", "-q", "archive", "+refs/heads/main:refs/remotes/archive/main")
    git(centre, "checkout", "-q", "main")
    git(centre, "reset", "-q", "--hard", "archive/main")
    folder = f"petitions/{at.year}/{at.month:02d}/{pid}"
    (centre / folder).mkdir(parents=True)
    (centre / folder / "petition.yaml").write_text(
        f"id: '{pid}'\nreceived_at: '{at.isoformat()}'\nchannel: phone\ncategory: complaint\n"
        f"title: {THEIRS}\nbody: 来电人反映夜间施工。\npetitioner: {{display_name: 市民 c3}}\n", encoding="utf-8")
    git(centre, "add", "-A")
    git(centre, "commit", "-q", "-m", f"hotline petition {pid}")
    git(centre, "push", "-q", "archive", "main")
    return folder


def submit(client: httpx.Client, base: str) -> dict:
    token = client.get(base + "/api/form").json()["form_token"]
    resp = client.post(base + "/api/petitions", json={
        "category": "complaint", "title": MINE, "body": "路灯坏了三周，晚上看不见路。",
        "consent": "yes", "form_token": token, "pow": solve(token)})
    assert resp.status_code == 201, resp.text
    return resp.json()


def bridge_branches(remote: Path) -> list[str]:
    out = git(remote, "for-each-ref", "--format=%(refname:short)", "refs/heads/bridge/")
    return [line for line in out.splitlines() if line]


@pytest.fixture
def archive(tmp_path, key_pair):
    _, recipient = key_pair
    year = datetime.now(CST).year
    remote, centre = seed_archive(tmp_path, year, seq=41)
    port = free_port()
    cfg = write_config(tmp_path, recipient, **{
        "forge.local.remote": str(remote), "forge.local.repo": str(tmp_path / "bridge-clone"),
        "forge.batch.enabled": False, "public_url": f"http://127.0.0.1:{port}", "forge.id_check_seconds": 0.3})
    server = BridgeServer(cfg, port, tmp_path / "bridge.log").start()
    yield server, remote, centre, year
    server.stop()


def test_a_bridge_submission_cannot_take_an_imported_petitions_id(archive):
    server, remote, centre, year = archive
    now = datetime.now(CST).replace(microsecond=0)
    # The bridge started when main's highest id was 41; then the centre enters 42.
    theirs = centre_adds_petition(centre, f"{year}-000042", now - timedelta(minutes=5))
    with httpx.Client() as client:
        made = submit(client, server.url)
        api = server.url + f"/api/receipts/{made['receipt_token']}"
        info = wait_for(lambda: (r := client.get(api).json())["status"] not in ("queued", "batched") and r)
        assert info["status"] == "opened", info  # not merged: nobody merged it yet
        [branch] = bridge_branches(remote)
        merge_branch(centre, branch)
        info = wait_for(lambda: (r := client.get(api).json())["status"] in ("merged", "published") and r)

        mine = info["petition_id"]
        assert mine != f"{year}-000042"
        # both petitions are on main, each with its own text
        listed = git(remote, "ls-tree", "-r", "--name-only", "main", f"petitions/{year}").split()
        [my_file] = [p for p in listed if f"/{mine}/petition.yaml" in p]
        my_record = yaml.safe_load(git(remote, "show", f"main:{my_file}"))
        assert my_record["id"] == mine and my_record["title"] == MINE
        their_record = yaml.safe_load(git(remote, "show", f"main:{theirs}/petition.yaml"))
        assert their_record["title"] == THEIRS and their_record["channel"] == "phone"
        # the receipt shows the submitter's own case
        page = client.get(server.url + f"/receipt/{made['receipt_token']}").text
        assert mine in page and MINE in page and THEIRS not in page
        assert info["title"] == MINE

        # Both cases are closed; a dissatisfied rating through the receipt lands on mine.
        my_folder = my_file.rsplit("/", 1)[0]
        close_petition(centre, theirs, now - timedelta(seconds=30))
        close_petition(centre, my_folder, now - timedelta(seconds=20))
        wait_for(lambda: client.get(api).json()["can_rate"], timeout=20, interval=0.5)
        rated = client.post(api + "/rating", json={"rating": "dissatisfied", "comment": "没有修好"})
        assert rated.status_code == 201 and rated.json()["petition_id"] == mine
        fb_branch = wait_for(lambda: [b for b in bridge_branches(remote) if b != branch])[0]
        [fb_path] = git(remote, "diff", "--name-only", "main", fb_branch).split()
        assert fb_path.startswith(my_folder + "/") and fb_path.endswith("-feedback.yaml")


def test_another_record_at_the_receipts_path_is_not_its_merge(archive):
    server, remote, centre, year = archive
    with httpx.Client() as client:
        made = submit(client, server.url)
        api = server.url + f"/api/receipts/{made['receipt_token']}"
        info = wait_for(lambda: (r := client.get(api).json())["status"] == "opened" and r)
        # The centre, not merging the bridge's pull request, enters a different
        # petition under the same id and folder straight on main.
        now = datetime.fromisoformat(info["received_at"])
        centre_adds_petition(centre, info["petition_id"], now)
        time.sleep(3)  # several polling rounds (forge.poll_seconds is 0.3)
        after = client.get(api).json()
        assert after["status"] not in ("merged", "published"), after
        assert after["can_rate"] is False
        # and the bridge gives up the taken id: a new number, a new pull request
        renumbered = wait_for(lambda: (r := client.get(api).json())["petition_id"] != info["petition_id"] and r)
        assert renumbered["status"] in ("batched", "opened") and renumbered["title"] == MINE


def test_an_id_taken_while_the_pull_request_is_open_is_given_up(archive):
    """The centre imports a petition under the id of the bridge's open pull
    request (in another month's folder). The bridge renumbers, opens a new pull
    request and closes the old one; merged, both petitions keep their own ids."""
    server, remote, centre, year = archive
    with httpx.Client() as client:
        made = submit(client, server.url)
        api = server.url + f"/api/receipts/{made['receipt_token']}"
        first = wait_for(lambda: (r := client.get(api).json())["status"] == "opened" and r)
        [old_branch] = bridge_branches(remote)
        taken = first["petition_id"]
        now = datetime.fromisoformat(first["received_at"])
        other_month = now.replace(month=1, day=2) if now.month != 1 else now.replace(month=2, day=2)
        theirs = centre_adds_petition(centre, taken, other_month)
        info = wait_for(lambda: (r := client.get(api).json())["petition_id"] != taken
                        and r["status"] == "opened" and r)
        [branch] = bridge_branches(remote)
        assert branch == old_branch + "-r1"  # the old pull request (branch) is closed
        merge_branch(centre, branch)
        info = wait_for(lambda: (r := client.get(api).json())["status"] in ("merged", "published") and r)
        mine = info["petition_id"]
        listed = git(remote, "ls-tree", "-r", "--name-only", "main", f"petitions/{year}").split()
        [my_file] = [p for p in listed if f"/{mine}/petition.yaml" in p]
        assert yaml.safe_load(git(remote, "show", f"main:{my_file}"))["title"] == MINE
        assert yaml.safe_load(git(remote, "show", f"main:{theirs}/petition.yaml"))["title"] == THEIRS
        assert not [p for p in listed if f"/{taken}/" in p and not p.startswith(theirs + "/")]


@pytest.fixture
def pr_repo(make_repo) -> Path:
    repo = make_repo({"petitions/2026/10/2026-000001/petition.yaml":
                      petition("2026-000001", "2026-10-16T09:00:00+08:00")})
    git_text(repo, "checkout", "-q", "-b", "pr")
    return repo


def pr_check(repo: Path, author: str = "wenzheng-bridge") -> tuple[int, list[dict]]:
    result = CliRunner().invoke(main, ["check", "--repo", str(repo), "--base", "main", "--author", author,
                                       "--now", "2026-11-20T10:00:00+08:00", "--format", "json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.output)["problems"]


def test_the_pr_check_refuses_an_id_already_in_another_folder(pr_repo):
    new = "petitions/2026/11/2026-000001/petition.yaml"
    commit_files(pr_repo, {new: petition("2026-000001", "2026-11-20T09:40:00+08:00")})
    code, problems = pr_check(pr_repo)
    assert code == 1
    [problem] = [p for p in problems if p["code"] == "id-exists"]
    assert problem["path"] == new and "petitions/2026/10/2026-000001" in problem["message"]


def test_the_pr_check_refuses_an_id_taken_on_the_base_after_the_branch_left_it(pr_repo):
    new = "petitions/2026/11/2026-000002/petition.yaml"
    commit_files(pr_repo, {new: petition("2026-000002", "2026-11-20T09:40:00+08:00")})
    assert pr_check(pr_repo) == (0, [])  # sound as long as nobody else takes 2026-000002
    git_text(pr_repo, "checkout", "-q", "main")
    commit_files(pr_repo, {"petitions/2026/11/2026-000002/petition.yaml":
                           petition("2026-000002", "2026-11-20T09:30:00+08:00", channel="phone")})
    git_text(pr_repo, "checkout", "-q", "pr")
    code, problems = pr_check(pr_repo)
    assert code == 1
    assert [p["code"] for p in problems if p["severity"] == "error"] == ["id-exists"]
