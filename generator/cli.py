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


# -- governance: audit -------------------------------------------------------------


@main.command()
@repo_option
@click.option("--branch", default="main", show_default=True, help="The branch whose history is audited.")
@click.option("--previous", type=click.Path(dir_okay=False, path_type=Path),
              help="The previous audit's report (the site's audit.json): its last commit must "
                   "still be in the history, else history was rewritten.")
@click.option("--incremental", is_flag=True,
              help="With --previous: replay only the commits after the previously proved one.")
@click.option("--verify-signatures", is_flag=True,
              help="Require every commit to be signed (SSH or OpenPGP) with a key its unit lists "
                   "under signing_keys in departments.yaml.")
@click.option("--merge-window", default=72.0, show_default=True, metavar="HOURS",
              help="How long a checked pull request may wait before it is merged; widens the "
                   "notarised-time tolerance when a commit's time is used as the check's time.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report as JSON here.")
@click.option("--site", type=click.Path(file_okay=False, path_type=Path),
              help="Write audit.json and audit/index.html into this site folder.")
@click.option("--rebuild-at", metavar="REV",
              help="Rebuild the site from REV (with wenzheng build) and compare it with --published.")
@click.option("--published", type=click.Path(file_okay=False, path_type=Path),
              help="A published copy of the site to compare byte for byte.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@now_option
def audit(repo: Path, branch: str, previous: Path | None, incremental: bool,
          verify_signatures: bool, merge_window: float, report: Path | None, site: Path | None,
          rebuild_at: str | None, published: Path | None, fmt: str, now_text: str | None) -> None:
    """Replay the history of main and prove every commit obeyed the rules.

    Each first-parent commit is judged as the pull-request check would have
    judged it, with departments.yaml and rules.yaml as they stood before it.
    Every violation names the commit, the file and the rule. Exits 1 on any
    violation or difference.

    \b
    Example:
      wenzheng audit --previous site/audit.json --site site --verify-signatures
    """
    import json
    from datetime import timedelta

    from generator import audit as au

    if (rebuild_at is None) != (published is None):
        raise click.UsageError("--rebuild-at and --published go together")
    now = read_now(now_text)
    try:
        prev = au.read_previous(previous)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    result = au.audit_history(repo, branch, now=now, previous=prev, incremental=incremental,
                              verify_signatures=verify_signatures,
                              merge_window=timedelta(hours=merge_window))
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(result.to_json(), encoding="utf-8")
    if site is not None:
        au.write_site(result, site)
    diffs: list[str] = []
    if rebuild_at is not None and published is not None:
        try:
            diffs = au.rebuild_and_compare(repo, rebuild_at, now, published)
        except RuntimeError as exc:
            raise click.ClickException(str(exc)) from None
    if fmt == "json":
        click.echo(json.dumps({**result.as_dict(), "rebuild_differences": diffs},
                              ensure_ascii=False, indent=2))
    else:
        for v in result.violations:
            click.echo(v.render())
        for d in diffs:
            click.echo(f"rebuild: {d}")
        rate = result.commits_checked / result.seconds if result.seconds else 0.0
        click.echo(f"{len(result.violations)} violation(s) in {result.commits_checked} commit(s) "
                   f"of {branch} ({rate:.0f} commits/s); "
                   f"{'differences: ' + str(len(diffs)) if rebuild_at else 'site not rebuilt'}")
    sys.exit(1 if result.violations or diffs else 0)
