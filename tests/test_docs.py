"""Every command is documented in README and its help ends with an example; the
Chinese field docs keep up with the English ones."""

from __future__ import annotations

import re

import click
import pytest

from generator.cli import main


def _commands(group: click.Group, prefix: str = "wenzheng"):
    for name, cmd in sorted(group.commands.items()):
        full = f"{prefix} {name}"
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, full)
        else:
            yield full, cmd


ALL = list(_commands(main))


@pytest.mark.parametrize("name,cmd", ALL, ids=[n for n, _ in ALL])
def test_help_ends_with_an_example(name, cmd):
    ctx = click.Context(cmd, info_name=name)
    text = cmd.get_help(ctx)
    assert "Example:" in text, f"{name} --help has no example"
    tail = text.split("Example:", 1)[1]
    assert name.split()[-1] in tail, f"{name}'s example does not use the command"


@pytest.mark.parametrize("name,cmd", ALL, ids=[n for n, _ in ALL])
def test_every_command_is_in_readme(name, cmd, root):
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert f"### `{name}`" in readme, f"README has no section for {name}"
    for param in cmd.params:
        for opt in getattr(param, "opts", []):
            if opt.startswith("--") and opt not in ("--help",):
                assert opt in readme, f"README does not mention {name} {opt}"


def test_the_chinese_field_docs_name_every_field_the_english_ones_do(root):
    """The open-data page shows docs/export.zh.md to Chinese readers: it must
    keep up with docs/export.md, field for field."""
    def names(doc: str) -> set[str]:
        return set(re.findall(r"`([a-z_][a-z0-9_.\[\]]*)`", (root / "docs" / doc).read_text(encoding="utf-8")))

    english, chinese = names("export.md"), names("export.zh.md")
    assert len(english) > 60
    assert chinese == english, (f"only in export.md: {sorted(english - chinese)}; "
                                f"only in export.zh.md: {sorted(chinese - english)}")
