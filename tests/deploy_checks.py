"""Offline checks of the Kubernetes manifests: render, validate against schemas, tie to the code.

Each check takes the rendered objects of one kustomization and returns its problems as lines
(`Kind/name: what is wrong`), so a test can assert that a good render has none and that a
deliberately broken one has the expected one. The schemas are vendored in tests/deploy_schemas/
(its README names their sources and versions); nothing here touches a cluster or the network.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import typer.main
import yaml
from pydantic import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from agentroster.cli import app as cli_app
from agentroster.contracts import Topology
from agentroster.settings import Settings

Object = dict[str, Any]
SCHEMAS = Path(__file__).resolve().parent / "deploy_schemas"
DEFINITIONS_ID = "https://kubernetes.io/api/_definitions.json"
OBJECT_META = f"{DEFINITIONS_ID}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
#: The image the repository's Dockerfile builds (its ENTRYPOINT is `agentroster`).
REGISTRY_IMAGE = "agentroster"
#: What the worker's own HTTP server serves on AGENTROSTER_WORKER_PORT (issue 15).
WORKER_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
WORKLOADS = frozenset({"Deployment", "Job"})
#: The vendored CRD schemas' kinds, by their file names' lower-case first part.
CRD_KINDS = {
    "prometheusrule": "PrometheusRule",
    "scaledobject": "ScaledObject",
    "triggerauthentication": "TriggerAuthentication",
}
INSTALL_HINT = (
    "rendering the manifests needs kubectl (v1.27 or later: it bundles kustomize v5) or a "
    "standalone kustomize v5 on PATH, or KUSTOMIZE=/path/to/kustomize; install one, e.g. "
    "`apt-get install kubectl` from the Kubernetes apt repository, or kustomize's release binary"
)


class RenderError(RuntimeError):
    """The kustomization could not be rendered (no tool, or kustomize refused it)."""


def render(directory: Path) -> list[Object]:
    """`kubectl kustomize DIR` (or `kustomize build DIR`): the objects it renders."""
    tool = os.environ.get("KUSTOMIZE") or shutil.which("kustomize")
    if tool:
        command = [tool, "build", str(directory)]
    elif kubectl := shutil.which("kubectl"):
        command = [kubectl, "kustomize", str(directory)]
    else:
        raise RenderError(INSTALL_HINT)
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RenderError(f"{' '.join(command)}: {done.stderr.strip()}")
    return [o for o in yaml.safe_load_all(done.stdout) if o]


def name_of(obj: Object) -> str:
    """`Kind/name`, how problems name an object."""
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


# --- schemas ------------------------------------------------------------------------------------


def _strict(schema: Any) -> Any:
    """A CRD schema as `kubectl apply` validates it: unknown fields are errors."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        strict["additionalProperties"] = False
    return strict


@functools.cache
def _validators() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    """A validator per (apiVersion, kind), over the vendored schemas."""
    kubernetes = SCHEMAS / "kubernetes"
    resources = [
        Resource.from_contents(json.loads(path.read_text()), default_specification=DRAFT202012)
        for path in sorted(kubernetes.glob("*.json"))
    ]
    registry: Registry[Any] = Registry().with_resources(
        (str(resource.id()), resource) for resource in resources
    )
    found: dict[tuple[str, str], jsonschema.protocols.Validator] = {}
    for resource in resources:
        schema = resource.contents
        if resource.id() == DEFINITIONS_ID:
            continue
        (api_version,) = schema["properties"]["apiVersion"]["enum"]
        (kind,) = schema["properties"]["kind"]["enum"]
        found[api_version, kind] = jsonschema.Draft202012Validator(schema, registry=registry)
    for path in sorted((SCHEMAS / "crds").glob("*.json")):
        lowered, group, version = path.stem.rsplit("-", 2)
        kind = CRD_KINDS[lowered]
        schema = _strict(json.loads(path.read_text()))
        schema["properties"]["metadata"] = {"$ref": OBJECT_META}
        schema["properties"]["apiVersion"] = {"const": f"{group}/{version}"}
        schema["properties"]["kind"] = {"const": kind}
        schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind"})
        found[f"{group}/{version}", kind] = jsonschema.Draft202012Validator(
            schema, registry=registry
        )
    return found


def schema_problems(objects: list[Object]) -> list[str]:
    """Each object against its kind's vendored schema; a kind without one is a problem too."""
    validators = _validators()
    problems = []
    for obj in objects:
        validator = validators.get((obj.get("apiVersion", ""), obj.get("kind", "")))
        if validator is None:
            problems.append(f"{name_of(obj)}: no vendored schema for {obj.get('apiVersion')}")
            continue
        for error in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
            path = "/".join(map(str, error.absolute_path)) or "<root>"
            problems.append(f"{name_of(obj)}: {path}: {error.message}")
    return problems


# --- pods, containers and their environment -----------------------------------------------------


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


