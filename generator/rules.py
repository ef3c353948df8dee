"""Transitional: rules.yaml is read but not yet interpreted.

The clocks branch replaces this module with the full rules model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from generator.problems import Problem
from generator.yamlio import YamlError, parse


@dataclass(frozen=True)
class Rules:
    raw: Any


def load_rules(text: str | bytes, path: str) -> tuple[Rules | None, list[Problem]]:
    """Return the parsed rules.yaml, with a problem if it is not valid YAML."""
    try:
        return Rules(parse(text)), []
    except YamlError as exc:
        return None, [Problem(path, exc.line, "yaml", str(exc), "fix the YAML syntax")]
