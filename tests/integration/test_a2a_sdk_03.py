"""a2a-sdk 0.3.26, a pre-1.0 A2A client, resolves cards from a running registry (real worker,
RabbitMQ, Redis, the API over TCP): the registry's own card at the legacy path, a mixed agent's
v0.3 view listing only its url that speaks 0.3, and a 1.0-only agent refused with a 400.

a2a-sdk 0.3 and 1.x are one distribution (`a2a-sdk`): they cannot share a venv. The test builds
a throwaway venv under tmp_path with `pip install a2a-sdk==0.3.26` from PyPI (bounded in time;
a clear failure when pip cannot reach it) and runs `programs/resolve_cards_a2a_sdk_03.py` in it.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from agentroster.api import create_api
from agentroster.client import Announcement
from agentroster.worker import Worker
from tests.helpers import EventCollector, serve_http
from tests.integration.agents import a2a_card

SDK = "a2a-sdk==0.3.26"
PROGRAM = Path(__file__).parent / "programs" / "resolve_cards_a2a_sdk_03.py"
#: Making the venv and installing the SDK with its dependencies (about 45 s on a busy machine).
INSTALL_TIMEOUT_S = 600
#: Resolving five cards.
RUN_TIMEOUT_S = 120


async def run(*argv: str, timeout: float) -> tuple[int, str, str]:
    """Run a program, return its exit status, stdout and stderr; killed after `timeout`."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        return -1, "", f"killed after {timeout} s"
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def sdk_03_python(directory: Path) -> Path:
    """The python of a new venv in `directory` holding a2a-sdk 0.3.26 from PyPI."""
    venv = directory / "venv-a2a-sdk-03"
    status, _, err = await run(sys.executable, "-m", "venv", str(venv), timeout=120)
    assert status == 0, f"could not make a venv: {err}"
    python = venv / "bin" / "python"
    status, _, err = await run(
        str(python), "-m", "pip", "install", "-q", SDK, timeout=INSTALL_TIMEOUT_S
    )
    if status != 0:
        pytest.fail(
            f"pip could not install {SDK} into a throwaway venv (status {status}); this test "
            f"needs PyPI (or a configured index holding it) reachable. pip said:\n{err[-2000:]}",
            pytrace=False,
        )
    return python


def mixed_card() -> dict[str, Any]:
    """A v1.0 card: a JSON-RPC url speaking 1.0 (for a tenant) and one still speaking 0.3."""
    card = a2a_card("mixed")
    card["supportedInterfaces"] = [
        {
            "url": "https://mixed.example/a2a",
            "protocolBinding": "JSONRPC",
            "protocolVersion": "1.0",
            "tenant": "acme",
        },
        {
            "url": "https://mixed.example/a2a/v03",
            "protocolBinding": "JSONRPC",
            "protocolVersion": "0.3",
        },
    ]
    return card


async def test_a2a_sdk_03_resolves_the_cards_it_can_use(
    worker: Worker, events: EventCollector, tmp_path: Path
) -> None:
    python = await sdk_03_python(tmp_path)
    settings = worker.settings
    async with (
        Announcement(mixed_card(), settings.broker_url, prefix=settings.prefix, ttl_s=60),
        Announcement(a2a_card("only10"), settings.broker_url, prefix=settings.prefix, ttl_s=60),
    ):
        await events.wait_until(lambda evs: {"mixed", "only10"} <= {e.agent_id for e in evs})
        async with serve_http(create_api(settings)) as base:
            status, out, err = await run(
                str(python), str(PROGRAM), base, "mixed", "only10", timeout=RUN_TIMEOUT_S
            )
    assert status == 0, err
    read = orjson.loads(out)
    assert read["sdk"] == "0.3.26"
    registry = {
        "name": "agentroster",
        "url": f"{settings.public_base_url}v1/agents",
        "protocol_version": "0.3",
        "preferred_transport": "urn:agentroster:binding:discovery-http",
        "additional": [],
    }
    assert read["registry_legacy_path"] == read["registry_asked_0_3"] == registry
    mixed = {
        "name": "mixed",
        "url": "https://mixed.example/a2a/v03",
        "protocol_version": "0.3",
        "preferred_transport": "JSONRPC",
        "additional": [],
    }
    assert read["mixed_legacy_path"] == read["mixed_asked_0_3"] == mixed
    assert read["only10_status"] == 400
