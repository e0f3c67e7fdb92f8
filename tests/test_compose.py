"""docker-compose.yml and the Dockerfile, checked without a Docker engine (CI has none).

The compose file is validated against the compose-spec JSON schema vendored in
tests/compose_schema/ (its README names the source); the rest checks what the schema cannot:
settings that exist, start-up order on health, and commands the `agentroster` CLI accepts.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from agentroster.cli import app
from agentroster.settings import Settings

SCHEMA_DIR = Path(__file__).resolve().parent / "compose_schema"

# the drafts jsonschema implements, newest first; the schema's `$schema` picks one
DRAFTS: tuple[type[jsonschema.protocols.Validator], ...] = (
    jsonschema.Draft202012Validator,
    jsonschema.Draft201909Validator,
    jsonschema.Draft7Validator,
    jsonschema.Draft6Validator,
    jsonschema.Draft4Validator,
)


def _dialect(uri: str) -> str:
    """A metaschema URI without scheme and empty fragment: http(s)://x/schema# -> x/schema."""
    return re.sub(r"^https?://", "", uri).rstrip("#")


def _declared_draft(schema: Mapping[str, Any]) -> type[jsonschema.protocols.Validator]:
    declared = _dialect(schema["$schema"])
    for validator in DRAFTS:
        meta = validator.META_SCHEMA
        if _dialect(str(meta.get("$id") or meta.get("id") or "")) == declared:
            return validator
    raise AssertionError(f"the schema declares a draft jsonschema lacks: {schema['$schema']}")


@pytest.fixture
def compose_text(repo_root: Path) -> str:
    return (repo_root / "docker-compose.yml").read_text()


@pytest.fixture
def compose(compose_text: str) -> dict[str, Any]:
    loaded = yaml.safe_load(compose_text)
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


