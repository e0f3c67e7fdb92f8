"""Every object against the vendored schemas of tests/deploy_schemas/ (README there)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.deploy_checks.rendering import Object, name_of

SCHEMAS = Path(__file__).resolve().parent.parent / "deploy_schemas"
DEFINITIONS_ID = "https://kubernetes.io/api/_definitions.json"
OBJECT_META = f"{DEFINITIONS_ID}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
#: The vendored CRD schemas' kinds, by their file names' lower-case first part.
CRD_KINDS = {
    "prometheusrule": "PrometheusRule",
    "scaledobject": "ScaledObject",
    "triggerauthentication": "TriggerAuthentication",
}


def _strict(schema: Any) -> Any:
    """A CRD schema as `kubectl apply` validates it: unknown fields are errors."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        strict["additionalProperties"] = False
    return strict


@functools.cache
def _validators() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    """A validator per (apiVersion, kind), over the vendored schemas."""
    kubernetes = SCHEMAS / "kubernetes"
    resources = [
        Resource.from_contents(json.loads(path.read_text()), default_specification=DRAFT202012)
        for path in sorted(kubernetes.glob("*.json"))
    ]
    registry: Registry[Any] = Registry().with_resources(
        (str(resource.id()), resource) for resource in resources
    )
    found: dict[tuple[str, str], jsonschema.protocols.Validator] = {}
    for resource in resources:
        schema = resource.contents
        if resource.id() == DEFINITIONS_ID:
            continue
        (api_version,) = schema["properties"]["apiVersion"]["enum"]
        (kind,) = schema["properties"]["kind"]["enum"]
        found[api_version, kind] = jsonschema.Draft202012Validator(schema, registry=registry)
    for path in sorted((SCHEMAS / "crds").glob("*.json")):
        lowered, group, version = path.stem.rsplit("-", 2)
        kind = CRD_KINDS[lowered]
        schema = _strict(json.loads(path.read_text()))
        schema["properties"]["metadata"] = {"$ref": OBJECT_META}
        schema["properties"]["apiVersion"] = {"const": f"{group}/{version}"}
        schema["properties"]["kind"] = {"const": kind}
        schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind"})
        found[f"{group}/{version}", kind] = jsonschema.Draft202012Validator(
            schema, registry=registry
        )
    return found


def schema_problems(objects: list[Object]) -> list[str]:
    """Each object against its kind's vendored schema; a kind without one is a problem too."""
    validators = _validators()
    problems = []
    for obj in objects:
        validator = validators.get((obj.get("apiVersion", ""), obj.get("kind", "")))
        if validator is None:
            problems.append(f"{name_of(obj)}: no vendored schema for {obj.get('apiVersion')}")
            continue
        for error in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
            path = "/".join(map(str, error.absolute_path)) or "<root>"
            problems.append(f"{name_of(obj)}: {path}: {error.message}")
    return problems
