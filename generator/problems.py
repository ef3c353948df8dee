"""Problems found in the archive or its configuration, all reported at once.

Every problem names where it is (file and line), what is wrong and how to fix
it. Errors fail a check; warnings are shown but do not.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Iterable


@dataclass(frozen=True, order=True)
class Problem:
    path: str
    line: int | None
    code: str  # a stable short name, e.g. ``unknown-key``, ``reply-before-assignment``
    message: str  # what is wrong
    hint: str  # how to fix it
    severity: str = "error"  # error | warning

    def render(self) -> str:
        """Return the problem as one human-readable paragraph."""
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.severity}: {self.message} [{self.code}]\n    fix: {self.hint}"


def sort_problems(problems: Iterable[Problem]) -> list[Problem]:
    """Return problems ordered by file, line and code, so output is stable."""
    return sorted(problems, key=lambda p: (p.path, p.line or 0, p.code, p.message))


def render_text(problems: Iterable[Problem]) -> str:
    """Return every problem as text with a closing count line."""
    problems = sort_problems(problems)
    errors = sum(1 for p in problems if p.severity == "error")
    warnings = len(problems) - errors
    lines = [p.render() for p in problems]
    lines.append(f"{errors} error(s), {warnings} warning(s)")
    return "\n".join(lines)


def render_json(problems: Iterable[Problem]) -> str:
    """Return every problem as a JSON document for machines."""
    problems = sort_problems(problems)
    return json.dumps(
        {
            "errors": sum(1 for p in problems if p.severity == "error"),
            "warnings": sum(1 for p in problems if p.severity == "warning"),
            "problems": [asdict(p) for p in problems],
        },
        ensure_ascii=False,
        indent=2,
    )
