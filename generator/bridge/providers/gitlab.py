"""The GitLab provider: one commit with actions through the commits API, then a merge request."""

from __future__ import annotations

from urllib.parse import quote

from . import Change, ForgeError, PullRequest, folders_by_listing, highest_ids_by_listing
from .http import ForgeClient, is_already_exists


class GitLabProvider:
    name = "gitlab"

    def __init__(self, client: ForgeClient, project: str, base_branch: str = "main"):
        self.http, self.base = client, base_branch
        self.prefix = f"/projects/{quote(project, safe='')}"

    def _names(self, path: str) -> list[str] | None:
        names: list[str] = []
        page = "1"
        while page:
            resp = self.http.request("GET", self.prefix + "/repository/tree",
                                     params={"path": path, "ref": self.base, "per_page": 100, "page": page},
                                     expect=(200, 404))
            if resp.status_code == 404:
                return None
            names += [e["name"] for e in resp.json()]
            page = resp.headers.get("x-next-page", "")
        return names

    def highest_ids(self) -> dict[int, int]:
        return highest_ids_by_listing(self._names)

    def petition_folders(self, year: int) -> dict[str, str]:
        return folders_by_listing(self._names, year)

    def close_pull_request(self, pr: PullRequest, branch: str) -> None:
        self.http.request("PUT", self.prefix + f"/merge_requests/{pr.number}", json={"state_event": "close"},
                          expect=(200,))
        self.delete_branch(branch)

    def folder_files(self, folder: str) -> list[str] | None:
        return self._names(folder) or None

    def _find_merge_request(self, branch: str) -> PullRequest | None:
        resp = self.http.request("GET", self.prefix + "/merge_requests",
                                 params={"source_branch": branch, "state": "all"}, expect=(200,))
        found = resp.json()
        return PullRequest(found[0]["iid"], found[0]["web_url"]) if found else None

    def publish(self, change: Change) -> PullRequest:
        mr = self._find_merge_request(change.branch)
        if mr is not None:
            return mr
        exists = self.http.request("GET", self.prefix + f"/repository/branches/{quote(change.branch, safe='')}",
                                   expect=(200, 404)).status_code == 200
        if not exists:
            try:
                self.http.request("POST", self.prefix + "/repository/commits", json={
                    "branch": change.branch, "start_branch": self.base, "commit_message": change.message,
                    "actions": [{"action": "create", "file_path": p, "content": c.decode("utf-8")}
                                for p, c in change.files]}, expect=(201,))
            except ForgeError as exc:
                if not is_already_exists(exc):
                    raise
        try:
            data = self.http.request("POST", self.prefix + "/merge_requests", json={
                "source_branch": change.branch, "target_branch": self.base, "title": change.title,
                "description": change.body, "labels": ",".join(change.labels),
                "remove_source_branch": True}, expect=(201,)).json()
        except ForgeError as exc:
            if exc.status != 409 and not is_already_exists(exc):
                raise
            mr = self._find_merge_request(change.branch)
            if mr is None:
                raise
            return mr
        return PullRequest(data["iid"], data["web_url"])

    def pull_request_state(self, pr: PullRequest, branch: str, files: tuple = ()) -> str:
        state = self.http.request("GET", self.prefix + f"/merge_requests/{pr.number}", expect=(200,)).json()["state"]
        return {"merged": "merged", "closed": "closed"}.get(state, "open")

    def bridge_branches(self, prefix: str) -> list[str]:
        resp = self.http.request("GET", self.prefix + "/repository/branches",
                                 params={"search": f"^{prefix}", "per_page": 100}, expect=(200,))
        return [b["name"] for b in resp.json() if b["name"].startswith(prefix)]

    def delete_branch(self, branch: str) -> None:
        self.http.request("DELETE", self.prefix + f"/repository/branches/{quote(branch, safe='')}",
                          expect=(204, 404))
