"""Build the public site: load, evaluate, aggregate, render, commit into place.

Reads top to bottom like the pipeline. Everything is gathered and computed
before the first page is written; changed pages go into a pending folder that
is committed into ``out`` (journalled, file by file, see
:mod:`generator.render.writer`) only when the whole build succeeded, so a
failed build leaves the last good site untouched. Same commit and same ``now``
give a byte-identical site, Pagefind's filter files aside (docs/site.md).
"""

from __future__ import annotations

import functools
import json
import logging
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import yaml

from generator import gitio, load
from generator.check import check_archive
from generator.metrics import aggregate
from generator.problems import Problem
from generator.render import figures as fg
from generator.render import pages as pg
from generator.render import products, rulespage, search
from generator.render.i18n import LANGS, t
from generator.render.shell import ShellPage, build_shell, fix_shell_page
from generator.render.view import TIME_FMT
from generator.render.writer import SiteWriter, digest
from generator.settled import SettledCache

PROJECT = Path(__file__).resolve().parent.parent
TEMPLATES = PROJECT / "site_templates"
log = logging.getLogger("wenzheng.build")


class BuildError(Exception):
    """The archive cannot be published; ``problems`` says why, every one."""

    def __init__(self, problems: list[Problem]):
        super().__init__(f"{len(problems)} problem(s) stop the build")
        self.problems = problems


@dataclass
class BuildReport:
    """What a build did: counts and seconds per phase."""

    cases: int = 0
    written: int = 0
    skipped: int = 0
    shell_rebuilt: bool = False
    search_shards: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def added_by(repo: Path, rev: str, cache: Path) -> dict[str, str]:
    """Return, for every record path under petitions/, the commit that added it.

    One ``git log`` pass; later builds read only the commits since the last one.
    """
    head = gitio.rev_parse(repo, rev)
    store = cache / "added-by.json"
    known: dict[str, str] = {}
    since = None
    if store.is_file():
        saved = json.loads(store.read_text())
        try:
            subprocess.run(["git", "-C", str(repo), "merge-base", "--is-ancestor", saved["head"], head],
                           check=True, capture_output=True)
            known, since = saved["paths"], saved["head"]
        except (subprocess.CalledProcessError, KeyError):
            known, since = {}, None
    span = f"{since}..{head}" if since else head
    out = gitio.git(repo, "log", "--reverse", "--diff-filter=A", "--name-only", "--format=%x00%H", span,
                    "--", "petitions")
    text = out.decode() if isinstance(out, bytes) else out
    for block in text.split("\0")[1:]:
        lines = block.strip().splitlines()
        if not lines:
            continue
        commit = lines[0]
        for path in lines[1:]:
            if path:
                known.setdefault(path.strip(), commit)
    store.write_text(json.dumps({"head": head, "paths": known}, sort_keys=True))
    return known


