"""Say the schemas of a document the way code generators understand them, meaning unchanged.

pydantic writes JSON Schema that validators read well but generators of typed models (Modelina,
the AsyncAPI CLI's) turn into code that does not compile or cannot parse the wire:

- `anyOf: [X, {type: null}]` (an `X | None` field) becomes a union wrapper type (in Go, a
  struct that `encoding/json` never fills). Written `type: [X, "null"]`, it is a nullable X
  (a pointer in Go, `Optional` in Python).
- `const` becomes an initialiser Modelina's pydantic preset quotes twice (a syntax error in
  Python). `enum: [value]` says the same.
- an array or object `default` becomes an empty initialiser in Java (`tags = ;`). It is only
  an annotation; the description says what an absent field means.

A nullable shape this module cannot rewrite (a `$ref` or a union beside `null`) raises, so a
new contract field is made generatable before the documents are written.
"""

from __future__ import annotations

from typing import Any

__all__ = ["portable_schemas"]

_NULL = {"type": "null"}
#: Keywords whose value is one subschema, or a map or list of them.
_ONE = ("items", "additionalProperties", "propertyNames", "not", "contains")
_MAP = ("properties", "patternProperties", "$defs", "definitions")
_LIST = ("anyOf", "oneOf", "allOf", "prefixItems")


def portable_schemas(schemas: dict[str, Any]) -> None:
    """Rewrite every schema of a document's `components.schemas` in place."""
    for name, schema in schemas.items():
        _portable(schema, name)


def _portable(schema: Any, where: str) -> None:
    if not isinstance(schema, dict):
        return
    for key in _ONE:
        _portable(schema.get(key), f"{where}/{key}")
    for key in _MAP:
        for name, sub in (schema.get(key) or {}).items():
            _portable(sub, f"{where}/{key}/{name}")
    for key in _LIST:
        for i, sub in enumerate(schema.get(key) or ()):
            _portable(sub, f"{where}/{key}/{i}")
    _nullable_as_type(schema, where)
    if "const" in schema:
        schema["enum"] = [schema.pop("const")]
    if isinstance(schema.get("default"), list | dict):
        del schema["default"]


def _nullable_as_type(schema: dict[str, Any], where: str) -> None:
    """`anyOf: [X, {type: null}]` -> X with `type: [X's type, "null"]`."""
    branches = schema.get("anyOf")
    if not branches or _NULL not in branches:
        return
    others = [b for b in branches if b != _NULL]
    if len(others) != 1 or not isinstance(others[0].get("type"), str) or "$ref" in others[0]:
        raise ValueError(
            f"{where}: a nullable field must be one typed schema or null to generate clients "
            f"from (a `$ref` or a union beside null becomes a wrapper type); got {branches}"
        )
    [inner] = others
    if "enum" in inner:
        raise ValueError(f"{where}: a nullable enum: give it a default value instead of null")
    del schema["anyOf"]
    clash = set(inner) & set(schema)
    if clash:
        raise ValueError(f"{where}: {sorted(clash)} both beside and inside the nullable anyOf")
    schema.update(inner, type=[inner["type"], "null"])
