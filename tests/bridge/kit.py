"""Helpers for the bridge's tests: real git archives, configs, a real server process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]
RECIPIENT_IDENTITY = None  # filled lazily by key_pair()


def git(repo: Path, *args: str, input: bytes | None = None) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          input=input).stdout.decode("utf-8")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed_archive(tmp: Path, year: int, seq: int = 41) -> tuple[Path, Path]:
    """Return (bare remote, centre's clone) of an archive whose main holds the
    demo config and one petition ``<year>-<seq>`` (the highest id)."""
    centre = tmp / "centre"
    centre.mkdir()
    git(centre, "init", "-q", "-b", "main")
    git(centre, "config", "user.name", "centre")
    git(centre, "config", "user.email", "centre@localhost")
    for name in ("departments.yaml", "rules.yaml"):
        if (ROOT / name).exists():
            (centre / name).write_text((ROOT / name).read_text(encoding="utf-8"), encoding="utf-8")
    pid = f"{year}-{seq:06d}"
    folder = centre / f"petitions/{year}/01/{pid}"
    folder.mkdir(parents=True)
    (folder / "petition.yaml").write_text(
        f"id: {pid}\nreceived_at: '{year}-01-05T09:00:00+08:00'\nchannel: phone\ncategory: help\n"
        f"title: 旧诉求\nbody: 已有的一件诉求。\npetitioner: {{display_name: 市民 a1}}\n", encoding="utf-8")
    git(centre, "add", "-A")
    git(centre, "commit", "-q", "-m", "seed")
    remote = tmp / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(centre), str(remote)], check=True)
    git(centre, "remote", "add", "archive", str(remote))
    return remote, centre


def write_config(tmp: Path, recipient: str, **overrides: Any) -> Path:
    """Write a bridge config for tests; keys are dotted option keys."""
    data: dict[str, Any] = {
        "secret": "test-secret-" + "x" * 40,
        "contact_recipient": recipient,
        "database": str(tmp / "bridge.sqlite3"),
        "sqlite_synchronous": "normal",
        "abuse.pow_bits": 6,
        "abuse.min_fill_seconds": 0.0,
        "forge.min_interval_seconds": 0.0,
        "forge.poll_seconds": 0.3,
        "forge.batch.max_wait_seconds": 0.3,
    }
    data.update(overrides)
    nested: dict[str, Any] = {}
    for key, value in data.items():
        node = nested
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    path = tmp / "bridge.yaml"
    path.write_text(yaml.safe_dump(nested, allow_unicode=True), encoding="utf-8")
    return path


class BridgeServer:
    """``wenzheng bridge serve`` as a real process on 127.0.0.1."""

    def __init__(self, config: Path, port: int, log: Path):
        self.config, self.port, self.log = config, port, log
        self.proc: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{port}"

    def start(self, timeout: float = 20.0) -> "BridgeServer":
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        env["WENZHENG_BRIDGE__LISTEN__PORT"] = str(self.port)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "generator", "bridge", "serve",
                                          "--config", str(self.config)],
                                         env=env, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("bridge exited: " + self.log.read_text(errors="replace")[-3000:])
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("bridge did not start: " + self.log.read_text(errors="replace")[-3000:])

    def kill(self) -> None:
        assert self.proc
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def form_token(client: httpx.Client, base: str) -> str:
    return client.get(base + "/api/form").json()["form_token"]


def solve(token: str) -> str:
    from generator.bridge.abuse import solve_pow
    return solve_pow(token, int(token.split(".")[3]))


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def merge_branch(centre: Path, branch: str) -> None:
    """The centre merges a bridge branch into main and pushes (a real merge commit)."""
    git(centre, "fetch", "-q", "archive", f"+refs/heads/{branch}:refs/remotes/archive/{branch}",
        "+refs/heads/main:refs/remotes/archive/main")
    git(centre, "checkout", "-q", "main")
    git(centre, "reset", "-q", "--hard", "archive/main")
    git(centre, "merge", "-q", "--no-ff", "-m", f"Merge {branch}", f"archive/{branch}")
    git(centre, "push", "-q", "archive", "main")


def close_petition(centre: Path, folder: str, at: datetime) -> None:
    """The centre assigns the case one second before ``at`` and closes it at ``at``, on main."""
    from datetime import timedelta
    git(centre, "fetch", "-q", "archive", "+refs/heads/main:refs/remotes/archive/main")
    git(centre, "reset", "-q", "--hard", "archive/main")
    assigned = at - timedelta(seconds=1)
    for when, kind, extra in ((assigned, "assigned", "to: housing\n"), (at, "closed", "")):
        stamp = when.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        (centre / folder / f"{stamp}-{kind}.yaml").write_text(
            f"kind: {kind}\nat: '{when.isoformat()}'\nby: centre\n{extra}", encoding="utf-8")
    git(centre, "add", "-A")
    git(centre, "commit", "-q", "-m", "close")
    git(centre, "push", "-q", "archive", "main")


# ---------------------------------------------------------------------------
# The archive check. `wenzheng check` is the authority; until it is importable
# in this branch, the files are checked here against docs/formats.md.

def assert_archive_valid(repo: Path, rev: str) -> None:
    """Assert that the archive at ``rev`` passes `wenzheng check`."""
    proc = subprocess.run([sys.executable, "-m", "generator", "check", "--repo", str(repo), "--rev", rev],
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stdout + proc.stderr


