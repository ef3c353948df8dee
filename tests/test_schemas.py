"""The shipped JSON Schemas are current and agree with the validator."""

from __future__ import annotations

import json

import jsonschema
import pytest

from generator import schemas
from generator.yamlio import parse
from tests.records_util import event, good_case, petition


@pytest.mark.parametrize("name", sorted(schemas.SCHEMAS))
def test_shipped_schema_is_current(name):
    shipped = (schemas.SCHEMA_DIR / name).read_text(encoding="utf-8")
    assert shipped == schemas.render(name), "run: python -m generator.schemas"
    jsonschema.Draft202012Validator.check_schema(json.loads(shipped))


def _validator(name):
    return jsonschema.Draft202012Validator(json.loads((schemas.SCHEMA_DIR / name).read_text()))


def test_sound_records_fit_their_schemas():
    ev = _validator("event.schema.json")
    for path, text in good_case().items():
        data = parse(text)
        validator = _validator("petition.schema.json") if path.endswith("petition.yaml") else ev
        assert list(validator.iter_errors(data)) == [], path


def test_schema_rejects_what_the_validator_rejects():
    pet = parse(petition().replace("category: complaint", "category: gossip"))
    assert list(_validator("petition.schema.json").iter_errors(pet))
    no_offset = parse(event("accepted", "2026-11-16T10:00:00", "housing"))
    assert list(_validator("event.schema.json").iter_errors(no_offset))
    wrong_actor = parse(event("assigned", "2026-11-16T10:00:00+08:00", "housing", to="housing"))
    assert list(_validator("event.schema.json").iter_errors(wrong_actor))


def test_shipped_departments_fit_schema(root):
    data = parse((root / "departments.yaml").read_bytes())
    assert list(_validator("departments.schema.json").iter_errors(data)) == []
