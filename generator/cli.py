"""The ``wenzheng`` command: a thin layer over the library.

This is the only module that reads the clock or the environment; everything
below it takes ``now`` as a parameter.
"""

from __future__ import annotations

import click


@click.group()
@click.version_option(package_name="wenzheng")
def main() -> None:
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
              help="With --repo: copy departments.yaml, rules.yaml and mkdocs.yml from this folder.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def synth(count, seed, start, months, now_text, repo, into, branch, commit_per_month, replace,
          changes, config_from, quiet):
    """Generate a realistic synthetic archive of the fictional city 明湖市.

    Petitions of every channel and category arrive at any hour over MONTHS
    months from START; departments accept, reply, ask for more time or
    details, get transferred, closed, rated, reopened, escalated... each event
    by the actor allowed to record it. The same seed and options always give
    byte-identical files.

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

    if changes:
        if not repo or into:
            raise click.UsageError("--changes needs --repo (the archive to add events to), not --into")
        epoch = os.environ.get("SOURCE_DATE_EPOCH")
        clock = datetime.fromtimestamp(int(epoch), timezone.utc) if epoch else datetime.now(timezone.utc)
        now = _synth_now(now_text, clock.astimezone(s.CITY_TZ).replace(microsecond=0))
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
    default_now = datetime.combine(end, datetime.min.time(), s.CITY_TZ) - timedelta(seconds=1)
    spec = s.SynthSpec(count, seed, spec_start, months, _synth_now(now_text, default_now))
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
