"""Import another platform's records (CSV or XLSX) into the archive.

A city adopting Wenzheng has years of cases in a hotline or 网络问政 system.
A mapping file (YAML, documented in ``docs/import.md``) says which columns give
what, the time zone and date formats, and how the source's categories,
channels, statuses and departments translate into ours. The importer then:

1. reads and checks the mapping, reporting every problem at once with the
   mapping file's line (:func:`load_mapping`);
2. reads the source (CSV with a declared or detected encoding, or XLSX in
   read-only mode) and turns each row into a :class:`SourceRow` or into
   problems naming the row and the reason (:func:`read_rows`,
   :func:`convert_row`); a bad row never stops the others;
3. plans what to write against what the archive already holds, so that
   importing the same file twice adds nothing and an updated file adds only
   the new events (:func:`plan_import`);
4. writes the plan straight into git objects (gitio.ArchiveWriter) in one commit (or one per
   batch), so an interrupted import leaves the branch untouched
   (:func:`write_plan`).

Everything before step 4 is pure: the source's rows and the archive's records
in, a plan out.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


from generator import gitio, load
from generator import records as r
from generator import validate as v
from generator.privacy import mask_personal_data
from generator.problems import Problem
from generator.yamlio import YamlError, line_of, parse

# The fields a mapping may take from the source, and whether each is required.
FIELDS: dict[str, bool] = {
    "id": True,
    "received_at": True,
    "department": True,
    "category": False,
    "channel": False,
    "title": False,
    "text": False,
    "reply_at": False,
    "reply_text": False,
    "resolution": False,
    "closed_at": False,
    "status": False,
    "due_at": False,
    "district": False,
    "address": False,
}
TIME_FIELDS = ("received_at", "reply_at", "closed_at", "due_at")
VALUE_MAPS = ("category", "channel", "status", "department")
STATUSES = ("open", "closed")
DEFAULT_KEY = "*"  # in a value map: the value for anything not listed

_TOP_KEYS = ("system", "source", "timezone", "columns", "time_formats", "values",
             "resolution", "skip", "defaults", "privacy", "blank_values", "optional",
             "value_patterns", "closed_without_time", "placeholder_times")
_SOURCE_KEYS = ("encoding", "sheet", "header_row", "delimiter")
_DEFAULT_KEYS = ("category", "channel", "title", "reply_text", "display_name")
_PRIVACY_KEYS = ("extra_patterns", "strip_house_numbers", "public_phones")
# Dates that exports write for "no time" (Excel's and SQL Server's zero days, the Unix epoch).
DEFAULT_PLACEHOLDER_TIMES = ("1900-01-01", "1899-12-30", "1970-01-01", "0001-01-01")
MAX_LEGACY_ID = 500  # fields.LEGACY_FIELDS: long ids (URLs) are kept whole in legacy.id
_SKIP_KEYS = ("column", "equals", "in", "matches", "empty", "reason")

DEFAULT_DISPLAY_NAME = "网友（历史记录导入）"
_CLOSED_AT_WORDS = {
    "received_at": ("受理时间", "the received time"),
    "due_at": ("原系统期限", "the source's due time"),
    "reply_at": ("答复时间", "the reply time"),
}
DEFAULT_REPLY_TEXT = ("原系统记录此件已办结，未提供答复内容。"
                      "(The source system recorded this case as closed without a reply text.)")
_HOUSE_NUMBER_RE = re.compile(r"^\s*\d+[A-Za-z]?(?:\s*-\s*\d+[A-Za-z]?)?\s+")
_ENCODINGS_TRIED = ("utf-8-sig", "gb18030")


# -- the mapping -------------------------------------------------------------------


@dataclass(frozen=True)
class SkipRule:
    """Rows whose ``column`` matches are skipped (not imported, not errors)."""

    column: str
    equals: tuple[str, ...] = ()
    matches: re.Pattern | None = None
    empty: bool = False
    reason: str = ""

    def hits(self, value: str) -> bool:
        value = value.strip()
        if self.empty and not value:
            return True
        if value in self.equals:
            return True
        return bool(self.matches and self.matches.search(value))


@dataclass(frozen=True)
class ValuePattern:
    """A source value matching ``pattern`` (searched, case-insensitive) gives ``value``."""

    pattern: re.Pattern
    value: str


@dataclass(frozen=True)
class ClosedWithoutTime:
    """How to close a case the source says is closed but gives no closing time.

    ``field`` is one of our time fields (received_at, due_at, reply_at) or
    None; ``fixed`` a fixed time (e.g. when the export was taken). The
    reply and the closure written say that the time is not the source's.
    """

    field: str | None
    fixed: datetime | None

    def words(self) -> tuple[str, str]:
        if self.fixed is not None:
            return f"导出时间 {self.fixed.isoformat()}", f"the time of the export, {self.fixed.isoformat()}"
        assert self.field is not None
        return _CLOSED_AT_WORDS[self.field]


@dataclass(frozen=True)
class ResolutionRule:
    """Text containing ``contains`` (case-insensitive) gives ``resolution``."""

    contains: str
    resolution: str


@dataclass(frozen=True)
class ImportMapping:
    """A checked mapping file: how one source system's rows become records."""

    path: str
    system: str
    timezone: str
    tz: ZoneInfo
    columns: Mapping[str, tuple[str, ...]]  # our field -> source columns, first non-empty wins
    time_formats: Mapping[str, tuple[str, ...]]  # our time field -> strptime formats
    values: Mapping[str, Mapping[str, str]]  # category/channel/status/department -> value map
    resolution_rules: tuple[ResolutionRule, ...]
    resolution_default: str
    skip: tuple[SkipRule, ...]
    defaults: Mapping[str, str]
    encoding: str | None = None
    sheet: str | None = None
    header_row: int = 1
    delimiter: str = ","
    extra_patterns: tuple[tuple[re.Pattern, str], ...] = ()
    strip_house_numbers: bool = False
    blank_values: frozenset[str] = frozenset()  # cell values that mean "empty" (e.g. Unspecified)
    optional: frozenset[str] = frozenset()  # fields whose columns a file may lack altogether
    patterns: Mapping[str, tuple[ValuePattern, ...]] = field(default_factory=dict)  # kind -> lookups
    closed_without_time: ClosedWithoutTime | None = None
    placeholder_times: frozenset[str] = frozenset(DEFAULT_PLACEHOLDER_TIMES)  # YYYY-MM-DD
    public_phones: tuple[str, ...] = ()  # office numbers never masked

    def source_columns(self) -> list[str]:
        """Return every source column the mapping reads, in mapping order."""
        seen: dict[str, None] = {}
        for cols in self.columns.values():
            for c in cols:
                seen.setdefault(c, None)
        for rule in self.skip:
            seen.setdefault(rule.column, None)
        return list(seen)

    def map_value(self, kind: str, raw: str) -> str | None:
        """Return our value for a source value, or None when the map has none."""
        table = self.values.get(kind, {})
        if raw in table:
            return table[raw]
        folded = raw.strip().casefold()
        for key, value in table.items():
            if key.strip().casefold() == folded:
                return value
        for rule in self.patterns.get(kind, ()):
            if rule.pattern.search(raw):
                return rule.value
        return table.get(DEFAULT_KEY)

    def looks_up(self, kind: str) -> bool:
        """True when the source's values of ``kind`` go through a table or patterns."""
        return kind in self.values or kind in self.patterns


class MappingError(ValueError):
    """The mapping file cannot be used; ``problems`` says everything wrong with it."""

    def __init__(self, problems: list[Problem]):
        super().__init__("\n".join(p.render() for p in problems))
        self.problems = problems


