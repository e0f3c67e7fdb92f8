"""Which A2A version a request asks a card in: the `A2A-Version` header or query parameter.

As the A2A specification says (section 3.6, Versioning): only `Major.Minor` counts (`1.0.1` asks
for 1.0, `0.3.5` for 0.3), and a client may send the version as a request parameter instead of
the header. Answers:

    absent or empty                  None: the route's default (a card as registered, or v1.0
                                     for the registry's own card)
    0.3[.x], 1.0[.x]                 that version
    well formed, not served (1.1)    400 version-not-supported, naming the versions served (the
                                     spec's VersionNotSupportedError, HTTP 400)
    not a version, or header and     422 invalid-request naming the parameter (the value is not
    parameter disagree               echoed)

A card asked for in a version none of its interfaces speaks (a v1.0-only card as 0.3) is
`version_not_offered`: 400 version-not-supported too, naming the versions the agent speaks.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Query
from fastapi.exceptions import RequestValidationError

from agentroster.api.a2a_conversion import (
    SUPPORTED_VERSIONS,
    VERSION_PATTERN,
    A2AVersion,
    InvalidVersionError,
    UnsupportedVersionError,
    VersionNotOffered,
    normalize_version,
)
from agentroster.api.errors import ApiError, ErrorResponse

#: The header (and query parameter) that asks for a card in an A2A version (the spec's name).
A2A_VERSION = "A2A-Version"
#: The longest value looked at; a version is a few characters.
MAX_VERSION_LENGTH = 32
#: What the parameter may be, as documented (and checked first): empty, or a version.
PARAMETER_PATTERN = f"^(|{VERSION_PATTERN[1:-1]})$"

_DESCRIPTION = (
    "The A2A version to serve the card in: `0.3` or `1.0` (only `Major.Minor` counts: `1.0.1`"
    " is 1.0). A card already in that version, a signed card and a card that is not an A2A"
    " card come as registered; a version not served (e.g. `1.1`), or a v1.0 card without an"
    " interface speaking 0.x asked for as 0.3, is 400 `version-not-supported`."
)


class VersionNotSupported(ApiError):
    """400 version-not-supported: the A2A version asked for is not served (for this card)."""

    def __init__(self, requested: str, supported: list[str], message: str) -> None:
        super().__init__(
            400,
            "version-not-supported",
            message,
            {"requested": requested, "supported": supported},
        )


def version_not_offered(error: VersionNotOffered) -> VersionNotSupported:
    """The API error for a card with no interface speaking the version asked for."""
    return VersionNotSupported(error.version, error.offered, str(error))


def _parse(value: str | None, where: str) -> A2AVersion | None:
    if not value:
        return None
    try:
        if len(value) > MAX_VERSION_LENGTH:
            raise InvalidVersionError("too long")
        return normalize_version(value)
    except InvalidVersionError:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": (where, A2A_VERSION),
                    "msg": "Not an A2A version: expected Major.Minor, e.g. 1.0 or 0.3",
                }
            ]
        ) from None
    except UnsupportedVersionError as error:
        raise VersionNotSupported(error.version, list(SUPPORTED_VERSIONS), str(error)) from None


async def requested_a2a_version(
    header: Annotated[
        str | None,
        Header(
            alias=A2A_VERSION,
            description=_DESCRIPTION,
            examples=["0.3"],
            pattern=PARAMETER_PATTERN,
            max_length=MAX_VERSION_LENGTH,
        ),
    ] = None,
    parameter: Annotated[
        str | None,
        Query(
            alias=A2A_VERSION,
            description=f"The same as the header. {_DESCRIPTION}",
            pattern=PARAMETER_PATTERN,
            max_length=MAX_VERSION_LENGTH,
        ),
    ] = None,
) -> A2AVersion | None:
    """The A2A version the request asks for (see the module docstring); None for none."""
    from_header = _parse(header, "header")
    from_parameter = _parse(parameter, "query")
    if from_header and from_parameter and from_header != from_parameter:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("query", A2A_VERSION),
                    "msg": "The A2A-Version header and query parameter ask for different versions",
                }
            ]
        )
    return from_header or from_parameter


#: A route's requested A2A version, from the header or the query parameter.
A2AVersionDep = Annotated[A2AVersion | None, Depends(requested_a2a_version)]

#: The error response of a route that serves a card in an A2A version, for OpenAPI.
VERSION_RESPONSES: dict[int | str, dict[str, object]] = {
    400: {
        "model": ErrorResponse,
        "description": "`version-not-supported`: the A2A version asked for is not served, or"
        " no interface of the card speaks it; `details` names the versions that are.",
    }
}
