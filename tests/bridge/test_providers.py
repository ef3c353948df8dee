"""GitHub, GitLab and Gitea providers against fake forges that behave as documented."""

from __future__ import annotations

import threading
import time

import pytest

from generator.bridge.providers import Change, ForgeUnavailable
from generator.bridge.providers.gitea import GiteaProvider
from generator.bridge.providers.github import API_HEADERS, GitHubProvider
from generator.bridge.providers.gitlab import GitLabProvider
from generator.bridge.providers.http import ForgeClient

from .fakeforge import FakeForge, ForgeServer
from .specs import gitea_validator, github_validator

KINDS = ("github", "gitlab", "gitea")
SEED = {
    "departments.yaml": b"city: {zh: x, en: x}\n",
    "petitions/2026/01/2026-000005/petition.yaml": b"id: 2026-000005\n",
    "petitions/2026/02/2026-000007/petition.yaml": b"id: 2026-000007\n",
    "petitions/2025/12/2025-000900/petition.yaml": b"id: 2025-000900\n",
}


def make(kind: str, tmp_path, max_inline_wait: float = 5.0):
    validator = {"github": github_validator, "gitea": gitea_validator}.get(kind)
    forge = FakeForge(tmp_path, kind, validator() if validator else None)
    forge.seed(SEED)
    server = ForgeServer(forge)
    return forge, server


OPEN_CLIENTS: list[ForgeClient] = []


@pytest.fixture(autouse=True)
def close_clients():
    yield
    while OPEN_CLIENTS:
        OPEN_CLIENTS.pop().close()


def provider_for(kind: str, api_url: str, max_inline_wait: float = 5.0):
    auth = {"github": {**API_HEADERS, "Authorization": "Bearer t"}, "gitlab": {"PRIVATE-TOKEN": "t"},
            "gitea": {"Authorization": "token t"}}[kind]
    client = ForgeClient(api_url, auth, min_interval=0.0, max_backoff=30.0, max_inline_wait=max_inline_wait)
    OPEN_CLIENTS.append(client)
    if kind == "github":
        return GitHubProvider(client, "city", "archive")
    if kind == "gitlab":
        return GitLabProvider(client, "city/archive")
    return GiteaProvider(client, "city", "archive")


def change(branch: str = "bridge/abc-000001", labels=("petition", "needs-moderation")) -> Change:
    files = (("petitions/2026/03/2026-000008/petition.yaml", "id: 2026-000008\ntitle: 路灯\n".encode()),
             ("petitions/2026/03/2026-000009/petition.yaml", "id: 2026-000009\ntitle: 噪音\n".encode()))
    return Change(branch, files, "bridge: two petitions", "网络诉求 2 件", "- 2026-000008\n- 2026-000009\n", labels)


@pytest.mark.parametrize("kind", KINDS)
def test_publish_is_one_commit_and_one_pull_request_even_when_repeated(kind, tmp_path):
    forge, server = make(kind, tmp_path)
    with server:
        p = provider_for(kind, server.api_url)
        assert p.highest_ids() == {2026: 7}
        pr = p.publish(change())
        again = p.publish(change())
        assert again == pr and len(forge.pulls) == 1
        store = forge.store
        head = store.ref("bridge/abc-000001")
        # one commit on top of main holding exactly the two files
        assert store.git("rev-list", "--count", f"main..{head}").strip() == "1"
        added = store.git("diff", "--name-only", "main", head).split()
        assert added == ["petitions/2026/03/2026-000008/petition.yaml", "petitions/2026/03/2026-000009/petition.yaml"]
        assert store.git("show", f"{head}:petitions/2026/03/2026-000008/petition.yaml") == "id: 2026-000008\ntitle: 路灯\n"
        assert forge.pulls[0].labels == ["petition", "needs-moderation"]
        assert forge.pulls[0].title == "网络诉求 2 件"
        assert p.pull_request_state(pr, "bridge/abc-000001") == "open"
        forge.merge(forge.pulls[0])
        assert p.pull_request_state(pr, "bridge/abc-000001") == "merged"
        assert p.folder_files("petitions/2026/03/2026-000008") == ["petition.yaml"]
        assert p.folder_files("petitions/2026/03/2026-000404") is None
        assert p.bridge_branches("bridge/") == ["bridge/abc-000001"]
        p.delete_branch("bridge/abc-000001")
        p.delete_branch("bridge/abc-000001")  # gone already: not an error
        assert p.bridge_branches("bridge/") == []
        assert forge.spec_problems == []


