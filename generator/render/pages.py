"""Render every page of the site from case views and figures into a SiteWriter.

Shell pages (a few per language) are handed to mkdocs-material; petition pages,
listings, department and report pages are rendered here with jinja2 inside the
frame taken from the shell, so they look the same at a fraction of the cost.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import heapq
import itertools
import json
import os
import pickle
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any, Callable, Sequence

import jinja2
import orjson
from markupsafe import Markup, escape

from generator import records as r
from generator.load import replace_file
from generator.render import charts, feeds, figures as fg
from generator.render.i18n import LABELS, LANGS, prefix, t
from generator.render.shell import Frame
from generator.render.writer import SiteWriter, copy_range, digest, fast_digest, write_all

PAGE_SIZE = 50


_FIXED_LABEL = re.compile(r"\bt\('([a-z0-9_]+)', lang\)")


class LabelFoldingLoader(jinja2.FileSystemLoader):
    """Loads ``site_templates/``; a name ``zh:page.html`` or ``en:page.html`` gives
    that page with every fixed label (``t('key', lang)``) replaced by its text in
    that language, so jinja2 compiles it into the page's static text instead of
    calling ``t`` a few dozen times per page (a third of a petition page's time)."""

    def get_source(self, environment: jinja2.Environment, template: str):
        lang, sep, name = template.partition(":")
        if not sep or lang not in LANGS:
            return super().get_source(environment, template)
        source, filename, uptodate = super().get_source(environment, name)
        return _FIXED_LABEL.sub(lambda m: json.dumps(t(m.group(1), lang), ensure_ascii=False),
                                source), filename, uptodate


class ViewEnvironment(jinja2.Environment):
    """A jinja2 environment in which ``v.title`` on a dict (a page view) looks
    the key up first. jinja2 tries the attribute first, and the failed
    attribute lookup (an exception) on every one of a petition page's hundred
    lookups was a fifth of its rendering time. No view key is named like a
    dict method, so the pages are the same."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


def environment(templates: Path, cache: Path | None = None) -> jinja2.Environment:
    """Return the jinja2 environment of ``site_templates/``; with ``cache``, a
    folder where compiled templates are kept (by their source's digest and the
    jinja2 and Python versions), as each build's processes would otherwise
    compile them again."""
    bytecode = None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        bytecode = jinja2.FileSystemBytecodeCache(str(cache))
    env = ViewEnvironment(loader=LabelFoldingLoader(str(templates)),
                             autoescape=True, trim_blocks=False, lstrip_blocks=False,
                             undefined=jinja2.StrictUndefined, bytecode_cache=bytecode,
                             auto_reload=False)  # one build, one environment: no source stat per page
    env.globals.update(t=t, labels=LABELS)
    return env


def pct(rate: Any) -> str:
    """Return a rate as a percentage to a tenth (``—`` without a denominator)."""
    return f"{100 * rate.numerator / rate.denominator:.1f}%" if rate.denominator else "—"


def install_names(env: jinja2.Environment, depts: r.Departments) -> None:
    """Give templates ``dn(id, lang)`` (an actor's name) and ``badge(view, lang)``
    as plain functions: jinja2 macros cost milliseconds per page at this volume."""
    names: dict[str | None, tuple[str, str]] = {None: (t("unassigned", "zh"), t("unassigned", "en"))}
    for actor in ("centre", "petitioner", "system"):
        names[actor] = (t(actor, "zh"), t(actor, "en"))
    names["centre"] = (depts.centre.name.zh, depts.centre.name.en)
    for d in depts.departments.values():
        names[d.id] = (d.name.zh, d.name.en)

    def dn(actor: str | None, lang: str) -> str:
        pair = names.get(actor)
        return actor if pair is None else pair[1 if lang == "en" else 0]

    def badge(v: dict[str, Any], lang: str) -> Markup:
        text = t(v["status"], lang) + (f" · {t(v['escalation'], lang)}" if v["escalation"] else "")
        return Markup(f'<span class="wz-badge wz-{v["status"]}">{escape(text)}</span>')

    def case_rows(rows: Sequence[dict[str, Any]], lang: str, home: str, show_overdue: bool = False) -> Markup:
        # A case table's rows, each on a line of its own: in the template,
        # 50 rows a listing page took most of the listings' time.
        link = escape(home)
        return Markup("".join([
            f'\n<tr><td><a href="{link}p/{escape(v["id"])}.html">{escape(v["id"])}</a></td>'
            f'<td>{escape(v["title"])}</td><td>{escape(dn(v["holder"], lang))}</td><td>{badge(v, lang)}</td>'
            f'<td>{escape(v["days_overdue"] if show_overdue else v["received"])}</td></tr>' for v in rows]))

    def timeline(v: dict[str, Any], lang: str) -> Markup:
        # A petition page's timeline, an item per record with its fields: in
        # the template, its loops were a third of the page's rendering time.
        items = []
        for e in v["timeline"]:
            item = [(f'\n<li><time>{escape(e["at"])}</time> <strong>{escape(t("ev_" + str(e["kind"]), lang))}</strong>'
                     f' · {escape(dn(e["by"], lang))}')]
            for k, val in e["fields"]:
                if k != "final":
                    label = f"field_{k}"
                    item.append(f' · {escape(t(label, lang) if label in LABELS else k)}: '
                                f'{escape(t(val, lang) if val in LABELS else dn(val, lang))}')
            item.append(f'\n<br><span>{escape(e["body"])}</span></li>' if e["body"] and e["kind"] != "reply"
                        else "\n</li>")
            items.append("".join(item))
        return Markup("".join(items))

    def stage_rows(v: dict[str, Any], lang: str) -> Markup:
        # A petition page's deadline table rows, a row per stage.
        en = lang == "en"
        rows = []
        for s in v["stages"]:
            late = s["late"]
            if late:
                state = f'{escape(t("late_by" if s["done"] else "overdue_by", lang))} {escape(late[1] if en else late[0])}'
            else:
                state = str(escape(t(f"st_{s['state']}", lang)))
            if s["escalation"]:
                state += f' · {escape(t(s["escalation"], lang))}'
            if s["department"] and s["department"] != v["holder"]:
                state += f'<br><small>{escape(dn(s["department"], lang))}</small>'
            provisional = f'<br><small>{escape(t("provisional", lang))}</small>' if s["provisional"] else ""
            rows.append(f'\n<tr><td>{escape(s["label"][1] if en else s["label"][0])}</td><td>{escape(s["start"])}</td>'
                        f'<td>{escape(s["due"] or "—")}{provisional}</td>'
                        f'<td>{escape(s["done"] or t("not_done", lang))}</td>\n<td>{state}</td></tr>')
        return Markup("".join(rows))

    def stage_steps(v: dict[str, Any], lang: str) -> Markup:
        # The arithmetic behind each stage's due time, a folded list per stage.
        en = lang == "en"
        head = escape(t("arithmetic", lang))
        return Markup("".join(
            f'<details><summary>{head}: {escape(s["label"][1] if en else s["label"][0])}</summary>\n'
            f'<ol class="wz-steps">{"".join([f"<li>{escape(line)}</li>" for line in s["lines"][1 if en else 0]])}'
            f'</ol></details>\n' for s in v["stages"]))

    def rate_cell(rate: Any) -> str:
        # A rate, its numerator and denominator, and its interval when there is one.
        interval = (f" [{100 * rate.wilson_low:.0f}–{100 * rate.wilson_high:.0f}%]"
                    if rate.wilson_low is not None else "")
        return f"<td>{pct(rate)}<br><small>{escape(rate.numerator)}/{escape(rate.denominator)}{interval}</small></td>"

    def score_rows(rows: Sequence[tuple[str, Any]], lang: str, home: str, min_cases: int) -> Markup:
        # A scorecard table's rows, a department each: in the template, its
        # cells' macros were most of the time of the 130 report pages that
        # every build makes again (their figures are as of the build).
        link = escape(home)
        few = f"<br><small>{escape(t('too_few', lang))}</small>"
        out = []
        for dept, sc in rows:
            note = few if sc.received < min_cases else f"<br><small>#{escape(sc.rank)}</small>" if sc.rank else ""
            out.append(f'\n<tr><td><a href="{link}d/{escape(dept)}/">{escape(dn(dept, lang))}</a>{note}</td>'
                       f'<td>{escape(sc.received)}</td>{rate_cell(sc.reply_rate)}{rate_cell(sc.on_time_rate)}'
                       f'{rate_cell(sc.completion_rate)}{rate_cell(sc.satisfaction_rate)}'
                       f'<td>{escape(sc.overdue_now)}</td></tr>')
        return Markup("".join(out))

    env.globals.update(dn=dn, badge=badge, case_rows=case_rows, timeline=timeline, stage_rows=stage_rows,
                       stage_steps=stage_steps, score_rows=score_rows, pct=pct, depts=depts)


# The code that turns views into pages: a change to it rewrites every page.
CODE_DIGEST = digest([(Path(__file__).parent / f"{name}.py").read_bytes() for name in ("pages", "feeds", "shell", "i18n")])


def templates_digest(templates: Path) -> str:
    """Return a digest of every template, so a template change rewrites its pages."""
    return digest([(p.relative_to(templates).as_posix(), p.read_bytes())
                   for p in sorted(templates.rglob("*")) if p.is_file()])


@dataclass
class Site:
    """What every page needs: the language frames, the writer, links and names."""

    env: jinja2.Environment
    frames: dict[str, Frame]
    writer: SiteWriter
    base_path: str
    base_url: str
    depts: r.Departments
    repo_url: str | None
    salt: str  # digest of templates and frames: a change rewrites everything

    def home(self, lang: str) -> str:
        return self.base_path + prefix(lang)

    def use(self, depts: r.Departments) -> None:
        """Name the departments of ``depts`` on every page (once per departments)."""
        if self.depts is not depts:
            self.depts = depts
            install_names(self.env, depts)

    def render(self, here: str, lang: str, title: str, template: str, context: dict[str, Any]) -> str:
        """Return the page ``here`` (a path like ``p/2026-000001/``) in ``lang``:
        ``template`` rendered with ``context``, in the frame."""
        body = self.env.get_template(f"{lang}:{template}").render(
            lang=lang, home=self.home(lang), root=self.base_path, depts=self.depts,
            repo_url=self.repo_url, **context)
        return self.frames[lang].wrap(title, body, here, self.base_path)

    def page(self, here: str, lang: str, title: str, template: str, key: Any,
             context: Callable[[], dict[str, Any]]) -> None:
        """Write ``here`` in ``lang`` unless its inputs (``key``) are unchanged."""
        self.writer.page(prefix(lang) + here + "index.html", fast_digest((self.salt, lang, key)),
                         lambda: self.render(here, lang, title, template, context()))

    def shell_body(self, template: str, **context: Any) -> tuple[str, str]:
        """Return a shell page's HTML body in both languages."""
        return tuple(self.env.get_template(f"shell/{template}").render(
            lang=lang, home=self.home(lang), root=self.base_path, depts=self.depts,
            repo_url=self.repo_url, **context) for lang in LANGS)  # type: ignore[return-value]


def dept_label(depts: r.Departments, dept_id: str | None, lang: str) -> str:
    d = depts.get(dept_id) if dept_id else None
    if d is None:
        return t("unassigned", lang) if dept_id is None else dept_id
    return d.name.en if lang == "en" else d.name.zh


# -- a petition's own files ---------------------------------------------------------


class PetitionFiles:
    """A petition's own files: its page in each language and its Atom feed.

    They are made where the case is read (in the check's worker processes,
    :func:`generator.render.products.make_and_write`), so a case's full page
    view never leaves the process that computed it and is never kept. Their
    paths and input digests (:meth:`keys`) come from the case's products alone:
    that is how a settled case kept from the last build is known to need no
    rendering (:meth:`in_site`), and how the build records files written in
    other processes.
    """

    def __init__(self, site: Site):
        self.site = site
        # What the keys depend on besides the case (the salt, the base URL).
        self.tag = digest(site.salt, site.base_url)[:16]

    def keys(self, p: Any) -> tuple[tuple[str, str], ...]:
        """Return (path, input digest) of the page in each language and of the
        feed (as kept in ``p.files`` when they were made under the same tag)."""
        pid, kept = p.id, p.files
        if kept and kept[0] == self.tag:
            return (f"p/{pid}.html", kept[1]), (f"en/p/{pid}.html", kept[2]), (f"feeds/p/{pid}.xml", kept[3])
        salt = self.site.salt
        return ((f"p/{pid}.html", _salted(salt, "zh", p.page_key)),
                (f"en/p/{pid}.html", _salted(salt, "en", p.page_key)),
                (f"feeds/p/{pid}.xml", _salted(self.site.base_url, "feed", p.feed_key)))

    def kept(self, p: Any) -> tuple[str, str, str, str]:
        """Return what ``p.files`` keeps of :meth:`keys`: the tag and the three
        digests (the paths follow from the id)."""
        (_, zh), (_, en), (_, feed) = self.keys(p)
        return self.tag, zh, en, feed

    FOLDERS = ("p", "en/p", "feeds/p")

    @classmethod
    def stamps(cls, out: Path) -> dict[str, list[int]]:
        """Return the inode number, modification and change time of each folder
        of petition files in ``out``: any file made, removed or renamed in a
        folder changes its times."""
        found = {}
        for name in cls.FOLDERS:
            try:
                st = os.stat(out / name)
            except OSError:
                continue
            found[name] = [st.st_ino, st.st_mtime_ns, st.st_ctime_ns]
        return found

    @classmethod
    def mark(cls, out: Path) -> dict[str, list[int]]:
        """Set the modification time of each folder of petition files in
        ``out`` a second back, and return their :meth:`stamps`. A file system
        keeps times to a clock tick (milliseconds): a file removed in the
        same tick as the build's last file moved in would leave the folder's
        time unchanged, but not one a second back."""
        for name in cls.FOLDERS:
            with contextlib.suppress(OSError):
                st = os.stat(out / name)
                back = st.st_mtime_ns - 1_000_000_000
                os.utime(out / name, ns=(st.st_atime_ns, back))
        return cls.stamps(out)

    @classmethod
    def present(cls, writer: Any, stamps: Any = None) -> set[str] | None:
        """Return the ids of the petitions whose page in each language and feed
        the current site holds (three listings, where asking for each file
        would cost three system calls a petition); None when the folders'
        :meth:`stamps` are still ``stamps``, as the last build left them
        (:meth:`mark`): then
        every file its manifest names is there, and listing 300,000 names
        (0.3 s at 100,000 petitions) would say so again."""
        if stamps and stamps == cls.stamps(writer.out):
            return None
        pages = {name[:-5] for name in writer.names("p") if name.endswith(".html")}
        pages.intersection_update(name[:-5] for name in writer.names("en/p") if name.endswith(".html"))
        pages.intersection_update(name[:-4] for name in writer.names("feeds/p") if name.endswith(".xml"))
        return pages

    def in_site(self, p: Any, manifest: dict[str, str], present: set[str] | None) -> tuple | None:
        """Return :meth:`keys` of ``p`` when the current site holds every file
        of ``p`` made from the same inputs, else None (``manifest``: the last
        build's; ``present``: the ids :meth:`present` found, None when every
        file of the manifest is there)."""
        if present is not None and p.id not in present:
            return None
        keyed = self.keys(p)
        (zh, zh_key), (en, en_key), (feed, feed_key) = keyed
        if manifest.get(zh) == zh_key and manifest.get(en) == en_key and manifest.get(feed) == feed_key:
            return keyed
        return None

    def unchanged(self, p: Any) -> bool:
        """Return True when the last build wrote every file of ``p`` from the same
        inputs and they are still there: :meth:`write` would write none."""
        return all(self.site.writer.has(path, key) for path, key in self.keys(p))

    def write(self, p: Any, view: dict[str, Any], departments: r.Departments) -> list[str]:
        """Write the files of ``p`` (its full page ``view``) whose inputs changed
        into the pending folder; return their paths."""
        site = self.site
        site.use(departments)
        written = []
        (zh, zh_key), (en, en_key), (feed, feed_key) = self.keys(p)
        here, title = f"p/{p.id}.html", f"{p.id} {view['title']}"
        for lang, path, key in (("zh", zh, zh_key), ("en", en, en_key)):
            if not site.writer.has(path, key):
                html = site.render(here, lang, title, "petition.html", {"v": view})
                site.writer.write_pending(path, html.encode("utf-8"))
                written.append(path)
        if not site.writer.has(feed, feed_key):
            site.writer.write_pending(feed, petition_feed(site.base_url, view).encode("utf-8"))
            written.append(feed)
        return written


def _salted(salt: str, lang: str, key: str) -> str:
    return hashlib.blake2b(f"{salt}\0{lang}\0{key}".encode(), digest_size=16).hexdigest()


def petition_feed(base: str, v: dict[str, Any]) -> str:
    """Return a petition's own Atom feed: its timeline, newest first."""
    items = [(f"{base}p/{v['id']}.html#{e['file']}", f"{t('ev_' + e['kind'], 'zh')} {e['at']}",
              f"{base}p/{v['id']}.html", _local_time(e["at"], v["received_at"]), e["body"][:280])
             for e in reversed(v["timeline"])]
    return feeds.atom(f"{base}p/{v['id']}.html", f"{v['id']} {v['title']}", f"{base}feeds/p/{v['id']}.xml",
                      v["last_event_at"], items)


# -- listings ------------------------------------------------------------------------


def listing_pages(site: Site, name: str, title: tuple[str, str], rows: Sequence[dict[str, Any]],
                  show_overdue: bool = False) -> int:
    """Write a paginated listing under ``l/<name>/``; return its page count."""
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    for n in range(1, pages + 1):
        chunk = rows[(n - 1) * PAGE_SIZE: n * PAGE_SIZE]
        here = f"l/{name}/" + (f"{n}/" if n > 1 else "")
        # Once for both languages, from each row's digest (products.ROW_FIELDS).
        key = fast_digest((title, n, pages, len(rows), "".join([v["row_key"] for v in chunk]), show_overdue))
        for i, lang in enumerate(LANGS):
            page_title = title[i] + (f" · {n}" if n > 1 else "")
            site.page(here, lang, page_title, "listing.html", key,
                      lambda chunk=chunk, n=n, i=i, lang=lang: {
                          "title": title[i], "rows": chunk, "page": n, "pages": pages,
                          "total": len(rows), "show_overdue": show_overdue,
                          "base": site.home(lang) + f"l/{name}/"})
    return pages


def all_listings(site: Site, newest: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Write every listing (all, by department, category, status, month) of the
    views ``newest`` (newest first); return the counts the petitions index page shows."""
    listing_pages(site, "all", (t("all_petitions", "zh"), t("all_petitions", "en")), newest)
    groups: dict[str, dict[str, list]] = {"dept": defaultdict(list), "cat": defaultdict(list),
                                          "status": defaultdict(list), "month": defaultdict(list)}
    for v in newest:
        groups["dept"][v["holder"] or "unassigned"].append(v)
        groups["cat"][v["category"]].append(v)
        groups["status"][v["status"]].append(v)
        if v["status"] == "overdue" and v["escalation"]:
            groups["status"][v["escalation"]].append(v)
        groups["month"][v["month"]].append(v)
    for kind, by in groups.items():
        for key, rows in sorted(by.items()):
            if kind == "dept":
                title = (dept_label(site.depts, None if key == "unassigned" else key, "zh"),
                         dept_label(site.depts, None if key == "unassigned" else key, "en"))
            elif kind == "month":
                title = (f"{key} {t('petitions', 'zh')}", f"{t('petitions', 'en')}, {key}")
            else:
                title = (t(key, "zh"), t(key, "en"))
            if kind == "status" and key in r.ESCALATION_LEVELS + ("overdue",):
                rows = sorted(rows, key=lambda v: (-v["days_overdue"], v["id"]))
            listing_pages(site, f"{kind}/{key}", title, rows,
                          show_overdue=kind == "status" and key in r.ESCALATION_LEVELS + ("overdue",))
    return {"total": len(newest), "groups": {k: {kk: len(vv) for kk, vv in g.items()} for k, g in groups.items()}}


# -- departments ------------------------------------------------------------------------


def monthly_series(cards, dept_id: str) -> list[tuple[str, fg.Figures]]:
    """Return (month, figures) of a department for every month it had cases, oldest first."""
    rows = [(c.period, fg.from_card(c)) for c in cards.departments
            if c.department == dept_id and len(c.period) == 7 and c.period[4] == "-"]
    return sorted(rows)


def _chart_specs(series: list[tuple[str, fg.Scorecard]]) -> tuple[list[str], list[tuple]]:
    """Return the months of a department's trend charts and, for each chart, its
    (slug, label, values, denominators, unit in each language)."""
    months = [m for m, _ in series]
    return months, [
        ("reply-time", "median_reply_hours", [sc.median_reply_hours and round(sc.median_reply_hours, 1)
                                               for _, sc in series],
         [sc.reply_rate.numerator for _, sc in series], ("小时", "hours")),
        ("on-time", "on_time_rate", [None if sc.on_time_rate.value is None else round(100 * sc.on_time_rate.value, 1)
                                     for _, sc in series], [sc.on_time_rate.denominator for _, sc in series], ("%", "%")),
        ("satisfaction", "satisfaction_rate",
         [None if sc.satisfaction_rate.value is None else round(100 * sc.satisfaction_rate.value, 1) for _, sc in series],
         [sc.satisfaction_rate.denominator for _, sc in series], ("%", "%")),
    ]


def _shape_key(months: list[str], values: list, unit: tuple[str, str]) -> str:
    return digest(months, values, unit[0] == "%")


def draw_charts(dept_ids: Sequence[str], cards, cache: Path) -> int:
    """Draw into ``cache`` the drawings of the departments' trend charts that are
    not there yet; return how many. The build runs this in a process of its
    own as soon as the scorecards are known, so that :func:`department_pages`
    finds them drawn (a drawing takes about 0.3 s; one reply changes a
    department's two or three)."""
    drawn = 0
    for dept_id in dept_ids:
        months, specs = _chart_specs(monthly_series(cards, dept_id))
        for _, _, values, _, unit in specs:
            cached = cache / f"chart-{_shape_key(months, values, unit)}.svg"
            if not cached.is_file():
                _drawing(cached, months, values, unit[0] == "%")
                drawn += 1
    return drawn


def chart_set(site: Site, dept_id: str, series: list[tuple[str, fg.Scorecard]], cache: Path,
              drawings: set[str] | None = None) -> dict[str, list]:
    """Write the department's three trend charts; return their descriptions per
    language. ``drawings`` collects the names of the cached drawings they use."""
    months, specs = _chart_specs(series)
    out: dict[str, list] = {lang: [] for lang in LANGS}
    for slug, label, values, dens, unit in specs:
        texts = []
        for i, lang in enumerate(LANGS):
            title = f"{dept_label(site.depts, dept_id, lang)} · {t(label, lang)}"
            pairs = ", ".join(f"{m}: {'—' if v is None else v}" for m, v in zip(months, values))
            texts.append((lang, title, f"{t('trend', lang)}: {pairs}", unit[i]))
        # One drawing for both languages, labelled in each (generator.render.charts).
        shape_key = _shape_key(months, values, unit)
        if drawings is not None:
            drawings.add(f"chart-{shape_key}.svg")
        # Drawn (or read from the cache) at most once, only if a language's chart changed.
        shape = functools.cache(functools.partial(_drawing, cache / f"chart-{shape_key}.svg", months, values,
                                                  unit[0] == "%"))
        for lang, title, desc, lang_unit in texts:
            path = f"{prefix(lang)}d/{dept_id}/{slug}.svg"
            site.writer.page(path, digest(shape_key, title, desc, lang_unit),
                             lambda title=title, desc=desc, lang_unit=lang_unit, shape=shape: charts.labelled(
                                 shape(), title, desc, lang_unit))
            out[lang].append({"src": site.base_path + path, "alt": desc, "title": t(label, lang),
                              "rows": [(m, "—" if v is None else v, d) for m, v, d in zip(months, values, dens)]})
    return out


def _drawing(cached: Path, months: list[str], values: list, percent: bool) -> str:
    """Return a chart's drawing from the cache file ``cached``, drawing it there first if need be."""
    if cached.is_file():
        return cached.read_text(encoding="utf-8")
    svg = charts.drawing(months, values, percent)
    replace_file(cached, svg.encode("utf-8"))  # whole or not at all: another process may read it
    return svg


def department_pages(site: Site, views: Sequence[dict[str, Any]], cards, as_of: str,
                     min_cases: int, cache: Path) -> None:
    """Write each department's page: all-time figures, trend charts, open and overdue cases."""
    by_dept: dict[str, list] = defaultdict(list)
    for v in views:
        if v["holder"]:
            by_dept[v["holder"]].append(v)
    all_time = fg.by_department(cards, "all")
    drawings: set[str] = set()
    for dept_id in sorted(site.depts.departments):
        mine = by_dept.get(dept_id, [])
        sc = all_time.get(dept_id, fg.EMPTY)
        chart_info = chart_set(site, dept_id, monthly_series(cards, dept_id), cache, drawings)
        overdue = sorted((v for v in mine if v["status"] == "overdue"), key=lambda v: (-v["days_overdue"], v["id"]))[:50]
        open_rows = sorted((v for v in mine if v["status"] in ("open", "due_soon")),
                           key=lambda v: (v["received_at"], v["id"]), reverse=True)[:50]
        key = (sc, [(v["id"], v["title"], v["status"], v["escalation"], v["days_overdue"]) for v in overdue + open_rows],
               chart_info, len(mine), as_of, min_cases)
        for lang in LANGS:
            site.page(f"d/{dept_id}/", lang, dept_label(site.depts, dept_id, lang), "department.html", key,
                      lambda lang=lang, sc=sc, overdue=overdue, open_rows=open_rows, mine=mine, dept_id=dept_id: {
                          "dept": site.depts.get(dept_id), "sc": sc, "charts": chart_info[lang],
                          "overdue": overdue, "open_rows": open_rows, "total": len(mine),
                          "as_of": as_of, "min_cases": min_cases})
    for old in cache.glob("chart-*.svg"):  # drawings of figures no department shows any more
        if old.name not in drawings:
            old.unlink(missing_ok=True)


# -- reports ------------------------------------------------------------------------------


def report_pages(site: Site, views: Sequence[dict[str, Any]], cards, as_of: str,
                 min_cases: int) -> dict[str, list[fg.Period]]:
    """Write a report per week, month and year with petitions; return the periods."""
    # Each case once with its sort keys (best handled, worst handled, most
    # overdue), grouped by day (of receipt in the city's time, as the
    # scorecards count it), then by period. A case is among the best only when
    # nothing went wrong (closed, every deadline met, not rated dissatisfied)
    # and among the worst only when something did (a deadline missed, now or
    # when done, or rated dissatisfied): a period with few cases lists fewer,
    # never one case in both.
    by_day: dict[Any, list] = defaultdict(list)
    for v in views:
        hours = _handling_hours(v)
        late = v["late_stages"] > 0  # an overdue case (days_overdue) has an overdue stage
        unhappy = v["rating"] == "dissatisfied"
        by_day[v["received"][:10]].append((
            (v["rating"] != "satisfied", hours, v["id"]) if v["status"] == "closed" and not (late or unhappy) else None,
            ((-v["days_overdue"], not unhappy, -v["late_stages"], -min(hours, 1e8), v["id"])
             if late or unhappy else None),
            (-v["days_overdue"], v["id"]) if v["status"] == "overdue" or v["escalation"] else None,
            v))
    by_period: dict[fg.Period, list] = defaultdict(list)
    for text, rows in by_day.items():
        day = date.fromisoformat(text)
        for kind in ("week", "month", "year"):
            by_period[fg.period_of(kind, day)].extend(rows)
    out: dict[str, list[fg.Period]] = {"week": [], "month": [], "year": []}
    for period in sorted(by_period, key=lambda p: (p.kind, p.first)):
        out[period.kind].append(period)
    for kind, periods in out.items():
        for i, period in enumerate(periods):
            mine = by_period[period]
            total = fg.from_headline(cards.headline(period.key))
            prev_p = fg.previous(period)
            prev = fg.from_headline(cards.headline(prev_p.key))
            rows = sorted(fg.by_department(cards, period.key).items())
            best = [x[3] for x in heapq.nsmallest(10, (x for x in mine if x[0] is not None), key=itemgetter(0))]
            worst = [x[3] for x in heapq.nsmallest(10, (x for x in mine if x[1] is not None), key=itemgetter(1))]
            escalated = [x[3] for x in heapq.nsmallest(50, (x for x in mine if x[2] is not None), key=itemgetter(2))]
            nxt = periods[i + 1] if i + 1 < len(periods) else None
            brief = lambda vs: [(v["id"], v["title"], v["holder"], v["status"], v["escalation"], v["days_overdue"]) for v in vs]
            key = (period, total, prev, rows, brief(best), brief(worst), brief(escalated), nxt, as_of, min_cases,
                   prev_p in by_period)
            for lang in LANGS:
                home = site.home(lang)
                site.page(f"r/{kind}/{period.key}/", lang, f"{period.label(lang)} {t(kind, lang)}", "report.html", key,
                          lambda lang=lang, home=home, period=period, total=total, prev=prev, rows=rows, best=best,
                          worst=worst, escalated=escalated, prev_p=prev_p, nxt=nxt: {
                              "period": period, "period_label": period.label(lang), "total": total, "prev": prev,
                              "rows": rows, "best": best, "worst": worst, "escalated": escalated,
                              "as_of": as_of, "min_cases": min_cases,
                              "prev_url": f"{home}r/{kind}/{prev_p.key}/" if prev_p in by_period else None,
                              "next_url": f"{home}r/{kind}/{nxt.key}/" if nxt else None})
    return out


def _handling_hours(v: dict[str, Any]) -> float:
    return 1e9 if v["handling_hours"] is None else v["handling_hours"]


# -- feeds and open data -------------------------------------------------------------------


def pack_feed_text(body: str, replies: Sequence[str]) -> bytes:
    """Pack a case's body and replies (cut to feed length) for its lite view:
    the feeds show those of fifty cases, and every build reads every case's
    lite view (:mod:`generator.render.products`)."""
    return pickle.dumps((body, tuple(replies)), protocol=5)


def feed_text(v: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """Return the body and the replies' texts packed in the lite view ``v``
    (already cut to feed length)."""
    return pickle.loads(v["text"])


def feed_files(site: Site, newest: Sequence[dict[str, Any]], now: datetime) -> None:
    """Write the Atom feeds of the whole site: new petitions, new replies, per
    department (each petition's own feed is :func:`petition_feed`), from the
    views ``newest`` (newest first)."""
    base = site.base_url

    def entry(v):
        return (f"{base}p/{v['id']}.html", v["title"], f"{base}p/{v['id']}.html", v["received_at"], feed_text(v)[0])

    updated = newest[0]["received_at"] if newest else now
    site.writer.file("feeds/petitions.xml", feeds.atom(f"{base}feeds/petitions.xml", "新诉求 New petitions",
                                                        f"{base}feeds/petitions.xml", updated, [entry(v) for v in newest[:50]]))
    # The 50 newest of every case's replies (about two a case), without sorting them all.
    replies = heapq.nlargest(50, ((at, v, i) for v in newest for i, at in enumerate(v["reply_at"])),
                             key=lambda x: (x[0], x[1]["id"], x[2]))
    rupdated = _local_time(replies[0][0], replies[0][1]["received_at"]) if replies else now
    site.writer.file("feeds/replies.xml", feeds.atom(
        f"{base}feeds/replies.xml", "新答复 New replies", f"{base}feeds/replies.xml", rupdated,
        [(f"{base}p/{v['id']}.html#reply-{i}", f"{v['id']} {v['title']}", f"{base}p/{v['id']}.html",
          _local_time(at, v["received_at"]), feed_text(v)[1][i]) for at, v, i in replies]))
    by_dept: dict[str, list] = defaultdict(list)
    for v in newest:
        if v["holder"]:
            by_dept[v["holder"]].append(v)
    for dept_id in sorted(site.depts.departments):
        rows = by_dept.get(dept_id, [])
        site.writer.file(f"feeds/d/{dept_id}.xml", feeds.atom(
            f"{base}feeds/d/{dept_id}.xml", dept_label(site.depts, dept_id, "zh"), f"{base}feeds/d/{dept_id}.xml",
            max((v["last_event_at"] for v in rows), default=now), [entry(v) for v in rows[:50]]))


def _local_time(text: str, like: datetime) -> datetime:
    """Return a view's local time text (``2026-11-21 09:30``) as a datetime in ``like``'s zone."""
    return datetime.fromisoformat(text).replace(tzinfo=like.tzinfo)


# The downloads that hold one part per case, and how a case's part is taken
# from its products' payload (:class:`generator.render.products.Payload`).
_CASE_PARTS: dict[str, Callable[[Any], bytes]] = {
    "cases.jsonl": lambda pl: pl.record + b"\n",
    "events.jsonl": lambda pl: pl.events_jsonl,
    "cases.csv": lambda pl: pl.case_csv.encode("utf-8"),
    "events.csv": lambda pl: pl.events_csv.encode("utf-8"),
}


def open_data_files(site: Site, newest: Sequence[Any], cards, now: datetime, rev: str,
                    inputs: str, ranges: Path, payloads: Any) -> list[tuple[str, int]]:
    """Write the downloads from the cases' products (newest first), line for
    line what :mod:`generator.export` gives (``wenzheng export``); return
    (name, size in bytes) of each. ``inputs`` is a digest of the config and
    of the code that made the products: with the same cases, ``now`` and
    commit, the downloads are not written again.

    The cases' lines go in by month of receipt. ``ranges`` (a file in the
    build's cache) records where each month's lines lie in each published
    download, by a digest of that month's cases' download pieces: a build
    after one new reply makes that month's lines again (from its cases'
    payloads, ``payloads``: a :class:`generator.render.products.PayloadStore`)
    and copies every other month's bytes from the published file, in the
    kernel. No second copy of the downloads is kept.
    """
    from generator import export as ex

    key = fast_digest((inputs, now, rev, [p.data_key for p in newest]))
    writer = site.writer
    case_files = {name: f"data/{name}" for name in (*_CASE_PARTS, "export.json")}
    keys = {name: fast_digest((key, name)) for name in (*case_files, "scorecards.csv", "scorecards.json")}
    if all(writer.has(path, keys[name]) for name, path in case_files.items()):
        sizes = [(name, writer.stream(path, keys[name], lambda: ())) for name, path in case_files.items()]
    else:
        sizes = _case_downloads(writer, newest, case_files, keys, ranges, payloads, {
            "export.json": (ex.export_json_head(now, rev), b",\n", ex.export_json_tail(cards)),
            "cases.csv": (ex.csv_line(ex.CSV_CASE_FIELDS).encode("utf-8"), b"", b""),
            "events.csv": (ex.csv_line(ex.EVENT_CSV_FIELDS).encode("utf-8"), b"", b"")})
    sizes.append(("scorecards.json", writer.stream("data/scorecards.json", keys["scorecards.json"], lambda: [
        orjson.dumps(cards.to_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"])))
    sizes.append(("scorecards.csv", writer.stream("data/scorecards.csv", keys["scorecards.csv"], lambda: [
        "".join(ex.export_csv_scorecards(ex.Evaluated(now, (), (), cards))).encode("utf-8")])))
    return sorted(sizes)


_NO_FRAME = (b"", b"", b"")  # a download's head, text between months, tail: none


def _case_downloads(writer: SiteWriter, newest: Sequence[Any], case_files: dict[str, str], keys: dict[str, str],
                    ranges: Path, payloads: Any,
                    frame: dict[str, tuple[bytes, bytes, bytes]]) -> list[tuple[str, int]]:
    """Write the five downloads of every case side by side, a month at a time
    (see :func:`open_data_files`); return their sizes."""
    try:
        known = json.loads(ranges.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    old: dict[str, dict[str, list[int]]] = {}  # name -> month digest -> [offset, length] in the published file
    for name, path in case_files.items():
        entry, published = known.get(name) or {}, _stat(writer.out / path)
        if published and entry.get("key") == writer.old_manifest.get(path) and entry.get("stat") == published:
            old[name] = entry.get("months") or {}
    new: dict[str, dict[str, list[int]]] = {name: {} for name in case_files}
    sizes = dict.fromkeys(case_files, 0)
    with contextlib.ExitStack() as stack:
        sources = {name: stack.enter_context(open(writer.out / case_files[name], "rb")) for name in old}
        targets = {name: stack.enter_context(open(writer.pending_path(path), "wb", buffering=0))
                   for name, path in case_files.items()}

        def put(name: str, data: bytes) -> None:
            sizes[name] += write_all(targets[name], data)

        for name in case_files:
            put(name, frame.get(name, _NO_FRAME)[0])
        for i, (_, run) in enumerate(itertools.groupby(newest, key=lambda p: p.lite["month"])):
            members = list(run)
            month = hashlib.blake2b("".join([p.data_key for p in members]).encode(), digest_size=12).hexdigest()
            if i:
                for name in case_files:
                    put(name, frame.get(name, _NO_FRAME)[1])
            if all(month in old.get(name, {}) for name in case_files):
                for name in case_files:
                    offset, length = old[name][month]
                    new[name][month] = [sizes[name], length]
                    sizes[name] += copy_range(sources[name], targets[name], offset, length)
                continue
            unpacked = payloads.unpacked(members)
            for name in case_files:
                data = b",\n".join([pl.record for pl in unpacked]) if name == "export.json" else \
                    b"".join([_CASE_PARTS[name](pl) for pl in unpacked])
                new[name][month] = [sizes[name], len(data)]
                put(name, data)
        for name in case_files:
            put(name, frame.get(name, _NO_FRAME)[2])
            # On disk now, here (beside the other work): moved over its old
            # path later, a file whose blocks are not yet written makes the
            # rename wait for them (ext4), in the build's last step.
            os.fdatasync(targets[name].fileno())
    for name, path in case_files.items():
        writer.took([(path, keys[name])], [path])
    # The file's size and modification time (kept when it is moved into the
    # site) tell a file changed since from the one these ranges are of.
    replace_file(ranges, json.dumps({name: {"key": keys[name], "months": new[name],
                                            "stat": _stat(writer.pending_path(path))}
                                     for name, path in case_files.items()}, sort_keys=True).encode("utf-8"))
    return list(sizes.items())


def _stat(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]
