"""Workloads' containers, the environment Kubernetes gives them, and the settings it makes."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import typer.main
from pydantic import ValidationError

from agentroster.cli import app as cli_app
from agentroster.settings import Settings
from tests.deploy_checks.rendering import Object, name_of

#: The image the repository's Dockerfile builds (its ENTRYPOINT is `agentroster`).
REGISTRY_IMAGE = "agentroster"
WORKLOADS = frozenset({"Deployment", "Job"})


def pod_spec(obj: Object) -> Object | None:
    """The pod template's spec of a Deployment or Job."""
    if obj.get("kind") not in WORKLOADS:
        return None
    spec: Object = obj["spec"]["template"]["spec"]
    return spec


def containers(objects: list[Object]) -> Iterator[tuple[Object, Object]]:
    """(workload, container) for every container of every workload."""
    for obj in objects:
        spec = pod_spec(obj)
        if spec is not None:
            for container in spec.get("containers", []) + spec.get("initContainers", []):
                yield obj, container


def data_of(obj: Object) -> dict[str, str]:
    """A ConfigMap's or Secret's values, decoded."""
    values = dict(obj.get("stringData", {}))
    values.update(obj.get("data", {}))
    if obj["kind"] == "Secret":
        values.update({k: base64.b64decode(v).decode() for k, v in obj.get("data", {}).items()})
    return values


def by_kind_name(objects: list[Object], kind: str) -> dict[str, Object]:
    """The rendered objects of one kind, by name."""
    return {o["metadata"]["name"]: o for o in objects if o.get("kind") == kind}


def environment(objects: list[Object], container: Object) -> tuple[dict[str, str], list[str]]:
    """The container's environment as Kubernetes builds it, and the references that fail."""
    sources = {"ConfigMap": by_kind_name(objects, "ConfigMap")}
    sources["Secret"] = by_kind_name(objects, "Secret")
    env: dict[str, str] = {}
    missing: list[str] = []

    def lookup(kind: str, name: str, key: str | None) -> dict[str, str]:
        found = sources[kind].get(name)
        if found is None:
            missing.append(f"{kind} {name} is not in the rendered objects")
            return {}
        data = data_of(found)
        if key is not None and key not in data:
            missing.append(f"{kind} {name} has no key {key}")
        return data

    for source in container.get("envFrom", []):
        for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            if field in source:
                env.update(lookup(kind, source[field]["name"], None))
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = str(variable["value"])
        ref = variable.get("valueFrom", {})
        for field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
            if field in ref:
                data = lookup(kind, ref[field]["name"], ref[field]["key"])
                env[variable["name"]] = data.get(ref[field]["key"], "")
    return env, missing


def is_registry(container: Object) -> bool:
    """The container runs the repository's image (its entrypoint is `agentroster`)."""
    *_, last = str(container.get("image", "")).split("@")[0].rsplit("/", 1)
    return last.split(":")[0] == REGISTRY_IMAGE


def settings_of(env: dict[str, str]) -> Settings:
    """The Settings a process with this environment builds (nothing else of ours read)."""
    prefix = "AGENTROSTER_"
    fields = {
        name.removeprefix(prefix).lower(): value
        for name, value in env.items()
        if name.startswith(prefix) and name.removeprefix(prefix).lower() in Settings.model_fields
    }
    return Settings.model_validate(fields)


def cli_command(args: list[str]) -> Any:
    """The `agentroster` (sub)command `args` name (a click command), or None.

    Typed `Any`: typer builds its commands with a click of its own, whose types vary by version.
    """
    command: Any = typer.main.get_command(cli_app)
    for arg in args:
        if arg.startswith("-") or not hasattr(command, "commands"):
            break
        command = command.commands.get(arg)
        if command is None:
            return None
    return None if hasattr(command, "commands") else command


def cli_envvars(command: Any) -> set[str]:
    """The environment variables the command's own options read (besides the settings)."""
    names: set[str] = set()
    for param in command.params:
        envvar = getattr(param, "envvar", None)
        names |= {envvar} if isinstance(envvar, str) else set(envvar or ())
    return names


def settings_problems(objects: list[Object]) -> list[str]:
    """Every AGENTROSTER_* variable is a setting (or an option of the command run), values valid."""
    settings = {f"AGENTROSTER_{name.upper()}" for name in Settings.model_fields}
    problems = []
    for workload, container in containers(objects):
        where = f"{name_of(workload)} container {container['name']}"
        env, missing = environment(objects, container)
        problems += [f"{where}: {m}" for m in missing]
        allowed = set(settings)
        if is_registry(container):
            command = cli_command(list(container.get("args", [])))
            if command is None:
                problems.append(f"{where}: `agentroster {container.get('args')}` is no command")
            else:
                allowed |= cli_envvars(command)
        unknown = sorted(n for n in env if n.startswith("AGENTROSTER_") and n not in allowed)
        problems += [f"{where}: {n} is not a setting" for n in unknown]
        try:
            settings_of(env)
        except ValidationError as exc:
            problems += [
                f"{where}: AGENTROSTER_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}"
                for e in exc.errors()
            ]
    return problems