@pytest.mark.parametrize("kind", KINDS)
def test_branch_made_before_a_crash_gets_its_pull_request(kind, tmp_path):
    """An earlier attempt created the branch and died before opening the pull
    request: publishing again opens it on that branch, with no second commit."""
    forge, server = make(kind, tmp_path)
    with server:
        c = change()
        base = forge.store.ref("main")
        tip = forge.store.make_commit(forge.store.make_tree(forge.store.tree_of(base), list(c.files)), [base], "x")
        forge.store.set_ref(c.branch, tip)
        p = provider_for(kind, server.api_url)
        pr = p.publish(c)
        assert forge.store.ref(c.branch) == tip
        assert [x.head for x in forge.pulls] == [c.branch] and pr.number == 1
        assert forge.spec_problems == []


@pytest.mark.parametrize("kind", KINDS)
def test_outage_raises_unavailable_and_later_succeeds(kind, tmp_path):
    forge, server = make(kind, tmp_path)
    with server:
        p = provider_for(kind, server.api_url, max_inline_wait=0.5)
        forge.faults.mode = "503"
        with pytest.raises(ForgeUnavailable) as err:
            p.publish(change())
        assert "503" in str(err.value) and forge.faults.count >= 2  # it retried before giving up
        assert forge.pulls == []
        forge.faults.mode = None
        p.publish(change())
        assert len(forge.pulls) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_429_retry_after_is_honoured(kind, tmp_path):
    forge, server = make(kind, tmp_path)
    with server:
        p = provider_for(kind, server.api_url)
        forge.faults.mode, forge.faults.retry_after = "429", 1
        threading.Timer(0.3, lambda: setattr(forge.faults, "mode", None)).start()
        p.publish(change())
        assert len(forge.pulls) == 1
        times = [t for _, _, t in forge.requests]
        # the only 429 answered the first request; the next came at least Retry-After later
        assert forge.faults.count == 1
        assert times[1] - times[0] >= 1.0


def test_429_longer_than_inline_wait_goes_back_to_the_worker(tmp_path):
    forge, server = make("github", tmp_path)
    with server:
        p = provider_for("github", server.api_url, max_inline_wait=2)
        forge.faults.mode, forge.faults.retry_after = "429", 120
        with pytest.raises(ForgeUnavailable) as err:
            p.publish(change())
        assert err.value.retry_after == 30.0  # capped at max_backoff
        assert forge.faults.count == 1  # it did not hammer the forge


def test_exhausted_rate_budget_waits_for_reset(tmp_path):
    forge, server = make("github", tmp_path)
    with server:
        p = provider_for("github", server.api_url)
        forge.exhausted_until = time.time() + 1.5
        p.highest_ids()  # the first answer says: 0 remaining until reset
        first = forge.requests[0][2]
        p.folder_files("petitions")
        assert forge.requests[-1][2] - first >= 1.0


def test_one_request_at_a_time(tmp_path):
    """Two threads sharing the client never have two requests in flight."""
    forge, server = make("github", tmp_path)
    in_flight, peak = [0], [0]

    with server:
        p = provider_for("github", server.api_url)
        real = p.http._http.request

        def counting(*a, **kw):
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
            try:
                return real(*a, **kw)
            finally:
                in_flight[0] -= 1

        p.http._http.request = counting
        threads = [threading.Thread(target=p.folder_files, args=("petitions",)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert peak[0] == 1 and len(forge.requests) == 8


@pytest.mark.parametrize("kind", KINDS)
def test_petition_folders_and_closing_a_superseded_pull_request(kind, tmp_path):
    forge, server = make(kind, tmp_path)
    with server:
        p = provider_for(kind, server.api_url)
        assert p.petition_folders(2026) == {"2026-000005": "petitions/2026/01/2026-000005",
                                            "2026-000007": "petitions/2026/02/2026-000007"}
        assert p.petition_folders(2024) == {}
        pr = p.publish(change())
        p.close_pull_request(pr, "bridge/abc-000001")
        assert forge.pulls[0].state == "closed" and not forge.pulls[0].merged
        assert forge.store.ref("bridge/abc-000001") is None
        assert p.pull_request_state(pr, "bridge/abc-000001") == "closed"
        assert forge.spec_problems == []
