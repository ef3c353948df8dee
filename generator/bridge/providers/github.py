"""The GitHub provider: one atomic commit through the Git Data API, then a pull request.

A batch costs a handful of requests (ref, commit, tree, commit, ref, pull,
labels) however many files it holds, which keeps a busy city inside GitHub's
limit on content-creating requests. Authentication is a token, or a GitHub
App installation whose short-lived token is renewed before it expires.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from urllib.parse import quote

from . import Change, ForgeError, PullRequest, folders_by_listing, highest_ids_by_listing
from .http import ForgeClient, is_already_exists

API_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}


def github_auth(cfg):
    """Return the request headers (or a function giving them) for the configured account."""
    if cfg.forge_token:
        return {**API_HEADERS, "Authorization": f"Bearer {cfg.forge_token}"}
    return GitHubAppAuth(cfg.forge_api_url, cfg.forge_github_app_id, cfg.forge_github_installation_id,
                         cfg.forge_github_private_key)


class GitHubAppAuth:
    """Headers for a GitHub App installation, renewing its token before it expires."""

    def __init__(self, api_url: str, app_id: str, installation_id: str, private_key: str,
                 wall=time.time):
        key = private_key
        if not key.lstrip().startswith("-----BEGIN") and Path(key).exists():
            key = Path(key).read_text()
        self.api_url, self.app_id, self.installation_id, self.key = api_url.rstrip("/"), app_id, installation_id, key
        self._wall = wall
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def app_jwt(self) -> str:
        import jwt  # PyJWT with cryptography, for RS256
        now = int(self._wall())
        return jwt.encode({"iat": now - 60, "exp": now + 540, "iss": self.app_id}, self.key, algorithm="RS256")

    def __call__(self) -> dict[str, str]:
        import httpx
        with self._lock:
            if self._token is None or self._wall() > self._expires - 300:
                resp = httpx.post(f"{self.api_url}/app/installations/{self.installation_id}/access_tokens",
                                  headers={**API_HEADERS, "Authorization": f"Bearer {self.app_jwt()}"}, timeout=20)
                if resp.status_code != 201:
                    raise ForgeError(f"GitHub App token: {resp.status_code}")
                data = resp.json()
                from datetime import datetime
                self._token = data["token"]
                self._expires = datetime.fromisoformat(data["expires_at"].replace("Z", "+00:00")).timestamp()
            return {**API_HEADERS, "Authorization": f"Bearer {self._token}"}


class GitHubProvider:
    name = "github"

    def __init__(self, client: ForgeClient, owner: str, repo: str, base_branch: str = "main"):
        self.http, self.owner, self.repo, self.base = client, owner, repo, base_branch
        self.prefix = f"/repos/{quote(owner, safe='')}/{quote(repo, safe='')}"

    def _get(self, path: str, params=None, expect=(200,)):
        return self.http.request("GET", self.prefix + path, params=params, expect=expect + (404,))

    def _names(self, path: str) -> list[str] | None:
        resp = self._get(f"/contents/{quote(path)}", {"ref": self.base})
        if resp.status_code == 404:
            return None
        data = resp.json()
        return [e["name"] for e in data] if isinstance(data, list) else None

    def highest_ids(self) -> dict[int, int]:
        return highest_ids_by_listing(self._names)

    def petition_folders(self, year: int) -> dict[str, str]:
        return folders_by_listing(self._names, year)

    def close_pull_request(self, pr: PullRequest, branch: str) -> None:
        self.http.request("PATCH", self.prefix + f"/pulls/{pr.number}", json={"state": "closed"}, expect=(200,))
        self.delete_branch(branch)

    def folder_files(self, folder: str) -> list[str] | None:
        return self._names(folder)

    def _find_pull(self, branch: str) -> PullRequest | None:
        resp = self._get("/pulls", {"head": f"{self.owner}:{branch}", "state": "all", "per_page": 10})
        pulls = resp.json() if resp.status_code == 200 else []
        if pulls:
            return PullRequest(pulls[0]["number"], pulls[0]["html_url"])
        return None

    def _ensure_branch(self, change: Change) -> None:
        if self._get(f"/git/ref/heads/{quote(change.branch)}").status_code == 200:
            return  # made by an earlier attempt: the ref is written last, so its commit is complete
        base = self._get(f"/git/ref/heads/{quote(self.base)}")
        if base.status_code != 200:
            raise ForgeError(f"base branch {self.base} not found")
        base_sha = base.json()["object"]["sha"]
        base_tree = self._get(f"/git/commits/{base_sha}").json()["tree"]["sha"]
        tree = self.http.request("POST", self.prefix + "/git/trees", json={
            "base_tree": base_tree,
            "tree": [{"path": p, "mode": "100644", "type": "blob", "content": c.decode("utf-8")}
                     for p, c in change.files]}, expect=(201,)).json()["sha"]
        commit = self.http.request("POST", self.prefix + "/git/commits", json={
            "message": change.message, "tree": tree, "parents": [base_sha]}, expect=(201,)).json()["sha"]
        try:
            self.http.request("POST", self.prefix + "/git/refs",
                              json={"ref": f"refs/heads/{change.branch}", "sha": commit}, expect=(201,))
        except ForgeError as exc:
            if not is_already_exists(exc):
                raise

    def publish(self, change: Change) -> PullRequest:
        pr = self._find_pull(change.branch)
        if pr is None:
            self._ensure_branch(change)
            try:
                data = self.http.request("POST", self.prefix + "/pulls", json={
                    "title": change.title, "head": change.branch, "base": self.base, "body": change.body,
                    "maintainer_can_modify": True}, expect=(201,)).json()
                pr = PullRequest(data["number"], data["html_url"])
            except ForgeError as exc:
                if not is_already_exists(exc):
                    raise
                pr = self._find_pull(change.branch)
                if pr is None:
                    raise
        if change.labels:  # adding labels a pull request already has is harmless
            self.http.request("POST", self.prefix + f"/issues/{pr.number}/labels",
                              json={"labels": list(change.labels)}, expect=(200,))
        return pr

    def pull_request_state(self, pr: PullRequest, branch: str, files: tuple = ()) -> str:
        data = self._get(f"/pulls/{pr.number}").json()
        if data.get("merged"):
            return "merged"
        return "closed" if data.get("state") == "closed" else "open"

    def bridge_branches(self, prefix: str) -> list[str]:
        resp = self._get(f"/git/matching-refs/heads/{quote(prefix)}")
        return [r["ref"][len("refs/heads/"):] for r in resp.json()] if resp.status_code == 200 else []

    def delete_branch(self, branch: str) -> None:
        self.http.request("DELETE", self.prefix + f"/git/refs/heads/{quote(branch)}", expect=(204, 422, 404))
