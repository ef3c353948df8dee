"""The Gitea/Forgejo provider: the contents API with ``new_branch`` (several files in
one commit), then a pull request."""

from __future__ import annotations

import base64
from urllib.parse import quote

from . import Change, ForgeError, PullRequest, folders_by_listing, highest_ids_by_listing
from .http import ForgeClient


class GiteaProvider:
    name = "gitea"

    def __init__(self, client: ForgeClient, owner: str, repo: str, base_branch: str = "main"):
        self.http, self.base = client, base_branch
        self.prefix = f"/repos/{quote(owner, safe='')}/{quote(repo, safe='')}"
        self._label_ids: dict[str, int] = {}

    def _names(self, path: str) -> list[str] | None:
        resp = self.http.request("GET", self.prefix + f"/contents/{quote(path)}", params={"ref": self.base},
                                 expect=(200, 404))
        if resp.status_code == 404:
            return None
        data = resp.json()
        return [e["name"] for e in data] if isinstance(data, list) else None

    def highest_ids(self) -> dict[int, int]:
        return highest_ids_by_listing(self._names)

    def petition_folders(self, year: int) -> dict[str, str]:
        return folders_by_listing(self._names, year)

    def close_pull_request(self, pr: PullRequest, branch: str) -> None:
        self.http.request("PATCH", self.prefix + f"/pulls/{pr.number}", json={"state": "closed"},
                          expect=(201,))
        self.delete_branch(branch)

    def folder_files(self, folder: str) -> list[str] | None:
        return self._names(folder)

    def _find_pull(self, branch: str) -> PullRequest | None:
        resp = self.http.request("GET", self.prefix + f"/pulls/{quote(self.base, safe='')}/{quote(branch, safe='')}",
                                 expect=(200, 404))
        if resp.status_code == 404:
            return None
        data = resp.json()
        return PullRequest(data["number"], data["html_url"])

    def _labels(self, names: tuple[str, ...]) -> list[int]:
        missing = [n for n in names if n not in self._label_ids]
        if missing:
            for label in self.http.request("GET", self.prefix + "/labels", params={"limit": 50},
                                           expect=(200,)).json():
                self._label_ids[label["name"]] = label["id"]
            for name in [n for n in names if n not in self._label_ids]:
                made = self.http.request("POST", self.prefix + "/labels",
                                         json={"name": name, "color": "#e99695"}, expect=(201,)).json()
                self._label_ids[name] = made["id"]
        return [self._label_ids[n] for n in names]

    def publish(self, change: Change) -> PullRequest:
        pr = self._find_pull(change.branch)
        if pr is not None:
            return pr
        exists = self.http.request("GET", self.prefix + f"/branches/{quote(change.branch, safe='')}",
                                   expect=(200, 404)).status_code == 200
        if not exists:
            try:
                self.http.request("POST", self.prefix + "/contents", json={
                    "branch": self.base, "new_branch": change.branch, "message": change.message,
                    "files": [{"operation": "create", "path": p, "content": base64.b64encode(c).decode()}
                              for p, c in change.files]}, expect=(201,))
            except ForgeError as exc:
                if exc.status != 422:
                    raise
        labels = self._labels(change.labels)
        try:
            data = self.http.request("POST", self.prefix + "/pulls", json={
                "head": change.branch, "base": self.base, "title": change.title, "body": change.body,
                "labels": labels}, expect=(201,)).json()
        except ForgeError as exc:
            if exc.status != 409:
                raise
            pr = self._find_pull(change.branch)
            if pr is None:
                raise
            return pr
        return PullRequest(data["number"], data["html_url"])

    def pull_request_state(self, pr: PullRequest, branch: str, files: tuple = ()) -> str:
        data = self.http.request("GET", self.prefix + f"/pulls/{pr.number}", expect=(200,)).json()
        if data.get("merged"):
            return "merged"
        return "closed" if data.get("state") == "closed" else "open"

    def bridge_branches(self, prefix: str) -> list[str]:
        names: list[str] = []
        page = 1
        while True:
            batch = self.http.request("GET", self.prefix + "/branches", params={"page": page, "limit": 50},
                                      expect=(200,)).json()
            names += [b["name"] for b in batch if b["name"].startswith(prefix)]
            if len(batch) < 50:
                return names
            page += 1

    def delete_branch(self, branch: str) -> None:
        self.http.request("DELETE", self.prefix + f"/branches/{quote(branch, safe='')}", expect=(204, 404))
