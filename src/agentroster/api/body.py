"""Read a request body with a bound: a client cannot make the API buffer more than it allows.

FastAPI reads a declared body whole before any check runs; the write endpoints read it
themselves with this, so an oversized body is refused after at most `limit` bytes (at once when
its `Content-Length` says so) with 413 in the one error shape.
"""

from __future__ import annotations

from fastapi import Request

from agentroster.api.errors import ApiError


class BodyTooLarge(ApiError):
    """413: the body is larger than the endpoint accepts."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            "body-too-large",
            f"the request body is larger than {limit} bytes",
            {"limit_bytes": limit},
        )


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, at most `limit` bytes; raises `BodyTooLarge` beyond."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)