def _data(obj: Object) -> dict[str, str]:
    """A ConfigMap's or Secret's values, decoded."""
    values = dict(obj.get("stringData", {}))
    values.update(obj.get("data", {}))
    if obj["kind"] == "Secret":
        values.update({k: base64.b64decode(v).decode() for k, v in obj.get("data", {}).items()})
    return values


def _by_kind_name(objects: list[Object], kind: str) -> dict[str, Object]:
    return {o["metadata"]["name"]: o for o in objects if o.get("kind") == kind}


def environment(objects: list[Object], container: Object) -> tuple[dict[str, str], list[str]]:
    """The container's environment as Kubernetes builds it, and the references that fail."""
    sources = {"ConfigMap": _by_kind_name(objects, "ConfigMap")}
    sources["Secret"] = _by_kind_name(objects, "Secret")
    env: dict[str, str] = {}
    missing: list[str] = []

    def lookup(kind: str, name: str, key: str | None) -> dict[str, str]:
        found = sources[kind].get(name)
        if found is None:
            missing.append(f"{kind} {name} is not in the rendered objects")
            return {}
        data = _data(found)
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


# --- probes, ports and the queue: the manifests agree with the code ------------------------------


@functools.cache
def api_get_paths() -> frozenset[str]:
    """The GET paths of the API app (built from default settings; nothing connects)."""
    from agentroster.api import create_api

    paths = create_api(Settings()).openapi()["paths"]
    return frozenset(path for path, methods in paths.items() if "get" in methods)


def _port(container: Object, port: int | str) -> int | None:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    for declared in container.get("ports", []):
        if declared.get("name") == port:
            return int(declared["containerPort"])
    return None


def probe_problems(objects: list[Object]) -> list[str]:
    """The registry's probes and scrape annotations hit paths and ports the code serves."""
    problems = []
    for workload, container in containers(objects):
        args = list(container.get("args", []))
        if not is_registry(container) or not args or args[0] not in ("api", "worker"):
            continue
        where = f"{name_of(workload)} container {container['name']}"
        try:
            settings = settings_of(environment(objects, container)[0])
        except ValidationError:
            continue  # settings_problems says what
        if args[0] == "api":
            paths, port, host = api_get_paths(), settings.api_port, settings.api_host
        else:
            paths, port, host = WORKER_PATHS, settings.worker_port, settings.worker_host
        if host in ("127.0.0.1", "localhost", "::1"):
            problems.append(f"{where}: listens on {host}: the kubelet cannot probe it")
        for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
            probe = container.get(kind)
            if probe is None:
                if kind != "startupProbe":
                    problems.append(f"{where}: no {kind}")
                continue
            get = probe.get("httpGet", {})
            if get.get("path") not in paths:
                problems.append(f"{where}: {kind} path {get.get('path')} is not served")
            if _port(container, get.get("port", "")) != port:
                problems.append(f"{where}: {kind} port {get.get('port')} is not {port}")
        annotations = workload["spec"]["template"]["metadata"].get("annotations", {})
        if annotations.get("prometheus.io/scrape") == "true":
            if annotations.get("prometheus.io/port") != str(port):
                problems.append(f"{where}: prometheus.io/port is not {port}")
            if annotations.get("prometheus.io/path", "/metrics") not in paths:
                problems.append(f"{where}: prometheus.io/path is not served")
    return problems


@functools.cache
def _rabbitmq_trigger() -> Object:
    loaded: Object = json.loads((SCHEMAS / "keda-scalers" / "rabbitmq.json").read_text())
    return loaded


def _check(schema: Object, value: Any) -> list[str]:
    """jsonschema's messages for `value` against one of rabbitmq.json's definitions."""
    root = {**_rabbitmq_trigger(), **schema}
    validator = jsonschema.Draft202012Validator(root)
    return [error.message for error in validator.iter_errors(value)]


def keda_problems(objects: list[Object]) -> list[str]:
    """ScaledObjects: targets, authentication and RabbitMQ triggers that KEDA will accept."""
    problems = []
    deployments = _by_kind_name(objects, "Deployment")
    authentications = _by_kind_name(objects, "TriggerAuthentication")
    secrets = _by_kind_name(objects, "Secret")
    for auth in authentications.values():
        for ref in auth["spec"].get("secretTargetRef", []):
            for message in _check({"$ref": "#/$defs/authParameter"}, ref["parameter"]):
                problems.append(f"{name_of(auth)}: parameter {message}")
            if ref["key"] not in _data(secrets.get(ref["name"], {"kind": "Secret"})):
                problems.append(f"{name_of(auth)}: no Secret {ref['name']} with key {ref['key']}")
    for scaled in (o for o in objects if o.get("kind") == "ScaledObject"):
        spec = scaled["spec"]
        where = name_of(scaled)
        lowest, highest = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
        if lowest > highest:  # the CRD's CEL rule, which jsonschema does not evaluate
            problems.append(f"{where}: minReplicaCount {lowest} > maxReplicaCount {highest}")
        target = deployments.get(spec["scaleTargetRef"]["name"])
        if target is None:
            problems.append(f"{where}: scaleTargetRef names no rendered Deployment")
            continue
        for trigger in spec["triggers"]:
            ref = trigger.get("authenticationRef", {}).get("name")
            if ref is not None and ref not in authentications:
                problems.append(f"{where}: no TriggerAuthentication {ref}")
            if trigger["type"] == "rabbitmq":
                for message in _check({"$ref": "#/$defs/triggerMetadata"}, trigger["metadata"]):
                    problems.append(f"{where}: rabbitmq trigger metadata: {message}")
        problems += _queue_problems(objects, scaled, target)
    return problems