def load_mapping(text: str | bytes, path: str,
                 departments: r.Departments | None = None) -> tuple[ImportMapping | None, list[Problem]]:
    """Return the mapping in ``text`` and every problem in it.

    With ``departments`` (the target archive's), department ids the mapping
    names are checked against it too. Unknown keys are warnings (it is
    configuration); everything that would make rows wrong is an error.
    """
    problems: list[Problem] = []

    def add(keypath: Sequence[str | int], code: str, message: str, hint: str,
            severity: str = "error") -> None:
        problems.append(Problem(path, line_of(text, list(keypath)) if keypath else 1,
                                code, message, hint, severity))

    try:
        data = parse(text)
    except YamlError as exc:
        return None, [Problem(path, exc.line, "yaml", str(exc), "fix the YAML syntax at that line")]
    if not isinstance(data, dict):
        return None, [Problem(path, 1, "not-a-mapping", "the mapping file must be a YAML mapping",
                              "start from docs/import-mappings/boston311.yaml")]

    def unknown(where: Sequence[str | int], raw: Mapping, allowed: Sequence[str]) -> None:
        for key in raw:
            if key not in allowed:
                add([*where, key], "unknown-key", f"unknown key {'.'.join(map(str, [*where, key]))!r}",
                    f"use one of: {', '.join(allowed)}", "warning")

    unknown([], data, _TOP_KEYS)

    system = data.get("system")
    if not isinstance(system, str) or not system.strip() or len(system) > 80:
        add(["system"], "bad-system", "system must name the source system (1 to 80 characters)",
            "write e.g. `system: boston311`; it becomes legacy.system of every record")
        system = ""

    tzname = data.get("timezone")
    tz = None
    if not isinstance(tzname, str):
        add(["timezone"], "missing-timezone", "timezone is required: the source's times have no offset",
            "write the IANA name, e.g. `timezone: Asia/Shanghai` or `timezone: America/New_York`")
    else:
        try:
            tz = ZoneInfo(tzname)
        except (ZoneInfoNotFoundError, ValueError):
            add(["timezone"], "bad-timezone", f"{tzname!r} is not an IANA time zone",
                "write e.g. Asia/Shanghai or America/New_York")

    source = data.get("source") or {}
    encoding = sheet = None
    header_row, delimiter = 1, ","
    if not isinstance(source, dict):
        add(["source"], "bad-source", "source must be a mapping", "write e.g. `source: {encoding: gb18030}`")
        source = {}
    unknown(["source"], source, _SOURCE_KEYS)
    if "encoding" in source:
        encoding = source["encoding"]
        try:
            "".encode(str(encoding))
        except LookupError:
            add(["source", "encoding"], "bad-encoding", f"{encoding!r} is not a known text encoding",
                "use e.g. utf-8, gb18030 or gbk, or leave it out to detect utf-8 or gb18030")
            encoding = None
    if "sheet" in source:
        sheet = str(source["sheet"])
    if "header_row" in source:
        if isinstance(source["header_row"], int) and source["header_row"] >= 1:
            header_row = source["header_row"]
        else:
            add(["source", "header_row"], "bad-header-row", "header_row must be a row number from 1",
                "give the row that holds the column names, e.g. 1")
    if "delimiter" in source:
        if isinstance(source["delimiter"], str) and len(source["delimiter"]) == 1:
            delimiter = source["delimiter"]
        else:
            add(["source", "delimiter"], "bad-delimiter", "delimiter must be one character",
                "write e.g. `delimiter: \";\"`")

    columns: dict[str, tuple[str, ...]] = {}
    raw_cols = data.get("columns")
    if not isinstance(raw_cols, dict):
        add(["columns"], "missing-columns", "columns is required: it names the source column of each field",
            f"list at least: {', '.join(k for k, req in FIELDS.items() if req)}")
        raw_cols = {}
    unknown(["columns"], raw_cols, list(FIELDS))
    for name, required in FIELDS.items():
        value = raw_cols.get(name)
        if value is None:
            if required:
                add(["columns"], "missing-column-key", f"columns.{name} is required",
                    f"name the source column that holds the {name.replace('_', ' ')}")
            continue
        cols = [value] if isinstance(value, str) else value
        if not isinstance(cols, list) or not cols or not all(isinstance(c, str) and c for c in cols):
            add(["columns", name], "bad-column", f"columns.{name} must be a column name or a list of them",
                "write `name: Column` or `name: [First choice, Second choice]`")
            continue
        columns[name] = tuple(cols)

    time_formats: dict[str, tuple[str, ...]] = {}
    raw_tf = data.get("time_formats") or {}
    if not isinstance(raw_tf, dict):
        add(["time_formats"], "bad-time-formats", "time_formats must be a mapping",
            "write `time_formats: {default: [\"%Y-%m-%d %H:%M:%S\"]}`")
        raw_tf = {}
    unknown(["time_formats"], raw_tf, ("default", *TIME_FIELDS))
    for key, value in raw_tf.items():
        fmts = [value] if isinstance(value, str) else value
        if not isinstance(fmts, list) or not fmts or not all(isinstance(x, str) and "%" in x or x == "iso"
                                                              for x in fmts):
            add(["time_formats", key], "bad-time-format",
                f"time_formats.{key} must be a list of strptime formats (or iso)",
                "write e.g. [\"%m/%d/%Y %I:%M:%S %p\", \"%m/%d/%Y\"]")
            continue
        time_formats[key] = tuple(fmts)
    default_formats = time_formats.get("default", ("iso",))
    for name in TIME_FIELDS:
        time_formats.setdefault(name, default_formats)

    values: dict[str, dict[str, str]] = {}
    raw_values = data.get("values") or {}
    if not isinstance(raw_values, dict):
        add(["values"], "bad-values", "values must be a mapping of value maps",
            "write `values: {category: {Source value: complaint}}`")
        raw_values = {}
    unknown(["values"], raw_values, VALUE_MAPS)
    allowed = {"category": r.CATEGORIES, "channel": r.CHANNELS, "status": STATUSES}
    for kind in VALUE_MAPS:
        table = raw_values.get(kind)
        if table is None:
            continue
        if not isinstance(table, dict):
            add(["values", kind], "bad-value-map", f"values.{kind} must map source values to ours",
                f"write `{kind}: {{Source value: our value}}`; `\"*\"` gives the value for anything else")
            continue
        clean: dict[str, str] = {}
        for src, ours in table.items():
            src_text = str(src)
            if kind in allowed and ours not in allowed[kind]:
                add(["values", kind, src], "bad-mapped-value",
                    f"values.{kind}: {src_text!r} maps to {ours!r}, which is not one of ours",
                    f"use one of: {', '.join(allowed[kind])}")
                continue
            if kind == "department":
                if not isinstance(ours, str) or (departments is not None and ours not in departments.departments):
                    add(["values", kind, src], "unknown-department",
                        f"values.department: {src_text!r} maps to {ours!r}, which is not in the "
                        "archive's departments.yaml",
                        "add the department to departments.yaml first, or map to an id listed there")
                    continue
            clean[src_text] = str(ours)
        values[kind] = clean
    patterns: dict[str, tuple[ValuePattern, ...]] = {}
    raw_patterns = data.get("value_patterns") or {}
    if not isinstance(raw_patterns, dict):
        add(["value_patterns"], "bad-value-patterns", "value_patterns must be a mapping of lists",
            "write `value_patterns: {department: [{matches: 住建局, value: housing}]}`")
        raw_patterns = {}
    unknown(["value_patterns"], raw_patterns, VALUE_MAPS)
    for kind in VALUE_MAPS:
        items = raw_patterns.get(kind)
        if items is None:
            continue
        if not isinstance(items, list):
            add(["value_patterns", kind], "bad-value-patterns", f"value_patterns.{kind} must be a list",
                "write one `- {matches: regular expression, value: ours}` per line")
            continue
        found: list[ValuePattern] = []
        for j, item in enumerate(items):
            where = ["value_patterns", kind, j]
            if not isinstance(item, dict) or not isinstance(item.get("matches"), str) or "value" not in item:
                add(where, "bad-value-pattern", f"value_patterns.{kind}[{j}] needs `matches` and `value`",
                    "write `{matches: 'Public Works|PWD', value: public-works}`")
                continue
            unknown(where, item, ("matches", "value"))
            ours = item["value"]
            if kind in allowed and ours not in allowed[kind]:
                add([*where, "value"], "bad-mapped-value",
                    f"value_patterns.{kind}[{j}] gives {ours!r}, which is not one of ours",
                    f"use one of: {', '.join(allowed[kind])}")
                continue
            if kind == "department" and (not isinstance(ours, str) or (
                    departments is not None and ours not in departments.departments)):
                add([*where, "value"], "unknown-department",
                    f"value_patterns.department[{j}] gives {ours!r}, which is not in the archive's "
                    "departments.yaml",
                    "add the department to departments.yaml first, or give an id listed there")
                continue
            try:
                found.append(ValuePattern(re.compile(item["matches"], re.IGNORECASE), str(ours)))
            except re.error as exc:
                add([*where, "matches"], "bad-pattern",
                    f"value_patterns.{kind}[{j}].matches is not a regular expression: {exc}", "fix the pattern")
        patterns[kind] = tuple(found)

    optional: set[str] = set()
    raw_optional = data.get("optional") or []
    if not isinstance(raw_optional, list):
        add(["optional"], "bad-optional", "optional must be a list of fields",
            "write e.g. `optional: [reply_text, channel]`")
        raw_optional = []
    for j, name in enumerate(raw_optional):
        if name not in FIELDS or FIELDS[name]:
            add(["optional", j], "bad-optional",
                f"optional[{j}] is {name!r}, not a field that may be missing",
                f"use fields that are not required: {', '.join(k for k, req in FIELDS.items() if not req)}")
        elif name not in columns:
            add(["optional", j], "bad-optional", f"optional[{j}]: {name} has no columns.{name}",
                f"name its column(s) under columns.{name}, or drop it from optional")
        else:
            optional.add(name)

    for kind in ("category", "channel"):
        if kind not in columns and not (isinstance(data.get("defaults"), dict) and kind in data["defaults"]):
            add(["columns"], "missing-column-key",
                f"neither columns.{kind} nor defaults.{kind} is given",
                f"name the column that gives the {kind}, or set defaults.{kind}")
    for kind in ("category", "channel"):
        if kind in optional and not (isinstance(data.get("defaults"), dict) and kind in data["defaults"]):
            add(["optional"], "missing-default",
                f"{kind} is optional but defaults.{kind} is not given",
                f"set defaults.{kind}: the value for files without the column")
    if "status" in columns and "status" not in values and "status" not in patterns:
        add(["values"], "missing-value-map", "columns.status is given but values.status is not",
            "map the source's statuses to open or closed, e.g. `status: {Closed: closed, \"*\": open}`")

    defaults: dict[str, str] = {}
    raw_defaults = data.get("defaults") or {}
    if not isinstance(raw_defaults, dict):
        add(["defaults"], "bad-defaults", "defaults must be a mapping", "write `defaults: {category: help}`")
        raw_defaults = {}
    unknown(["defaults"], raw_defaults, _DEFAULT_KEYS)
    for key in _DEFAULT_KEYS:
        if key not in raw_defaults:
            continue
        value = raw_defaults[key]
        if not isinstance(value, str) or not value.strip():
            add(["defaults", key], "bad-default", f"defaults.{key} must be non-empty text",
                "give a value or remove the key")
            continue
        if key in allowed and value not in allowed[key]:
            add(["defaults", key], "bad-default", f"defaults.{key}: {value!r} is not one of ours",
                f"use one of: {', '.join(allowed[key])}")
            continue
        if key == "display_name" and len(value) > 40:
            add(["defaults", key], "bad-default", "defaults.display_name is longer than 40 characters",
                "use a short pseudonym such as 网友（历史记录导入）")
            continue
        defaults[key] = value

    res_rules: list[ResolutionRule] = []
    res_default = "resolved"
    raw_res = data.get("resolution") or {}
    if not isinstance(raw_res, dict):
        add(["resolution"], "bad-resolution", "resolution must be a mapping",
            "write `resolution: {rules: [{contains: text, resolution: explained}], default: resolved}`")
        raw_res = {}
    unknown(["resolution"], raw_res, ("rules", "default"))
    if "default" in raw_res:
        if raw_res["default"] in r.RESOLUTIONS:
            res_default = raw_res["default"]
        else:
            add(["resolution", "default"], "bad-resolution",
                f"resolution.default {raw_res['default']!r} is not a resolution",
                f"use one of: {', '.join(r.RESOLUTIONS)}")
    for i, rule in enumerate(raw_res.get("rules") or []):
        if (not isinstance(rule, dict) or not isinstance(rule.get("contains"), str)
                or rule.get("resolution") not in r.RESOLUTIONS):
            add(["resolution", "rules", i], "bad-resolution-rule",
                f"resolution.rules[{i}] needs `contains` (text) and `resolution` (one of ours)",
                f"write `{{contains: not observed, resolution: explained}}`; resolutions: "
                f"{', '.join(r.RESOLUTIONS)}")
            continue
        res_rules.append(ResolutionRule(rule["contains"], rule["resolution"]))

    skips: list[SkipRule] = []
    for i, rule in enumerate(data.get("skip") or []):
        where = ["skip", i]
        if not isinstance(rule, dict) or not isinstance(rule.get("column"), str):
            add(where, "bad-skip", f"skip[{i}] must name a column",
                "write `{column: Status, equals: [Draft], reason: drafts are not petitions}`")
            continue
        unknown(where, rule, _SKIP_KEYS)
        equals = rule.get("equals", rule.get("in", ()))
        equals = (equals,) if isinstance(equals, str) else tuple(str(x) for x in equals or ())
        pattern = None
        if "matches" in rule:
            try:
                pattern = re.compile(str(rule["matches"]))
            except re.error as exc:
                add([*where, "matches"], "bad-pattern", f"skip[{i}].matches is not a regular expression: {exc}",
                    "fix the pattern")
                continue
        if not equals and pattern is None and not rule.get("empty"):
            add(where, "bad-skip", f"skip[{i}] says which column but not which values",
                "add `equals`, `matches` or `empty: true`")
            continue
        skips.append(SkipRule(rule["column"], equals, pattern, rule.get("empty") is True,
                              str(rule.get("reason") or "")))

    extra: list[tuple[re.Pattern, str]] = []
    raw_priv = data.get("privacy") or {}
    if not isinstance(raw_priv, dict):
        add(["privacy"], "bad-privacy", "privacy must be a mapping",
            "write `privacy: {extra_patterns: [{pattern: ..., marker: ...}]}`")
        raw_priv = {}
    unknown(["privacy"], raw_priv, _PRIVACY_KEYS)
    for i, item in enumerate(raw_priv.get("extra_patterns") or []):
        where = ["privacy", "extra_patterns", i]
        if not isinstance(item, dict) or not isinstance(item.get("pattern"), str):
            add(where, "bad-pattern", "each extra pattern needs `pattern` and `marker`",
                "write `{pattern: '\\d{3}-\\d{3}-\\d{4}', marker: '[电话号码已隐去]'}`")
            continue
        try:
            extra.append((re.compile(item["pattern"]), str(item.get("marker") or "[已隐去]")))
        except re.error as exc:
            add([*where, "pattern"], "bad-pattern", f"not a regular expression: {exc}", "fix the pattern")

    phones = raw_priv.get("public_phones") or []
    if not isinstance(phones, list) or not all(isinstance(x, (str, int)) for x in phones):
        add(["privacy", "public_phones"], "bad-public-phones",
            "privacy.public_phones must be a list of phone numbers",
            "write e.g. `public_phones: [\"617-635-4500\", \"0571-12345\"]`")
        phones = []

    closing = None
    raw_cwt = data.get("closed_without_time")
    if raw_cwt is not None:
        at = raw_cwt.get("at") if isinstance(raw_cwt, dict) else None
        if isinstance(raw_cwt, dict):
            unknown(["closed_without_time"], raw_cwt, ("at",))
        if at in _CLOSED_AT_WORDS:
            if at != "received_at" and at not in columns:
                add(["closed_without_time", "at"], "bad-closed-without-time",
                    f"closed_without_time.at is {at}, but columns.{at} is not given",
                    f"name the column of {at}, or use received_at or a fixed time")
            closing = ClosedWithoutTime(str(at), None)
        else:
            fixed = None
            if isinstance(at, datetime):
                fixed = at
            elif isinstance(at, str):
                try:
                    fixed = datetime.fromisoformat(at)
                except ValueError:
                    fixed = None
            if fixed is None or fixed.tzinfo is None:
                add(["closed_without_time"], "bad-closed-without-time",
                    "closed_without_time.at must be received_at, due_at, reply_at or a time with its offset",
                    "write e.g. `closed_without_time: {at: \"2024-06-30T00:00:00+01:00\"}` (when the "
                    "export was taken: every case closed in it was closed by then)")
            else:
                closing = ClosedWithoutTime(None, fixed)

    placeholders = data.get("placeholder_times", list(DEFAULT_PLACEHOLDER_TIMES))
    placeholder_days: set[str] = set()
    if not isinstance(placeholders, list):
        add(["placeholder_times"], "bad-placeholder-times", "placeholder_times must be a list of dates",
            "write e.g. `placeholder_times: [1900-01-01]`")
        placeholders = []
    for j, item in enumerate(placeholders):
        try:
            placeholder_days.add(date.fromisoformat(str(item)).isoformat())
        except ValueError:
            add(["placeholder_times", j], "bad-placeholder-times", f"placeholder_times[{j}] is not a date",
                "write the date as YYYY-MM-DD")

    blanks = data.get("blank_values") or []
    if not isinstance(blanks, list):
        add(["blank_values"], "bad-blank-values", "blank_values must be a list of cell values",
            "write e.g. `blank_values: [Unspecified, N/A]`")
        blanks = []

    if any(p.severity == "error" for p in problems) or tz is None:
        return None, problems
    return ImportMapping(
        path=path, system=system.strip(), timezone=tzname, tz=tz, columns=columns,
        time_formats=time_formats, values=values, resolution_rules=tuple(res_rules),
        resolution_default=res_default, skip=tuple(skips), defaults=defaults, encoding=encoding,
        sheet=sheet, header_row=header_row, delimiter=delimiter, extra_patterns=tuple(extra),
        strip_house_numbers=raw_priv.get("strip_house_numbers") is True,
        blank_values=frozenset(str(b).strip().casefold() for b in blanks),
        optional=frozenset(optional), patterns=patterns, closed_without_time=closing,
        placeholder_times=frozenset(placeholder_days), public_phones=tuple(str(x) for x in phones),
    ), problems


