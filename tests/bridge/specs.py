"""Validate requests against a forge's official OpenAPI (3.0) or Swagger (2.0) description.

The descriptions live in ``shared/forge-specs`` beside the repository. Each is
loaded once per session; a request is matched to its path template and method,
its required and known query parameters are checked, and its JSON body is
validated with jsonschema, ``$ref``s resolved within the description.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from .kit import ROOT


def spec_dir() -> Path:
    here = ROOT.parent / "shared" / "forge-specs"
    return here if here.exists() else Path("/work/shared/forge-specs")


class SpecValidator:
    def __init__(self, spec: dict[str, Any], base_path: str = ""):
        self.spec = spec
        self.base_path = base_path
        self.swagger2 = "swagger" in spec
        self.registry = Registry().with_resource("urn:spec", Resource.from_contents(spec, default_specification=DRAFT4))
        self.routes: list[tuple[re.Pattern, str, int]] = []
        for template in spec["paths"]:
            pattern = re.sub(r"\\\{[^}]+\\\}$", "(.+)", re.escape(template))  # a last {param} may hold slashes (refs, paths)
            pattern = re.sub(r"\\\{[^}]+\\\}", "([^/]+)", pattern)
            literal = len(re.sub(r"\{[^}]+\}", "", template))
            self.routes.append((re.compile("^" + pattern + "$"), template, literal))
        self.routes.sort(key=lambda r: -r[2])

    def _deref(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = self.registry.resolver("urn:spec").lookup("urn:spec" + node["$ref"]).contents
        return node

    def problems(self, method: str, path: str, query: dict[str, str], body: Any) -> list[str]:
        """Return what is wrong with one request (empty when it conforms)."""
        if self.base_path and path.startswith(self.base_path):
            path = path[len(self.base_path):]
        for pattern, template, _ in self.routes:
            if pattern.match(path) and method.lower() in self.spec["paths"][template]:
                break
        else:
            return [f"{method} {path}: no such operation in the description"]
        item = self.spec["paths"][template]
        op = item[method.lower()]
        params = [self._deref(p) for p in item.get("parameters", []) + op.get("parameters", [])]
        problems = []
        known_query = {p["name"]: p for p in params if p["in"] == "query"}
        for name in query:
            if name not in known_query:
                problems.append(f"{method} {template}: unknown query parameter {name}")
        for name, p in known_query.items():
            if p.get("required") and name not in query:
                problems.append(f"{method} {template}: missing query parameter {name}")
            if name in query:
                schema = p.get("schema", p)
                if schema.get("type") == "integer" and not str(query[name]).lstrip("-").isdigit():
                    problems.append(f"{method} {template}: query {name} must be an integer")
                if "enum" in schema and query[name] not in schema["enum"]:
                    problems.append(f"{method} {template}: query {name}={query[name]} not in {schema['enum']}")
        schema_ref = None
        if self.swagger2:
            for i, p in enumerate(op.get("parameters", [])):
                if self._deref(p).get("in") == "body":
                    schema_ref = f"#/paths/{_escape(template)}/{method.lower()}/parameters/{i}/schema"
        elif "requestBody" in op:
            content = self._deref(op["requestBody"]).get("content", {})
            if "application/json" in content:
                schema_ref = f"#/paths/{_escape(template)}/{method.lower()}/requestBody/content/application~1json/schema"
        if schema_ref is None:
            if body is not None:
                problems.append(f"{method} {template}: a body where none is described")
            return problems
        if body is None:
            return problems + [f"{method} {template}: the body is missing"]
        validator = _validator(id(self), self, schema_ref)
        for error in validator.iter_errors(body):
            problems.append(f"{method} {template}: body {'/'.join(map(str, error.absolute_path))}: {error.message}")
        return problems


def _escape(template: str) -> str:
    return template.replace("~", "~0").replace("/", "~1")


@functools.lru_cache(maxsize=None)
def _cached(key, validator_self, ref):
    return jsonschema.Draft4Validator({"$ref": "urn:spec" + ref}, registry=validator_self.registry)


def _validator(key, validator_self, ref):
    return _cached(key, validator_self, ref)


@functools.lru_cache(maxsize=None)
def github_validator() -> SpecValidator:
    return SpecValidator(json.loads((spec_dir() / "github-api.github.com.json").read_text()))


@functools.lru_cache(maxsize=None)
def gitea_validator() -> SpecValidator:
    spec = json.loads((spec_dir() / "gitea-swagger.json").read_text())
    return SpecValidator(spec, spec.get("basePath", ""))
