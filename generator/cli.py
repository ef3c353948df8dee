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