# -- reading the source ------------------------------------------------------------


@dataclass(frozen=True)
class RawRow:
    """One source row: its spreadsheet-style number (the header is row 1) and cells."""

    number: int
    cells: Mapping[str, Any]


@dataclass
class Source:
    """A source file's header and rows, or the problems that stop reading it."""

    path: str
    header: list[str] = field(default_factory=list)
    rows: list[RawRow] = field(default_factory=list)
    encoding: str | None = None
    problems: list[Problem] = field(default_factory=list)
    raw_header: list[str] = field(default_factory=list)  # as the file spells it


def _decode(data: bytes, declared: str | None) -> tuple[str, str]:
    """Return the text and the encoding used.

    A declared encoding is used as declared; bytes that do not fit are kept as
    surrogates so that the rows holding them are reported one by one. Without
    a declaration, UTF-8 (with or without BOM) is tried, then GB 18030 (the
    superset of GBK that Chinese Excel writes).
    """
    if declared:
        return data.decode(declared, errors="surrogateescape"), declared
    for enc in _ENCODINGS_TRIED:
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="surrogateescape"), "utf-8"


def _cell_text(value: Any) -> Any:
    """Return an XLSX cell as the importer wants it: text, or a datetime kept as is."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_source(path: str | Path, mapping: ImportMapping) -> Source:
    """Return the header and rows of a CSV or XLSX file.

    Problems that make the whole file unusable (unreadable, no header, a
    column the mapping needs is missing) are returned instead of rows; each
    missing column names the mapping key and line that asks for it.
    """
    path = Path(path)
    src = Source(str(path))
    if not path.is_file():
        src.problems.append(Problem(str(path), None, "no-source", "the source file does not exist",
                                    "give the path of a .csv or .xlsx file"))
        return src
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        _read_xlsx(path, mapping, src)
    else:
        _read_csv(path, mapping, src)
    if src.problems:
        return src
    # Two of the file's columns that differ only in case are ambiguous.
    for col in mapping.source_columns():
        spellings = [name for name in src.raw_header if name.casefold() == col.casefold()]
        if len(set(spellings)) > 1:
            src.problems.append(Problem(
                str(path), mapping.header_row, "ambiguous-column",
                f"the mapping's column {col!r} matches {' and '.join(repr(n) for n in dict.fromkeys(spellings))} "
                "in the header: names are matched whatever their case, so it is not known which to read",
                "rename or remove one of those columns in the file"))
    if src.problems:
        return src
    # Column names match whatever their case; a field's columns are
    # alternatives (a file needs one of them); an optional field's may all be
    # missing; a skip rule's column must be there.
    have = set(src.header)
    missing: list[tuple[str, list[str], str]] = []  # (mapping key, its columns, what it is)
    for name, cols in mapping.columns.items():
        if not any(c in have for c in cols) and name not in mapping.optional:
            missing.append((name, list(cols), f"columns.{name}"))
    for i, rule in enumerate(mapping.skip):
        if rule.column not in have:
            missing.append(("skip", [rule.column], f"skip[{i}]"))
    if missing:
        mapping_text = Path(mapping.path).read_bytes() if Path(mapping.path).is_file() else None
        for key, cols, what in missing:
            keypath = ["columns", key] if key != "skip" else ["skip"]
            line = line_of(mapping_text, keypath) if mapping_text is not None else None
            names = " or ".join(repr(c) for c in cols)
            fix = ("fix the name in the mapping, add the file's name for it to the list "
                   f"(columns.{key}: [{', '.join(cols)}, ...])" if key != "skip" else "fix the name in the mapping")
            if key != "skip" and not FIELDS[key]:
                fix += f", or list {key} under `optional:` if some files lack it"
            src.problems.append(Problem(
                mapping.path, line, "missing-column",
                f"{what} names column {names}, which {path.name} does not have",
                f"the file's columns are: {_column_list(src.header)}; {fix}"))
    return src


def _column_list(header: Sequence[str], limit: int = 600) -> str:
    """Return the header's names for a hint: whole names only, and how many more there are."""
    shown: list[str] = []
    used = 0
    for name in header:
        text = _printable(name)
        if shown and used + len(text) + 2 > limit:
            return ", ".join(shown) + f" and {len(header) - len(shown)} more"
        shown.append(text)
        used += len(text) + 2
    return ", ".join(shown)


