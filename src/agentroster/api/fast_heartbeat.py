"""The common HTTP heartbeat, answered in front of FastAPI (issue 13's CPU goal).

FastAPI's routing, dependency solving and body validation cost about 0.35 ms of CPU per
request on the benchmark machine (bench/README.md, HTTP writes), twice the whole budget of a
heartbeat. This ASGI middleware answers `POST /v1/agents/{agent_id}/instances/{instance_id}/
heartbeat` itself when the request is the common one, and passes everything else on,
unchanged (its body replayed), to the FastAPI route, which stays the definition (and the
OpenAPI description) of the endpoint:

- no query string (so no `?wait`), no `root_path`, ids that match the route's patterns;
- one `Authorization: Bearer` key the key verifier knows without I/O and within its rate
  (`KeyVerifier.verify_cached`), which may write the agent;
- a `Content-Length` of at most `MAX_BODY_BYTES` (and the body limit), the content type
  `application/json` (or none for an empty body), and a body that is empty or a JSON object
  of the route's fields with values of exactly their types and bounds.

Its answers are the route's, byte for byte (tests/unit/test_fast_heartbeat.py compares them):
the same `write_answer`, the same error shape for a broker that does not confirm (503 with
`Retry-After`), the same headers, and the same request metrics under the route's template.
Refusals (401, 403, 422, 429, 413) are left to the route. With tracing on it is not installed:
the route makes the spans.
"""

from __future__ import annotations

import logging
import math
import re
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentroster.api.auth import Principal
from agentroster.api.deps import ApiState
from agentroster.api.dispatch import app_seq_clock
from agentroster.api.errors import ApiError, error_response
from agentroster.api.fast_path import JsonAnswer, bearer_key, plain_request, since
from agentroster.api.gateway import BrokerUnavailable
from agentroster.api.metrics import ApiMetrics
from agentroster.api.write_answers import MAX_SEQ, heartbeat_in_s, write_answer
from agentroster.contracts.commands import Heartbeat
from agentroster.contracts.ids import AGENT_ID_PATTERN, INSTANCE_ID_PATTERN
from agentroster.registry.prepare import TtlBounds

log = logging.getLogger(__name__)

#: The route's template: the label of its request metrics.
HEARTBEAT_ROUTE = "/v1/agents/{agent_id}/instances/{instance_id}/heartbeat"
#: Largest body taken here (a heartbeat's is under 200 bytes); larger ones go to the route.
MAX_BODY_BYTES = 1024
#: Largest `ttl_s` (as `contracts.commands.Seconds`).
MAX_SECONDS = 10 * 365 * 24 * 3600

_PREFIX = "/v1/agents/"
_SUFFIX = "/heartbeat"
_AGENT_ID = re.compile(AGENT_ID_PATTERN)
_INSTANCE_ID = re.compile(INSTANCE_ID_PATTERN)
_FIELDS = frozenset({"ttl_s", "card_digest", "seq"})


class FastHeartbeat:
    """ASGI middleware answering common heartbeats; see the module docstring."""

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics, max_body_bytes: int) -> None:
        self.app = app
        self.observe = metrics.observer("POST", HEARTBEAT_ROUTE)
        self.max_body = min(MAX_BODY_BYTES, max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a common heartbeat; pass anything else on."""
        state = plain_request(scope, "POST")
        ids = _ids(scope["path"]) if state is not None else None
        token = _common_headers(scope["headers"], self.max_body) if ids else None
        if ids is None or token is None or state is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        body, stopped = await _read_body(receive, self.max_body)
        replay = _replaying(body, stopped, receive)
        fields = _fields(body) if stopped is None else None
        principal = state.key_verifier.cached_principal(token) if fields is not None else None
        command = None
        if fields is not None and principal is not None and principal.may_write(ids[0]):
            command = _command(scope, state, ids, fields)
        # the key's request is counted here only when nothing goes to the route after it
        if (
            command is None
            or principal is None
            or state.key_verifier.requests.take(principal.key_id)  # over its rate: the 429
        ):
            await self.app(scope, replay, send)
            return
        answer = await self._publish(scope, state, principal, command)
        self.observe(answer.status_code, since(started))
        await answer(scope, replay, send)

    async def _publish(
        self, scope: Scope, state: ApiState, principal: Principal, command: Heartbeat
    ) -> Response:
        """Publish the heartbeat; the route's answer to it (as `routes.writes` builds it)."""
        settings = state.settings
        try:
            outcome = await state.gateway.send(command, principal, wait=False)
            bounds = TtlBounds(settings.ttl_min_s, settings.ttl_max_s)
            granted = bounds.clamp_ms(command.ttl_s) / 1000
            ids = {
                "agent_id": command.agent_id,
                "instance_id": command.instance_id,
                "seq": command.seq,
            }
            status, body, headers = write_answer(
                ids, outcome, ttl_s=granted, next_s=heartbeat_in_s(granted)
            )
        except BrokerUnavailable as exc:  # as `dispatch.publish`
            return error_response(
                503,
                "broker-unavailable",
                f"the broker did not take the command; retry later ({exc})",
                headers={"Retry-After": str(exc.retry_after_s)},
            )
        except ApiError as exc:
            return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)
        except Exception:  # as the app's handler of the unexpected
            log.exception("unexpected error in POST %s", scope["path"])
            return error_response(500, "internal-error", "internal error")
        return JsonAnswer(status, body, headers)