def build_site(repo: Path, rev: str, now: datetime, out: Path, base_url: str = "/",
               progress: Callable[[str, int], Callable[[], None]] | None = None) -> BuildReport:
    """Build the site of ``repo`` at ``rev`` as of ``now`` into ``out``.

    Raises BuildError when the archive has errors; ``out`` is then untouched.
    """
    report = BuildReport()
    clock = time.monotonic()

    def lap(name: str) -> None:
        nonlocal clock
        report.seconds[name] = round(time.monotonic() - clock, 2)
        log.info("phase %s: %.1f s", name, report.seconds[name])
        clock = time.monotonic()

    # 1. Load, check and evaluate: only a sound archive is published. Each case
    # is made into what the site needs of it where it is read (the check's
    # worker processes, generator/render/products.py); settled cases come from
    # the cache instead, their full page view read only if their page changed.
    repo = Path(repo)
    cache = (load.cache_dir(repo) or repo / ".wenzheng-cache") / "site"
    cache.mkdir(parents=True, exist_ok=True)
    commits = added_by(repo, rev, cache)
    kept = SettledCache(repo, "site", details=True)
    base_path = "/" + base_url.split("://", 1)[1].partition("/")[2] if "://" in base_url else base_url
    if not base_path.endswith("/"):
        base_path += "/"
    link_base = base_url if "://" in base_url else base_path  # feed links are absolute when it is

    still_valid = lambda hit: products.same_sources(hit, commits)  # noqa: E731 - same commits behind its links
    archive = check_archive(repo, rev, skip_case=kept.skipper(now, still_valid), keep_case=products.unsettled,
                            transform=functools.partial(products.make, now=now, commits=commits))
    if not archive.ok or archive.departments is None or archive.rules is None:
        raise BuildError(archive.errors or archive.problems)
    rules, depts = archive.rules, archive.departments
    site_config = _site_config(repo, rev)
    kept.bind(archive.config_digest)
    made: list[products.Products] = []
    fresh: dict[str, dict] = {}  # full page views of the cases evaluated in this build
    where: dict[str, tuple[str, str]] = {}
    for pid, (folder, tree) in archive.sound.items():
        got = archive.cases.pop(pid, None)
        if got is None:
            item = kept.get(folder, tree, now)
            where[pid] = (folder, tree)
        else:
            item, view = got
            fresh[pid] = view
            if item.settled_last is not None:
                kept.put(folder, tree, item.settled_last, item, view)
        made.append(item)
    kept.save(set(archive.sound.values()))
    report.cases = len(made)

    def full_view(pid: str) -> dict:
        view = fresh.get(pid)
        return view if view is not None else kept.detail(*where[pid])

    lap("load")

    # 2. Order and aggregate: pages by id, downloads newest first, as `wenzheng export`.
    now = now.astimezone(rules.tz)
    made.sort(key=lambda p: p.id)
    views = [p.lite for p in made]
    newest = sorted(made, key=lambda p: (p.received_at, p.id), reverse=True)
    cards = aggregate((p.facts for p in newest), rules, now, departments=tuple(depts.departments))
    lap("evaluate")

    # 3. The city's and every department's figures (generator.metrics).
    city = fg.from_headline(cards.headline("all"))
    min_cases = rules.minimum_cases_for_ranking
    as_of = now.astimezone(rules.tz).strftime(TIME_FMT)
    lap("aggregate")

    # 4. Render: search shards start indexing in the background; the shell first
    # (the frame), then every changed page into the pending folder.
    writer = SiteWriter(Path(out))
    writer.start()
    indexer = search.Indexer()
    try:
        shard_keys = search.shard_keys(made)
        kept_shards = []
        search_keys = {shard: key for shard, (key, _) in shard_keys.items()}
        for shard, (key, recs) in shard_keys.items():
            stamp = f"pagefind/{shard}/.key"
            if writer.old_manifest.get(stamp) == key and (writer.out / "pagefind" / shard).is_dir():
                kept_shards.append(shard)
            else:
                indexer.add(shard, recs)
        del shard_keys
        extra = site_config.get("extra") or {}
        env = pg.environment(TEMPLATES)
        pg.install_names(env, depts)
        site = pg.Site(env, {}, writer, base_path, link_base, depts,
                       site_config.get("repo_url"), "")
        dept_cards = fg.by_department(cards, "all")
        periods = _periods(views)
        shell_pages = _shell_pages(site, views, city, dept_cards, periods, as_of, min_cases,
                                   rules, extra)
        # The shell's dates (sitemap) are days: the start of today keeps mkdocs
        # from rerunning on every build of the same day.
        epoch = int(now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp())
        outs, frames, report.shell_rebuilt = build_shell(site_config, shell_pages, TEMPLATES / "overrides",
                                                         base_url, epoch, cache)
        site.frames = frames
        site.salt = digest(pg.templates_digest(TEMPLATES), frames["zh"], frames["en"], base_path,
                           site_config.get("repo_url"))
        for lang in LANGS:
            _copy_shell(writer, outs[lang], "en/" if lang == "en" else "", base_path,
                        {p.slug: p.body[LANGS.index(lang)] for p in shell_pages})
        writer.file("assets/wz-deadline.js", (TEMPLATES / "wz-deadline.js").read_text(encoding="utf-8"))
        lap("shell")

        # Three processes share two cores (and Pagefind): the downloads; half of
        # the petitions (pages and feeds) and the listings; this one with the
        # other half and everything else.
        open_data_done = writer.fork(lambda: pg.open_data_files(site, newest, cards, now, archive.rev))
        half_done = writer.fork(lambda: (pg.petition_pages(site, made[1::2], full_view, lambda: None),
                                         pg.petition_feeds(site, made[1::2], full_view),
                                         pg.all_listings(site, views)))
        tick = progress("pages", len(made[0::2])) if progress else (lambda: None)
        pg.petition_pages(site, made[0::2], full_view, tick)
        pg.petition_feeds(site, made[0::2], full_view)
        lap("petitions")
        pg.department_pages(site, views, cards, as_of, min_cases, cache)
        pg.report_pages(site, views, cards, as_of, min_cases)
        pg.feed_files(site, views, now)
        lap("departments+reports+feeds")
        half_done()
        lap("wait: other half+listings")
        open_data_done()
        lap("wait: downloads")

        # 5. Search: collect the shards indexed meanwhile, keep the unchanged ones.
        for shard in kept_shards:
            prefix = f"pagefind/{shard}/"
            for p, k in writer.old_manifest.items():
                if p.startswith(prefix):
                    writer.claim(p, k)
        for shard, files in indexer.results().items():
            key = search_keys[shard]
            for rel, data in files.items():
                writer.file(f"pagefind/{shard}/{rel}", data)
            writer.claim(f"pagefind/{shard}/.key", key)
            report.search_shards.append(shard)
        lap("search")
        writer.finish()
        lap("swap")
    except BaseException:
        writer.abandon()
        raise
    finally:
        indexer.close()
    report.written, report.skipped = writer.written, writer.skipped
    return report


