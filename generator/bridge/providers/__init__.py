"""Forge providers: where the bridge's branches and pull requests go.

Every provider offers the same few operations, each safe to repeat after a
crash: ``publish`` first looks for the pull request (or branch) an earlier
attempt made, and only then creates what is missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Protocol

from generator.records import PETITION_ID_RE


@dataclass(frozen=True)
class Change:
    """One batch to publish: files on a new branch, and the pull request's text."""

    branch: str
    files: tuple[tuple[str, bytes], ...]
    message: str
    title: str
    body: str
    labels: tuple[str, ...]


@dataclass(frozen=True)
class PullRequest:
    number: int
    url: str


class ForgeError(RuntimeError):
    """The forge refused a request for a reason retrying will not fix.

    The message is for the operator's log; citizens never see it. ``status``
    is the forge's HTTP status, when there was an answer.
    """

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class ForgeUnavailable(ForgeError):
    """The forge is down or rate-limiting; try again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


class Provider(Protocol):
    name: str

    def highest_ids(self) -> dict[int, int]:
        """Return, for the latest year on main, the highest petition number."""

    def folder_files(self, folder: str) -> list[str] | None:
        """Return the file names in a petition folder on main, or None if absent."""

    def publish(self, change: Change) -> PullRequest:
        """Return the pull request holding ``change``, making branch and pull
        request only if an earlier attempt did not."""

    def pull_request_state(self, pr: PullRequest, branch: str,
                           files: tuple[tuple[str, bytes], ...] = ()) -> str:
        """Return ``open``, ``merged`` or ``closed`` for the pull request itself
        (forges: its own merged flag; local git: ``files``, the batch's paths and
        contents, all on main as pushed), never for whatever sits at a path."""

    def petition_folders(self, year: int) -> dict[str, str]:
        """Return {petition id: folder} of every petition of ``year`` on main."""

    def close_pull_request(self, pr: PullRequest, branch: str) -> None:
        """Close a pull request without merging it (local git: delete its branch)."""

    def bridge_branches(self, prefix: str) -> list[str]:
        """Return the names of the branches that start with ``prefix``."""

    def delete_branch(self, branch: str) -> None:
        """Delete a branch; deleting one that is gone is not an error."""


def highest_from_names(names: list[str]) -> int:
    """Return the highest petition sequence number among folder names (0 if none)."""
    best = 0
    for name in names:
        m = PETITION_ID_RE.match(name)
        if m:
            best = max(best, int(m.group("seq")))
    return best


def latest(names: list[str], pattern: str) -> str | None:
    """Return the greatest name matching ``pattern`` (years, months), or None."""
    found = sorted(n for n in names if re.fullmatch(pattern, n))
    return found[-1] if found else None


def highest_ids_by_listing(names: Callable[[str], list[str] | None]) -> dict[int, int]:
    """Return {latest year: highest sequence} by listing folders through ``names``
    (a forge's "list this folder" call): the latest year, each of its months."""
    year = latest(names("petitions") or [], r"\d{4}")
    if not year:
        return {}
    best = 0
    for month in names(f"petitions/{year}") or []:
        best = max(best, highest_from_names(names(f"petitions/{year}/{month}") or []))
    return {int(year): best}


def folders_by_listing(names: Callable[[str], list[str] | None], year: int) -> dict[str, str]:
    """Return {petition id: folder} of ``year`` by listing its month folders
    through ``names`` (a forge's "list this folder" call)."""
    found: dict[str, str] = {}
    for month in names(f"petitions/{year}") or []:
        for name in names(f"petitions/{year}/{month}") or []:
            if PETITION_ID_RE.match(name):
                found.setdefault(name, f"petitions/{year}/{month}/{name}")
    return found


def make_provider(cfg, stop_event=None) -> Provider:
    """Return the provider the configuration names."""
    if cfg.forge_provider == "local":
        from .local import LocalProvider
        return LocalProvider(cfg.forge_local_repo, cfg.forge_local_remote, cfg.forge_base_branch,
                             cfg.forge_local_author)
    from .http import ForgeClient
    if cfg.forge_provider == "github":
        from .github import GitHubProvider, github_auth
        client = ForgeClient(cfg.forge_api_url, github_auth(cfg), cfg.forge_min_interval_seconds,
                             cfg.forge_max_backoff_seconds, stop_event=stop_event)
        return GitHubProvider(client, cfg.forge_owner, cfg.forge_repo, cfg.forge_base_branch)
    if cfg.forge_provider == "gitlab":
        from .gitlab import GitLabProvider
        client = ForgeClient(cfg.forge_api_url, {"PRIVATE-TOKEN": cfg.forge_token},
                             cfg.forge_min_interval_seconds, cfg.forge_max_backoff_seconds, stop_event=stop_event)
        return GitLabProvider(client, cfg.forge_repo, cfg.forge_base_branch)
    from .gitea import GiteaProvider
    client = ForgeClient(cfg.forge_api_url, {"Authorization": f"token {cfg.forge_token}"},
                         cfg.forge_min_interval_seconds, cfg.forge_max_backoff_seconds, stop_event=stop_event)
    return GiteaProvider(client, cfg.forge_owner, cfg.forge_repo, cfg.forge_base_branch)
