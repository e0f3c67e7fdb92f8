"""One error shape for every HTTP error: `{"error": {"code", "message", "details"}}`.

Which failure answers what (bad input is always a 4xx, never a 500):

    ApiError                 raised on purpose by a route: its own status, code and details
    └── AgentNotFound        404 agent-not-found
    RequestValidationError   422 invalid-request; `details` names each bad parameter (also a
                             single-valued query parameter given more than once, api/params.py)
    HTTPException            its status: unknown path 404 not-found, 405 method-not-allowed, ...
    └── StreamsFull          503 too-many-streams (api/streams.py), with Retry-After
    RedisError               503 store-unavailable: Redis is unreachable, retry later
    any other exception      500 internal-error, logged; the message reveals nothing
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import RedisError
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

#: On every response: browsers must not guess another content type than the one declared.
NOSNIFF = {"X-Content-Type-Options": "nosniff"}


class ErrorBody(BaseModel):
    """What went wrong: a stable machine-readable code, a message for people, and details."""

    code: str = Field(description="Stable, machine-readable.", examples=["agent-not-found"])
    message: str = Field(examples=["no agent 'weather' in the registry"])
    details: Any = Field(
        default=None,
        description="More about the error; for invalid requests, one entry per bad parameter.",
        examples=[{"agent_id": "weather"}],
    )


class ErrorResponse(BaseModel):
    """Every error response of the API has this shape."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "invalid-request",
                        "message": "invalid parameter: limit",
                        "details": [
                            {
                                "in": "query",
                                "parameter": "limit",
                                "message": "Input should be less than or equal to 1000",
                            }
                        ],
                    }
                }
            ]
        }
    )

    error: ErrorBody


#: The error responses routes document in OpenAPI (instead of FastAPI's own 422 shape).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorResponse, "description": "A parameter is invalid."},
    503: {"model": ErrorResponse, "description": "Redis is unreachable; retry later."},
}


class ApiError(Exception):
    """An error a route raises on purpose; it becomes an `ErrorResponse` with `status`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = dict(headers or {})


class AgentNotFound(ApiError):
    """No agent with this id is known (never registered, or deleted after its retention)."""

    def __init__(self, agent_id: str) -> None:
        super().__init__(
            404,
            "agent-not-found",
            f"no agent {agent_id!r} in the registry",
            {"agent_id": agent_id},
        )


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The JSON response of one error, in the one shape."""
    body = ErrorResponse(error=ErrorBody(code=code, message=message, details=details))
    # set here too: a 500 is answered outside the middleware that sets it on the rest
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=status,
        headers={**NOSNIFF, **(headers or {})},
    )


def invalid_parameters(errors: Sequence[Any]) -> list[dict[str, str]]:
    """One entry per validation error: where (`in`), which `parameter`, and what is wrong.

    The rejected value is not echoed back.
    """
    entries = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        entries.append(
            {
                "in": loc[0] if loc else "request",
                "parameter": ".".join(loc[1:]) if len(loc) > 1 else (loc[0] if loc else ""),
                "message": str(error.get("msg", "invalid")),
            }
        )
    return entries


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = invalid_parameters(exc.errors())
    names = sorted({entry["parameter"] for entry in details})
    noun = "parameter" if len(names) == 1 else "parameters"
    return error_response(422, "invalid-request", f"invalid {noun}: {', '.join(names)}", details)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    try:
        phrase = HTTPStatus(exc.status_code).phrase
    except ValueError:
        phrase = "error"
    code = phrase.lower().replace(" ", "-").replace("'", "")
    message = exc.detail if isinstance(exc.detail, str) and exc.detail else phrase
    return error_response(exc.status_code, code, message, headers=exc.headers)


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    return store_unavailable(request.method, request.url.path, exc)


def store_unavailable(method: str, path: str, exc: Exception) -> JSONResponse:
    """503 `store-unavailable` with Retry-After, Redis's error logged (not answered)."""
    log.warning("Redis unreachable during %s %s: %s", method, path, exc)
    return error_response(
        503,
        "store-unavailable",
        "the registry's store (Redis) is unreachable; retry later",
        headers={"Retry-After": "1"},
    )


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error in %s %s", request.method, request.url.path)
    return error_response(500, "internal-error", "internal error")


class NoSniffMiddleware:
    """ASGI middleware that sets `X-Content-Type-Options: nosniff` on every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the header to the response's start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_nosniff(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in NOSNIFF.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_nosniff)


def install_error_handlers(app: FastAPI) -> None:
    """Make every error of `app` answer in the one shape."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RedisError, _store_unavailable)
    app.add_exception_handler(Exception, _internal_error)