def _site_config(repo: Path, rev: str) -> dict[str, Any]:
    """Return mkdocs.yml of the archive at ``rev``, else the project's own."""
    try:
        text = gitio.read_file_at(repo, rev, "mkdocs.yml")
    except Exception:  # noqa: BLE001 - an archive without its own shell config uses ours
        text = None
    if not text:
        text = (PROJECT / "mkdocs.yml").read_bytes()
    return yaml.safe_load(text) or {}


def _periods(views: list[dict[str, Any]]) -> dict[str, list[fg.Period]]:
    found: dict[str, set] = {"week": set(), "month": set(), "year": set()}
    for v in views:
        d = v["received_at"].date()
        for kind in found:
            found[kind].add(fg.period_of(kind, d))
    return {k: sorted(s, key=lambda p: p.first, reverse=True) for k, s in found.items()}


def _copy_shell(writer: SiteWriter, built: Path, into: str, base_path: str, bodies: dict[str, str]) -> None:
    """Put one language's shell into the site: pages with their bodies put in and
    their language switch fixed, theme assets, without the frame page, source maps
    or the theme's search."""
    for path in sorted(built.rglob("*")):
        rel = path.relative_to(built).as_posix()
        if not path.is_file() or rel.startswith(("_frame/", "assets/javascripts/lunr/")) or rel.endswith(".map") \
                or rel.startswith("assets/javascripts/workers/search"):
            continue
        data = path.read_bytes()
        if rel.endswith(".html"):
            here = rel[: -len("index.html")] if rel.endswith("index.html") else rel
            data = fix_shell_page(data.decode("utf-8"), here, base_path, bodies.get(here.rstrip("/"))).encode("utf-8")
        writer.file(into + rel, data)