def _canonical_header(header: list[str], mapping: ImportMapping) -> list[str]:
    """Return the header with each name the mapping uses spelled as the mapping spells it.

    Matching ignores case (Boston's exports say CASE_ENQUIRY_ID in some years,
    case_enquiry_id in others), so rows keyed by the returned names are read
    with the mapping's own names.
    """
    wanted = {c.casefold(): c for c in mapping.source_columns()}
    return [wanted.get(name.casefold(), name) for name in header]


def _read_csv(path: Path, mapping: ImportMapping, src: Source) -> None:
    text, src.encoding = _decode(path.read_bytes(), mapping.encoding)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=mapping.delimiter)
    number = 0
    header: list[str] | None = None
    try:
        for cells in reader:
            number += 1
            if number < mapping.header_row:
                continue
            if header is None:
                src.raw_header = [c.strip().lstrip("\ufeff") for c in cells]
                header = _canonical_header(src.raw_header, mapping)
                if any(_has_bad_bytes(c) for c in header):
                    src.problems.append(Problem(
                        str(path), number, "bad-encoding",
                        f"the header row is not valid {src.encoding} text: {_printable(', '.join(header))[:200]}",
                        "set source.encoding in the mapping to the file's encoding (e.g. gb18030), "
                        "or leave it out to detect UTF-8 or GB 18030"))
                    return
                continue
            if not any(c.strip() for c in cells):
                continue
            src.rows.append(RawRow(number, dict(zip(header, cells))))
    except csv.Error as exc:
        src.problems.append(Problem(str(path), reader.line_num, "bad-csv", f"the CSV cannot be read: {exc}",
                                    "check the quoting at that line, or the delimiter in source.delimiter"))
        return
    if header is None:
        src.problems.append(Problem(str(path), None, "no-header", "the file has no header row",
                                    "the first row (or source.header_row) must name the columns"))
        return
    src.header = header


def _read_xlsx(path: Path, mapping: ImportMapping, src: Source) -> None:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, OSError, KeyError, ValueError) as exc:
        src.problems.append(Problem(str(path), None, "bad-xlsx", f"the workbook cannot be read: {exc}",
                                    "save it again as .xlsx, or export it as CSV"))
        return
    try:
        if mapping.sheet is not None and mapping.sheet not in book.sheetnames:
            src.problems.append(Problem(str(path), None, "no-sheet",
                                        f"the workbook has no sheet {mapping.sheet!r}",
                                        f"set source.sheet to one of: {', '.join(book.sheetnames)}"))
            return
        sheet = book[mapping.sheet] if mapping.sheet else book.worksheets[0]
        header: list[str] | None = None
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            if number < mapping.header_row:
                continue
            if header is None:
                src.raw_header = [str(c).strip() if c is not None else "" for c in values]
                header = _canonical_header(src.raw_header, mapping)
                continue
            cells = [_cell_text(c) for c in values]
            if not any(c for c in cells if not isinstance(c, str) or c.strip()):
                continue
            src.rows.append(RawRow(number, dict(zip(header, cells))))
        src.encoding = "xlsx"
        if header is None:
            src.problems.append(Problem(str(path), None, "no-header", "the sheet has no header row",
                                        "the first row (or source.header_row) must name the columns"))
        else:
            src.header = header
    finally:
        book.close()


# -- one row -----------------------------------------------------------------------


@dataclass(frozen=True)
class SourceRow:
    """A usable source row, in our terms, masked and ready to be written."""

    number: int
    legacy_id: str
    received_at: datetime
    category: str
    channel: str
    department: str
    title: str
    body: str
    status: str  # open | closed
    legacy_status: str | None
    due_at: datetime | None
    reply_at: datetime | None
    reply_text: str | None
    resolution: str
    closed_at: datetime | None
    district: str | None
    address: str | None
    closed_time_unknown: tuple[str, str] | None = None  # (zh, en) what the closing time stands in for


def _first(row: RawRow, mapping: ImportMapping, name: str) -> tuple[Any, str | None]:
    """Return the first non-empty cell of the columns mapped to ``name``, and its column."""
    for col in mapping.columns.get(name, ()):
        value = row.cells.get(col, "")
        if isinstance(value, datetime):
            return value, col
        if (isinstance(value, str) and value.strip()
                and value.strip().casefold() not in mapping.blank_values):
            return value, col
    cols = mapping.columns.get(name, ())
    return "", cols[0] if cols else None


