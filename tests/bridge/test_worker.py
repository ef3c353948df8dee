"""The worker: batching, crash-safe publishing, orphan branches, contact retention."""

from __future__ import annotations

from generator.bridge.abuse import issue_form_token, solve_pow
from generator.bridge.app import Bridge
from generator.bridge.config import load_config
from generator.bridge.outbox import Outbox
from generator.bridge.providers.local import LocalProvider
from generator.bridge.worker import Worker

from .kit import git, seed_archive, write_config

NOW = 1_772_000_000.0  # 2026-02-25


def setup(tmp_path, key_pair, **over):
    remote, centre = seed_archive(tmp_path, 2026, seq=3)
    cfg = load_config(write_config(tmp_path, key_pair[1], **{
        "forge.local.remote": str(remote), "forge.local.repo": str(tmp_path / "clone"),
        "abuse.burst": 1000, "forge.batch.max_items": 4, "forge.batch.max_wait_seconds": 60.0,
        "forge.cleanup_seconds": 0, **over}), {})
    provider = LocalProvider(cfg.forge_local_repo, cfg.forge_local_remote)
    bridge = Bridge(cfg, provider, lambda: NOW)
    bridge.sync_floor()
    for i in range(6):
        token = issue_form_token(cfg.secret.encode(), NOW - 10, cfg.abuse_pow_bits)
        out = bridge.submit({"category": "help", "title": f"求助 {i}", "body": "正文", "consent": "yes",
                             "contact": "13900001111", "form_token": token,
                             "pow": solve_pow(token, cfg.abuse_pow_bits)}, "192.0.2.0/24")
        assert out.status == 201
    bridge.outbox.close()
    worker = Worker(cfg, provider, lambda: NOW)
    worker.outbox = Outbox(cfg.database)
    return cfg, remote, worker


def branches(remote):
    return git(remote, "for-each-ref", "--format=%(refname:short)", "refs/heads/bridge/").split()


def test_batches_fill_to_the_limit_and_wait_for_the_rest(tmp_path, key_pair):
    cfg, remote, worker = setup(tmp_path, key_pair)
    worker.step(NOW)
    [first] = branches(remote)
    assert len(git(remote, "diff", "--name-only", "main", first).split()) == 4
    assert worker.outbox.counts()["queued"] == 2  # two left, waiting for more or for max_wait
    worker.step(NOW + 61)
    assert len(branches(remote)) == 2 and worker.outbox.counts()["queued"] == 0


def test_a_pending_batch_is_published_again_under_the_same_branch(tmp_path, key_pair):
    cfg, remote, worker = setup(tmp_path, key_pair)
    ob = worker.outbox
    # a crash right after the batch was recorded, before the forge was called
    batch = ob.make_batch([i.seq for i in ob.queued(4)], lambda bid: worker.branch_name(ob.instance_id(), bid), NOW)
    assert branches(remote) == []
    worker.step(NOW)
    assert branches(remote) == [batch.branch]
    assert ob.batch(batch.id).state == "opened"


def test_orphan_branches_are_cleaned_up(tmp_path, key_pair):
    cfg, remote, worker = setup(tmp_path, key_pair)
    worker.step(NOW)
    [kept] = branches(remote)
    git(remote, "branch", "bridge/lost-000001", "main")  # from a lost database
    git(remote, "branch", "feature/not-ours", "main")
    assert worker.cleanup_branches(worker.outbox) == ["bridge/lost-000001"]
    assert branches(remote) == [kept]
    assert "feature/not-ours" in git(remote, "branch")


def test_contacts_are_deleted_after_retention(tmp_path, key_pair):
    cfg, remote, worker = setup(tmp_path, key_pair, contact_retention_days=30)
    ob = worker.outbox
    assert ob.sealed_contact("2026-000004") is not None  # the seed's highest was 3
    assert ob.sealed_contact("2026-000009") is not None and ob.sealed_contact("2026-000010") is None
    assert ob.purge_contacts(NOW + 29 * 86400) == 0
    assert ob.purge_contacts(NOW + 30 * 86400) == 6
    assert ob.sealed_contact("2026-000004") is None


def test_ids_taken_on_main_meanwhile_are_renumbered_on_a_new_branch(tmp_path, key_pair):
    """The centre enters petitions 2026-000004 and -000005 on main after the
    bridge allocated them, and after a crash left a branch with the old ids."""
    from generator.bridge.compose import batch_change
    from tests.conftest import commit_files

    cfg, remote, worker = setup(tmp_path, key_pair)
    ob = worker.outbox
    batch = ob.make_batch([i.seq for i in ob.queued(4)], lambda bid: worker.branch_name(ob.instance_id(), bid), NOW)
    assert [i.petition_id for i in ob.batch_items(batch.id)] == [f"2026-00000{n}" for n in (4, 5, 6, 7)]
    # the crash: pushed, not recorded as opened
    worker.provider.publish(batch_change(batch.branch, ob.batch_items(batch.id), "petition", "m"))
    centre = tmp_path / "centre"
    git(centre, "pull", "-q", "archive", "main")
    commit_files(centre, {f"petitions/2026/01/2026-00000{n}/petition.yaml":
                          f"id: '2026-00000{n}'\nreceived_at: '2026-01-20T09:00:00+08:00'\nchannel: phone\n"
                          f"category: help\ntitle: 热线\nbody: 热线来电。\npetitioner: {{display_name: 市民}}\n"
                          for n in (4, 5)})
    git(centre, "push", "-q", "archive", "HEAD:main")

    worker.step(NOW)
    renamed = ob.batch(batch.id)
    assert renamed.state == "opened" and renamed.branch == batch.branch + "-r1"
    ids = [i.petition_id for i in ob.batch_items(batch.id)]
    assert ids == ["2026-000010", "2026-000011", "2026-000006", "2026-000007"]  # 8 and 9 were queued
    added = git(remote, "diff", "--name-only", "main", renamed.branch).split()
    assert sorted(p.split("/")[3] for p in added) == sorted(ids)
    for item in ob.batch_items(batch.id):
        assert f"id: '{item.petition_id}'" in item.content.decode() or f"id: {item.petition_id}" in item.content.decode()
        assert ob.sealed_contact(item.petition_id) is not None
    assert ob.sealed_contact("2026-000004") is None
    # main's own 2026-000004 is untouched by the new branch
    assert "2026-000004" not in git(remote, "diff", "--name-only", "main", renamed.branch)
