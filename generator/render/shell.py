"""Build the site's shell with mkdocs-material, once per language, and take from
it the frame (head, header, navigation, footer) that the jinja2 pages share.

The shell is a handful of pages per language, so mkdocs' per-page cost does not
matter; its output is cached by the digest of everything it is built from, so a
rebuild that changes no shell page runs no mkdocs at all.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import yaml

from generator.render.i18n import LANGS, prefix
from generator.render.writer import digest

FRAME_SLUG = "_frame"
BODY_MARK = "<!--WZ-BODY-->"
# Where a shell page's body goes: mkdocs builds the pages around this mark and
# the bodies (the figures, which change with every reply) are put in afterwards,
# so mkdocs runs only when the shell's configuration, titles or theme change.
SHELL_BODY_MARK = "<!--WZ-SHELL-BODY-->"
TITLE_MARK = "WZ-TITLE"
# Placeholders for the language switch's targets, replaced per page.
ALT_MARK = {"zh": "/__wz_alt_zh__/", "en": "/__wz_alt_en__/"}


@dataclass(frozen=True)
class ShellPage:
    """One page of the shell: its slug ('' for home) and its HTML body per language."""

    slug: str
    title: tuple[str, str]
    body: tuple[str, str]
    in_nav: bool = True


@dataclass(frozen=True)
class Frame:
    """The theme's page around the content, split at the content, for one language."""

    lang: str
    head: str
    foot: str

    def wrap(self, title: str, body: str, here: str, base_path: str) -> str:
        """Return a full page: the frame with ``title`` and ``body``; the language
        switch points at this page (``here``, a path without language prefix) in
        each language."""
        zh = base_path + here
        en = base_path + "en/" + here
        head = self.head.replace(TITLE_MARK, _escape(title))
        return (head.replace(ALT_MARK["zh"], zh).replace(ALT_MARK["en"], en)
                + body + self.foot.replace(ALT_MARK["zh"], zh).replace(ALT_MARK["en"], en))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def shell_config(base: dict, lang: str, pages: list[ShellPage], docs: Path, site: Path,
                 overrides: Path, base_url: str) -> dict:
    """Return the mkdocs configuration of one language's shell."""
    cfg = dict(base)
    extra = dict(cfg.get("extra") or {})
    cfg["docs_dir"] = str(docs)
    cfg["site_dir"] = str(site)
    if "://" in base_url:
        cfg["site_url"] = base_url + prefix(lang)
    if lang == "en":
        cfg["site_name"] = extra.get("site_name_en", cfg.get("site_name"))
    theme = dict(cfg.get("theme") or {})
    theme.update(language=lang, custom_dir=str(overrides.resolve()))
    cfg["theme"] = theme
    extra["alternate"] = [
        {"name": "中文", "link": ALT_MARK["zh"], "lang": "zh"},
        {"name": "English", "link": ALT_MARK["en"], "lang": "en"},
    ]
    extra["wz_lang"] = lang
    css = overrides / "assets" / "stylesheets" / "wenzheng.css"  # its digest in its URL: a new one is fetched
    extra["wz_css"] = hashlib.blake2b(css.read_bytes(), digest_size=6).hexdigest() if css.is_file() else ""
    cfg["extra"] = extra
    # The theme's own search would ship one index of every page; Pagefind does search.
    cfg["plugins"] = []
    cfg["use_directory_urls"] = True
    cfg["strict"] = False
    cfg["nav"] = [{p.title[LANGS.index(lang)]: ("index.md" if not p.slug else f"{p.slug}.md")}
                  for p in pages if p.in_nav]
    cfg["not_in_nav"] = f"/{FRAME_SLUG}.md\n"
    return cfg


def write_docs(lang: str, pages: list[ShellPage], docs: Path) -> None:
    """Write one language's Markdown sources: front matter and a raw HTML body."""
    i = LANGS.index(lang)
    for page in pages + [ShellPage(FRAME_SLUG, (TITLE_MARK, TITLE_MARK), (BODY_MARK, BODY_MARK), False)]:
        name = "index.md" if not page.slug else f"{page.slug}.md"
        text = f"---\ntitle: {page.title[i]}\n---\n\n<div class=\"wz\" markdown=\"0\">\n{SHELL_BODY_MARK}\n</div>\n"
        if page.slug == FRAME_SLUG:
            text = f"---\ntitle: {TITLE_MARK}\nhide: [toc]\n---\n\n{BODY_MARK}\n"
        (docs / name).write_text(text, encoding="utf-8")


