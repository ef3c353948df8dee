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
