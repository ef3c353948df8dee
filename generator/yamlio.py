"""Reading YAML fast, and finding the line of a key when something is wrong.

The archive holds hundreds of thousands of small files, so the fast path is
libyaml's C loader with no position bookkeeping. Only when a file has a problem
do we compose it again to find the line the problem is on.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import yaml

SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _TextTimestampLoader(SafeLoader):  # type: ignore[misc, valid-type]
    """A safe loader that keeps timestamps as text.

    PyYAML turns ``2026-11-22T10:15:00`` (no offset) into a naive datetime and
    silently drops information; we want to see the original text and reject a
    time without an offset with a clear message.
    """


_TextTimestampLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", SafeLoader.construct_yaml_str
)

# YAML 1.1 reads yes/no/on/off as booleans (and the country code NO as false).
# Records say true or false; anything else stays text and is reported.
_TextTimestampLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in SafeLoader.yaml_implicit_resolvers.items()
}
_TextTimestampLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


class YamlError(ValueError):
    """A file is not valid YAML; carries the line and the parser's words."""

    def __init__(self, message: str, line: int | None):
        super().__init__(message)
        self.line = line


def parse(text: str | bytes) -> Any:
    """Return the data of a YAML document, timestamps kept as strings."""
    try:
        return yaml.load(text, Loader=_TextTimestampLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise YamlError(f"{exc.problem or exc}", line) from None
    except yaml.YAMLError as exc:
        raise YamlError(str(exc), None) from None


def line_of(text: str | bytes, keypath: Sequence[str | int]) -> int | None:
    """Return the 1-based line of the value at ``keypath``, or of the nearest
    parent that exists; None if the document cannot be composed."""
    try:
        node = yaml.compose(text, Loader=SafeLoader)
    except yaml.YAMLError:
        return None
    if node is None:
        return 1
    line = node.start_mark.line + 1
    for key in keypath:
        child = None
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == key:
                    child = (k, v)
                    break
            if child is None:
                return line
            line = child[0].start_mark.line + 1
            node = child[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            if key >= len(node.value):
                return line
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            return line
    return line
