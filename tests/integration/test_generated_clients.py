"""Clients generated from asyncapi/agent.yaml, in four languages, parse the registry's events.

Modelina (pinned in tests/modelina/) generates models for TypeScript, Python, Java and Go, once
per language; each is compiled (tsc, pydantic, javac with Jackson, go) with a small harness of
tests/modelina/harness/ that parses every event captured here from a real registry, headers
and body, and checks the revision as a 64-bit integer: the captured events include revisions
above 2^31, which a registry that lost its Redis data continues from the clock in ms.

Toolchains: Node.js 20+ with npm, a JDK 17 with Debian's Jackson
(`apt-get install openjdk-17-jdk-headless libjackson2-databind-java`), Go
(`apt-get install golang-go`); `.ci/run` installs them where apt exists. A missing one fails the
test saying what to install.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage

from agentroster.client import Beacon
from agentroster.contracts import CE_HEADERS, Topology
from agentroster.settings import Settings
from agentroster.worker import create_worker
from tests.helpers import EventCollector, ReceivedEvent
from tests.integration.agents import a2a_card
from tests.integration.test_recovery import lose_data

ROOT = Path(__file__).resolve().parents[2]
MODELINA = ROOT / "tests" / "modelina"
HARNESS = MODELINA / "harness"
#: Debian's Jackson (libjackson2-databind-java), which the Java models' annotations need.
JACKSON = [
    Path("/usr/share/java") / f"jackson-{name}.jar" for name in ("databind", "core", "annotations")
]
#: Guards against a hang only: npm ci downloads, and go compiles its standard library, once.
TOOL_TIMEOUT_S = 900.0
#: No prompts, no telemetry, no audit or update checks (the folder's .npmrc skips install scripts).
NPM_ENV = {
    "CI": "true",
    "DO_NOT_TRACK": "1",
    "SCARF_ANALYTICS": "false",
    "npm_config_audit": "false",
    "npm_config_fund": "false",
    "npm_config_update_notifier": "false",
}
#: The headers a generated client reads: the CloudEvents attributes and the trace context.
EVENT_HEADERS = (*CE_HEADERS, "traceparent", "tracestate")


def run(*command: str | Path, cwd: Path, env: Mapping[str, str] | None = None) -> str:
    """Run a tool; fail the test with its output if it fails. Returns its stdout."""
    try:
        done = subprocess.run(
            [str(part) for part in command],
            cwd=cwd,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            check=True,
            timeout=TOOL_TIMEOUT_S,
        )
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"{' '.join(map(str, command))} failed:\n{exc.stdout}\n{exc.stderr}")
    return done.stdout


def require(tools: Mapping[str, str]) -> None:
    """Fail, saying what to install, unless every tool (name: how to install it) is there."""
    missing = [f"{tool} ({how})" for tool, how in tools.items() if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"not found: {', '.join(missing)}", pytrace=False)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Models of asyncapi/agent.yaml for every language (`npm ci` once per package-lock.json)."""
    require({"node": "Node.js 20 or later: apt-get install nodejs", "npm": "apt-get install npm"})
    lock = hashlib.sha256((MODELINA / "package-lock.json").read_bytes()).hexdigest()[:16]
    stamp = MODELINA / "node_modules" / f".installed-{lock}"  # npm ci empties node_modules
    if not stamp.exists():
        run("npm", "ci", cwd=MODELINA, env=NPM_ENV)
        stamp.touch()
    out = tmp_path_factory.mktemp("generated")
    run("node", MODELINA / "generate.mjs", ROOT / "asyncapi" / "agent.yaml", out, cwd=MODELINA)
    return out


@dataclass
class RawEvents(EventCollector):
    """Every event of a registry as a plain AMQP consumer gets it: headers and body bytes."""

    raw: list[tuple[dict[str, Any], bytes]] = field(default_factory=list)

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        """Keep the body as it came, then record the event."""
        self.raw.append((dict(message.headers or {}), message.body))
        await super().on_message(message)


