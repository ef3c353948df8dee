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


def read_now(value: str | None, option: str = "--now") -> datetime:
    """Return ``--now`` (or the time given as ``option``) if given, else
    SOURCE_DATE_EPOCH, else the clock. Errors name ``option``."""
    if value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise click.BadParameter(f"{value!r} is not a time like 2026-11-22T10:00:00+08:00",
                                     param_hint=option) from None
        if parsed.tzinfo is None:
            raise click.BadParameter(f"{value!r} needs a UTC offset, e.g. {value}+08:00",
                                     param_hint=option)
        return parsed
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        return datetime.fromtimestamp(int(epoch), tz=timezone.utc)
    return datetime.now(timezone.utc)


def run() -> None:
    """Run the ``wenzheng`` command, then end the process without freeing,
    object by object, what it made (a site build of 100,000 petitions leaves
    about a gigabyte of small objects: :data:`generator.build._LEFT`). What
    a normal exit does that matters is done first: the threads still working
    (the freeing of replaced large files) are waited for, the exit handlers
    run (logging, worker pools) and the output is flushed."""
    import atexit
    import threading

    try:
        main()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    threading._shutdown()  # as the interpreter's own exit: worker pools told to stop, other threads joined
    atexit._run_exitfuncs()
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


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
            from generator.check import removed_petitions

            archive = check_archive(repo, rev, worktree=worktree, changed_since=changed_since,
                                    use_cache=not no_cache, need_cases=False)
            problems, errors, count = archive.problems, archive.errors, archive.folders_checked
            problems = removed_petitions(repo, rev, worktree) + problems
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


def _load_checked(repo: Path, rev: str, worktree: bool = False, skip_case=None, transform=None,
                  keep_case=None):
    """Return the checked archive, or stop with git's message."""
    from generator.check import check_archive
    from generator.gitio import GitError

    try:
        archive = check_archive(repo, rev, worktree=worktree, skip_case=skip_case, transform=transform,
                                keep_case=keep_case)
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

    received = read_now(received_text, "--received")
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
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "open311", "sqlite"]),
              default="json", show_default=True,
              help="json: one document; csv: cases.csv, events.csv and scorecards.csv in a folder; "
              "open311: GeoReport v2 services.json and requests.json in a folder; sqlite: "
              "wenzheng.sqlite in a folder (docs/open-data.md).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="json: a file (default: standard output); csv, open311, sqlite: a folder (required).")
def export(repo: Path, rev: str, now_text: str | None, fmt: str, out: Path | None) -> None:
    """Export every case with its computed state, and every scorecard.

    The fields are documented in docs/export.md; the site and outside tools
    read this.

    \b
    Example:
      wenzheng export --format csv --out exports/ --now 2026-11-22T10:00:00+08:00
      wenzheng export --format open311 --out site/open-data/open311
    """
    from generator import export as ex
    from generator.settled import SettledCache

    now = read_now(now_text)
    if fmt != "json" and out is None:
        raise click.UsageError(f"--format {fmt} needs --out FOLDER")
    if fmt == "json":  # settled cases come from the cache (generator/settled.py)
        cache = SettledCache(repo, "export")
        archive = _load_checked(repo, rev, skip_case=cache.skipper(now),
                                transform=ex.summarising(now), keep_case=ex.unsettled)
        assert archive.rules is not None
        ev = ex.evaluate_checked(archive, now.astimezone(archive.rules.tz), cache)
    else:
        archive = _load_checked(repo, rev)
        assert archive.rules is not None and archive.departments is not None
        ev = ex.evaluate_archive(archive.cases.values(), archive.rules,
                                 now.astimezone(archive.rules.tz), archive.departments.departments)
    if fmt in ("open311", "sqlite"):
        from generator import interop

        due = {c.id: ex.resolve_due_at(s) for c, s in zip(ev.cases, ev.states)}
        for path in interop.export(fmt, out, archive, now, deadline_of=lambda c: due.get(c.id),
                                   cards=ev.cards.to_dict()):
            click.echo(f"wrote {path}", err=True)
        return
    if fmt == "json":
        stream = open(out, "wb") if out else sys.stdout.buffer
        try:
            for piece in ex.export_json(ev, archive.rev):
                stream.write(piece)
        finally:
            if out:
                stream.close()
            else:
                stream.flush()
        return
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
    from generator.settled import SettledCache
    from generator.status import render_scorecards

    now = read_now(now_text)
    cache = SettledCache(repo, "export")
    archive = _load_checked(repo, rev, skip_case=cache.skipper(now),
                            transform=ex.summarising(now, records=False), keep_case=ex.unsettled)
    assert archive.rules is not None and archive.departments is not None
    ev = ex.evaluate_checked(archive, now.astimezone(archive.rules.tz), cache, records=False)
    click.echo(render_scorecards(ev.cards, archive.departments, period, lang))


    """Wenzheng (问政): a git-based transparency archive for petitions."""


