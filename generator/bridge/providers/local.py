"""The local provider: commit on a branch in a git repository on disk and push it.

The bridge keeps its own clone (``repo``) of the archive (``remote``). A batch
is one commit, made with ``git fast-import`` on top of the remote's main
branch, pushed as a branch. There is no pull-request object in plain git: the
pushed branch is the request, "merged" means its files are on main (a merge,
squash or rebase all count), and "closed" means the branch is gone without its
files reaching main.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import os
import subprocess
import tempfile

from generator.gitio import GitError, git, ls_tree, read_blobs, rev_parse, signing_on

from . import Change, ForgeError, ForgeUnavailable, PullRequest, highest_from_names, latest

TRACKING = "refs/remotes/archive/"


class LocalProvider:
    name = "local"

    def __init__(self, repo: str, remote: str, base_branch: str = "main",
                 author: str = "wenzheng-bridge <wenzheng-bridge@localhost>", fetch_interval: float = 2.0):
        self.repo = Path(repo)
        self.remote = remote
        self.base = base_branch
        self.author = author
        self.fetch_interval = fetch_interval
        self._lock = threading.RLock()  # one git operation at a time (git's own locks are not for sharing)
        self._fetched_at = -1e9
        self._heads: set[str] = set()
        self._heads_at = -1e9
        if not (self.repo / ".git").exists() and not (self.repo / "HEAD").exists():
            self.repo.mkdir(parents=True, exist_ok=True)
            git(self.repo, "init", "-q")
        self._run("config", "user.name", "wenzheng-bridge")
        self._run("config", "user.email", "wenzheng-bridge@localhost")

    def _run(self, *args: str) -> bytes:
        try:
            return git(self.repo, *args)
        except GitError as exc:
            raise ForgeUnavailable(f"git {args[0]} failed", 5.0) from exc

    def _fetch_main(self, force: bool = False) -> str | None:
        """Fetch main from the remote (at most every ``fetch_interval`` seconds)
        and return its commit, or None when the remote has no main yet."""
        with self._lock:
            now = time.monotonic()
            if force or now - self._fetched_at >= self.fetch_interval:
                try:
                    git(self.repo, "fetch", "-q", "--no-tags", self.remote,
                        f"+refs/heads/{self.base}:{TRACKING}{self.base}")
                except GitError as exc:
                    if "couldn't find remote ref" not in str(exc):
                        raise ForgeUnavailable("git fetch failed", 5.0) from exc
                self._fetched_at = now
            return rev_parse(self.repo, f"{TRACKING}{self.base}")

    def _remote_branch(self, branch: str) -> str | None:
        out = self._run("ls-remote", self.remote, f"refs/heads/{branch}").decode()
        return out.split()[0] if out.strip() else None

    def _main_names(self, path: str) -> list[str]:
        main = self._fetch_main()
        if not main:
            return []
        try:
            out = git(self.repo, "ls-tree", "-z", "--name-only", f"{main}:{path}")
        except GitError:
            return []
        return [n.decode("utf-8") for n in out.split(b"\0") if n]

    def highest_ids(self) -> dict[int, int]:
        with self._lock:
            self._fetch_main(force=True)
            year = latest(self._main_names("petitions"), r"\d{4}")
            if not year:
                return {}
            months = self._main_names(f"petitions/{year}")
            best = max((highest_from_names(self._main_names(f"petitions/{year}/{m}")) for m in months),
                       default=0)
            return {int(year): best}

    def petition_folders(self, year: int) -> dict[str, str]:
        with self._lock:
            self._fetch_main(force=True)
            found: dict[str, str] = {}
            for month in self._main_names(f"petitions/{year}"):
                for name in self._main_names(f"petitions/{year}/{month}"):
                    found.setdefault(name, f"petitions/{year}/{month}/{name}")
            return found

    def close_pull_request(self, pr: PullRequest, branch: str) -> None:
        self.delete_branch(branch)  # in plain git the pushed branch is the request

    def folder_files(self, folder: str) -> list[str] | None:
        with self._lock:
            names = self._main_names(folder)
            return names or None

    def publish(self, change: Change) -> PullRequest:
        with self._lock:
            url = f"{self.remote}#{change.branch}"
            if self._remote_branch(change.branch):
                return PullRequest(0, url)  # pushed before a crash: the same content
            main = self._fetch_main(force=True)
            ref = f"refs/heads/{change.branch}"
            try:
                commit = commit_files(self.repo, main, change.files, change.message + "\n\n" + change.body,
                                      self.author)
                git(self.repo, "update-ref", ref, commit)
                git(self.repo, "push", "-q", self.remote, f"{ref}:{ref}")
            except GitError as exc:
                raise ForgeUnavailable("git push failed", 5.0) from exc
            self._heads.add(change.branch)  # the cached listing may predate the push
            return PullRequest(0, url)

    def pull_request_state(self, pr: PullRequest, branch: str,
                           files: tuple[tuple[str, bytes], ...] = ()) -> str:
        """Merged means every file of the batch is on main with exactly the
        content the bridge pushed (a merge, squash or rebase all count); another
        record at the same path is not this batch's merge."""
        with self._lock:
            main = self._fetch_main()
            if main and files:
                on_main = {e.path: e.oid for e in ls_tree(self.repo, main, [p for p, _ in files])}
                if all(p in on_main for p, _ in files):
                    blobs = read_blobs(self.repo, on_main.values())
                    if all(blobs[on_main[p]] == content for p, content in files):
                        return "merged"
            return "open" if branch in self._remote_heads() else "closed"

    def _remote_heads(self) -> set[str]:
        """Return the remote's branch names, listed at most every ``fetch_interval``
        seconds (one ``ls-remote`` serves a whole polling round)."""
        now = time.monotonic()
        if now - self._heads_at >= self.fetch_interval:
            out = self._run("ls-remote", "--heads", self.remote).decode()
            self._heads = {line.split("refs/heads/", 1)[1] for line in out.splitlines() if "refs/heads/" in line}
            self._heads_at = now
        return self._heads

    def bridge_branches(self, prefix: str) -> list[str]:
        with self._lock:
            out = self._run("ls-remote", "--heads", self.remote, f"refs/heads/{prefix}*").decode()
            return [line.split("refs/heads/", 1)[1] for line in out.splitlines() if "refs/heads/" in line]

    def delete_branch(self, branch: str) -> None:
        with self._lock:
            try:
                git(self.repo, "push", "-q", self.remote, "--delete", branch)
            except GitError as exc:
                if "remote ref does not exist" not in str(exc):
                    raise ForgeError("git push --delete failed") from exc
            self._heads.discard(branch)