@pytest.fixture
async def tap(settings: Settings, cleanup: None) -> AsyncIterator[RawEvents]:
    """A plain aio-pika consumer bound to every event of the test registry."""
    collector = RawEvents()
    connection = await aio_pika.connect(settings.broker_url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(  # as the worker declares it
        Topology(settings.prefix).events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, routing_key="#")
    await queue.consume(collector.on_message)
    yield collector
    await connection.close()


async def capture(settings: Settings, events: RawEvents) -> list[dict[str, Any]]:
    """Joins, a card change, a data loss (joins again, revisions from the clock), leaves."""
    beacons = [
        Beacon(
            a2a_card(f"generated-{n}"),
            settings.broker_url,
            prefix=settings.prefix,
            interval_s=0.5,
            ttl_s=1.5,
            labels={"team": "contracts"},
            handle_signals=False,
        )
        for n in range(2)
    ]
    newer = Beacon(
        a2a_card("generated-0", version="2.0.0"),
        settings.broker_url,
        prefix=settings.prefix,
        interval_s=0.5,
        ttl_s=1.5,
        handle_signals=False,
    )
    async with create_worker(settings) as worker:
        for beacon in beacons:
            await beacon.open()
        await events.wait_until(lambda _: len(events.of("joined")) == 2)
        await newer.open()
        await events.wait_until(lambda _: len(events.of("updated", "card-changed")) >= 1)
        await worker.reaper.sweep()  # the worker has seen the epoch
        await lose_data(settings)
        await events.wait_until(lambda _: len(events.of("joined", "recovered")) == 2, timeout=10)
        for beacon in [newer, *beacons]:
            await beacon.close()
        # each agent's last event is a leave (generated-0 may leave and come back once: if its
        # newer instance re-registered after the data loss and deregistered before the older
        # one re-registered, the older one's next beat brings it back before it leaves too)
        await events.wait_until(all_left)
    captured = []
    for headers, body in events.raw:
        wire = {name: value for name, value in headers.items() if name in EVENT_HEADERS}
        assert all(isinstance(value, str) for value in wire.values()), wire  # CloudEvents String
        data = json.loads(body)
        captured.append(
            {
                "headers": wire,
                "body": body.decode(),
                "revision": str(data["revision"]),
                "status": data["status"],
            }
        )
    return captured


def check_typescript(generated: Path, events: Path, work: Path) -> str:
    """tsc --strict over the interfaces and the harness, then node runs it."""
    shutil.copytree(generated / "typescript", work / "generated")
    shutil.copy(HARNESS / "check.ts", work)
    (work / "package.json").write_text('{"type": "module"}\n')
    tsc = MODELINA / "node_modules" / ".bin" / "tsc"
    types = MODELINA / "node_modules" / "@types"
    run(tsc, "--strict", "--target", "es2022", "--module", "esnext", "--moduleResolution",
        "bundler", "--types", "node", "--typeRoots", types, "--outDir", "dist", "check.ts",
        cwd=work)  # fmt: skip
    return run("node", work / "dist" / "check.js", events, cwd=work)


def check_python(generated: Path, events: Path, work: Path) -> str:
    """Every module compiles, then the harness parses with the pydantic models."""
    run(sys.executable, "-m", "compileall", "-q", generated / "python", cwd=work)
    return run(sys.executable, HARNESS / "check.py", generated / "python", events, cwd=work)


def check_java(generated: Path, events: Path, work: Path) -> str:
    """javac 17 over the classes and the harness, with Debian's Jackson, then java runs it."""
    require({"javac": "a JDK 17: apt-get install openjdk-17-jdk-headless", "java": "a JRE 17"})
    absent = [str(jar) for jar in JACKSON if not jar.exists()]
    if absent:
        pytest.fail(f"{absent} missing: apt-get install libjackson2-databind-java", pytrace=False)
    classpath = os.pathsep.join(map(str, JACKSON))
    sources = sorted((generated / "java").glob("*.java"))
    run("javac", "--release", "17", "-Werror", "-d", "classes", "-cp", classpath,
        *sources, HARNESS / "Check.java", cwd=work)  # fmt: skip
    return run("java", "-cp", f"classes{os.pathsep}{classpath}", "Check", events, cwd=work)


def check_go(generated: Path, events: Path, work: Path) -> str:
    """go vet and go run: the structs in package `generated` of a module of its own."""
    require({"go": "apt-get install golang-go"})
    shutil.copytree(generated / "go", work / "generated")
    shutil.copy(HARNESS / "check.go", work / "main.go")
    (work / "go.mod").write_text("module check\n\ngo 1.19\n")
    env = {"GOFLAGS": "-mod=mod", "GOPROXY": "off", "GOTOOLCHAIN": "local"}
    run("go", "vet", "./...", cwd=work, env=env)
    return run("go", "run", ".", events, cwd=work, env=env)


CHECKS = {
    "typescript": check_typescript,
    "python": check_python,
    "java": check_java,
    "go": check_go,
}


async def test_generated_models_parse_real_events_with_64_bit_revisions(
    settings: Settings, tap: RawEvents, generated: Path, tmp_path: Path
) -> None:
    """Each language's models compile and parse every captured event; revisions > 2^31."""
    captured = await capture(settings, tap)
    revisions = [int(item["revision"]) for item in captured]
    assert len(captured) >= 7
    assert min(revisions) < 2**31 < max(revisions)  # after the data loss, from the clock in ms
    events = tmp_path / "events.json"
    events.write_text(json.dumps(captured))
    for language, check in CHECKS.items():
        work = tmp_path / language
        work.mkdir()
        printed = check(generated, events, work)
        assert printed.strip() == f"{language}: parsed {len(captured)} events"


def all_left(events: list[ReceivedEvent]) -> bool:
    """Whether both agents' last events are leaves."""
    last = {e.agent_id: e.kind for e in events}
    return last == {"generated-0": "left", "generated-1": "left"}