# --- synth: synthetic archives (generator/synth.py) ------------------------


def _synth_now(text: str | None, default):
    """Return the ``--now`` time, which must carry a UTC offset."""
    from datetime import datetime

    if text is None:
        return default
    try:
        now = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a time; write it like 2026-11-22T10:00:00+08:00",
                                 param_hint="--now") from None
    if now.tzinfo is None:
        raise click.BadParameter(f"{text!r} has no UTC offset; add one, e.g. {text}+08:00",
                                 param_hint="--now")
    return now


@main.command()
@click.option("--count", type=click.IntRange(0), default=300, show_default=True,
              help="How many petitions to generate.")
@click.option("--seed", type=int, default=20261122, show_default=True, help="The random seed.")
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), default="2026-05-25", show_default=True,
              help="The first day petitions arrive (city local time).")
@click.option("--months", type=click.IntRange(1, 240), default=6, show_default=True,
              help="How many months petitions keep arriving.")
@click.option("--now", "now_text", metavar="ISO",
              help="The moment the archive is as of; no record is later. "
                   "Default: the end of the window (for --changes: the clock).")
@click.option("--repo", type=click.Path(file_okay=False),
              help="Write commits to this git repository (created when missing).")
@click.option("--into", type=click.Path(file_okay=False),
              help="Write plain files under DIR/petitions instead.")
@click.option("--branch", default="main", show_default=True, help="The branch --repo writes.")
@click.option("--commit-per-month", is_flag=True, help="With --repo: one commit per month of records.")
@click.option("--replace", is_flag=True, help="With --into: replace an existing DIR/petitions.")
@click.option("--changes", type=click.IntRange(1), metavar="N",
              help="Instead of a new archive: add one commit with N new events to open cases in --repo.")