def commit_files(repo: Path, parent: str | None, files, message: str, author: str) -> str:
    """Return a new commit holding ``parent``'s tree plus ``files`` (path, bytes),
    made with plumbing in a private index so no working tree is touched."""
    name, _, email = author.partition(" <")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GIT_INDEX_FILE": os.path.join(tmp, "index"),
               "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email.rstrip(">"),
               "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email.rstrip(">")}

        def run(*args: str, input: bytes | None = None) -> str:
            proc = subprocess.run(["git", "-C", str(repo), *args], input=input, capture_output=True, env=env)
            if proc.returncode != 0:
                raise GitError(f"git {args[0]} failed: " + proc.stderr.decode("utf-8", "replace"))
            return proc.stdout.decode()

        if parent:
            run("read-tree", parent)
        paths = []
        for n, (_, content) in enumerate(files):
            blob_file = os.path.join(tmp, f"blob{n}")
            with open(blob_file, "wb") as fh:
                fh.write(content)
            paths.append(blob_file)
        blobs = run("hash-object", "-w", "--stdin-paths", input="\n".join(paths).encode()).split()
        info = "".join(f"100644 {blob}\t{path}\n" for blob, (path, _) in zip(blobs, files))
        run("update-index", "--add", "--index-info", input=info.encode("utf-8"))
        tree = run("write-tree").strip()
        sign = ["-S"] if signing_on(repo) else []  # the bridge's key, when git is set up to sign
        return run("commit-tree", *sign, tree, *(["-p", parent] if parent else []),
                   input=message.encode("utf-8")).strip()
