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


# -- import and open-data export (issue 6: generator/importer.py, generator/interop.py) --


@main.command("import")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--mapping", "mapping_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="The mapping file (YAML): columns, time zone, formats, value maps.")
@repo_option
@click.option("--branch", default="main", show_default=True, help="The branch to write to.")
@click.option("--batch-size", type=click.IntRange(min=1), metavar="N",
              help="One commit per N petitions instead of one commit for the whole file.")
@click.option("--dry-run", is_flag=True, help="Check and report everything; write nothing.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output for people or for machines.")
@now_option
def import_cmd(source: Path, mapping_path: Path, repo: Path, branch: str, batch_size: int | None,
               dry_run: bool, fmt: str, now_text: str | None) -> None:
    """Import another system's records from a CSV or XLSX file.

    Writes petitions and events through git fast-import in one commit.
    Importing the same file again adds nothing; an updated file adds only the
    new events. Every row that cannot be used is reported with its row number
    and the reason; the other rows are imported. Exits 1 when any row was
    not usable or the mapping or file has errors (then nothing is written).

    \b
    Example:
      wenzheng import boston311.csv --mapping docs/import-mappings/boston311.yaml --dry-run
    """
    import json as _json

    from generator.importer import render_text, run_import

    result = run_import(source, mapping_path, repo, branch, read_now(now_text), dry_run=dry_run,
                        batch_size=batch_size)
    if fmt == "json":
        click.echo(_json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(render_text(result))
    sys.exit(1 if any(p.severity == "error" for p in result.problems) else 0)


@main.command("export")
@click.option("--format", "fmt", type=click.Choice(["open311", "sqlite"]), required=True,
              help="open311: GeoReport v2 services.json and requests.json; "
                   "sqlite: wenzheng.sqlite with cases, events, departments, scorecards.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The folder to write into (created if missing).")
@repo_option
@rev_option
@now_option
def export_cmd(fmt: str, out_dir: Path, repo: Path, rev: str, now_text: str | None) -> None:
    """Export the archive as open data in a standard format.

    Only sound cases are exported; run `wenzheng check` for the rest.

    \b
    Example:
      wenzheng export --format open311 --out site/open-data/open311
      wenzheng export --format sqlite --out site/open-data
    """
    from generator.check import check_archive
    from generator.gitio import GitError
    from generator import interop

    try:
        archive = check_archive(repo, rev)
    except GitError as exc:
        raise click.ClickException(str(exc)) from None
    if archive.departments is None:
        raise click.ClickException("departments.yaml has errors; run `wenzheng check`")
    now = read_now(now_text)
    written = interop.export(fmt, out_dir, archive, now)
    for path in written:
        click.echo(str(path))
