"""Reading YAML fast, and finding the line of a key when something is wrong.

The archive holds hundreds of thousands of small files, so the fast path is
libyaml's C loader with no position bookkeeping. Only when a file has a problem
do we compose it again to find the line the problem is on.
"""

from __future__ import annotations

import json
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


_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):(?: +(.*?))?[ \t]*$")
_INDICATORS = set("-?:,[]{}#&*!|>'\"%@`")
_TAGS = {
    "tag:yaml.org,2002:str": lambda v: v,
    "tag:yaml.org,2002:timestamp": lambda v: v,
    "tag:yaml.org,2002:null": lambda v: None,
    "tag:yaml.org,2002:bool": lambda v: v.lower() == "true",
    # Only plain decimals; octal, hex, underscores and sexagesimal take the slow path.
    "tag:yaml.org,2002:int": lambda v: int(v) if re.fullmatch(r"[-+]?(0|[1-9][0-9]*)", v) else _FALLBACK,
}
_FALLBACK = object()
_resolver = _TextTimestampLoader.__new__(_TextTimestampLoader)


def _scalar(text: str) -> Any:
    """Return a one-line scalar as libyaml and our loader would, or _FALLBACK."""
    if not text:
        return None
    first = text[0]
    if first == '"':
        if text[-1] != '"' or len(text) < 2:
            return _FALLBACK
        try:
            value = json.loads(text)  # JSON strings are YAML double-quoted scalars
        except ValueError:
            return _FALLBACK
        return value if isinstance(value, str) else _FALLBACK
    if first == "'":
        inner = text[1:-1]
        if text[-1] != "'" or len(text) < 2 or "'" in inner.replace("''", ""):
            return _FALLBACK
        return inner.replace("''", "'")
    if first in _INDICATORS or ": " in text or " #" in text or text.endswith(":") or "\t" in text:
        return _FALLBACK
    tag = _resolver.resolve(yaml.ScalarNode, text, (True, False))
    convert = _TAGS.get(tag)
    return convert(text) if convert else _FALLBACK


def _flow_mapping(text: str) -> Any:
    inner = text[1:-1].strip()
    if not inner:
        return {}
    if any(ch in inner for ch in "{}[]\"'#?"):
        return _FALLBACK
    out: dict[str, Any] = {}
    for part in inner.split(","):
        m = _KEY.match(part.strip())
        if not m or m.group(2) is None or m.group(1).lower() in ("true", "false", "null"):
            return _FALLBACK
        if ":" in m.group(2):  # in flow context a colon may start a new key
            return _FALLBACK
        value = _scalar(m.group(2))
        if value is _FALLBACK:
            return _FALLBACK
        out[m.group(1)] = value
    return out


def _block(lines: list[str], i: int, parent_indent: int, keep_last: bool) -> tuple[str, int] | None:
    """Read a literal block scalar starting at line ``i``; return (text, next line)."""
    indent = None
    body: list[str] = []
    last_content = -1
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip(" ")
        if not stripped:
            body.append("")
            i += 1
            continue
        width = len(line) - len(stripped)
        if indent is None:
            if width <= parent_indent or stripped.startswith("\t"):
                break
            indent = width
        if width < indent:
            break
        body.append(line[indent:])
        last_content = i
        i += 1
    while body and body[-1] == "":
        body.pop()
    if indent is None:
        return None  # an empty block: let the real parser decide
    text = "\n".join(body)
    # "Clip" keeps the last line break only if the source has one.
    has_break = last_content < len(lines) - 1
    return (text + "\n" if keep_last and has_break else text), i


def fast_parse(text: str) -> Any:
    """Return the data of a record file written in the simple shape records use,
    or _FALLBACK when the text uses anything else.

    Records are flat mappings of plain, quoted or literal-block scalars with the
    odd one-level mapping; parsing those directly is several times faster than
    libyaml plus PyYAML's constructor, and every file that strays from the
    shape goes to the full parser. Tests compare both on every record kind.
    """
    if "\t" in text or "\r" in text or "---" in text or "..." in text and "\n..." in text:
        return _FALLBACK
    lines = text.split("\n")
    out: dict[str, Any] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip() or line.startswith("#"):
            i += 1
            continue
        if line[0] == " ":
            return _FALLBACK
        m = _KEY.match(line)
        if not m:
            return _FALLBACK
        key, raw = m.group(1), m.group(2) or ""
        if key.lower() in ("true", "false", "null"):
            return _FALLBACK  # YAML would make the key a boolean or None
        i += 1
        if raw in ("|", "|-"):
            block = _block(lines, i, 0, raw == "|")
            if block is None:
                return _FALLBACK
            out[key], i = block
        elif raw.startswith("{"):
            if not raw.endswith("}"):
                return _FALLBACK
            value = _flow_mapping(raw)
            if value is _FALLBACK:
                return _FALLBACK
            out[key] = value
        elif raw:
            value = _scalar(raw)
            if value is _FALLBACK:
                return _FALLBACK
            out[key] = value
        else:
            nested: dict[str, Any] = {}
            while i < len(lines) and lines[i].startswith("  ") and lines[i].strip():
                sub = lines[i]
                if sub[2] == " " or sub.lstrip().startswith("#"):
                    return _FALLBACK
                sm = _KEY.match(sub[2:])
                if not sm or sm.group(1).lower() in ("true", "false", "null"):
                    return _FALLBACK
                i += 1
                subraw = sm.group(2) or ""
                if subraw in ("|", "|-"):
                    block = _block(lines, i, 2, subraw == "|")
                    if block is None:
                        return _FALLBACK
                    nested[sm.group(1)], i = block
                    continue
                value = _scalar(subraw) if subraw else _FALLBACK
                if value is _FALLBACK or subraw.startswith("{"):
                    return _FALLBACK
                nested[sm.group(1)] = value
            if i < len(lines) and lines[i].startswith(" ") and lines[i].strip():
                return _FALLBACK
            out[key] = nested if nested else None
    return out if out else _FALLBACK


def parse(text: str | bytes) -> Any:
    """Return the data of a YAML document, timestamps kept as strings."""
    if isinstance(text, bytes):
        try:
            decoded = text.decode("utf-8")
        except UnicodeDecodeError:
            decoded = None
    else:
        decoded = text
    if decoded is not None and not decoded.startswith("\ufeff"):
        fast = fast_parse(decoded)
        if fast is not _FALLBACK:
            return fast
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
