"""What an import loads: the contracts alone, the client only when asked for (a fresh process
each, since this one has imported everything already)."""

from __future__ import annotations

import json
import subprocess
import sys

CLIENT_LIBRARIES = ("aio_pika", "aiormq", "httpx")
SERVER_LIBRARIES = ("faststream", "redis", "fastapi", "starlette", "prometheus_client")


def loaded_after(code: str) -> set[str]:
    """Top-level packages in sys.modules after running `code` in a fresh interpreter."""
    report = "import json, sys; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    script = f"{code}\n{report}"
    out = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_importing_the_contracts_loads_no_client_or_server_library() -> None:
    """`import agentroster.contracts` loads pydantic and the contracts, not aio-pika or httpx."""
    loaded = loaded_after("import agentroster.contracts")
    assert loaded & {*CLIENT_LIBRARIES, *SERVER_LIBRARIES} == set()


def test_the_root_package_imports_the_client_on_first_use() -> None:
    """`from agentroster import Beacon` still works: the root imports the client lazily."""
    assert loaded_after("import agentroster") & set(CLIENT_LIBRARIES) == set()
    assert "aio_pika" in loaded_after("from agentroster import Beacon; assert Beacon.open")


def test_the_client_loads_no_server_library() -> None:
    """An agent installs the client without FastStream, Redis or FastAPI."""
    loaded = loaded_after("import agentroster.client, agentroster.client.testing")
    assert loaded & set(SERVER_LIBRARIES) == set()