def _queue_problems(objects: list[Object], scaled: Object, target: Object) -> list[str]:
    """The worker's ScaledObject watches the queue the worker declares, and keeps one replica."""
    where = name_of(scaled)
    (container, *_) = target["spec"]["template"]["spec"]["containers"]
    if is_registry(container) and container.get("args", [])[:1] == ["worker"]:
        try:
            settings = settings_of(environment(objects, container)[0])
        except ValidationError:
            return []  # settings_problems says what
        expected = Topology(settings.prefix).commands_queue
        problems = [
            f"{where}: watches queue {t['metadata'].get('queueName')}, the worker consumes "
            f"{expected}"
            for t in scaled["spec"]["triggers"]
            if t["type"] == "rabbitmq" and t["metadata"].get("queueName") != expected
        ]
        if scaled["spec"].get("minReplicaCount", 0) < 1:
            problems.append(f"{where}: minReplicaCount below 1 stops the reaper and the relay")
        return problems
    # a queue-addressed agent (examples/keda-agent): the queue named by its --queue argument
    queues = [a.removeprefix("--queue=") for a in container.get("args", []) if "--queue=" in a]
    return [
        f"{where}: watches {t['metadata'].get('queueName')}, the agent consumes {queues}"
        for t in scaled["spec"]["triggers"]
        if queues and t["metadata"].get("queueName") not in queues
    ]


# --- references between objects, and hardening ---------------------------------------------------


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def reference_problems(objects: list[Object]) -> list[str]:
    """Selectors select pods, autoscalers scale rendered Deployments, ports resolve."""
    problems = []
    deployments = _by_kind_name(objects, "Deployment")
    pods = [(d, d["spec"]["template"]["metadata"].get("labels", {})) for d in deployments.values()]
    for deployment in deployments.values():
        selector = deployment["spec"]["selector"].get("matchLabels", {})
        if not _matches(selector, deployment["spec"]["template"]["metadata"].get("labels", {})):
            problems.append(f"{name_of(deployment)}: selector does not match its pods")
    for obj in objects:
        kind = obj.get("kind")
        if kind == "HorizontalPodAutoscaler":
            if obj["spec"]["scaleTargetRef"]["name"] not in deployments:
                problems.append(f"{name_of(obj)}: scaleTargetRef names no rendered Deployment")
        elif kind in ("Service", "PodDisruptionBudget"):
            selector = (
                obj["spec"].get("selector", {})
                if kind == "Service"
                else obj["spec"]["selector"].get("matchLabels", {})
            )
            chosen = [d for d, labels in pods if _matches(selector, labels)]
            if not chosen:
                problems.append(f"{name_of(obj)}: selects no pods")
            if kind == "Service":
                for port in obj["spec"].get("ports", []):
                    target = port.get("targetPort", port["port"])
                    for d in chosen:
                        (container, *_) = d["spec"]["template"]["spec"]["containers"]
                        if _port(container, target) is None:
                            problems.append(f"{name_of(obj)}: {name_of(d)} has no port {target}")
    return problems


def hardening_problems(objects: list[Object]) -> list[str]:
    """Non-root, read-only root, no privilege escalation, no capabilities, bounded memory."""
    problems = []
    for obj in objects:
        spec = pod_spec(obj)
        if spec is None:
            continue
        pod = spec.get("securityContext", {})
        if pod.get("runAsNonRoot") is not True:
            problems.append(f"{name_of(obj)}: pod securityContext.runAsNonRoot is not true")
        if pod.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{name_of(obj)}: pod seccompProfile is not RuntimeDefault")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{name_of(obj)}: mounts a service account token it does not need")
    for workload, container in containers(objects):
        where = f"{name_of(workload)} container {container['name']}"
        context = container.get("securityContext", {})
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation is not false")
        if context.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: readOnlyRootFilesystem is not true")
        if context.get("capabilities", {}).get("drop") != ["ALL"]:
            problems.append(f"{where}: capabilities are not all dropped")
        resources = container.get("resources", {})
        if "memory" not in resources.get("limits", {}) or not resources.get("requests"):
            problems.append(f"{where}: no resource requests or memory limit")
    return problems


CHECKS: tuple[Callable[[list[Object]], list[str]], ...] = (
    schema_problems,
    settings_problems,
    probe_problems,
    keda_problems,
    reference_problems,
    hardening_problems,
)


def all_problems(objects: list[Object]) -> list[str]:
    """Every check's problems (on a copy: no check may change what the next one sees)."""
    return [problem for check in CHECKS for problem in check(copy.deepcopy(objects))]
