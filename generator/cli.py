"""The ``wenzheng`` command: a thin layer over the library.

This is the only module that reads the clock or the environment; everything
below it takes ``now`` as a parameter.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import click

from generator import problems as prob


def read_now(value: str | None) -> datetime:
    """Return ``--now`` if given, else SOURCE_DATE_EPOCH, else the clock."""
    if value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise click.BadParameter(f"{value!r} is not a time like 2026-11-22T10:00:00+08:00",
                                     param_hint="--now") from None
        if parsed.tzinfo is None:
            raise click.BadParameter(f"{value!r} needs a UTC offset, e.g. {value}+08:00",
                                     param_hint="--now")
        return parsed
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        return datetime.fromtimestamp(int(epoch), tz=timezone.utc)
    return datetime.now(timezone.utc)


repo_option = click.option(
    "--repo", type=click.Path(file_okay=False, path_type=Path), default=".",
    show_default=True, help="The archive's git repository.")
rev_option = click.option("--rev", default="HEAD", show_default=True,
                          help="The commit to read.")
now_option = click.option(
    "--now", "now_text", metavar="TIME",
    help="Evaluate as of this time (ISO 8601 with offset). Default: SOURCE_DATE_EPOCH, "
         "else the clock.")


@click.group()
@click.version_option(package_name="wenzheng")
def main() -> None:
    """Wenzheng (问政): a git-based transparency archive for petitions.

    \b
    Example:
      wenzheng check
      wenzheng status 2026-000123
    """


@main.command()
@repo_option
@rev_option
@click.option("--changed-since", metavar="REV",
              help="Check only the petitions changed since REV (time grows with the change).")
@click.option("--worktree", is_flag=True,
              help="Check the files on disk, committed or not (a department's draft).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output for people or for machines.")
@click.option("--no-cache", is_flag=True, help="Parse everything again, ignoring the cache.")
def check(repo: Path, rev: str, changed_since: str | None, worktree: bool, fmt: str,
          no_cache: bool) -> None:
    """Check every record and the config; report every problem at once.

    Exits 1 when there is any error; warnings alone exit 0. Each problem names
    the file and line, what is wrong and how to fix it.

    \b
    Example:
      wenzheng check --changed-since origin/main --format json
    """
    from generator.check import check_archive
    from generator.gitio import GitError

    try:
        archive = check_archive(repo, rev, worktree=worktree, changed_since=changed_since,
                                use_cache=not no_cache)
    except GitError as exc:
        raise click.ClickException(str(exc)) from None
    if fmt == "json":
        click.echo(prob.render_json(archive.problems))
    else:
        if archive.problems:
            click.echo(prob.render_text(archive.problems))
        else:
            click.echo(f"ok: {archive.folders_checked} petition folder(s) checked, no problems")
    sys.exit(1 if archive.errors else 0)


def _load_checked(repo: Path, rev: str, worktree: bool = False):
    """Return the checked archive, or stop with git's message."""
    from generator.check import check_archive
    from generator.gitio import GitError

    try:
        archive = check_archive(repo, rev, worktree=worktree)
    except GitError as exc:
        raise click.ClickException(str(exc)) from None
    if archive.rules is None or archive.departments is None:
        click.echo(prob.render_text(archive.problems), err=True)
        raise click.ClickException("the configuration has errors; fix them first (wenzheng check)")
    if archive.errors:
        click.echo(f"warning: {len(archive.errors)} problem(s) in the archive; only sound "
                   "petitions are included (see wenzheng check)", err=True)
    return archive


@main.command()
@click.argument("petition_id")
@repo_option
@rev_option
@now_option
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True,
              help="Language of the explanation.")
