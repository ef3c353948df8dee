"""End to end: uvicorn on 127.0.0.1, real HTTP posts, the local provider, real git."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import yaml

from generator.bridge.privacy import open_contact

from .kit import (BridgeServer, assert_archive_valid, close_petition, free_port, git,
                  merge_branch, seed_archive, solve, wait_for, write_config)


@pytest.fixture
def site(tmp_path):
    """A static web server standing in for the public archive site."""
    root = tmp_path / "site"
    root.mkdir()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _up(url), timeout=10)
    yield root, url
    proc.terminate()
    proc.wait()


def _up(url: str) -> bool:
    try:
        httpx.get(url, timeout=1)
        return True
    except httpx.HTTPError:
        return False


def remote_branches(remote: Path) -> list[str]:
    out = git(remote, "for-each-ref", "--format=%(refname:short)", "refs/heads/bridge/")
    return [line for line in out.splitlines() if line]


def test_submission_becomes_branch_then_merged_then_rated(tmp_path, key_pair, site):
    identity, recipient = key_pair
    site_root, site_url = site
    year = datetime.now(timezone(timedelta(hours=8))).year
    remote, centre = seed_archive(tmp_path, year, seq=41)
    port = free_port()
    cfg = write_config(tmp_path, recipient, **{
        "forge.local.remote": str(remote), "forge.local.repo": str(tmp_path / "bridge-clone"),
        "forge.batch.enabled": False, "site_url": site_url, "public_url": f"http://127.0.0.1:{port}",
        "abuse.min_fill_seconds": 0.2})
    server = BridgeServer(cfg, port, tmp_path / "bridge.log").start()
    try:
        with httpx.Client() as client:
            page = client.get(server.url + "/submit")
            assert page.status_code == 200
            assert "提交诉求" in page.text and "Submit a petition" in page.text
            token = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)
            import time
            time.sleep(0.25)  # the minimum fill time
            form = {"category": "complaint", "title": "小区门口路灯损坏三周无人修",
                    "body": "路灯坏了三周。我的电话 138 1234 5678，身份证 11010519491231002X。\r\n请尽快修复。",
                    "district": "东湖区", "contact": "张三 13900001111 zhang@example.com",
                    "consent": "yes", "form_token": token, "pow": solve(token), "website": ""}
            resp = client.post(server.url + "/submit", data=form)
            assert resp.status_code == 303, re.findall(r'<li>.*?</li>', resp.text)
            receipt_path = resp.headers["location"].split("?")[0]
            receipt_token = receipt_path.rsplit("/", 1)[1]
            receipt_page = client.get(server.url + resp.headers["location"])
            expected_id = f"{year}-000042"  # the seed's highest is 41
            assert expected_id in receipt_page.text and "回执" in receipt_page.text

            # Posting the same form again (a double click) gives the same receipt.
            again = client.post(server.url + "/submit", data=form)
            assert again.status_code == 303 and again.headers["location"].startswith(receipt_path)

            api = server.url + f"/api/receipts/{receipt_token}"
            info = wait_for(lambda: (r := client.get(api).json())["status"] == "opened" and r)
            assert info["petition_id"] == expected_id
            assert info["pull_request_url"].endswith("#" + remote_branches(remote)[0])

            # The branch holds exactly one new file, the petition, masked.
            [branch] = remote_branches(remote)
            assert "138" not in branch and "张" not in branch
            added = git(remote, "diff", "--name-only", "main", branch).split()
            month = info["received_at"][5:7]
            folder = f"petitions/{year}/{month}/{expected_id}"
            assert added == [f"{folder}/petition.yaml"]
            record = yaml.safe_load(git(remote, "show", f"{branch}:{folder}/petition.yaml"))
            assert record["id"] == expected_id and record["channel"] == "web"
            assert record["category"] == "complaint" and record["location"] == {"district": "东湖区"}
            assert record["body"] == "路灯坏了三周。我的电话 [手机号已隐去]，身份证 [身份证号已隐去]。\n请尽快修复。"
            assert record["petitioner"]["display_name"].startswith("网友 ")
            assert record["received_at"].endswith("+08:00")
            message = git(remote, "log", "-1", "--format=%B", branch)
            assert "needs moderation" in message and "13900001111" not in message
            assert_archive_valid(remote, branch)

            # The contact is only in the bridge's database, sealed; the identity opens it.
            db = sqlite3.connect(tmp_path / "bridge.sqlite3")
            sealed = db.execute("SELECT sealed FROM contacts WHERE petition_id=?", (expected_id,)).fetchone()[0]
            assert b"13900001111" not in sealed
            assert open_contact(sealed, identity) == "张三 13900001111 zhang@example.com"
            db.close()

            # Merged, not yet on the site: merged. On the site: published, with its link.
            merge_branch(centre, branch)
            wait_for(lambda: client.get(api).json()["status"] == "merged")
            page_dir = site_root / "petitions" / expected_id
            page_dir.mkdir(parents=True)
            (page_dir / "index.html").write_text("ok")
            info = wait_for(lambda: (r := client.get(api).json())["status"] == "published" and r)
            assert info["petition_url"] == f"{site_url}/petitions/{expected_id}/"
            assert "已公开" in client.get(server.url + receipt_path).text

            # Rating before closure is refused; after the centre closes it, accepted.
            early = client.post(api + "/rating", json={"rating": "satisfied"})
            assert early.status_code == 409 and early.json()["errors"][0]["code"] == "not_closed"
            close_petition(centre, folder, datetime.now(timezone(timedelta(hours=8))).replace(microsecond=0)
                           - timedelta(seconds=1))
            wait_for(lambda: client.get(api).json()["can_rate"], timeout=15, interval=0.5)
            rated = client.post(server.url + receipt_path + "/rate",
                                data={"rating": "basically_satisfied", "comment": "修好了，谢谢。电话 13812345678"})
            assert rated.status_code == 303
            assert client.get(api).json()["rating"] is not None
            twice = client.post(api + "/rating", json={"rating": "dissatisfied"})
            assert twice.status_code == 409

            # The rating becomes a feedback event on its own branch; merged, it is on main.
            new = wait_for(lambda: [b for b in remote_branches(remote) if b != branch])
            [fb_branch] = new
            [fb_path] = git(remote, "diff", "--name-only", "main", fb_branch).split()
            assert fb_path.startswith(folder + "/") and fb_path.endswith("-feedback.yaml")
            event = yaml.safe_load(git(remote, "show", f"{fb_branch}:{fb_path}"))
            assert event["kind"] == "feedback" and event["by"] == "petitioner"
            assert event["rating"] == "basically_satisfied"
            assert event["comment"] == "修好了，谢谢。电话 [手机号已隐去]"
            merge_branch(centre, fb_branch)
            assert_archive_valid(remote, "main")
            wait_for(lambda: client.get(api).json()["rating"] == "published")
    finally:
        server.stop()