@click.option("--config-from", type=click.Path(file_okay=False, exists=True), default=".",
              show_default=True,
              help="Follow the rules.yaml of this folder (due times, calendar, escalation); with --repo "
                   "also copy its departments.yaml, rules.yaml and mkdocs.yml into the first commit.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def synth(count, seed, start, months, now_text, repo, into, branch, commit_per_month, replace,
          changes, config_from, quiet):
    """Generate a realistic synthetic archive of the fictional city 明湖市.

    Petitions of every channel and category arrive at any hour over MONTHS
    months from START; departments accept, reply, ask for more time or
    details, get transferred, closed, rated, reopened, escalated... each event
    by the actor allowed to record it, on the due times of rules.yaml (from
    --config-from); the escalations are what `wenzheng escalate` writes. The
    same seed, options and rules always give byte-identical files.

    \b
    Example:
      wenzheng synth --count 300 --seed 20261122 --start 2026-05-25 --months 6 \\
          --now 2026-11-22T10:00:00+08:00 --into . --replace
      wenzheng synth --count 100000 --repo /tmp/big-archive
      wenzheng synth --changes 10 --repo /tmp/big-archive --now 2026-11-25T10:00:00+08:00
    """
    import os
    import sys
    import time
    from datetime import datetime, timedelta, timezone
    from pathlib import Path

    from generator import synth as s

    rules_file = Path(config_from) / "rules.yaml"
    try:
        rules = s.load_rules(rules_file.read_bytes(), str(rules_file)) if rules_file.is_file() else None
    except s.SynthError as exc:
        raise click.ClickException(str(exc)) from None
    city_tz = rules.tz if rules is not None else timezone.utc
    if changes:
        if not repo or into:
            raise click.UsageError("--changes needs --repo (the archive to add events to), not --into")
        epoch = os.environ.get("SOURCE_DATE_EPOCH")
        clock = datetime.fromtimestamp(int(epoch), timezone.utc) if epoch else datetime.now(timezone.utc)
        now = _synth_now(now_text, clock.astimezone(city_tz).replace(microsecond=0))
        try:
            change = s.append_changes(repo, changes, seed, now, branch)
        except s.SynthError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"added {len(change.files)} events in commit {change.commit} (on top of {change.base})")
        return
    if bool(repo) == bool(into):
        raise click.UsageError("give exactly one of --repo PATH or --into DIR")
    spec_start = start.date()
    end = s.window_end(spec_start, months)
    default_now = datetime.combine(end, datetime.min.time(), city_tz) - timedelta(seconds=1)
    spec = s.SynthSpec(count, seed, spec_start, months, _synth_now(now_text, default_now), rules=rules)
    if spec.now.date() < spec_start:
        raise click.BadParameter("--now is before --start; nothing could have arrived yet", param_hint="--now")
    bar = None
    if not quiet and count >= 5000:
        from tqdm import tqdm

        bar = tqdm(total=count, unit=" petitions", file=sys.stderr, mininterval=0.5)
    began = time.perf_counter()
    try:
        if into:
            summary = s.write_into(spec, Path(into), replace=replace, progress=bar.update if bar else None)
        else:
            extra = [(name, (Path(config_from) / name).read_bytes())
                     for name in ("departments.yaml", "rules.yaml", "mkdocs.yml")
                     if (Path(config_from) / name).is_file()]
            summary = s.write_repo(spec, Path(repo), branch, commit_per_month, extra,
                                   progress=bar.update if bar else None)
    except s.SynthError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if bar:
            bar.close()
    where = f"{summary.commits} commit(s) on {branch} of {repo} (head {summary.head})" if repo else \
        f"{Path(into) / 'petitions'}"
    click.echo(f"wrote {summary.petitions} petitions, {summary.files} files "
               f"({summary.bytes / 1e6:.1f} MB) to {where} in {time.perf_counter() - began:.1f} s")


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

    Writes petitions and events straight into git objects in one commit.
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

    # A dry run in text prints its plan and first problems as soon as they are known.
    progress = (lambda line: click.echo(line)) if dry_run and fmt == "text" else None
    result = run_import(source, mapping_path, repo, branch, read_now(now_text), dry_run=dry_run,
                        batch_size=batch_size, progress=progress)
    if fmt == "json":
        click.echo(_json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(render_text(result))
    sys.exit(1 if any(p.severity == "error" for p in result.problems) else 0)


# -- governance: audit -------------------------------------------------------------


@main.command()
@repo_option
@click.option("--branch", default="main", show_default=True, help="The branch whose history is audited.")
@click.option("--previous", type=click.Path(dir_okay=False, path_type=Path),
              help="The previous audit's report (the site's audit.json): its last commit must "
                   "still be on the first-parent line of the branch, else history was "
                   "rewritten; its violations stay "
                   "open until the centre acknowledges them.")
@click.option("--first", is_flag=True,
              help="This is the archive's first audit: there is no previous report. Every "
                   "later audit needs --previous.")
@click.option("--incremental", is_flag=True,
              help="With --previous: replay only the commits after the previously proved one.")
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
def audit(repo: Path, branch: str, previous: Path | None, first: bool, incremental: bool,
          merge_window: float, report: Path | None, site: Path | None,
          rebuild_at: str | None, published: Path | None, fmt: str, now_text: str | None) -> None:
    """Replay the history of main and prove every commit obeyed the rules.

    Each first-parent commit is judged as the pull-request check would have
    judged it, with departments.yaml and rules.yaml as they stood before it;
    when departments.yaml lists signing keys, who made a commit is read from
    its signature. Every violation names the commit, the file and the rule;
    the previous report's violations stay open until the centre acknowledges
    them. Exits 1 on any open violation or difference, 2 when it cannot audit
    (a missing or damaged --previous report, wrong options), 3 when the audit
    could not finish (a damaged repository, a bug), with one line naming the
    commit it was replaying.

    \b
    Example:
      wenzheng audit --previous site/audit.json --site site
      wenzheng audit --first --site site      # the archive's very first audit
    """
    import json
    from datetime import timedelta

    from generator import audit as au

    if (rebuild_at is None) != (published is None):
        raise click.UsageError("--rebuild-at and --published go together")
    if first == (previous is not None):
        raise click.UsageError("give --previous <the published audit.json>, or --first for the "
                               "archive's very first audit (not both)")
    if incremental and first:
        raise click.UsageError("--incremental replays from the previous audit; the first "
                               "audit replays everything (drop --incremental)")
    now = read_now(now_text)
    try:
        prev = au.read_previous(previous) if previous is not None else None
    except ValueError as exc:
        error = click.ClickException(str(exc))
        error.exit_code = 2  # not a finding: workflows tell it from violations (exit 1)
        raise error from None
    doing = f"auditing {branch}"
    try:
        result = au.audit_history(repo, branch, now=now, previous=prev,
                                  incremental=incremental,
                                  merge_window=timedelta(hours=merge_window))
        doing = "writing the report"
        if report is not None:
            report.parent.mkdir(parents=True, exist_ok=True)
            report.write_text(result.to_json(), encoding="utf-8")
        if site is not None:
            au.write_site(result, site)
    except Exception as exc:  # never exit 1 ("violations found, publish anyway") on a failure
        text = str(exc) if isinstance(exc, au.AuditError) else \
            f"the audit stopped while {doing}: {type(exc).__name__}: {exc}"
        error = click.ClickException(" ".join(text.split()))
        error.exit_code = 3  # the audit did not finish: workflows stop on anything but 1
        raise error from None
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


# -- governance: department tools ---------------------------------------------------


_DEPT_EXAMPLES = {
    "accept": ("Record that your department takes the case (签收).",
               "wenzheng accept 2026-000123 --commit"),
    "reply": ("Answer the case: an interim reply, or with --final the answer that ends "
              "your department's work (--resolution required).",
              "wenzheng reply 2026-000123 --final --resolution resolved --commit"),
    "transfer": ("The centre moves the case to another department (--to), giving the reason.",
                 "wenzheng transfer 2026-000123 --to water -m '属供水管网问题' --commit"),
    "extend": ("A department asks for more time (--new-due and a reason); the centre decides "
               "the open request (--new-due to approve, --refuse to refuse).",
               "wenzheng extend 2026-000123 --new-due 2026-12-04 -m '需协调施工单位' --commit"),
    "clarify": ("A department asks the citizen for more (clocks stop); the centre records "
                "the answer it received.",
                "wenzheng clarify 2026-000123 -m '请补充具体楼栋号' --commit"),
    "close": ("The centre closes the case (办结).", "wenzheng close 2026-000123 --commit"),
}


def _department_command(name: str) -> None:
    summary, example = _DEPT_EXAMPLES[name]

    @click.option("--commit", "do_commit", is_flag=True,
                  help="Commit the event after the checks pass (message: kind and id only).")
    @click.option("--account", help="Your forge account. Default: git config wenzheng.account, "
                                    "else user.name.")
    @click.option("-m", "--message", "text", help="The text; without it $EDITOR opens.")
    @now_option
    @repo_option
    @click.argument("petition_id", metavar="ID")
    def command(petition_id: str, repo: Path, now_text: str | None, text: str | None,
                account: str | None, do_commit: bool, **options) -> None:
        from generator import depttools as dt
        from generator import governance

        account = account or governance.account_from_git(repo)
        if not account:
            raise click.UsageError("set git config wenzheng.account or pass --account")
        try:
            if text is None:
                folder = dt.find_folder(repo, petition_id)
                _, departments, _ = dt.read_case(repo, folder)
                prompt = dt.needs_text(name, departments.actor_of(account))
                if prompt:
                    edited = click.edit(f"\n# {prompt}\n# 以 # 开头的行会被忽略 / lines starting "
                                        "with # are ignored\n")
                    text = "\n".join(line for line in (edited or "").splitlines()
                                     if not line.startswith("#")).strip()
                    if not text:
                        raise click.ClickException("no text written; nothing recorded")
            draft, problems = dt.write_event(repo, name, petition_id, account,
                                             read_now(now_text), {**options, "text": text},
                                             commit=do_commit)
        except dt.ToolError as exc:
            raise click.ClickException(str(exc)) from None
        if problems:
            click.echo(prob.render_text(problems))
        if any(p.severity == "error" for p in problems):
            click.echo(f"not written: {draft.path}", err=True)
            sys.exit(1)
        click.echo(f"{'committed' if do_commit else 'written'}: {draft.path}")

    if name == "reply":
        command = click.option("--final/--interim", default=False,
                               help="A final reply ends the department's work.")(command)
        command = click.option("--resolution", type=click.Choice(["resolved", "partly_resolved",
                                                                   "explained", "not_in_remit"]),
                               help="With --final: the outcome.")(command)
    if name == "transfer":
        command = click.option("--to", help="The department taking the case.")(command)
    if name == "extend":
        command = click.option("--new-due", metavar="YYYY-MM-DD",
                               help="The date asked for (department) or granted (centre).")(command)
        command = click.option("--refuse", is_flag=True, help="Centre: refuse the request.")(command)
        command = click.option("--request", metavar="FILE",
                               help="Centre: the request decided (default: the open one).")(command)
    command.__doc__ = (f"{summary}\n\nWrites one event file for your account with the current "
                       "time, runs the pull-request checks, and removes it again if they fail."
                       f"\n\n\b\nExample:\n  {example}\n")
    main.command(name)(command)


for _name in _DEPT_EXAMPLES:
    _department_command(_name)


# -- governance: escalation ----------------------------------------------------------


@main.command()
@repo_option
@click.option("--branch", default="main", show_default=True, help="The branch to evaluate.")
@click.option("--commit", "do_commit", is_flag=True,
              help="Record the crossed escalation steps in one commit by the bot account.")
@click.option("--account", help="The bot account that commits. Default: the first of "
                                "bot_accounts in departments.yaml.")
@click.option("--digests", type=click.Path(file_okay=False, path_type=Path),
              help="Write one digest per department (due soon, overdue) into this folder.")
@now_option
def escalate(repo: Path, branch: str, do_commit: bool, account: str | None,
             digests: Path | None, now_text: str | None) -> None:
    """Record each crossed escalation step (reminder, notice, supervision, accountability).

    Every running clock past a rung of rules.yaml's escalation ladder gets one
    `escalated` event by `system`, once per rung and due time, stamped with
    the time of this run. Without --commit it only lists them.

    \b
    Example:
      wenzheng escalate --commit --digests digests
    """
    from generator import escalate as esc
    from generator.gitio import GitError

    try:
        result = esc.run(repo, read_now(now_text), branch=branch, commit=do_commit,
                         account=account, digest_dir=digests)
    except GitError as exc:
        raise click.ClickException(str(exc)) from None
    for item in result.escalations:
        click.echo(f"{item.case_id} {item.stage} {item.department}: {item.level} "
                   f"(due {item.due_at.isoformat()}, crossed {item.crossed_at.isoformat()})")
    done = f"committed {result.commit[:12]}" if result.commit else (
        "recorded nothing" if do_commit else "not committed (use --commit)")
    click.echo(f"{len(result.escalations)} escalation step(s); {done}")


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
               f"search shards rebuilt {report.search_shards or 'none'}, {total:.1f} s "
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

    from generator.build import release

    _run_build(repo, "HEAD", now_text, out, "/")
    release()
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
                release()  # while waiting for the next change
                # The server serves from a path; the swapped-in folder has the same path.
                handler.keywords["directory"] = str(out.resolve())
    except KeyboardInterrupt:
        server.shutdown()


# ---------------------------------------------------------------------------
# bridge: the form-to-pull-request service (generator/bridge, docs/bridge.md)

def _bridge_config(config_path):
    import os

    from generator.bridge.config import ConfigError, load_config

    try:
        return load_config(config_path, os.environ)
    except ConfigError as exc:
        raise click.ClickException("the bridge configuration has problems:\n  - "
                                   + "\n  - ".join(exc.problems))


_config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), envvar="WENZHENG_BRIDGE_CONFIG",
    help="The bridge's YAML configuration (see docs/bridge.md); environment variables "
         "WENZHENG_BRIDGE__<KEY> override it.")