def _shell_pages(site: pg.Site, views, city, dept_cards, periods, as_of, min_cases, rules,
                 extra) -> list[ShellPage]:
    """Return the shell's pages with their bodies in both languages."""
    latest = sorted(views, key=lambda v: (v["received_at"], v["id"]), reverse=True)[:10]
    overdue = sorted((v for v in views if v["status"] == "overdue"), key=lambda v: (-v["days_overdue"], v["id"]))
    dept_rows = sorted(dept_cards.items())
    ranked = sorted(((d, c) for d, c in dept_rows if c.ranked), key=lambda dc: (dc[1].rank or 0, dc[0]))
    unranked = [(d, c) for d, c in dept_rows if not c.ranked]
    levels = []
    # Every overdue case appears once, under its escalation level; a case past due
    # that has reached no level (or only the reminder) is listed as plain overdue.
    for level in ("accountability", "supervision", "notice", "reminder", None):
        rows = [v for v in overdue if v["escalation"] == level]
        levels.append((level or "overdue", rows[:50], len(rows)))
    counts: dict[str, dict[str, int]] = {"status": {}, "dept": {}, "cat": {}, "month": {}}
    for v in views:
        for k, val in (("status", v["status"]), ("dept", v["holder"] or "unassigned"),
                       ("cat", v["category"]), ("month", v["month"])):
            counts[k][val] = counts[k].get(val, 0) + 1
        if v["status"] == "overdue" and v["escalation"]:
            counts["status"][v["escalation"]] = counts["status"].get(v["escalation"], 0) + 1
    has_form = (TEMPLATES / "partials" / "submit_form.html").is_file()
    body = site.shell_body
    pages = [
        ShellPage("", (t("home", "zh"), t("home", "en")),
                  body("home.html", city=city, latest=latest, most_overdue=overdue[:10], dept_rows=dept_rows,
                       as_of=as_of, min_cases=min_cases)),
        ShellPage("petitions", (t("petitions", "zh"), t("petitions", "en")),
                  _both(site, "petitions.html", lambda lang: dict(
                      total=len(views), statuses=sorted(counts["status"].items()),
                      by_dept=[(d, pg.dept_label(site.depts, None if d == "unassigned" else d, lang), n)
                               for d, n in sorted(counts["dept"].items())],
                      by_cat=sorted(counts["cat"].items()), by_month=sorted(counts["month"].items(), reverse=True)))),
        ShellPage("departments", (t("departments", "zh"), t("departments", "en")),
                  body("departments.html", dept_rows=dept_rows, as_of=as_of, min_cases=min_cases)),
        ShellPage("ranking", (t("ranking", "zh"), t("ranking", "en")),
                  body("ranking.html", ranked=ranked, unranked=unranked, as_of=as_of, min_cases=min_cases)),
        ShellPage("supervision", ("督办", "Supervision"),
                  body("supervision.html", levels=levels, overdue_total=len(overdue), as_of=as_of)),
        ShellPage("reports", (t("reports", "zh"), t("reports", "en")),
                  body("reports.html", groups=[(k, periods[k]) for k in ("year", "month", "week")])),
        ShellPage("rules", (t("rules", "zh"), t("rules", "en")), rulespage.bodies(site, rules, min_cases)),
        ShellPage("search", (t("search", "zh"), t("search", "en")), body("search.html", choices=search.choices(views))),
        ShellPage("open-data", (t("open_data", "zh"), t("open_data", "en")),
                  body("open_data.html", as_of=as_of, files=[
                      ("export.json", "JSON", "与 wenzheng export 相同：全部诉求及其状态、全部考核指标 / the same as `wenzheng export`"),
                      ("cases.jsonl", "JSON Lines", "一行一件诉求 / one petition per line"),
                      ("cases.csv", "CSV", "一行一件诉求 / one petition per row"),
                      ("events.jsonl", "JSON Lines", "一行一个办理事件 / one event per line"),
                      ("events.csv", "CSV", "一行一个办理事件 / one event per row"),
                      ("scorecards.json", "JSON", "全市及各部门考核指标 / city and department scorecards"),
                      ("scorecards.csv", "CSV", "一行一个部门一个统计期 / one department and period per row")],
                      field_docs=_field_docs())),
        ShellPage("submit", (t("submit", "zh"), t("submit", "en")),
                  body("submit.html", bridge_url=extra.get("bridge_url", ""), has_form=has_form)),
        ShellPage("about", (t("about", "zh"), t("about", "en")),
                  body("about.html", centre_zh=site.depts.centre.name.zh, centre_en=site.depts.centre.name.en)),
    ]
    return pages


def _field_docs() -> str:
    """Return the field documentation of the downloads (docs/export.md, and
    docs/open-data.md when present) as HTML."""
    import markdown

    parts = []
    for name in ("export.md", "open-data.md"):
        path = PROJECT / "docs" / name
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            parts.append(markdown.markdown(text.split("\n", 1)[1] if text.startswith("# ") else text,
                                           extensions=["tables"]))
    return "\n".join(parts)


def _both(site: pg.Site, template: str, context: Callable[[str], dict]) -> tuple[str, str]:
    return tuple(site.env.get_template(f"shell/{template}").render(
        lang=lang, home=site.home(lang), root=site.base_path, depts=site.depts, repo_url=site.repo_url,
        **context(lang)) for lang in LANGS)  # type: ignore[return-value]
