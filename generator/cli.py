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
    import time

    import uvicorn

    from generator.bridge.app import create_app
    from generator.bridge.logs import setup_logging
    from generator.bridge.providers import make_provider

    cfg = _bridge_config(config_path)
    setup_logging(cfg.log_level)
    app = create_app(cfg, make_provider(cfg), clock=time.time, run_worker=not no_worker)
    # No access log: it would write citizens' addresses to disk.
    uvicorn.run(app, host=cfg.listen_host, port=cfg.listen_port, log_config=None, access_log=False,
                server_header=False)


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