def status(petition_id: str, repo: Path, rev: str, now_text: str | None, lang: str) -> None:
    """Show a petition's timeline and every deadline with its arithmetic.

    Reads only that petition's folder, so it is quick on any archive.

    \b
    Example:
      wenzheng status 2026-000123 --now 2026-11-22T10:00:00+08:00 --lang en
    """
    from generator import load
    from generator.check import check_folder, read_departments, read_rules
    from generator.evaluate import evaluate_case
    from generator.status import render_status

    now = read_now(now_text)
    folders = load.folder_exists(repo, rev, petition_id)
    if not folders:
        raise click.ClickException(f"no petition {petition_id} at {rev} in {repo}")
    snap = load.snapshot_at(repo, rev, folders[:1])
    departments, problems = read_departments(snap)
    rules, rule_problems = read_rules(snap)
    if departments is None or rules is None:
        click.echo(prob.render_text(problems + rule_problems), err=True)
        raise click.ClickException("the configuration has errors; fix them first (wenzheng check)")
    files = load.load_folders(snap)[folders[0]]
    case, case_problems = check_folder(folders[0], files, departments, snap)
    if case is None:
        click.echo(prob.render_text(case_problems), err=True)
        raise click.ClickException(f"petition {petition_id} has errors; fix them first")
    state = evaluate_case(case, rules, now.astimezone(rules.tz))
    click.echo(render_status(case, state, departments, now, lang))


@main.command()
@click.option("--received", "received_text", required=True, metavar="TIME",
              help="When the petition was received (ISO 8601 with offset).")
@click.option("--category", type=click.Choice(
    ["consultation", "complaint", "help", "suggestion", "report"]), default="complaint",
    show_default=True)
@click.option("--channel", type=click.Choice(
    ["web", "phone", "app", "weibo", "wechat", "email", "letter", "visit"]), default="web",
    show_default=True)
@click.option("--rules", "rules_path", type=click.Path(dir_okay=False, path_type=Path),
              default="rules.yaml", show_default=True, help="The rules file to apply.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def deadline(received_text: str, category: str, channel: str, rules_path: Path, lang: str,
             fmt: str) -> None:
    """Compute every due time for a petition, with the arithmetic.

    Each stage's clock is shown as if it started on receipt (a department's
    own clocks start when the case is assigned to it).

    \b
    Example:
      wenzheng deadline --received 2025-09-30T15:00:00+08:00 --category complaint
    """
    import json as _json

    from generator.rules import compute_deadline, load_rules

    received = read_now(received_text)
    if not rules_path.exists():
        raise click.ClickException(f"{rules_path} does not exist")
    rules, problems = load_rules(rules_path.read_bytes(), str(rules_path))
    if rules is None:
        click.echo(prob.render_text(problems), err=True)
        raise click.ClickException(f"{rules_path} has errors")
    deadlines = compute_deadline(rules, received.astimezone(rules.tz), category, channel)
    if fmt == "json":
        click.echo(_json.dumps([{
            "stage": d.stage, "basis": d.basis, "limit": d.limit, "unit": d.unit,
            "start": d.start.isoformat(), "due_at": d.due_at.isoformat() if d.due_at else None,
            "provisional": d.provisional, "arithmetic": d.lines(lang)} for d in deadlines],
            ensure_ascii=False, indent=2))
        return
    for d in deadlines:
        due = d.due_at.isoformat() if d.due_at else "—"
        mark = " (provisional / 暂定)" if d.provisional else ""
        click.echo(f"{d.stage} [{d.basis}]: {due}{mark}")
        for line in d.lines(lang):
            click.echo(f"    {line}")


@main.command()
@repo_option
@rev_option
@now_option
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json",
              show_default=True, help="json: one document; csv: cases.csv, events.csv and "
              "scorecards.csv in a folder.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="json: a file (default: standard output); csv: a folder (required).")
def export(repo: Path, rev: str, now_text: str | None, fmt: str, out: Path | None) -> None:
    """Export every case with its computed state, and every scorecard.

    The fields are documented in docs/export.md; the site and outside tools
    read this.

    \b
    Example:
      wenzheng export --format csv --out exports/ --now 2026-11-22T10:00:00+08:00
    """
    from generator import export as ex

    now = read_now(now_text)
    archive = _load_checked(repo, rev)
    assert archive.rules is not None and archive.departments is not None
    ev = ex.evaluate_archive(archive.cases.values(), archive.rules,
                             now.astimezone(archive.rules.tz), archive.departments.departments)
    if fmt == "json":
        stream = open(out, "w", encoding="utf-8") if out else sys.stdout
        try:
            for piece in ex.export_json(ev, archive.rev):
                stream.write(piece)
        finally:
            if out:
                stream.close()
        return
    if out is None:
        raise click.UsageError("--format csv needs --out FOLDER")
    ex.write_csv(ev, out)
    click.echo(f"wrote {out}/cases.csv, events.csv, scorecards.csv", err=True)