def _printable(text: str) -> str:
    """Return text with undecodable bytes shown as \\xNN, safe to print."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _has_bad_bytes(value: Any) -> bool:
    return isinstance(value, str) and any("\udc80" <= ch <= "\udcff" for ch in value)


_TIME_DIRECTIVES = ("%H", "%I", "%M", "%S", "%X", "%c", "%T", "%R")
END_OF_WHOLE_DAY = time(23, 59, 59)


def parse_source_time(value: Any, formats: Sequence[str], tz: ZoneInfo,
                      whole_day_end: bool = False) -> datetime:
    """Return an aware time from a source cell; naive times are in ``tz``.

    A date without a time of day (``2018/4/24``, or a format with no hour)
    is a whole day in ``tz``: its start, or with ``whole_day_end`` its last
    second (a case closed "on 24 April" was closed by the end of that day,
    never on the 23rd). Raises ValueError naming the formats tried.
    """
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    text = str(value).strip()
    for fmt in formats:
        try:
            if fmt == "iso":
                parsed = datetime.fromisoformat(text)
                date_only = len(text) <= 10
            else:
                parsed = datetime.strptime(text, fmt)
                date_only = not any(d in fmt for d in _TIME_DIRECTIVES)
        except ValueError:
            continue
        if date_only:
            return datetime.combine(parsed.date(), END_OF_WHOLE_DAY if whole_day_end else time(0), tz)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
    raise ValueError(f"{text!r} is not a time in any of the formats {', '.join(formats)}")


_DIGITS_RE = re.compile(r"\D")


def _mask(text: str, mapping: ImportMapping, keep: Sequence[str] = ()) -> str:
    """Return ``text`` masked: the mapping's own patterns, then the one masking
    (generator.privacy); ``keep`` and the mapping's public_phones stay visible."""
    allowed = {_DIGITS_RE.sub("", p) for p in mapping.public_phones} - {""}

    def keep_public(marker: str):
        def sub(match: re.Match) -> str:
            digits = _DIGITS_RE.sub("", match.group(0))
            for a in allowed:
                # The same number, or it with a country code (1 to 3 digits) before a full
                # number of 10 digits or more: never a local number that other areas share.
                short, long_ = sorted((digits, a), key=len)
                if short == long_ or (len(short) >= 10 and len(long_) - len(short) <= 3
                                      and long_.endswith(short)):
                    return match.group(0)
            return marker
        return sub

    for pattern, marker in mapping.extra_patterns:
        text = pattern.sub(keep_public(marker) if allowed else marker, text)
    return mask_personal_data(text, (*keep, *mapping.public_phones)).text


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def convert_row(row: RawRow, mapping: ImportMapping, source_name: str,
                phones: Mapping[str, Sequence[str]] | None = None) -> tuple[SourceRow | None, list[Problem]]:
    """Return the row in our terms, or None with every reason it cannot be used.

    ``phones`` maps department ids to their public phone numbers
    (departments.yaml), which stay visible in that department's reply.

    Each problem names the source file and row (``line`` is the row number,
    the header being row 1) and the column at fault. A usable row comes
    with its warnings (values cut to the archive's limits).
    """
    problems: list[Problem] = []
    warnings: list[Problem] = []

    def bad(column: str | None, code: str, message: str, hint: str) -> None:
        where = f"column {column!r}: " if column else ""
        problems.append(Problem(source_name, row.number, code, f"row {row.number}: {where}{message}", hint))

    def clip(name: str, text: str, limit: int) -> str:
        if len(text) <= limit:
            return text
        cols = mapping.columns.get(name, ())
        where = f"column {cols[0]!r}: " if cols else ""
        warnings.append(Problem(
            source_name, row.number, "truncated",
            f"row {row.number}: {where}the {name.replace('_', ' ')} has {len(text)} characters; the archive "
            f"keeps {limit}, so it was cut to {limit - 1} and '…'",
            "shorten it in the source if the end matters, or map a shorter column", "warning"))
        return _clip(text, limit)

    undecodable = [col for col in mapping.source_columns() if _has_bad_bytes(row.cells.get(col))]
    if undecodable:
        sample = _printable(str(row.cells[undecodable[0]]))[:60]
        bad(None, "bad-encoding",
            f"columns {', '.join(undecodable)} are not valid {mapping.encoding or 'UTF-8'} text "
            f"(e.g. {sample!r})",
            "set source.encoding in the mapping to the file's encoding (e.g. gb18030), "
            "or save the file as UTF-8")
    if problems:
        return None, problems

    legacy_id, id_col = _first(row, mapping, "id")
    legacy_id = str(legacy_id).strip()
    if not legacy_id:
        bad(id_col, "missing-id", "the row has no id", "every source row needs its id in that column")
    elif len(legacy_id) > MAX_LEGACY_ID:
        bad(id_col, "bad-id", f"the id has {len(legacy_id)} characters, more than {MAX_LEGACY_ID}",
            "map a shorter id column (the id is kept whole in legacy.id; the petition gets its own "
            "short number)")

    times: dict[str, datetime | None] = {}
    placeholder: dict[str, str] = {}
    for name in TIME_FIELDS:
        value, col = _first(row, mapping, name)
        if name not in mapping.columns or value == "":
            times[name] = None
            if name == "received_at":
                bad(col, "missing-time", "the received time is empty",
                    "every petition needs the time it was received")
            continue
        try:
            t = parse_source_time(value, mapping.time_formats[name], mapping.tz,
                                  whole_day_end=name != "received_at")
        except ValueError as exc:
            times[name] = None
            bad(col, "bad-time", str(exc),
                f"fix the cell, or add its format to time_formats.{name} in the mapping")
            continue
        if t.date().isoformat() in mapping.placeholder_times:
            # 1900-01-01 and the like stand for "no time": read as empty.
            times[name] = None
            placeholder[name] = str(value).strip()
            if name == "received_at":
                bad(col, "missing-time", f"the received time is a placeholder ({str(value).strip()!r})",
                    "every petition needs the time it was received")
            continue
        times[name] = t
    received = times["received_at"]
    for name, label in (("reply_at", "replied"), ("closed_at", "closed"), ("due_at", "due")):
        t = times[name]
        if received is not None and t is not None and t < received:
            bad(mapping.columns[name][0], "before-received",
                f"{label} at {t.isoformat()}, before it was received ({received.isoformat()})",
                "fix the times in the source; the row is left out until they make sense")
    if times["reply_at"] and times["closed_at"] and times["reply_at"] > times["closed_at"]:
        bad(mapping.columns["reply_at"][0], "reply-after-closure",
            f"replied at {times['reply_at'].isoformat()}, after it was closed ({times['closed_at'].isoformat()})",
            "fix the times in the source")

    def mapped(kind: str) -> str | None:
        value, col = _first(row, mapping, kind)
        if kind not in mapping.columns:
            return mapping.defaults.get(kind)
        raw = str(value).strip()
        if not raw and kind in mapping.defaults:
            return mapping.defaults[kind]
        if not mapping.looks_up(kind):
            return raw or None
        ours = mapping.map_value(kind, raw)
        if ours is None:
            shown = raw if len(raw) <= 80 else raw[:77] + "..."
            bad(col, f"unmapped-{kind}", f"{kind} {shown!r} is not in values.{kind} of the mapping"
                + (f" and matches none of value_patterns.{kind}" if kind in mapping.patterns else ""),
                f"add `{shown or '(empty)'}: <ours>` under values.{kind}, a pattern under "
                f"value_patterns.{kind}, or a default `'*': <ours>`")
        return ours

    category = mapped("category")
    channel = mapped("channel")
    department = mapped("department")
    status_raw, _ = _first(row, mapping, "status")
    status = mapped("status") if "status" in mapping.columns else None
    if status is None and "status" not in mapping.columns:
        status = "closed" if times["closed_at"] else "open"
    closed_unknown: ClosedWithoutTime | None = None
    if status == "closed" and times["closed_at"] is None and not any(
            p.code == "bad-time" for p in problems):
        rule = mapping.closed_without_time
        stand_in = None
        if rule is not None:
            stand_in = rule.fixed if rule.fixed is not None else times.get(rule.field or "")
        if stand_in is not None:
            closed_unknown = rule
            times["closed_at"] = max(stand_in, received) if received is not None else stand_in
        elif rule is not None:
            bad(mapping.columns.get(rule.field or "", ("closed_at",))[0], "closed-without-time",
                f"the status says closed ({str(status_raw).strip()!r}), the closed time is empty and "
                f"{rule.field}, which closed_without_time names, is empty too",
                "fill in either time, or map this status to open")
        else:
            shown = placeholder.get("closed_at")
            bad(mapping.columns.get("closed_at", ("closed_at",))[0], "closed-without-time",
                f"the status says closed ({str(status_raw).strip()!r}) but the closed time is "
                + (f"a placeholder ({shown!r})" if shown else "empty"),
                "fill in the closed time, map this status to open, or set closed_without_time in the "
                "mapping (e.g. `closed_without_time: {at: received_at}`) to close such cases, marked as "
                "closed at an unknown time")

    title_raw, _ = _first(row, mapping, "title")
    title = _mask(str(title_raw).strip(), mapping) or mapping.defaults.get("title", "")
    texts = [str(row.cells.get(c, "")).strip() for c in mapping.columns.get("text", ())]
    texts = [t for t in texts if t.casefold() not in mapping.blank_values]
    body = _mask("\n".join(t for t in texts if t), mapping)
    if not title:
        title = body.splitlines()[0] if body else ""
    if not title:
        bad(mapping.columns.get("title", ("title",))[0], "missing-title", "the row has no title or text",
            "map a column that always has text to columns.title, or set defaults.title")
    if not body:
        body = title

    reply_raw, _ = _first(row, mapping, "reply_text")
    reply_text = _mask(str(reply_raw).strip(), mapping, (phones or {}).get(department or "", ())) or None
    res_raw, _ = _first(row, mapping, "resolution")
    res_text = str(res_raw or reply_raw or "").casefold()
    resolution = mapping.resolution_default
    for rule_ in mapping.resolution_rules:
        if rule_.contains.casefold() in res_text:
            resolution = rule_.resolution
            break

    district, _ = _first(row, mapping, "district")
    address, _ = _first(row, mapping, "address")
    address = str(address).strip()
    if mapping.strip_house_numbers:
        address = _HOUSE_NUMBER_RE.sub("", address)
    address = _mask(" ".join(address.split()), mapping)
    district = _mask(" ".join(str(district).split()), mapping)

    if problems:
        return None, problems
    assert received is not None and category and channel and department and status
    closed = times["closed_at"] if status == "closed" else None
    return SourceRow(
        number=row.number, legacy_id=legacy_id, received_at=received, category=category,
        channel=channel, department=department, title=clip("title", title, 100),
        body=clip("text", body, 5000),
        status=status, legacy_status=clip("status", str(status_raw).strip(), 80) or None,
        due_at=times["due_at"], reply_at=times["reply_at"] if closed and not closed_unknown else None,
        reply_text=clip("reply_text", reply_text, 10000) if reply_text else None, resolution=resolution,
        closed_at=closed, district=clip("district", district, 80) or None,
        address=clip("address", address, 200) or None,
        closed_time_unknown=closed_unknown.words() if closed_unknown and closed else None,
    ), warnings