def build_shell(base_config: dict, pages: list[ShellPage], overrides: Path, base_url: str,
                source_epoch: int, cache: Path) -> tuple[dict[str, Path], dict[str, Frame], bool]:
    """Return, per language, the folder holding the built shell and its frame.

    Both languages build in parallel processes. A cached build whose inputs are
    unchanged is reused. The third value says whether mkdocs ran.
    """
    base_path = "/" + base_url.split("://", 1)[-1].partition("/")[2] if "://" in base_url else base_url
    key = digest(base_config, [(p.slug, p.title, p.in_nav) for p in pages], base_url, source_epoch,
                 _tree_digest(overrides))
    outs = {lang: cache / f"shell-{lang}" for lang in LANGS}
    stamp = cache / "shell.key"
    ran = False
    if not (stamp.is_file() and stamp.read_text() == key and all(o.is_dir() for o in outs.values())):
        ran = True
        with tempfile.TemporaryDirectory(prefix="wz-shell-") as tmp:
            procs = []
            for lang in LANGS:
                docs = Path(tmp) / f"docs-{lang}"
                docs.mkdir()
                write_docs(lang, pages, docs)
                built = Path(tmp) / f"site-{lang}"
                cfg = shell_config(base_config, lang, pages, docs, built, overrides, base_url)
                cfg_path = Path(tmp) / f"mkdocs-{lang}.yml"
                cfg_path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=True),
                                    encoding="utf-8")
                env = dict(os.environ, SOURCE_DATE_EPOCH=str(source_epoch),
                           NO_MKDOCS_2_WARNING="1", PYTHONHASHSEED="0")
                procs.append((lang, built, subprocess.Popen(
                    [sys.executable, "-m", "mkdocs", "build", "-q", "-f", str(cfg_path)],
                    env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
            for lang, built, proc in procs:
                out, err = proc.communicate()
                if proc.returncode:
                    raise RuntimeError(f"mkdocs failed building the {lang} shell:\n{err.decode()}")
                if outs[lang].exists():
                    shutil.rmtree(outs[lang])
                shutil.copytree(built, outs[lang])
        stamp.write_text(key)
    frames = {lang: read_frame(lang, outs[lang], base_path) for lang in LANGS}
    return outs, frames, ran


def _tree_digest(folder: Path) -> str:
    parts = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            parts.append((path.relative_to(folder).as_posix(), path.read_bytes()))
    return digest(parts)


_URL_ATTR = re.compile(r'(href|src)="([^"#][^"]*)"')


def read_frame(lang: str, built: Path, base_path: str) -> Frame:
    """Return the frame of a built shell, its relative links made root-relative so
    the frame works at any depth."""
    html = (built / FRAME_SLUG / "index.html").read_text(encoding="utf-8")
    here = base_path + prefix(lang) + FRAME_SLUG + "/"

    def absolute(m: re.Match) -> str:
        url = m.group(2)
        if re.match(r"^[a-z]+:|^/|^data:", url):
            return m.group(0)
        return f'{m.group(1)}="{urljoin(here, url)}"'

    html = _URL_ATTR.sub(absolute, compact(html).lstrip())
    head, _, foot = html.partition(BODY_MARK)
    # The frame page's own nav entry is not in the nav; its title heading goes.
    head = re.sub(r"<h1[^>]*>\s*" + TITLE_MARK + r".*?</h1>", "", head, flags=re.S)
    return Frame(lang, head, foot)


# Whitespace that holds a line break, outside <pre> and <textarea> (where it is shown).
_KEPT = re.compile(r"(<pre\b.*?</pre>|<textarea\b.*?</textarea>)", re.S | re.I)
_BREAKS = re.compile(r"[ \t\r\n]*\n[ \t\r\n]*")


def compact(html: str) -> str:
    """Return ``html`` with each run of whitespace that holds a line break made
    one line break: the theme's templates leave indented blank lines that were
    about a sixth of every page. A browser shows one space for either, and a
    script's lines stay lines."""
    parts = _KEPT.split(html)
    return "".join(part if i % 2 else _BREAKS.sub("\n", part) for i, part in enumerate(parts))


def fix_shell_page(html: str, here: str, base_path: str, body: str | None = None) -> str:
    """Return a shell page with its body put in (when given) and its language
    switch pointing at ``here`` in each language."""
    html = compact(html).lstrip()
    if body is not None:
        html = html.replace(SHELL_BODY_MARK, body, 1)
    return (html.replace(ALT_MARK["zh"], base_path + here)
            .replace(ALT_MARK["en"], base_path + "en/" + here))