def _command(
    scope: Scope, state: ApiState, ids: tuple[str, str], fields: dict[str, Any]
) -> Heartbeat | None:
    """The heartbeat the route would publish (None: the route must judge it)."""
    try:
        return Heartbeat(
            agent_id=ids[0],
            instance_id=ids[1],
            seq=fields.get("seq") or app_seq_clock(scope["app"]).next(),
            ttl_s=fields.get("ttl_s") or state.settings.http_ttl_s,
            card_digest=fields.get("card_digest") or "",
            sent_at=datetime.now(UTC),
        )
    except ValidationError:
        return None


def _ids(path: str) -> tuple[str, str] | None:
    """(agent_id, instance_id) of a heartbeat path whose ids match the route's patterns."""
    if not path.startswith(_PREFIX) or not path.endswith(_SUFFIX):
        return None
    parts = path[len(_PREFIX) : -len(_SUFFIX)].split("/")
    if len(parts) != 3 or parts[1] != "instances":
        return None
    agent_id, _, instance_id = parts
    if _AGENT_ID.fullmatch(agent_id) is None or _INSTANCE_ID.fullmatch(instance_id) is None:
        return None
    return agent_id, instance_id


def _common_headers(headers: list[tuple[bytes, bytes]], max_body: int) -> str | None:
    """The Bearer key of a request whose headers are the common ones, else None."""
    authorization = length = content_type = None
    for name, value in headers:
        if name == b"authorization":
            if authorization is not None:
                return None
            authorization = value
        elif name == b"content-length":
            if length is not None:
                return None
            length = value
        elif name == b"content-type":
            if content_type is not None:
                return None
            content_type = value
        elif name == b"transfer-encoding":
            return None
    if (
        authorization is None
        or length is None
        or not length.isdigit()
        or int(length) > max_body
        # FastAPI reads a body as JSON only with a JSON content type (else 422)
        or (length != b"0" and content_type is None)
        or (content_type is not None and content_type.lower() != b"application/json")
    ):
        return None
    return bearer_key(authorization)


async def _read_body(receive: Receive, max_body: int) -> tuple[bytes, Message | None]:
    """The request body; and the message that ended the reading early (a disconnect, or a
    body over `max_body`), None when it was read whole."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), message
        chunk = message.get("body", b"")
        size += len(chunk)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), None
        if size > max_body:
            return b"".join(chunks), {"type": "http.request", "body": b"", "more_body": True}


def _replaying(body: bytes, stopped: Message | None, receive: Receive) -> Receive:
    """A `receive` that gives the app what was read, then goes on with `receive`."""
    pending: list[Message] = [
        {"type": "http.request", "body": body, "more_body": stopped is not None}
    ]
    if stopped is not None and stopped["type"] != "http.request":
        pending.append(stopped)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


def _fields(body: bytes) -> dict[str, Any] | None:
    """The body's fields when each has exactly the type and bounds of the route's model (an
    empty body has none); None for anything the route must judge."""
    if not body:
        return {}
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(parsed, dict) or not _FIELDS.issuperset(parsed):
        return None
    ttl_s = parsed.get("ttl_s")
    if ttl_s is not None and not (
        type(ttl_s) in (int, float) and math.isfinite(ttl_s) and 0 < ttl_s <= MAX_SECONDS
    ):
        return None
    digest = parsed.get("card_digest")
    if digest is not None and not (type(digest) is str and len(digest) <= 128):
        return None
    seq = parsed.get("seq")
    if seq is not None and not (type(seq) is int and 1 <= seq <= MAX_SEQ):
        return None
    return parsed
