"""JSON-RPC 2.0 framing (no I/O): requests parsed, answers and errors built, batches bounded.

Error codes, as the specification reserves them, and the server errors of this registry:

    -32700  parse error          the body is not JSON
    -32600  invalid request      not a request object; an empty or too large batch
    -32601  method not found     `data` lists the methods there are
    -32602  invalid params       `data` names each bad parameter
    -32603  internal error       logged; nothing more is said
    -32001  agent not found      (a2a-registry's code)
    -32002  unauthenticated      no key, or a key that is not valid (`data.code`)
    -32003  forbidden            the key may not write this agent
    -32004  rate limited         `data.retry_after_s`
    -32005  unavailable          broker or store down: retry after `data.retry_after_s`
    -32006  rejected             the registry refused the command (`data.code`: the reason)

A server error's `data` is the HTTP error the same refusal would be elsewhere in the API:
`{"status", "code", "message", "details"}` (plus `retry_after_s` where one applies).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from agentroster.api.errors import ApiError

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
AGENT_NOT_FOUND = -32001
UNAUTHENTICATED = -32002
FORBIDDEN = -32003
RATE_LIMITED = -32004
UNAVAILABLE = -32005
REJECTED = -32006

#: Most calls one batch may hold: one HTTP request's work is bounded.
MAX_BATCH = 20

#: The server error of an `ApiError`, by its HTTP status (other 4xx: the command was refused).
_BY_STATUS = {
    401: UNAUTHENTICATED,
    403: FORBIDDEN,
    404: AGENT_NOT_FOUND,
    429: RATE_LIMITED,
    503: UNAVAILABLE,
}
_MESSAGES = {
    PARSE_ERROR: "Parse error",
    INVALID_REQUEST: "Invalid Request",
    METHOD_NOT_FOUND: "Method not found",
    INVALID_PARAMS: "Invalid params",
    INTERNAL_ERROR: "Internal error",
    AGENT_NOT_FOUND: "Agent not found",
    UNAUTHENTICATED: "Unauthenticated",
    FORBIDDEN: "Forbidden",
    RATE_LIMITED: "Rate limited",
    UNAVAILABLE: "Unavailable",
    REJECTED: "Rejected",
}

#: A request id: a string, a number, or null (absent: a notification, never answered).
RequestId = str | int | float | None


class RpcError(Exception):
    """A JSON-RPC error object: `code`, `message` and `data`."""

    def __init__(self, code: int, data: Any = None, message: str | None = None) -> None:
        super().__init__(message or _MESSAGES.get(code, "Server error"))
        self.code = code
        self.message = message or _MESSAGES.get(code, "Server error")
        self.data = data

    @classmethod
    def from_api_error(cls, exc: ApiError) -> RpcError:
        """The server error a refusal of the HTTP API stands for."""
        data: dict[str, Any] = {
            "status": exc.status,
            "code": exc.code,
            "message": exc.message,
            "details": exc.details,
        }
        retry_after = exc.headers.get("Retry-After")
        if retry_after is not None and retry_after.isdigit():
            data["retry_after_s"] = int(retry_after)
        return cls(_BY_STATUS.get(exc.status, REJECTED), data)

    def body(self) -> dict[str, Any]:
        """The error object of a response."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


@dataclass(frozen=True, slots=True)
class Call:
    """One request of a body: its method and params, its id, or none (a notification)."""

    method: str
    params: dict[str, Any] | list[Any] = field(default_factory=dict)
    id: RequestId = None
    notification: bool = False


@dataclass(frozen=True, slots=True)
class BadCall:
    """An element of a body that is not a valid request: answered with its error."""

    error: RpcError
    id: RequestId = None


def _valid_id(value: Any) -> bool:
    return value is None or (isinstance(value, str | int | float) and not isinstance(value, bool))


def _call(item: Any) -> Call | BadCall:
    if not isinstance(item, dict):
        return BadCall(RpcError(INVALID_REQUEST, "a request must be a JSON object"))
    has_id = "id" in item
    request_id = item.get("id")
    if has_id and not _valid_id(request_id):
        return BadCall(RpcError(INVALID_REQUEST, "id must be a string, a number or null"))
    if item.get("jsonrpc") != "2.0":
        return BadCall(RpcError(INVALID_REQUEST, 'jsonrpc must be "2.0"'), request_id)
    method = item.get("method")
    if not isinstance(method, str):
        return BadCall(RpcError(INVALID_REQUEST, "method must be a string"), request_id)
    params = item.get("params", {})
    if not isinstance(params, dict | list):
        return BadCall(
            RpcError(INVALID_REQUEST, "params must be an object or an array"), request_id
        )
    return Call(method, params, request_id, notification=not has_id)


def parse(body: bytes) -> list[Call | BadCall] | Call | BadCall:
    """The calls of a body: a list for a batch, one call otherwise."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return BadCall(RpcError(PARSE_ERROR, "the body is not valid JSON"))
    if isinstance(document, list):
        if not document:
            return BadCall(RpcError(INVALID_REQUEST, "an empty batch"))
        if len(document) > MAX_BATCH:
            return BadCall(RpcError(INVALID_REQUEST, f"a batch holds at most {MAX_BATCH} requests"))
        return [_call(item) for item in document]
    return _call(document)


def result(request_id: RequestId, value: Any) -> dict[str, Any]:
    """A success response."""
    return {"jsonrpc": "2.0", "result": value, "id": request_id}


def error(request_id: RequestId, exc: RpcError) -> dict[str, Any]:
    """An error response."""
    return {"jsonrpc": "2.0", "error": exc.body(), "id": request_id}
