"""The base install (`pip install .`, no extras) is what an agent gets: the server commands
say what to install instead of failing with a traceback, the contracts load alone, and
`agentroster.client.testing` works without a broker.

Slow (a fresh venv, a wheel build, the base dependencies from the package index through pip's
cache): about a minute, so it is one test.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HINT = "pip install 'agentroster[server]'"

FAKE_REGISTRY_CHECK = textwrap.dedent(
    """
    import asyncio

    from agentroster import Beacon
    from agentroster.client.testing import FakeRegistry

    async def main() -> None:
        async with FakeRegistry() as registry:
            card = {"name": "Base Bot", "url": "https://base.example/a2a"}
            async with Beacon(card, registry.broker_url, handle_signals=False):
                assert registry.live_agents() == {"base-bot"}, registry.commands
            assert registry.deregistrations("base-bot") == ["shutdown"]
        print("fake registry ok")

    asyncio.run(main())
    """
)


@pytest.mark.slow
def test_base_install_hints_server_extra_and_keeps_contracts_and_testing_alone(
    repo_root: Path, tmp_path: Path
) -> None:
    """Server commands exit 2 with the hint; contracts load alone; client.testing works."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python, script = venv / "bin" / "python", venv / "bin" / "agentroster"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(repo_root)],
        check=True,
        capture_output=True,
    )
    imported = subprocess.run([str(python), "-c", "import fastapi"], capture_output=True, text=True)
    assert imported.returncode != 0, "the base install must not bring FastAPI"

    for command in ("worker", "api", "up", "keys list"):
        ran = subprocess.run(
            [str(script), *command.split()], capture_output=True, text=True, timeout=60
        )
        assert ran.returncode == 2, (command, ran.stdout, ran.stderr)
        lines = ran.stderr.strip().splitlines()
        assert len(lines) == 1, ran.stderr
        assert HINT in lines[0]
        assert "Traceback" not in ran.stdout + ran.stderr

    loaded = subprocess.run(
        [
            str(python),
            "-c",
            "import sys, agentroster.contracts; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'aio_pika', 'httpx'}))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"

    fake = subprocess.run(
        [str(python), "-c", FAKE_REGISTRY_CHECK], capture_output=True, text=True, timeout=60
    )
    assert fake.returncode == 0, fake.stdout + fake.stderr
    assert "fake registry ok" in fake.stdout