@main.group()
def bridge() -> None:
    """Run the form-to-pull-request bridge for citizens without a forge account."""


@bridge.command("serve")
@_config_option
@click.option("--no-worker", is_flag=True, help="Accept submissions but do not publish them.")
def bridge_serve(config_path, no_worker) -> None:
    """Serve the submit form, receipts and ratings, and publish in the background.

    \b
    Example:
      WENZHENG_BRIDGE__SECRET=$(cat secret) wenzheng bridge serve --config bridge.yaml
    """
    from generator.bridge.app import serve
    from generator.bridge.logs import setup_logging
    from generator.bridge.providers import make_provider

    cfg = _bridge_config(config_path)
    setup_logging(cfg.log_level)
    serve(cfg, make_provider(cfg), run_worker=not no_worker)


@bridge.command("status")
@_config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def bridge_status(config_path, as_json) -> None:
    """Show the outbox: items per state, batches per state, oldest waiting item.

    \b
    Example:
      wenzheng bridge status --config bridge.yaml
    """
    import json
    import time

    from generator.bridge.outbox import Outbox

    cfg = _bridge_config(config_path)
    ob = Outbox(cfg.database, cfg.sqlite_synchronous)
    try:
        items, batches = ob.counts(), ob.batch_counts()
        age = ob.oldest_queued_age(time.time())
        failing = ob.conn.execute("SELECT id, branch, attempts, last_error FROM batches "
                                  "WHERE state='pending' ORDER BY id").fetchall()
    finally:
        ob.close()
    if as_json:
        click.echo(json.dumps({"items": items, "batches": batches, "oldest_queued_seconds": age,
                               "pending_batches": [list(f) for f in failing]}, ensure_ascii=False))
        return
    click.echo(f"provider: {cfg.forge_provider}   database: {cfg.database}")
    click.echo("items:   " + "  ".join(f"{k} {v}" for k, v in items.items()))
    click.echo("batches: " + ("  ".join(f"{k} {v}" for k, v in sorted(batches.items())) or "none"))
    if age is not None:
        click.echo(f"oldest queued item waits {age:.0f} s")
    for batch_id, branch, attempts, error in failing:
        click.echo(f"pending batch {batch_id} {branch}: {attempts} attempts, last error: {error or '-'}")


