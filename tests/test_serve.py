"""`wenzheng serve`: a real preview server on 127.0.0.1 that rebuilds when the
archive changes, and keeps serving the last good site when a rebuild fails."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.bridge.kit import free_port
from tests.site_util import NOW, REPLY_PHRASE, add_reply, commit, small_archive

ROOT = Path(__file__).resolve().parent.parent


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:
        return 0, ""


def _wait_for(check, seconds: float = 180.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError("the preview did not reach the expected state in time")


def test_serve_previews_the_site_and_rebuilds_on_change(tmp_path):
    repo = small_archive(tmp_path / "repo")
    port = free_port()
    log = tmp_path / "serve.log"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "generator", "serve", "--repo", str(repo), "--now", NOW,
                                 "--out", str(tmp_path / "site"), "--port", str(port), "--interval", "0.5"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    page = f"http://127.0.0.1:{port}/p/2026-000002.html"
    try:
        _wait_for(lambda: _get(page)[0] == 200)
        assert _get(f"http://127.0.0.1:{port}/")[0] == 200
        assert REPLY_PHRASE not in _get(page)[1]
        # A department's reply is committed: the preview rebuilds by itself.
        add_reply(repo)
        _wait_for(lambda: REPLY_PHRASE in _get(page)[1])
        # A broken record: the rebuild fails, the last good site stays served.
        commit(repo, {"petitions/2026/11/2026-000002/20261121T060000Z-reply.yaml": "kind: reply\nat: nonsense\n"},
               "bad record")
        _wait_for(lambda: "rebuild failed" in log.read_text(encoding="utf-8"))
        status, text = _get(page)
        assert status == 200 and REPLY_PHRASE in text
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_the_command_reports_and_exits_with_its_status_without_freeing_the_build(tmp_path):
    """`wenzheng build` ends without freeing what the build made (cli.run): its
    report and its errors still come out in full, with the right exit status."""
    repo = small_archive(tmp_path / "repo")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    site = tmp_path / "site"
    ok = subprocess.run([sys.executable, "-m", "generator", "build", "--repo", str(repo), "--now", NOW,
                         "--out", str(site)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                        check=False)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"built {site}: 3 petitions") and ok.stdout.endswith(")\n")
    assert (site / "p" / "2026-000002.html").is_file()
    # nothing pending, no journal, no trash left behind; the manifest is kept beside the site
    assert [p.name for p in tmp_path.glob(".site.*")] == [".site.manifest.json"]

    commit(repo, {"petitions/2026/11/2026-000002/20261121T060000Z-reply.yaml": "kind: reply\nat: nonsense\n"},
           "bad record")
    bad = subprocess.run([sys.executable, "-m", "generator", "build", "--repo", str(repo), "--now", NOW,
                          "--out", str(site)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                         check=False)
    assert bad.returncode == 1
    assert "20261121T060000Z-reply.yaml" in bad.stderr and f"{site} is unchanged" in bad.stderr
    assert bad.stdout == ""
