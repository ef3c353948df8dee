"""JSON Schemas for every record kind, derived from :mod:`generator.fields`.

The shipped files in ``generator/schemas/`` are this module's output; a test
checks they are current. Regenerate them with ``python -m generator.schemas``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from generator import fields as f
from generator import records as r
from generator.validate import SSH_KEY_RE

SSH_KEY_PATTERN = SSH_KEY_RE.pattern

SCHEMA_DIR = Path(__file__).parent / "schemas"
BASE = "https://wenzheng.invalid/schemas/"

_TIME = {"type": "string", "format": "date-time",
         "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)$"}
_TYPES: dict[str, dict[str, Any]] = {
    "text": {"type": "string", "minLength": 1},
    "time": _TIME,
    "date": {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
    "bool": {"type": "boolean"},
    "mapping": {"type": "object"},
    "id": {"type": "string", "pattern": r"^[0-9]{4}-(?:[0-9]{6}|[1-9][0-9]{6,8})$"},  # records.PETITION_ID_RE
    "file": {"type": "string", "pattern": r"^(petition\.yaml|\d{8}T\d{6}Z-[a-z_]+(-\d+)?\.yaml)$"},
    "choice": {"type": "string"},
    "department": {"type": "string", "minLength": 1},
    "actor": {"type": "string", "minLength": 1},
}


def _object(table: Sequence[f.Field], nested: dict[str, dict] | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for fl in table:
        prop = dict(_TYPES[fl.type])
        if fl.choices:
            prop["enum"] = list(fl.choices)
        if fl.max_length:
            prop["maxLength"] = fl.max_length
        if fl.description:
            prop["description"] = fl.description
        if nested and fl.name in nested:
            prop = {**nested[fl.name], **({"description": fl.description} if fl.description else {})}
        props[fl.name] = prop
    return {
        "type": "object",
        "properties": props,
        "required": [fl.name for fl in table if fl.required],
        "additionalProperties": False,
    }


def petition_schema() -> dict[str, Any]:
    """Return the JSON Schema of petition.yaml."""
    schema = _object(f.PETITION_FIELDS, {
        "petitioner": _object(f.PETITIONER_FIELDS),
        "location": _object(f.LOCATION_FIELDS),
        "legacy": _object(f.LEGACY_FIELDS),
    })
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": BASE + "petition.schema.json", "title": "Wenzheng petition", **schema}


def event_schema() -> dict[str, Any]:
    """Return the JSON Schema of an event file: one branch per kind."""
    branches = []
    for kind in r.EVENT_KINDS:
        obj = _object(f.COMMON_EVENT_FIELDS + f.EVENT_FIELDS[kind])
        obj["properties"]["kind"] = {"const": kind}
        if f.KIND_ACTORS[kind] and all(a not in ("holder", "author") for a in f.KIND_ACTORS[kind]):
            obj["properties"]["by"] = {"enum": list(f.KIND_ACTORS[kind])}
        branches.append({"if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                         "then": obj})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": BASE + "event.schema.json",
        "title": "Wenzheng event",
        "type": "object",
        "required": ["kind", "at", "by"],
        "properties": {"kind": {"enum": list(r.EVENT_KINDS)}},
        "allOf": branches,
    }


def departments_schema() -> dict[str, Any]:
    """Return the JSON Schema of departments.yaml."""
    name = {"type": "object", "required": ["zh", "en"], "additionalProperties": False,
            "properties": {"zh": {"type": "string"}, "en": {"type": "string"}}}
    accounts = {"type": "array", "items": {"type": "string", "minLength": 1}}
    phones = {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": "[0-9]"},
              "description": "Public phone numbers of the office, kept visible in its replies."}
    dept = {
        "type": "object",
        "required": ["id", "name", "level"],
        "properties": {
            "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]*$"},
            "name": name,
            "level": {"enum": list(r.DEPARTMENT_LEVELS)},
            "parent": {"type": "string"},
            "categories": {"type": "array", "items": {"enum": list(r.CATEGORIES)}},
            "members": accounts,
            "phones": phones,
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": BASE + "departments.schema.json",
        "title": "Wenzheng departments",
        "type": "object",
        "required": ["city", "centre", "departments"],
        "properties": {
            "city": name,
            "centre": {"type": "object", "required": ["name", "members"], "properties": {
                "id": {"const": "centre"}, "name": name, "members": accounts, "phones": phones}},
            "bridge_accounts": accounts,
            "bot_accounts": accounts,
            "signing_keys": {
                "type": "object",
                "description": "Each account's SSH public keys (whole .pub lines); when any "
                               "are listed, the audit takes each commit's identity from its "
                               "signature.",
                "additionalProperties": {"type": "array", "minItems": 1, "items": {
                    "type": "string", "pattern": SSH_KEY_PATTERN}}},
            # who may change the project itself (code, workflows, packaging, git
            # settings); not an actor (generator.governance, docs/governance.md)
            "maintainers": accounts,
            "departments": {"type": "array", "minItems": 1, "items": dept},
        },
    }


SCHEMAS = {
    "petition.schema.json": petition_schema,
    "event.schema.json": event_schema,
    "departments.schema.json": departments_schema,
}


def render(name: str) -> str:
    """Return the text of one shipped schema file."""
    return json.dumps(SCHEMAS[name](), ensure_ascii=False, indent=2) + "\n"


def write_all(directory: Path = SCHEMA_DIR) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in SCHEMAS:
        (directory / name).write_text(render(name), encoding="utf-8")


if __name__ == "__main__":
    write_all()