def skip_reason(row: RawRow, mapping: ImportMapping) -> str | None:
    """Return why the row is skipped by the mapping's skip rules, or None."""
    for i, rule in enumerate(mapping.skip):
        value = row.cells.get(rule.column, "")
        if rule.hits(str(value)):
            return rule.reason or f"skip[{i}] ({rule.column})"
    return None


# -- records -----------------------------------------------------------------------


def _iso(t: datetime, tz: ZoneInfo) -> str:
    return t.astimezone(tz).isoformat()


_PLAIN_RE = re.compile(r"^[a-z][a-z_-]*$")
_RESERVED = frozenset({"true", "false", "null", "yes", "no", "on", "off", "y", "n"})


def _scalar(value: Any) -> str:
    """Return a YAML scalar: plain for simple words, JSON-quoted otherwise.

    A JSON string is a valid YAML double-quoted scalar, so any text is safe.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if _PLAIN_RE.match(text) and text not in _RESERVED:
        return text
    quoted = json.dumps(text, ensure_ascii=False)
    if quoted.isprintable():
        return quoted
    # YAML refuses raw control characters (real exports hold C1 bytes from
    # double-encoded text); escape them as \\uXXXX, which both JSON and YAML read.
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in quoted)


def _emit(data: Mapping[str, Any], indent: str, out: list[str]) -> None:
    for key, value in data.items():
        if isinstance(value, Mapping):
            out.append(f"{indent}{key}:")
            _emit(value, indent + "  ", out)
        elif (isinstance(value, str) and "\n" in value and value == value.strip()
              and all(line == line.rstrip() and (line.isprintable() or not line)
                      for line in value.split("\n"))):
            # Text with line breaks as a literal block, as people write it.
            out.append(f"{indent}{key}: |-")
            out.extend(f"{indent}  {line}" if line else "" for line in value.split("\n"))
        else:
            out.append(f"{indent}{key}: {_scalar(value)}")


def _dump(data: Mapping[str, Any]) -> bytes:
    """Return a record as YAML text.

    Written by hand rather than with yaml.dump, whose representer is pure
    Python and took most of the import's time; records are flat mappings of
    text, times and booleans, so a few rules cover them.
    """
    out: list[str] = []
    _emit(data, "", out)
    return ("\n".join(out) + "\n").encode("utf-8")


def petition_record(pid: str, row: SourceRow, mapping: ImportMapping) -> dict[str, Any]:
    """Return the petition.yaml data of an imported row (docs/formats.md)."""
    data: dict[str, Any] = {
        "id": pid,
        "received_at": _iso(row.received_at, mapping.tz),
        "channel": row.channel,
        "category": row.category,
        "title": row.title,
        "body": row.body,
        "petitioner": {"display_name": mapping.defaults.get("display_name", DEFAULT_DISPLAY_NAME)},
    }
    location = {k: val for k, val in (("district", row.district), ("address", row.address)) if val}
    if location:
        data["location"] = location
    data["legacy"] = legacy_record(row, mapping)
    return data


def legacy_record(row: SourceRow, mapping: ImportMapping) -> dict[str, Any]:
    """Return the ``legacy`` mapping of a row: system, id, due time and status."""
    legacy: dict[str, Any] = {"system": mapping.system, "id": row.legacy_id}
    if row.due_at is not None:
        legacy["due_at"] = _iso(row.due_at, mapping.tz)
    if row.legacy_status:
        legacy["status"] = row.legacy_status
    return legacy


def event_records(row: SourceRow, mapping: ImportMapping) -> list[tuple[str, dict[str, Any]]]:
    """Return the events of a row as (file name, data), in timeline order.

    assigned by the centre at the received time; when the case is closed, a
    final reply by the department and the centre's closure. When the source
    has one time for both, the reply is placed one second before the closure
    so that the timeline reads answer, then closure (files at the same second
    would sort ``closed`` before ``reply``).
    """
    tz = mapping.tz
    out = [(r.event_file_name("assigned", row.received_at),
            {"kind": "assigned", "at": _iso(row.received_at, tz), "by": r.CENTRE, "to": row.department})]
    if row.closed_at is None:
        return out
    closed_at = row.closed_at
    reply_at = row.reply_at if row.reply_at is not None and row.reply_at < closed_at else None
    if reply_at is None:
        reply_at = closed_at - timedelta(seconds=1)
        if reply_at < row.received_at:
            reply_at = row.received_at
            closed_at = row.received_at + timedelta(seconds=1)
    reply = {"kind": "reply", "at": _iso(reply_at, tz), "by": row.department, "final": True,
             "resolution": row.resolution, "body": row.reply_text or mapping.defaults.get(
                 "reply_text", DEFAULT_REPLY_TEXT)}
    closed = {"kind": "closed", "at": _iso(closed_at, tz), "by": r.CENTRE}
    if row.closed_time_unknown is not None:
        zh, en = row.closed_time_unknown
        note = (f"原系统记录此件已办结，但未记录办结时间；此处的答复与办结时间取自{zh}，"
                f"并非实际办结时间，办理用时无从判断。(The source system recorded this case as closed "
                f"but not when; the reply and closing times here are {en}, not the real ones, so how "
                f"long it took cannot be told.)")
        reply["note"] = note
        closed["note"] = note
    out.append((r.event_file_name("reply", reply_at), reply))
    out.append((r.event_file_name("closed", closed_at), closed))
    return out


# -- planning against the archive --------------------------------------------------


@dataclass(frozen=True)
class Existing:
    """What the archive already holds of one source system."""

    by_legacy: Mapping[str, tuple[str, str]]  # legacy id -> (petition id, folder)
    files: Mapping[str, frozenset[str]]  # folder -> file names
    kinds: Mapping[str, Mapping[str, str]]  # folder -> kind -> `at` text of the first such event
    legacy: Mapping[str, Mapping[str, Any]]  # folder -> effective legacy mapping (after corrections)
    max_seq: Mapping[str, int]  # year -> highest sequence number used by any petition


def read_existing(repo: str | Path, rev: str, system: str) -> Existing:
    """Return what the archive at ``rev`` holds, keyed for re-import of ``system``.

    Reads every petition.yaml once (through the loader's cache); the sequence
    numbers of all petitions, imported or not, so new ids never collide.
    """
    by_legacy: dict[str, tuple[str, str]] = {}
    files: dict[str, frozenset[str]] = {}
    kinds: dict[str, dict[str, str]] = {}
    legacy: dict[str, dict[str, Any]] = {}
    max_seq: dict[str, int] = {}
    if gitio.rev_parse(repo, rev) is None:
        return Existing(by_legacy, files, kinds, legacy, max_seq)
    snap = load.snapshot_at(repo, rev)
    for folder in snap.folders:
        pid = folder.rsplit("/", 1)[1]
        m = r.PETITION_ID_RE.match(pid)
        if m:
            max_seq[m["year"]] = max(max_seq.get(m["year"], 0), int(m["seq"]))
    parsed = load.load_folders(snap)
    for folder, recs in parsed.items():
        pet = next((rf.data for rf in recs if rf.name == r.PETITION_FILE), None)
        if not isinstance(pet, dict) or not isinstance(pet.get("legacy"), dict):
            continue
        lg = dict(pet["legacy"])
        if lg.get("system") != system or lg.get("id") is None:
            continue
        by_legacy[str(lg["id"])] = (folder.rsplit("/", 1)[1], folder)
        files[folder] = frozenset(rf.name for rf in recs)
        seen: dict[str, str] = {}
        for rf in recs:
            if rf.name == r.PETITION_FILE or not isinstance(rf.data, dict):
                continue
            kind = rf.data.get("kind")
            if kind == "correction" and rf.data.get("corrects") == r.PETITION_FILE:
                new = (rf.data.get("set") or {}).get("legacy")
                if isinstance(new, dict):
                    lg = dict(new)
            elif isinstance(kind, str):
                seen.setdefault(kind, str(rf.data.get("at")))
        kinds[folder] = seen
        legacy[folder] = lg
    return Existing(by_legacy, files, kinds, legacy, max_seq)


@dataclass
class Plan:
    """What an import will write, and what it reports."""

    files: list[tuple[str, bytes]] = field(default_factory=list)
    new_petitions: int = 0
    new_events: int = 0
    corrections: int = 0
    unchanged: int = 0
    rows_read: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)  # legacy id -> petition id

    @property
    def rows_rejected(self) -> int:
        return len({p.line for p in self.problems if p.severity == "error" and p.line is not None})


def _same_time(a: str | None, b: str) -> bool:
    try:
        return a is not None and datetime.fromisoformat(a) == datetime.fromisoformat(b)
    except ValueError:
        return False


def _validate_case(folder: str, pet_data: dict, events: list[tuple[str, dict]],
                   departments: r.Departments | None) -> list[str]:
    """Return what the record validator says against a new case (empty when sound)."""
    report = v.Report()
    m = r.FOLDER_RE.match(folder + "/x")
    assert m is not None
    pet = v.check_petition(report, pet_data, m["id"], (m["year"], m["month"]), r.Source(folder))
    evs = [e for e in (v.check_event(report, name, data, r.Source(f"{folder}/{name}"))
                       for name, data in events) if e is not None]
    if departments is not None and not report.pending:
        v.check_case(report, pet, evs, departments, folder)
    return [f"{p.file}: {p.message}" for p in report.pending if p.severity == "error"]


def plan_import(rows: Iterable[RawRow], mapping: ImportMapping, existing: Existing,
                departments: r.Departments | None, source_name: str, now: datetime,
                on_problem: Callable[[Problem], None] | None = None) -> Plan:
    """Return the files to write for ``rows`` given what the archive holds.

    New legacy ids get new petitions, numbered after the highest number of
    their year in the order (received time, legacy id), so the numbering is
    the same whichever order the file lists them in. Known legacy ids get only
    the events the archive lacks; a changed legacy due time or status becomes
    a ``correction`` of petition.yaml by the centre at ``now``; a changed time
    of an event already written is reported, never rewritten (files are never
    edited). ``on_problem`` is told of each bad row's problems as they are
    found (a dry run prints the first ones at once).
    """
    plan = Plan()
    phones = {d.id: d.phones for d in departments.departments.values()} if departments else {}
    good: list[SourceRow] = []
    for raw in rows:
        plan.rows_read += 1
        reason = skip_reason(raw, mapping)
        if reason is not None:
            plan.skipped.append((raw.number, reason))
            continue
        row, problems = convert_row(raw, mapping, source_name, phones)
        plan.problems.extend(problems)
        if on_problem is not None:
            for problem in problems:
                on_problem(problem)
        if row is not None and departments is not None and row.department not in departments.departments:
            plan.problems.append(Problem(
                source_name, row.number, "unknown-department",
                f"row {row.number}: department {row.department!r} is not in the archive's departments.yaml",
                "add it to departments.yaml or map the source's department to an id listed there"))
            row = None
        if row is not None:
            good.append(row)

    # Duplicate ids in one file are ambiguous: neither row is trusted.
    rows_of: dict[str, list[int]] = {}
    for row in good:
        rows_of.setdefault(row.legacy_id, []).append(row.number)
    for row in good:
        numbers = rows_of[row.legacy_id]
        if len(numbers) > 1:
            others = ", ".join(str(n) for n in numbers if n != row.number)
            plan.problems.append(Problem(
                source_name, row.number, "duplicate-id",
                f"row {row.number}: id {row.legacy_id!r} is also on row(s) {others}",
                "each source id may appear once; remove the duplicate rows from the file"))
    good = [row for row in good if len(rows_of[row.legacy_id]) == 1]

    seq = dict(existing.max_seq)
    fresh = sorted((row for row in good if row.legacy_id not in existing.by_legacy),
                   key=lambda row: (row.received_at.astimezone(timezone.utc), row.legacy_id))
    for row in fresh:
        local = row.received_at.astimezone(mapping.tz)
        year = f"{local:%Y}"
        seq[year] = seq.get(year, 0) + 1
        pid = f"{year}-{seq[year]:06d}"
        folder = r.petition_folder(pid, local)
        # Validate what will be written, read back from the bytes, so that
        # nothing the archive's check would refuse ever reaches git.
        pet_bytes = _dump(petition_record(pid, row, mapping))
        event_bytes = [(name, _dump(data)) for name, data in event_records(row, mapping)]
        try:
            errors = _validate_case(folder, parse(pet_bytes), [(n, parse(b)) for n, b in event_bytes],
                                    departments)
        except YamlError as exc:
            errors = [f"the record cannot be written as YAML ({exc})"]
        if errors:
            seq[year] -= 1
            plan.problems.append(Problem(source_name, row.number, "invalid-record",
                                         f"row {row.number}: the record would be invalid: {'; '.join(errors)}",
                                         "fix the row in the source"))
            continue
        plan.ids[row.legacy_id] = pid
        plan.new_petitions += 1
        plan.files.append((f"{folder}/{r.PETITION_FILE}", pet_bytes))
        for name, content in event_bytes:
            plan.files.append((f"{folder}/{name}", content))
            plan.new_events += 1

    for row in good:
        if row.legacy_id not in existing.by_legacy:
            continue
        pid, folder = existing.by_legacy[row.legacy_id]
        plan.ids[row.legacy_id] = pid
        changed = False
        have = existing.kinds.get(folder, {})
        for name, data in event_records(row, mapping):
            kind = data["kind"]
            if kind in have:
                # A stand-in closing time (closed_without_time) moves with each export: not a change.
                stand_in = row.closed_time_unknown is not None and kind in ("reply", "closed")
                if not _same_time(have[kind], data["at"]) and kind != "reply" and not stand_in:
                    plan.problems.append(Problem(
                        source_name, row.number, "changed-event",
                        f"row {row.number}: {pid} already has {kind} at {have[kind]}; the source now says "
                        f"{data['at']}. Records are never edited, so it was left as it is",
                        f"if the source is right, the centre records a correction of {kind} in {folder}",
                        "warning"))
                continue
            if name in existing.files.get(folder, frozenset()):
                continue
            plan.files.append((f"{folder}/{name}", _dump(data)))
            plan.new_events += 1
            changed = True
        if row.closed_at is None and "closed" in have:
            plan.problems.append(Problem(
                source_name, row.number, "reopened-in-source",
                f"row {row.number}: {pid} is closed in the archive but open in the source",
                f"if it was reopened, the centre records a `reopened` event in {folder}", "warning"))
        new_legacy = legacy_record(row, mapping)
        old_legacy = existing.legacy.get(folder, {})
        if _legacy_differs(old_legacy, new_legacy):
            name = r.event_file_name("correction", now)
            plan.files.append((f"{folder}/{name}", _dump({
                "kind": "correction", "at": now.astimezone(mapping.tz).isoformat(), "by": r.CENTRE,
                "corrects": r.PETITION_FILE,
                "reason": f"原系统 {mapping.system} 更新了此件的状态或期限（导入 {source_name}）。"
                          f"(The source system updated its status or due time.)",
                "set": {"legacy": new_legacy},
            })))
            plan.corrections += 1
            changed = True
        if not changed:
            plan.unchanged += 1
    return plan


def _legacy_differs(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    if str(old.get("status") or "") != str(new.get("status") or ""):
        return True
    a, b = old.get("due_at"), new.get("due_at")
    if (a is None) != (b is None):
        return True
    return a is not None and not _same_time(str(a), str(b))


# -- writing -----------------------------------------------------------------------


def write_plan(repo: str | Path, branch: str, plan: Plan, message: str, when: datetime,
               batch_size: int | None = None) -> str | None:
    """Write the plan's files on ``branch`` in one pack; return the new commit.

    One commit, or one per ``batch_size`` petition folders. The archive
    writer moves the branch only once the whole pack is indexed, so a failure
    leaves the branch as it was.
    """
    if not plan.files:
        return None
    ref = branch if branch.startswith("refs/") else f"refs/heads/{branch}"
    parent = gitio.rev_parse(repo, ref)
    batches: list[list[tuple[str, bytes]]] = [plan.files]
    if batch_size:
        by_folder: dict[str, list[tuple[str, bytes]]] = {}
        for path, content in plan.files:
            by_folder.setdefault(path.rsplit("/", 1)[0], []).append((path, content))
        folders = list(by_folder)
        batches = [[f for fo in folders[i:i + batch_size] for f in by_folder[fo]]
                   for i in range(0, len(folders), batch_size)]
    stamp = int(when.timestamp())
    with gitio.ArchiveWriter(repo, ref) as fi:
        for i, files in enumerate(batches):
            text = message if len(batches) == 1 else f"{message} (batch {i + 1} of {len(batches)})"
            fi.commit(files, text, when=stamp, author="Wenzheng import <wenzheng@localhost>",
                      parent=parent if i == 0 else None)
    return gitio.rev_parse(repo, ref)


@dataclass
class ImportResult:
    """The outcome of one ``wenzheng import``."""

    source: str
    system: str
    encoding: str | None
    plan: Plan | None
    problems: list[Problem]
    commit: str | None = None
    dry_run: bool = False
    branch: str | None = None
    checked_out: bool = True  # the branch is checked out here (its files were written too)

    @property
    def fatal(self) -> bool:
        """True when nothing could be imported because of the mapping or the file."""
        return self.plan is None

    def as_dict(self) -> dict[str, Any]:
        p = self.plan
        return {
            "source": self.source, "system": self.system, "encoding": self.encoding,
            "dry_run": self.dry_run, "commit": self.commit,
            "rows_read": p.rows_read if p else 0,
            "new_petitions": p.new_petitions if p else 0,
            "new_events": p.new_events if p else 0,
            "corrections": p.corrections if p else 0,
            "unchanged": p.unchanged if p else 0,
            "skipped": [{"row": n, "reason": why} for n, why in (p.skipped if p else [])],
            "rows_rejected": p.rows_rejected if p else 0,
            "problems": [dict(path=x.path, line=x.line, code=x.code, message=x.message, hint=x.hint,
                              severity=x.severity) for x in self.problems],
        }


FIRST_PROBLEMS = 10  # how many problems a dry run prints as soon as it finds them


def plan_lines(mapping: ImportMapping, src: Source, existing: Existing, branch: str,
               calendar: str | None) -> list[str]:
    """Return what the import will do, known before any row is converted:
    which column gives each field, the time zone, the calendar deadlines are
    counted on, the rows to read and what the archive already holds."""
    have = set(src.header)
    lines = [f"plan: {len(src.rows):,} row(s) of {Path(src.path).name} ({src.encoding}) as system "
             f"{mapping.system!r} into branch {branch}; times without offset are in {mapping.timezone}"
             + (f"; deadlines on the {calendar} calendar" if calendar else "")]
    for name in FIELDS:
        cols = mapping.columns.get(name)
        if cols:
            found = [c for c in cols if c in have]
            if found:
                extra = f" (not in the file: {', '.join(c for c in cols if c not in have)})" \
                    if len(found) < len(cols) else ""
                lines.append(f"  {name:<12} <- {', '.join(found)}{extra}")
            else:
                default = mapping.defaults.get(name)
                lines.append(f"  {name:<12} <- (none of {', '.join(cols)} in the file: optional"
                             + (f"; default {default!r})" if default else ")"))
        elif name in mapping.defaults:
            lines.append(f"  {name:<12} <- default {mapping.defaults[name]!r}")
    if mapping.closed_without_time is not None:
        zh, en = mapping.closed_without_time.words()
        lines.append(f"  a closed status without a closing time: closed at {en}, marked as such")
    lines.append(f"  the archive holds {len(existing.by_legacy):,} petition(s) of {mapping.system!r} already")
    return lines


def _first_problems(progress: Callable[[str], None]) -> Callable[[Problem], None]:
    """Return a callback passing the first FIRST_PROBLEMS errors to ``progress`` as found."""
    shown: list[Problem] = []

    def on_problem(problem: Problem) -> None:
        if len(shown) < FIRST_PROBLEMS and problem.severity == "error":
            if not shown:
                progress("first problems (all are listed again at the end):")
            shown.append(problem)
            progress(problem.render())
    return on_problem


def run_import(source: str | Path, mapping_path: str | Path, repo: str | Path, branch: str,
               now: datetime, dry_run: bool = False, batch_size: int | None = None,
               progress: Callable[[str], None] | None = None) -> ImportResult:
    """Return the result of importing ``source`` into ``branch`` of ``repo``.

    Reads the target's departments.yaml (department ids the mapping names
    must exist there), checks the mapping and the file, plans against what
    the branch holds and, unless ``dry_run``, writes the plan in one commit.
    With ``progress``, the plan (:func:`plan_lines`) and the first
    problems are passed to it as soon as they are known, before the rows
    are all converted.
    """
    mapping_path = Path(mapping_path)
    source = Path(source)
    ref = branch if branch.startswith("refs/") else f"refs/heads/{branch}"
    departments = None
    problems: list[Problem] = []
    if gitio.rev_parse(repo, ref) is None:
        problems.append(Problem(str(repo), None, "no-branch", f"the repository has no branch {branch!r}",
                                "import into a branch that holds departments.yaml and rules.yaml"))
        return ImportResult(str(source), "", None, None, problems, dry_run=dry_run)
    from generator.check import read_departments

    departments, dept_problems = read_departments(load.snapshot_at(repo, ref, folders=[]))
    problems += [p for p in dept_problems if p.severity == "error"]
    if not mapping_path.is_file():
        problems.append(Problem(str(mapping_path), None, "no-mapping", "the mapping file does not exist",
                                "start from docs/import-mappings/boston311.yaml"))
        return ImportResult(str(source), "", None, None, problems, dry_run=dry_run)
    mapping, map_problems = load_mapping(mapping_path.read_bytes(), str(mapping_path), departments)
    problems += map_problems
    if mapping is None or departments is None:
        return ImportResult(str(source), "", None, None, problems, dry_run=dry_run)
    src = read_source(source, mapping)
    problems += src.problems
    if src.problems:
        return ImportResult(str(source), mapping.system, src.encoding, None, problems, dry_run=dry_run)
    existing = read_existing(repo, ref, mapping.system)
    on_problem: Callable[[Problem], None] | None = None
    if progress is not None:
        calendar = None
        rules_text = gitio.read_file_at(repo, ref, "rules.yaml")
        try:
            raw_cal = (parse(rules_text) or {}).get("calendar") if rules_text else None
            calendar = str(raw_cal if isinstance(raw_cal, str) else (raw_cal or {}).get("jurisdiction", "CN"))
        except (YamlError, AttributeError):
            calendar = None
        for line in plan_lines(mapping, src, existing, branch, calendar):
            progress(line)

        on_problem = _first_problems(progress)
    plan = plan_import(src.rows, mapping, existing, departments, source.name, now, on_problem)
    problems += plan.problems
    result = ImportResult(str(source), mapping.system, src.encoding, plan, problems, dry_run=dry_run)
    if not dry_run and plan.files:
        message = (f"Import from {mapping.system}: {plan.new_petitions} new petition(s), "
                   f"{plan.new_events} event(s), {plan.corrections} correction(s)\n\n"
                   f"Source file: {source.name}; {plan.rows_read} row(s) read, "
                   f"{len(plan.skipped)} skipped, {plan.rows_rejected} not usable.\n")
        old = gitio.rev_parse(repo, ref)
        assert old is not None
        commit = write_plan(repo, ref, plan, message, now, batch_size)
        result.branch = ref.removeprefix("refs/heads/")
        result.checked_out = bool(gitio.checked_out_in(repo, ref))
        stuck = gitio.advance_worktrees(repo, ref, old, commit) if commit else []
        if stuck:
            result.problems += stuck
            result.plan = None
        else:
            result.commit = commit
    return result


def render_text(result: ImportResult) -> str:
    """Return the import's report for people: totals, then every problem."""
    from generator.problems import render_text as render_problems

    lines = []
    p = result.plan
    if p is not None:
        verb = "would add" if result.dry_run else "added"
        lines.append(
            f"{result.source}: {p.rows_read} row(s) read ({result.encoding}); {verb} "
            f"{p.new_petitions} petition(s), {p.new_events} event(s), {p.corrections} correction(s); "
            f"{p.unchanged} already imported unchanged; {len(p.skipped)} skipped; "
            f"{p.rows_rejected} row(s) not usable")
        if result.commit:
            lines.append(f"commit {result.commit}")
            if not result.checked_out:
                lines.append(f"branch {result.branch} is not checked out here; to take the import "
                             f"into your branch: git merge {result.branch}")
        for number, why in p.skipped:
            lines.append(f"row {number}: skipped ({why})")
    else:
        lines.append(f"{result.source}: nothing imported")
    if result.problems:
        lines.append(render_problems(result.problems))
    return "\n".join(lines)