@pytest.fixture
def dockerfile(repo_root: Path) -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (INSTRUCTION, arguments), continuations joined."""
    text = re.sub(r"\\\n", " ", (repo_root / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (parts[0].upper(), parts[1] if len(parts) > 1 else "")
        for parts in (line.split(None, 1) for line in lines if line and not line.startswith("#"))
    ]


def _assert_cli_accepts(argv: list[str]) -> None:
    """`agentroster <argv>` names an existing command whose options parse.

    `--help` is appended so that nothing runs: the arguments are parsed (an unknown command or
    option fails) and the eager `--help` then exits.
    """
    assert argv, "no command given"
    result = CliRunner().invoke(app, [*argv, "--help"])
    assert result.exit_code == 0, f"agentroster {shlex.join(argv)}: {result.output}"
    assert re.search(rf"Usage: \S+ {re.escape(argv[0])} ", result.output), result.output


def _exec_form(instruction: str, arguments: str) -> list[str]:
    form = json.loads(arguments)
    assert isinstance(form, list), f"{instruction} should be in exec (JSON array) form"
    assert all(isinstance(part, str) for part in form)
    return form


def _command(service: Mapping[str, Any]) -> list[str]:
    command = service["command"]
    if isinstance(command, str):
        return shlex.split(command)
    assert isinstance(command, list)
    return [str(part) for part in command]


def test_compose_file_matches_the_compose_spec_schema(compose: dict[str, Any]) -> None:
    schema = json.loads((SCHEMA_DIR / "compose-spec.json").read_text())
    validator = _declared_draft(schema)
    assert validator is jsonschema.Draft7Validator  # what compose-spec declares today
    validator.check_schema(schema)
    errors = sorted(validator(schema).iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors
    )


def test_the_schema_rejects_what_compose_rejects() -> None:
    """The vendored schema is strict: an unknown service key and a bad condition fail."""
    schema = json.loads((SCHEMA_DIR / "compose-spec.json").read_text())
    validator = _declared_draft(schema)(schema)
    assert not validator.is_valid({"services": {"a": {"image": "x", "imagee": "y"}}})
    assert not validator.is_valid(
        {"services": {"a": {"image": "x", "depends_on": {"b": {"condition": "healthy"}}}}}
    )
    assert validator.is_valid({"services": {"a": {"image": "x"}}})


def test_compose_file_has_no_obsolete_version_key(compose: dict[str, Any]) -> None:
    assert "version" not in compose, "the Compose Specification has no `version:`; remove it"


def test_agentroster_variables_are_real_settings(
    compose_text: str, services: dict[str, dict[str, Any]]
) -> None:
    """Every AGENTROSTER_* name in the file (environment, comments) is a setting."""
    known = {f"AGENTROSTER_{name.upper()}" for name in Settings.model_fields}
    used = set(re.findall(r"\bAGENTROSTER_[A-Z0-9_]+", compose_text))
    assert used, "docker-compose.yml configures no AGENTROSTER_* setting"
    assert used <= known, f"not settings: {sorted(used - known)}"
    for name, service in services.items():
        environment = service.get("environment", {})
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment)
        values = {
            key.removeprefix("AGENTROSTER_").lower(): str(value)
            for key, value in environment.items()
            if key.startswith("AGENTROSTER_")
        }
        if values:
            Settings.model_validate(values)  # the values are valid too, not only the names
        if "build" in service:
            assert {"broker_url", "redis_url"} <= values.keys(), f"{name}: broker or Redis unset"


def test_dependencies_wait_for_health(services: dict[str, dict[str, Any]]) -> None:
    """A dependency with a healthcheck is waited for with `condition: service_healthy`."""
    checked = 0
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        if isinstance(depends_on, list):  # the short form waits for nothing but the start
            depends_on = {dependency: {} for dependency in depends_on}
        for dependency, options in depends_on.items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            healthcheck = services[dependency].get("healthcheck")
            if healthcheck and not healthcheck.get("disable", False):
                assert options.get("condition") == "service_healthy", f"{name} -> {dependency}"
                checked += 1
    assert checked, "no service waits for a healthy dependency"


def test_registry_service_runs_up_and_is_checked(services: dict[str, dict[str, Any]]) -> None:
    registry = services["registry"]
    assert _command(registry)[0] == "up"
    assert "healthcheck" in registry
    assert any(str(port).endswith(":8000") for port in registry["ports"])
    for dependency in ("rabbitmq", "redis"):
        assert registry["depends_on"][dependency]["condition"] == "service_healthy"


def test_compose_commands_are_cli_commands(services: dict[str, dict[str, Any]]) -> None:
    built = {name: service for name, service in services.items() if "build" in service}
    assert built
    for service in built.values():
        _assert_cli_accepts(_command(service))


def test_dockerfile_entrypoint_and_cmd_run_the_cli(
    dockerfile: list[tuple[str, str]], repo_root: Path
) -> None:
    instructions = dict(dockerfile)  # the last of each wins, as in Docker
    entrypoint = _exec_form("ENTRYPOINT", instructions["ENTRYPOINT"])
    assert entrypoint == ["agentroster"]
    scripts = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["agentroster"] == "agentroster.cli:main"
    cmd = _exec_form("CMD", instructions["CMD"])
    assert cmd == ["up", "--host", "0.0.0.0"]
    _assert_cli_accepts(cmd)


def test_dockerfile_basics(dockerfile: list[tuple[str, str]]) -> None:
    """Slim Python 3.11, the server and otel extras, a non-root user, port 8000, a /healthz
    check."""

    def arguments(name: str) -> list[str]:
        return [arguments for instruction, arguments in dockerfile if instruction == name]

    assert arguments("FROM")
    assert all(image.startswith("python:3.11-slim") for image in arguments("FROM"))
    runs = " ".join(arguments("RUN"))
    assert '".[server,otel]"' in runs  # otel: tracing is turned on by OTEL_* variables alone
    assert "[dev]" not in runs
    assert arguments("USER")
    assert arguments("USER")[-1].split(":")[0] not in {"root", "0"}
    assert arguments("EXPOSE") == ["8000"]
    (healthcheck,) = arguments("HEALTHCHECK")
    assert "/healthz" in healthcheck
    assert '"python"' in healthcheck
