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
@click.option("--base", metavar="REV",
              help="Pull-request check: judge the change since REV (only changed folders) "
                   "by the rules of who may write what, as of REV.")
@click.option("--author", metavar="ACCOUNT",
              help="With --base: the forge account that made the change. Default: git config "
                   "wenzheng.account, else user.name.")
@now_option
def check(repo: Path, rev: str, changed_since: str | None, worktree: bool, fmt: str,
          no_cache: bool, base: str | None, author: str | None, now_text: str | None) -> None:
    """Check every record and the config; report every problem at once.

    Exits 1 when there is any error; warnings alone exit 0. Each problem names
    the file and line, what is wrong and how to fix it.

    With --base it is the pull-request check that CI runs: only the changed
    folders are read; merged records may not be modified, renamed or deleted;
    the author's account (mapped through departments.yaml as of the base) must
    be the `by` of every record it adds; new records carry the current time
    (not in the future, not older than rules.yaml's notarised_tolerance).

    \b
    Example:
      wenzheng check --changed-since origin/main --format json
      wenzheng check --base origin/main --author mh-housing
    """
    from generator.check import check_archive
    from generator.gitio import GitError

    try:
        if base is not None:
            from generator import governance

            account = author or governance.account_from_git(repo)
            if not account:
                raise click.UsageError("--base needs --author (or git config wenzheng.account)")
            result = governance.check_change(repo, base, account, read_now(now_text), head=rev,
                                             worktree=worktree, use_cache=not no_cache)
            problems, errors, count = result.problems, result.errors, result.folders_checked
        else:
            archive = check_archive(repo, rev, worktree=worktree, changed_since=changed_since,
                                    use_cache=not no_cache)
            problems, errors, count = archive.problems, archive.errors, archive.folders_checked
    except GitError as exc:
        raise click.ClickException(str(exc)) from None
    if fmt == "json":
        click.echo(prob.render_json(problems))
    else:
        if problems:
            click.echo(prob.render_text(problems))
        else:
            click.echo(f"ok: {count} petition folder(s) checked, no problems")
    sys.exit(1 if errors else 0)
