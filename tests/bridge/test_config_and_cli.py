"""Configuration loading, its documentation, and the bridge's CLI commands."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from generator.bridge.config import OPTIONS, ConfigError, load_config
from generator.cli import main

from .kit import ROOT, seed_archive, write_config


def test_every_option_is_documented():
    doc = (ROOT / "docs" / "bridge.md").read_text(encoding="utf-8")
    missing = [o.key for o in OPTIONS if f"`{o.key}`" not in doc]
    assert missing == []


def test_environment_overrides_file_and_all_problems_at_once(tmp_path, key_pair):
    path = write_config(tmp_path, key_pair[1], **{"forge.local.remote": "/x", "forge.local.repo": "y"})
    cfg = load_config(path, {"WENZHENG_BRIDGE__FORGE__BATCH__MAX_ITEMS": "7",
                             "WENZHENG_BRIDGE__ABUSE__TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.1"})
    assert cfg.forge_batch_max_items == 7
    assert cfg.abuse_trusted_proxies == ["10.0.0.0/8", "192.168.1.1"]
    assert cfg.forge_local_repo == str(tmp_path / "y")  # relative to the config file
    with pytest.raises(ConfigError) as err:
        load_config(path, {"WENZHENG_BRIDGE__SECRET": "short", "WENZHENG_BRIDGE__LISTEN__PORT": "eighty",
                           "WENZHENG_BRIDGE__FORGE__PROVIDER": "bitbucket", "WENZHENG_BRIDGE__NOPE": "1"})
    text = "\n".join(err.value.problems)
    assert "`listen.port` must be int" in text
    assert "choose one of local, github, gitlab, gitea" in text
    assert "WENZHENG_BRIDGE__NOPE" in text
    assert "`secret` must be at least 32 characters" in text
    assert len(err.value.problems) == 4


def test_github_needs_its_keys(tmp_path, key_pair):
    path = write_config(tmp_path, key_pair[1], **{"forge.provider": "github"})
    with pytest.raises(ConfigError) as err:
        load_config(path, {})
    keys = set(re.findall(r"`(forge\.[a-z_.]+)`", "\n".join(err.value.problems)))
    assert {"forge.api_url", "forge.repo", "forge.owner", "forge.token"} <= keys


@pytest.mark.parametrize("name", ["serve", "status", "cleanup-branches", "keygen", "contacts"])
def test_help_ends_with_an_example(name):
    result = CliRunner().invoke(main, ["bridge", name, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output.split("Options:")[0]


def test_status_and_keygen(tmp_path, key_pair):
    remote, _ = seed_archive(tmp_path, 2026)
    path = write_config(tmp_path, key_pair[1], **{"forge.local.remote": str(remote),
                                                  "forge.local.repo": str(tmp_path / "c")})
    from generator.bridge.outbox import Outbox
    Outbox(tmp_path / "bridge.sqlite3").close()
    result = CliRunner().invoke(main, ["bridge", "status", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "queued 0" in result.output
    keys = CliRunner().invoke(main, ["bridge", "keygen"]).output
    assert "age1" in keys and "AGE-SECRET-KEY-" in keys
    bad = CliRunner().invoke(main, ["bridge", "status", "--config", str(path)],
                             env={"WENZHENG_BRIDGE__SECRET": "x"})
    assert bad.exit_code != 0 and "secret" in bad.output
