"""The files the site is built from besides the archive: the page templates,
the theme overrides, the default shell configuration and the documents the
site shows (docs/site.md, "What a city may override").

The repository keeps them where the project's layout puts them (top-level
``site_templates/``, ``mkdocs.yml``, ``docs/``); ``setup.py`` copies
:data:`FILES` into the wheel as the package data ``generator/_shipped/``, so an
installed (non-editable) package carries them. A checkout with an editable
install reads them from the checkout itself.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

# Paths relative to the repository's top; a folder is shipped whole.
FILES = ("site_templates", "mkdocs.yml", "docs/export.md", "docs/export.zh.md")
PACKED = "_shipped"


def path(name: str) -> Path:
    """Return the package's own copy of ``name`` (one of :data:`FILES`, or a
    file under one of them): in an installed wheel its package data, in a
    checkout the checkout's file."""
    packed = resources.files("generator") / PACKED
    if packed.is_dir():
        return Path(str(packed)) / name
    return Path(__file__).resolve().parent.parent / name
