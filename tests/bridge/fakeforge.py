"""Fake GitHub, GitLab and Gitea servers on 127.0.0.1, backed by a real bare git repository.

Each fake answers the way its forge's documentation says: status codes
(201 on create, 404, 409 or 422 when a branch or pull request exists), the
rate-limit headers, 429 with ``Retry-After``, and 5xx during an outage the test
switches on. Every request is recorded and, for GitHub and Gitea, checked
against the forge's official API description.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import unquote

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .kit import free_port


class GitStore:
    """A bare repository the fake forge keeps its objects and refs in."""

    def __init__(self, path: Path):
        self.path = path
        self.lock = threading.RLock()

    def git(self, *args: str, input: bytes | None = None, env: dict | None = None) -> str:
        proc = subprocess.run(["git", "-C", str(self.path), *args], input=input, capture_output=True,
                              env={**os.environ, **(env or {})})
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr.decode())
        return proc.stdout.decode("utf-8", errors="replace")

    def ref(self, branch: str) -> str | None:
        proc = subprocess.run(["git", "-C", str(self.path), "rev-parse", "--verify", "--quiet",
                               f"refs/heads/{branch}"], capture_output=True)
        return proc.stdout.decode().strip() or None

    def branches(self) -> list[str]:
        out = self.git("for-each-ref", "--format=%(refname:short)", "refs/heads/")
        return [b for b in out.splitlines() if b]

    def tree_of(self, commit: str) -> str:
        return self.git("rev-parse", f"{commit}^{{tree}}").strip()

    def make_tree(self, base_tree: str | None, files: list[tuple[str, bytes]]) -> str:
        with tempfile.TemporaryDirectory() as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            if base_tree:
                self.git("read-tree", base_tree, env=env)
            names = []
            for n, (_, content) in enumerate(files):
                (Path(tmp) / f"f{n}").write_bytes(content)
                names.append(str(Path(tmp) / f"f{n}"))
            blobs = self.git("hash-object", "-w", "--stdin-paths", input="\n".join(names).encode()).split()
            info = "".join(f"100644 {blob}\t{path}\n" for blob, (path, _) in zip(blobs, files))
            self.git("update-index", "--add", "--index-info", input=info.encode(), env=env)
            return self.git("write-tree", env=env).strip()

    def make_commit(self, tree: str, parents: list[str], message: str) -> str:
        args = ["commit-tree", tree]
        for p in parents:
            args += ["-p", p]
        return self.git(*args, input=message.encode(), env={
            "GIT_AUTHOR_NAME": "wenzheng-bridge", "GIT_AUTHOR_EMAIL": "bridge@localhost",
            "GIT_COMMITTER_NAME": "forge", "GIT_COMMITTER_EMAIL": "forge@localhost"}).strip()

    def set_ref(self, branch: str, sha: str) -> None:
        self.git("update-ref", f"refs/heads/{branch}", sha)

    def delete_ref(self, branch: str) -> None:
        self.git("update-ref", "-d", f"refs/heads/{branch}")

    def names(self, rev: str, path: str) -> list[str] | None:
        proc = subprocess.run(["git", "-C", str(self.path), "ls-tree", "-z", f"{rev}:{path}"], capture_output=True)
        if proc.returncode != 0 or not proc.stdout:
            return None
        out = []
        for rec in proc.stdout.split(b"\0"):
            if rec:
                meta, _, name = rec.partition(b"\t")
                out.append((meta.split()[1].decode(), name.decode()))
        return out

    def merge(self, branch: str, base: str = "main") -> str:
        """Merge ``branch`` into ``base`` as the centre would; return the merge commit."""
        with self.lock:
            main, head = self.ref(base), self.ref(branch)
            tree = self.git("merge-tree", "--write-tree", main, head).split()[0]
            commit = self.make_commit(tree, [main, head], f"Merge {branch}")
            self.set_ref(base, commit)
            return commit


@dataclass
class Faults:
    """What the forge does wrong right now, switched by the test."""

    mode: str | None = None  # None, "503" or "429"
    retry_after: int = 1
    count: int = 0

    def answer(self) -> Response | None:
        if self.mode == "503":
            self.count += 1
            return JSONResponse({"message": "Service Unavailable"}, status_code=503)
        if self.mode == "429":
            self.count += 1
            return JSONResponse({"message": "API rate limit exceeded"}, status_code=429,
                                headers={"Retry-After": str(self.retry_after)})
        return None


@dataclass
class PR:
    number: int
    head: str
    base: str
    title: str
    body: str
    labels: list[str] = field(default_factory=list)
    state: str = "open"
    merged: bool = False


class FakeForge:
    """State shared by all three dialects: the git store, pull requests, faults, the request log."""

    def __init__(self, tmp: Path, kind: str, validator=None, owner: str = "city", repo: str = "archive"):
        self.kind, self.owner, self.repo = kind, owner, repo
        self.store = GitStore(tmp / f"{kind}-forge.git")
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(self.store.path)], check=True)
        self.pulls: list[PR] = []
        self.labels: dict[str, int] = {}
        self.faults = Faults()
        self.requests: list[tuple[str, str, float]] = []  # method, path, monotonic time
        self.exhausted_until: float | None = None  # wall time: rate budget spent until then
        self.spec_problems: list[str] = []
        self.validator = validator
        self.remaining = 5000
        self.lock = threading.RLock()

    def seed(self, files: dict[str, bytes]) -> None:
        tree = self.store.make_tree(None, list(files.items()))
        self.store.set_ref("main", self.store.make_commit(tree, [], "seed"))

    def merge(self, pr: PR) -> None:
        with self.lock:
            self.store.merge(pr.head)
            pr.merged, pr.state = True, "closed"

    def headers(self) -> dict[str, str]:
        self.remaining = max(0, self.remaining - 1)
        if self.kind == "gitlab":
            return {"RateLimit-Limit": "600", "RateLimit-Remaining": "599", "RateLimit-Reset": str(int(time.time()) + 60)}
        if self.exhausted_until and time.time() < self.exhausted_until:
            return {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0",
                    "x-ratelimit-reset": str(int(self.exhausted_until)), "x-ratelimit-used": "5000"}
        return {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": str(max(self.remaining, 1)),
                "x-ratelimit-reset": str(int(time.time()) + 3600), "x-ratelimit-used": "1"}

    def wrap(self, handler: Callable) -> Callable:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            body = json.loads(raw) if raw else None
            path = request.url.path
            self.requests.append((request.method, path, time.monotonic()))
            if self.validator is not None:
                self.spec_problems += self.validator.problems(request.method, request.scope["raw_path"].decode(),
                                                              dict(request.query_params), body)
            if self.kind == "gitlab" and not request.scope["raw_path"].decode().startswith(
                    f"/api/v4/projects/{self.owner}%2F{self.repo}/"):
                return JSONResponse({"message": "404 Project Not Found"}, status_code=404)
            fault = self.faults.answer()
            if fault is not None:
                return fault
            with self.lock:
                status, data = handler(request, body)
            headers = self.headers()
            if status == 204:
                return Response(status_code=204, headers=headers)
            return JSONResponse(data, status_code=status, headers=headers)
        return endpoint

    def close_pr(self, n: int) -> PR | None:
        """Close pull request ``n`` without merging (None if there is none)."""
        if not 1 <= n <= len(self.pulls):
            return None
        pr = self.pulls[n - 1]
        if not pr.merged:
            pr.state = "closed"
        return pr

    def find_pr(self, head: str) -> PR | None:
        return next((p for p in self.pulls if p.head == head), None)

    def open_pr(self, head: str, base: str, title: str, body: str, labels: list[str]) -> PR:
        pr = PR(len(self.pulls) + 1, head, base, title, body, labels)
        self.pulls.append(pr)
        return pr


def _listing(forge: FakeForge, path: str, ref: str):
    entries = forge.store.names(ref, path.strip("/"))
    if entries is None:
        return 404, {"message": "Not Found"}
    return 200, [{"name": n, "path": f"{path.strip('/')}/{n}", "type": "dir" if t == "tree" else "file"}
                 for t, n in entries]


# ---------------------------------------------------------------------------
# GitHub

def github_app(forge: FakeForge) -> Starlette:
    s = forge.store
    prefix = f"/repos/{forge.owner}/{forge.repo}"

    def get_ref(request, body):
        branch = unquote(request.path_params["ref"]).removeprefix("heads/")
        sha = s.ref(branch)
        if not sha:
            return 404, {"message": "Not Found"}
        return 200, {"ref": f"refs/heads/{branch}", "object": {"sha": sha, "type": "commit"}}

    def matching_refs(request, body):
        want = unquote(request.path_params["ref"]).removeprefix("heads/")
        return 200, [{"ref": f"refs/heads/{b}", "object": {"sha": s.ref(b), "type": "commit"}}
                     for b in s.branches() if b.startswith(want)]

    def get_commit(request, body):
        sha = request.path_params["sha"]
        return 200, {"sha": sha, "tree": {"sha": s.tree_of(sha)}}

    def create_tree(request, body):
        files = [(e["path"], e["content"].encode("utf-8")) for e in body["tree"]]
        return 201, {"sha": s.make_tree(body.get("base_tree"), files)}

    def create_commit(request, body):
        return 201, {"sha": s.make_commit(body["tree"], body["parents"], body["message"])}

    def create_ref(request, body):
        branch = body["ref"].removeprefix("refs/heads/")
        if s.ref(branch):
            return 422, {"message": "Reference already exists"}
        s.set_ref(branch, body["sha"])
        return 201, {"ref": body["ref"], "object": {"sha": body["sha"]}}

    def delete_ref(request, body):
        branch = unquote(request.path_params["ref"]).removeprefix("heads/")
        if not s.ref(branch):
            return 422, {"message": "Reference does not exist"}
        s.delete_ref(branch)
        return 204, None

    def pr_json(pr: PR):
        return {"number": pr.number, "html_url": f"https://github.example/{forge.owner}/{forge.repo}/pull/{pr.number}",
                "state": pr.state, "merged": pr.merged, "title": pr.title, "body": pr.body,
                "head": {"ref": pr.head}, "base": {"ref": pr.base}}

    def list_pulls(request, body):
        head = request.query_params.get("head", "")
        state = request.query_params.get("state", "open")
        found = [p for p in forge.pulls if (not head or f"{forge.owner}:{p.head}" == head)
                 and (state == "all" or p.state == state)]
        return 200, [pr_json(p) for p in found]

    def create_pull(request, body):
        if not s.ref(body["head"]):
            return 422, {"message": "Validation Failed", "errors": [{"field": "head", "code": "invalid"}]}
        if forge.find_pr(body["head"]) and forge.find_pr(body["head"]).state == "open":
            return 422, {"message": f"A pull request already exists for {forge.owner}:{body['head']}."}
        return 201, pr_json(forge.open_pr(body["head"], body["base"], body["title"], body.get("body", ""), []))

    def get_pull(request, body):
        n = int(request.path_params["n"])
        if n > len(forge.pulls):
            return 404, {"message": "Not Found"}
        return 200, pr_json(forge.pulls[n - 1])

    def update_pull(request, body):  # PATCH: only {"state": "closed"} is used
        pr = forge.close_pr(int(request.path_params["n"])) if body.get("state") == "closed" else None
        return (200, pr_json(pr)) if pr else (422, {"message": "Validation Failed"})

    def add_labels(request, body):
        pr = forge.pulls[int(request.path_params["n"]) - 1]
        for name in body["labels"]:
            if name not in pr.labels:
                pr.labels.append(name)
        return 200, [{"name": n} for n in pr.labels]

    def contents(request, body):
        return _listing(forge, unquote(request.path_params["path"]), request.query_params.get("ref", "main"))

    w = forge.wrap
    return Starlette(routes=[
        Route(prefix + "/git/ref/{ref:path}", w(get_ref), methods=["GET"]),
        Route(prefix + "/git/matching-refs/{ref:path}", w(matching_refs), methods=["GET"]),
        Route(prefix + "/git/commits/{sha}", w(get_commit), methods=["GET"]),
        Route(prefix + "/git/trees", w(create_tree), methods=["POST"]),
        Route(prefix + "/git/commits", w(create_commit), methods=["POST"]),
        Route(prefix + "/git/refs", w(create_ref), methods=["POST"]),
        Route(prefix + "/git/refs/{ref:path}", w(delete_ref), methods=["DELETE"]),
        Route(prefix + "/pulls", w(list_pulls), methods=["GET"]),
        Route(prefix + "/pulls", w(create_pull), methods=["POST"]),
        Route(prefix + "/pulls/{n:int}", w(get_pull), methods=["GET"]),
        Route(prefix + "/pulls/{n:int}", w(update_pull), methods=["PATCH"]),
        Route(prefix + "/issues/{n:int}/labels", w(add_labels), methods=["POST"]),
        Route(prefix + "/contents/{path:path}", w(contents), methods=["GET"]),
    ])


# ---------------------------------------------------------------------------
# GitLab (documented REST API v4; no machine-readable description available)

def gitlab_app(forge: FakeForge) -> Starlette:
    s = forge.store
    # GitLab wants the project path URL-encoded (city%2Farchive); Starlette routes
    # on the decoded path, so the encoding is checked on the raw path in wrap().
    prefix = f"/api/v4/projects/{forge.owner}/{forge.repo}"

    def mr_json(pr: PR):
        state = "merged" if pr.merged else ("closed" if pr.state == "closed" else "opened")
        return {"iid": pr.number, "web_url": f"https://gitlab.example/{forge.owner}/{forge.repo}/-/merge_requests/{pr.number}",
                "state": state, "title": pr.title, "description": pr.body, "source_branch": pr.head,
                "labels": pr.labels}

    def tree(request, body):
        q = request.query_params
        status, data = _listing(forge, q.get("path", ""), q.get("ref", "main"))
        if status == 404:
            return 404, {"message": "404 Tree Not Found"}
        per_page, page = int(q.get("per_page", 20)), int(q.get("page", 1))
        return 200, data[(page - 1) * per_page: page * per_page]

    def commits(request, body):
        branch, start = body["branch"], body.get("start_branch")
        if s.ref(branch) and start:
            return 400, {"message": f"A branch called '{branch}' already exists."}
        base = s.ref(start or branch)
        files = []
        for action in body["actions"]:
            if action["action"] != "create":
                return 400, {"message": "unsupported action in this fake"}
            if s.names(base, action["file_path"]) is not None:
                return 400, {"message": "A file with this name already exists"}
            files.append((action["file_path"], action["content"].encode("utf-8")))
        commit = s.make_commit(s.make_tree(s.tree_of(base), files), [base], body["commit_message"])
        s.set_ref(branch, commit)
        return 201, {"id": commit}

    def get_branch(request, body):
        name = unquote(request.path_params["branch"])
        return (200, {"name": name}) if s.ref(name) else (404, {"message": "404 Branch Not Found"})

    def list_branches(request, body):
        search = request.query_params.get("search", "").lstrip("^")
        return 200, [{"name": b} for b in s.branches() if b.startswith(search)]

    def delete_branch(request, body):
        name = unquote(request.path_params["branch"])
        if not s.ref(name):
            return 404, {"message": "404 Branch Not Found"}
        s.delete_ref(name)
        return 204, None

    def list_mrs(request, body):
        src = request.query_params.get("source_branch")
        return 200, [mr_json(p) for p in forge.pulls if p.head == src]

    def create_mr(request, body):
        existing = forge.find_pr(body["source_branch"])
        if existing and existing.state == "open":
            return 409, {"message": ["Another open merge request already exists for this source branch: "
                                     f"!{existing.number}"]}
        if not s.ref(body["source_branch"]):
            return 400, {"message": "source_branch is invalid"}
        labels = [x for x in body.get("labels", "").split(",") if x]
        return 201, mr_json(forge.open_pr(body["source_branch"], body["target_branch"], body["title"],
                                          body.get("description", ""), labels))

    def update_mr(request, body):  # PUT: only {"state_event": "close"} is used
        pr = forge.close_pr(int(request.path_params["n"])) if body.get("state_event") == "close" else None
        return (200, mr_json(pr)) if pr else (400, {"message": "400 Bad request"})

    def get_mr(request, body):
        n = int(request.path_params["n"])
        return (200, mr_json(forge.pulls[n - 1])) if n <= len(forge.pulls) else (404, {"message": "404 Not found"})

    w = forge.wrap
    return Starlette(routes=[
        Route(prefix + "/repository/tree", w(tree), methods=["GET"]),
        Route(prefix + "/repository/commits", w(commits), methods=["POST"]),
        Route(prefix + "/repository/branches", w(list_branches), methods=["GET"]),
        Route(prefix + "/repository/branches/{branch:path}", w(get_branch), methods=["GET"]),
        Route(prefix + "/repository/branches/{branch:path}", w(delete_branch), methods=["DELETE"]),
        Route(prefix + "/merge_requests", w(list_mrs), methods=["GET"]),
        Route(prefix + "/merge_requests", w(create_mr), methods=["POST"]),
        Route(prefix + "/merge_requests/{n:int}", w(get_mr), methods=["GET"]),
        Route(prefix + "/merge_requests/{n:int}", w(update_mr), methods=["PUT"]),
    ])


# ---------------------------------------------------------------------------
# Gitea

def gitea_app(forge: FakeForge) -> Starlette:
    s = forge.store
    prefix = f"/api/v1/repos/{forge.owner}/{forge.repo}"

    def pr_json(pr: PR):
        return {"number": pr.number, "html_url": f"https://gitea.example/{forge.owner}/{forge.repo}/pulls/{pr.number}",
                "state": pr.state, "merged": pr.merged, "title": pr.title, "body": pr.body,
                "labels": [{"id": forge.labels[n], "name": n} for n in pr.labels]}

    def contents(request, body):
        return _listing(forge, unquote(request.path_params["path"]), request.query_params.get("ref", "main"))

    def change_files(request, body):
        base = s.ref(body.get("branch", "main"))
        new = body.get("new_branch")
        if new and s.ref(new) and not body.get("force_push"):
            return 422, {"message": f"branch already exists [name: {new}]"}
        files = []
        for f in body["files"]:
            if f["operation"] != "create":
                return 422, {"message": "unsupported operation in this fake"}
            if s.names(base, f["path"]) is not None:
                return 422, {"message": "repository file already exists"}
            files.append((f["path"], base64.b64decode(f["content"])))
        commit = s.make_commit(s.make_tree(s.tree_of(base), files), [base], body.get("message", "Upload files"))
        s.set_ref(new or body.get("branch", "main"), commit)
        return 201, {"commit": {"sha": commit}, "files": []}

    def get_branch(request, body):
        name = unquote(request.path_params["branch"])
        return (200, {"name": name, "commit": {"id": s.ref(name)}}) if s.ref(name) else (404, {"message": "not found"})

    def list_branches(request, body):
        page, limit = int(request.query_params.get("page", 1)), int(request.query_params.get("limit", 30))
        names = s.branches()[(page - 1) * limit: page * limit]
        return 200, [{"name": b} for b in names]

    def delete_branch(request, body):
        name = unquote(request.path_params["branch"])
        if not s.ref(name):
            return 404, {"message": "not found"}
        s.delete_ref(name)
        return 204, None

    def list_labels(request, body):
        return 200, [{"id": i, "name": n, "color": "e99695"} for n, i in forge.labels.items()]

    def create_label(request, body):
        if body["name"] in forge.labels:
            return 409, {"message": "label exists"}
        forge.labels[body["name"]] = len(forge.labels) + 1
        return 201, {"id": forge.labels[body["name"]], "name": body["name"], "color": body["color"]}

    def gitea_update_pull(request, body):  # PATCH: only {"state": "closed"} is used; Gitea answers 201
        pr = forge.close_pr(int(request.path_params["n"])) if body.get("state") == "closed" else None
        return (201, pr_json(pr)) if pr else (422, {"message": "invalid"})

    def pr_by_branches(request, body):
        head = unquote(request.path_params["head"])
        pr = forge.find_pr(head)
        return (200, pr_json(pr)) if pr else (404, {"message": "not found"})

    def create_pull(request, body):
        existing = forge.find_pr(body["head"])
        if existing and existing.state == "open":
            return 409, {"message": f"pull request already exists for these targets [id: {existing.number}]"}
        if not s.ref(body["head"]):
            return 404, {"message": "head branch not found"}
        names = [n for n, i in forge.labels.items() if i in body.get("labels", [])]
        return 201, pr_json(forge.open_pr(body["head"], body["base"], body["title"], body.get("body", ""), names))

    def get_pull(request, body):
        n = int(request.path_params["n"])
        return (200, pr_json(forge.pulls[n - 1])) if n <= len(forge.pulls) else (404, {"message": "not found"})

    w = forge.wrap
    return Starlette(routes=[
        Route(prefix + "/contents", w(change_files), methods=["POST"]),
        Route(prefix + "/contents/{path:path}", w(contents), methods=["GET"]),
        Route(prefix + "/branches", w(list_branches), methods=["GET"]),
        Route(prefix + "/branches/{branch:path}", w(get_branch), methods=["GET"]),
        Route(prefix + "/branches/{branch:path}", w(delete_branch), methods=["DELETE"]),
        Route(prefix + "/labels", w(list_labels), methods=["GET"]),
        Route(prefix + "/labels", w(create_label), methods=["POST"]),
        Route(prefix + "/pulls", w(create_pull), methods=["POST"]),
        Route(prefix + "/pulls/{n:int}", w(get_pull), methods=["GET"]),
        Route(prefix + "/pulls/{n:int}", w(gitea_update_pull), methods=["PATCH"]),
        Route(prefix + "/pulls/{base}/{head:path}", w(pr_by_branches), methods=["GET"]),
    ])


APPS = {"github": (github_app, ""), "gitlab": (gitlab_app, "/api/v4"), "gitea": (gitea_app, "/api/v1")}


class ForgeServer:
    """A fake forge served by uvicorn in a thread on 127.0.0.1."""

    def __init__(self, forge: FakeForge):
        self.forge = forge
        make, api_path = APPS[forge.kind]
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}{api_path}"
        config = uvicorn.Config(make(forge), host="127.0.0.1", port=self.port, log_level="error",
                                access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "ForgeServer":
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake forge did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
