"""JSON-RPC 2.0 framing (api/jsonrpc.py): what a body parses to, and the error objects."""

from __future__ import annotations

import orjson
import pytest

from agentroster.api.errors import ApiError
from agentroster.api.jsonrpc import (
    FORBIDDEN,
    INVALID_REQUEST,
    MAX_BATCH,
    PARSE_ERROR,
    REJECTED,
    UNAVAILABLE,
    BadCall,
    Call,
    RpcError,
    parse,
)


def test_a_request_a_notification_and_positional_params() -> None:
    assert parse(b'{"jsonrpc": "2.0", "method": "m", "params": [1], "id": "x"}') == Call(
        "m", [1], "x"
    )
    assert parse(b'{"jsonrpc": "2.0", "method": "m"}') == Call("m", {}, None, notification=True)
    assert parse(b'{"jsonrpc": "2.0", "method": "m", "id": null}') == Call("m", {}, None)


@pytest.mark.parametrize(
    ("body", "code", "request_id"),
    [
        (b"{", PARSE_ERROR, None),
        (b"[]", INVALID_REQUEST, None),
        (b'"x"', INVALID_REQUEST, None),
        (b'{"jsonrpc": "1.0", "method": "m", "id": 4}', INVALID_REQUEST, 4),
        (b'{"jsonrpc": "2.0", "method": "m", "id": true}', INVALID_REQUEST, None),
        (b'{"jsonrpc": "2.0", "method": "m", "id": [1]}', INVALID_REQUEST, None),
        (b'{"jsonrpc": "2.0", "method": "m", "params": "p", "id": 4}', INVALID_REQUEST, 4),
    ],
)
def test_what_is_not_a_request(body: bytes, code: int, request_id: object) -> None:
    parsed = parse(body)
    assert isinstance(parsed, BadCall)
    assert (parsed.error.code, parsed.id) == (code, request_id)


def test_a_batch_is_parsed_item_by_item_and_bounded() -> None:
    batch = parse(orjson.dumps([{"jsonrpc": "2.0", "method": "m", "id": 1}, 5]))
    assert isinstance(batch, list)
    assert isinstance(batch[0], Call)
    assert isinstance(batch[1], BadCall)
    too_many = parse(orjson.dumps([{"jsonrpc": "2.0", "method": "m"}] * (MAX_BATCH + 1)))
    assert isinstance(too_many, BadCall)
    assert too_many.error.code == INVALID_REQUEST


@pytest.mark.parametrize(
    ("status", "code"), [(403, FORBIDDEN), (503, UNAVAILABLE), (422, REJECTED), (413, REJECTED)]
)
def test_an_api_refusal_becomes_a_server_error_saying_why(status: int, code: int) -> None:
    exc = ApiError(status, "some-code", "why", {"k": 1}, headers={"Retry-After": "3"})
    error = RpcError.from_api_error(exc).body()
    assert error["code"] == code
    assert error["data"] == {
        "status": status,
        "code": "some-code",
        "message": "why",
        "details": {"k": 1},
        "retry_after_s": 3,
    }
