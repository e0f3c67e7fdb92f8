"""The manifests agree with the code: probe paths and ports, the queue KEDA watches."""

from __future__ import annotations

import functools
import json
from typing import Any

import jsonschema
from pydantic import ValidationError

from agentroster.contracts import Topology
from agentroster.settings import Settings
from agentroster.worker.health import HEALTHZ, METRICS, READYZ
from tests.deploy_checks.pods import (
    by_kind_name,
    containers,
    data_of,
    environment,
    is_registry,
    settings_of,
)
from tests.deploy_checks.rendering import Object, name_of
from tests.deploy_checks.schemas import SCHEMAS

#: What the worker's own HTTP server serves on AGENTROSTER_WORKER_PORT (worker/health.py).
WORKER_PATHS = frozenset({HEALTHZ, READYZ, METRICS})


@functools.cache
def api_get_paths() -> frozenset[str]:
    """The GET paths of the API app (built from default settings; nothing connects)."""
    from agentroster.api import create_api

    paths = create_api(Settings()).openapi()["paths"]
    return frozenset(path for path, methods in paths.items() if "get" in methods)


def port_of(container: Object, port: int | str) -> int | None:
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
            if port_of(container, get.get("port", "")) != port:
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
    deployments = by_kind_name(objects, "Deployment")
    authentications = by_kind_name(objects, "TriggerAuthentication")
    secrets = by_kind_name(objects, "Secret")
    for auth in authentications.values():
        for ref in auth["spec"].get("secretTargetRef", []):
            for message in _check({"$ref": "#/$defs/authParameter"}, ref["parameter"]):
                problems.append(f"{name_of(auth)}: parameter {message}")
            if ref["key"] not in data_of(secrets.get(ref["name"], {"kind": "Secret"})):
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
