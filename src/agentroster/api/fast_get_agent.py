"""The common `GET /v1/agents/{agent_id}`, answered in front of FastAPI (issue 12's goal).

FastAPI's routing and dependency solving cost about 0.35 ms of CPU per request on the
benchmark machine, four times a bare ASGI app's whole cost (bench/README.md, Discovery), while
the read itself is one Redis script. This ASGI middleware answers the common read itself and
passes everything else on, unchanged, to the FastAPI route, which stays the definition (and
the OpenAPI description) of the endpoint:

- `GET` (a `HEAD` or any other method goes on), no query string, no `root_path`, and an id
  that matches the route's pattern (a longer id, a slash, a NUL or a capital goes on: the
  route answers 422 or 404 for the path);
- reads open, or `AGENTROSTER_READ_REQUIRES_KEY` on and one `Authorization: Bearer` key the key
  verifier knows without I/O (`KeyVerifier.cached_principal`, any scope, as `auth.require_read`
  asks) and within its rate; anything else (no key, Basic, an unknown key, over the rate) goes
  to the route, which reads the key or refuses it.

Its answers are the route's, byte for byte (tests/integration/test_fast_get_agent.py compares
them): the same read (`RegistryReader.get_agent`), the same JSON (`models.detail_json`), the
same 404 and 503 error bodies and headers, and the same request metrics under the route's
template. With tracing on it is not installed: the route makes the spans.
"""

from __future__ import annotations

import logging
import re
import time

import orjson
from redis.exceptions import RedisError
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from agentroster.api.deps import ApiState
from agentroster.api.errors import AgentNotFound, error_response, store_unavailable
from agentroster.api.fast_path import JsonAnswer, bearer_key, plain_request, since
from agentroster.api.metrics import ApiMetrics
from agentroster.api.models import detail_json
from agentroster.contracts.ids import AGENT_ID_PATTERN

log = logging.getLogger(__name__)

#: The route's template: the label of its request metrics.
GET_AGENT_ROUTE = "/v1/agents/{agent_id}"

_PREFIX = "/v1/agents/"
_AGENT_ID = re.compile(AGENT_ID_PATTERN)


class FastGetAgent:
    """ASGI middleware answering common reads of one agent; see the module docstring."""

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics) -> None:
        self.app = app
        self.observe = metrics.observer("GET", GET_AGENT_ROUTE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a common read of one agent; pass anything else on."""
        state = plain_request(scope, "GET")
        agent_id = _agent_id(scope["path"]) if state is not None else None
        if agent_id is None or state is None or not _may_read(scope, state):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answer = await _read(scope, state, agent_id)
        self.observe(answer.status_code, since(started))
        await answer(scope, receive, send)


def _agent_id(path: str) -> str | None:
    """The agent id of a `/v1/agents/{agent_id}` path, when it matches the route's pattern."""
    if not path.startswith(_PREFIX):
        return None
    agent_id = path[len(_PREFIX) :]
    return agent_id if _AGENT_ID.fullmatch(agent_id) else None


def _may_read(scope: Scope, state: ApiState) -> bool:
    """Whether `require_read` lets this request read without I/O (else the route decides);
    a key's request is counted against its rate here, only when it is answered here."""
    if not state.settings.read_requires_key:
        return True  # open: a presented key is not even looked at
    authorization = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            if authorization is not None:
                return False
            authorization = value
    token = bearer_key(authorization) if authorization is not None else None
    verifier = state.key_verifier
    principal = verifier.cached_principal(token) if token is not None else None
    # over its rate: the route's `verify` answers the 429 (a refused take counts nothing)
    return principal is not None and not verifier.requests.take(principal.key_id)


async def _read(scope: Scope, state: ApiState, agent_id: str) -> Response:
    """The route's answer: the agent's detail, or the error its exception handler makes."""
    try:
        record = await state.reader.get_agent(agent_id)
        if record is None:
            missing = AgentNotFound(agent_id)
            return error_response(missing.status, missing.code, missing.message, missing.details)
        return JsonAnswer(200, orjson.dumps(detail_json(record), option=orjson.OPT_UTC_Z))
    except RedisError as exc:  # as the app's handler of RedisError
        return store_unavailable("GET", scope["path"], exc)
    except Exception:  # as the app's handler of the unexpected
        log.exception("unexpected error in GET %s", scope["path"])
        return error_response(500, "internal-error", "internal error")