@main.command()
@repo_option
@rev_option
@now_option
@click.option("--period", default="all", show_default=True,
              help="all, a year (2026), a month (2026-11) or an ISO week (2026-W47).")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
def scorecards(repo: Path, rev: str, now_text: str | None, period: str, lang: str) -> None:
    """Print the department scorecards for a period as a table.

    Every rate shows numerator/denominator; departments below the minimum
    number of cases are listed but not ranked.

    \b
    Example:
      wenzheng scorecards --period 2026-11 --now 2026-11-22T10:00:00+08:00
    """
    from generator import export as ex
    from generator.status import render_scorecards

    now = read_now(now_text)
    archive = _load_checked(repo, rev)
    assert archive.rules is not None and archive.departments is not None
    ev = ex.evaluate_archive(archive.cases.values(), archive.rules,
                             now.astimezone(archive.rules.tz), archive.departments.departments)
    click.echo(render_scorecards(ev.cards, archive.departments, period, lang))


# -- the public site (issue 3): build and serve ---------------------------------------


def _progress_bar(label: str, total: int):
    """Return a tick function drawing a progress bar on stderr for long builds."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=label, unit="case", file=sys.stderr, mininterval=0.5,
               disable=total < 2000 or not sys.stderr.isatty())

    def tick() -> None:
        bar.update(1)
        if bar.n >= total:
            bar.close()

    return tick


def _run_build(repo: Path, rev: str, now_text: str | None, out: Path, base_url: str) -> None:
    from generator.build import BuildError, build_site

    now = read_now(now_text)
    try:
        report = build_site(repo, rev, now, out, base_url, progress=_progress_bar)
    except BuildError as exc:
        click.echo(prob.render_text(exc.problems), err=True)
        raise click.ClickException(f"the site was not built; {out} is unchanged") from None
    total = sum(report.seconds.values())
    click.echo(f"built {out}: {report.cases} petitions, {report.written} files written, "
               f"{report.skipped} unchanged, shell {'rebuilt' if report.shell_rebuilt else 'cached'}, "
               f"search shards rebuilt {report.search_years or 'none'}, {total:.1f} s "
               f"({', '.join(f'{k} {v}' for k, v in report.seconds.items())})")


site_out_option = click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="site",
                               show_default=True, help="Where the site goes.")
base_url_option = click.option("--base-url", default="/", show_default=True,
                               help="Where the site is published: a path (/wenzheng/) or a full URL.")


@main.command()
@repo_option
@rev_option
@now_option
@site_out_option
@base_url_option
def build(repo: Path, rev: str, now_text: str | None, out: Path, base_url: str) -> None:
    """Build the public static site of the archive into --out.

    Only pages whose inputs changed are rewritten; a failed build leaves the
    previous site untouched; the same commit and --now give the same bytes.

    \b
    Example:
      wenzheng build --now 2026-11-22T10:00:00+08:00 --out site
    """
    _run_build(repo, rev, now_text, out, base_url)


@main.command()
@repo_option
@now_option
@site_out_option
@click.option("--port", default=8000, show_default=True, help="Port on 127.0.0.1.")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between checks for changes.")
def serve(repo: Path, now_text: str | None, out: Path, port: int, interval: float) -> None:
    """Build the site, serve it on 127.0.0.1 and rebuild when HEAD or the files change.

    \b
    Example:
      wenzheng serve --port 8000
    """
    import functools
    import http.server
    import threading
    import time as _time

    from generator import gitio

    def state() -> str:
        head = gitio.rev_parse(repo, "HEAD")
        dirty = gitio.git(repo, "status", "--porcelain", "--untracked-files=no")
        return f"{head}\n{dirty}"

    _run_build(repo, "HEAD", now_text, out, "/")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(out.resolve()))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    click.echo(f"serving {out} on http://127.0.0.1:{port}/ (Ctrl-C stops)")
    seen = state()
    try:
        while True:
            _time.sleep(interval)
            now_state = state()
            if now_state != seen:
                seen = now_state
                try:
                    _run_build(repo, "HEAD", now_text, out, "/")
                except click.ClickException as exc:
                    click.echo(f"rebuild failed, still serving the last good site: {exc.message}", err=True)
                # The server serves from a path; the swapped-in folder has the same path.
                handler.keywords["directory"] = str(out.resolve())
    except KeyboardInterrupt:
        server.shutdown()