@bridge.command("cleanup-branches")
@_config_option
def bridge_cleanup_branches(config_path) -> None:
    """Delete bridge branches that no pending or open pull request needs.

    \b
    Example:
      wenzheng bridge cleanup-branches --config bridge.yaml
    """
    import time

    from generator.bridge.outbox import Outbox
    from generator.bridge.providers import make_provider
    from generator.bridge.worker import Worker

    cfg = _bridge_config(config_path)
    worker = Worker(cfg, make_provider(cfg), time.time)
    ob = Outbox(cfg.database, cfg.sqlite_synchronous)
    try:
        deleted = worker.cleanup_branches(ob)
    finally:
        ob.close()
    for name in deleted:
        click.echo(f"deleted {name}")
    click.echo(f"{len(deleted)} branches deleted")


@bridge.command("keygen")
def bridge_keygen() -> None:
    """Print a new age key pair for sealing contact details.

    Put the recipient (age1…) in `contact_recipient`; keep the identity
    (AGE-SECRET-KEY-…) offline with the centre, never on the bridge.

    \b
    Example:
      wenzheng bridge keygen > contact-key.txt
    """
    from generator.bridge.privacy import new_key_pair

    identity, recipient = new_key_pair()
    click.echo(f"# recipient (contact_recipient): {recipient}")
    click.echo(identity)


@bridge.command("contacts")
@_config_option
@click.argument("petition_id")
@click.option("--identity-file", type=click.File("r"), required=True,
              help="File holding the age identity (AGE-SECRET-KEY-…).")
def bridge_contacts(config_path, petition_id, identity_file) -> None:
    """Print the contact a citizen left with one petition (for the centre's follow-up).

    \b
    Example:
      wenzheng bridge contacts --config bridge.yaml 2026-000123 --identity-file centre.key
    """
    from generator.bridge.outbox import Outbox
    from generator.bridge.privacy import open_contact

    cfg = _bridge_config(config_path)
    identity = next(line.strip() for line in identity_file if line.startswith("AGE-SECRET-KEY-"))
    ob = Outbox(cfg.database, cfg.sqlite_synchronous)
    try:
        sealed = ob.sealed_contact(petition_id)
    finally:
        ob.close()
    if sealed is None:
        raise click.ClickException(f"no contact kept for {petition_id} (none given, or past retention)")
    click.echo(open_contact(sealed, identity))
