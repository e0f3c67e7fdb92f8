"""A single-valued query parameter given more than once is an invalid request, not "the last".

FastAPI takes the last of repeated values (`?limit=5&limit=1000` is `limit=1000`), which hides
client bugs and lets a request smuggle a value past a proxy that checked the first one. This
app-wide dependency answers 422 naming the parameter; the repeatable ones (declared as lists,
such as `skill` and `label`) stay repeatable.
"""

from __future__ import annotations

import types
from typing import Any, Union, get_args, get_origin

from fastapi import Request
from fastapi.dependencies.utils import get_flat_params
from fastapi.exceptions import RequestValidationError
from fastapi.params import Query
from fastapi.routing import APIRoute

_SEQUENCES = (list, tuple, set, frozenset)


def takes_many(annotation: Any) -> bool:
    """Whether a parameter of this type is repeatable (a list, tuple or set, maybe optional)."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return any(takes_many(arg) for arg in get_args(annotation) if arg is not type(None))
    kind = origin if origin is not None else annotation
    return isinstance(kind, type) and issubclass(kind, _SEQUENCES)


#: Attribute that keeps the answer on the route (routes are unhashable, and live as long as their
#: app): computing it per request was a tenth of the CPU of a page served from memory.
_CACHE_ATTRIBUTE = "_agentroster_single_valued"


def single_valued_query_parameters(route: APIRoute) -> frozenset[str]:
    """The query parameters of `route` (its dependencies' too) that take one value."""
    known: frozenset[str] | None = getattr(route, _CACHE_ATTRIBUTE, None)
    if known is None:
        known = _single_valued(route)
        setattr(route, _CACHE_ATTRIBUTE, known)
    return known


def _single_valued(route: APIRoute) -> frozenset[str]:
    return frozenset(
        field.alias
        for field in get_flat_params(route.dependant)
        if isinstance(field.field_info, Query) and not takes_many(field.field_info.annotation)
    )


async def reject_repeated_query_parameters(request: Request) -> None:
    """Refuse the request (422) when a single-valued query parameter appears twice or more."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    single = single_valued_query_parameters(route)
    repeated = sorted(name for name in single if len(request.query_params.getlist(name)) > 1)
    if repeated:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", name),
                    "msg": "given more than once; this parameter takes one value",
                    "type": "repeated_parameter",
                }
                for name in repeated
            ]
        )
