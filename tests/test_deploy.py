"""deploy/k8s and examples/keda-agent, rendered and validated offline (tests/deploy_checks.py).

Each kustomization is rendered with kubectl (or kustomize) and every object is checked against
the vendored Kubernetes, KEDA and Prometheus Operator schemas, then against the code: settings,
CLI commands, probe paths, ports, the commands queue's name. Broken copies of the manifests
must fail the same checks.
"""

from __future__ import annotations

import functools
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.deploy_checks import (
    INSTALL_HINT,
    Object,
    RenderError,
    all_problems,
    containers,
    is_registry,
    name_of,
    render,
)

ROOT = Path(__file__).resolve().parent.parent
KUSTOMIZATIONS = (
    "deploy/k8s/overlays/dev",
    "deploy/k8s/overlays/production",
    "examples/keda-agent",
)


@functools.cache
def _rendered(directory: str) -> tuple[Object, ...]:
    return tuple(render(ROOT / directory))


def rendered(directory: str | Path) -> list[Object]:
    """The kustomization's objects; fails (never skips) with what to install when it cannot."""
    try:
        if isinstance(directory, Path):
            return render(directory)
        return list(_rendered(directory))
    except RenderError as exc:
        pytest.fail(str(exc), pytrace=False)


def kinds(objects: list[Object]) -> list[str]:
    return sorted(str(o["kind"]) for o in objects)


@pytest.mark.parametrize("directory", KUSTOMIZATIONS)
def test_manifests_render_and_pass_every_check(directory: str) -> None:
    """Schemas, settings, probes, KEDA, references and hardening: no problem at all."""
    objects = rendered(directory)
    assert objects
    assert all_problems(objects) == []


def test_production_has_every_part() -> None:
    objects = rendered("deploy/k8s/overlays/production")
    expected = (
        "Namespace ServiceAccount ConfigMap Secret Secret Secret Job "
        "Deployment Service HorizontalPodAutoscaler PodDisruptionBudget "  # the API
        "Deployment PodDisruptionBudget ScaledObject TriggerAuthentication "  # the worker
        "PrometheusRule"
    )
    assert kinds(objects) == sorted(expected.split())
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"} == {
        "agentroster"
    }


def test_the_worker_scales_on_the_commands_queue_and_never_to_zero() -> None:
    objects = rendered("deploy/k8s/overlays/production")
    (scaled,) = (o for o in objects if o["kind"] == "ScaledObject")
    assert scaled["spec"]["minReplicaCount"] == 1
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "rabbitmq"
    assert trigger["metadata"]["mode"] == "QueueLength"
    assert trigger["metadata"]["queueName"] == "agentroster.commands"


def test_registry_containers_run_cli_commands_as_the_images_user() -> None:
    """`api`, `worker` and `broker grant-registry`, as uid 10001: the Dockerfile's user."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"useradd .*--uid 10001", dockerfile)
    assert 'ENTRYPOINT ["agentroster"]' in dockerfile
    objects = rendered("deploy/k8s/overlays/production")
    commands = set()
    for workload, container in containers(objects):
        assert is_registry(container), name_of(workload)
        commands.add(" ".join(container["args"][:2]))
        assert workload["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 10001
    assert commands == {"api", "worker", "broker grant-registry"}


def test_production_pins_its_image() -> None:
    objects = rendered("deploy/k8s/overlays/production")
    for workload, container in containers(objects):
        image = container["image"]
        assert "@sha256:" in image or re.search(r":[\w.-]+$", image.rsplit("/", 1)[-1]), image
        assert not image.endswith(":latest"), name_of(workload)


def test_the_api_key_reaches_only_the_api() -> None:
    """The bootstrap admin key is in a Secret of its own that only the API mounts."""
    objects = rendered("deploy/k8s/overlays/production")
    mounts = {
        workload["metadata"]["name"]: {
            ref["secretRef"]["name"].rsplit("-", 1)[0]
            for ref in container.get("envFrom", [])
            if "secretRef" in ref
        }
        for workload, container in containers(objects)
    }
    assert [name for name, secrets in mounts.items() if "agentroster-api-keys" in secrets] == [
        "agentroster-api"
    ]


def test_the_keda_agent_scales_to_zero_on_its_own_queue() -> None:
    objects = rendered("examples/keda-agent")
    (scaled,) = (o for o in objects if o["kind"] == "ScaledObject")
    assert scaled["spec"]["minReplicaCount"] == 0
    (deployment,) = (o for o in objects if o["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    script = (ROOT / "examples" / "keda_worker.py").read_text()
    for arg in container["args"]:  # every flag the Deployment passes is one the script takes
        assert f'"{arg.split("=")[0]}"' in script, arg
    dockerfile = (ROOT / "examples" / "keda-agent" / "Dockerfile").read_text()
    assert "COPY examples/keda_worker.py" in dockerfile
    assert 'ENTRYPOINT ["python", "/app/keda_worker.py"]' in dockerfile


# --- broken copies fail --------------------------------------------------------------------------


@pytest.fixture
def k8s_copy(tmp_path: Path) -> Path:
    """A copy of deploy/k8s to break."""
    target = tmp_path / "k8s"
    shutil.copytree(ROOT / "deploy" / "k8s", target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not once in {path}"
    path.write_text(text.replace(old, new))


BROKEN: dict[str, tuple[str, str, str, str]] = {
    # file under base/, text, replacement, a problem that must be reported
    "port-as-string": (
        "worker.yaml",
        "containerPort: 8001",
        'containerPort: "8001"',
        "containerPort: '8001' is not of type 'integer'",
    ),
    "unknown-deployment-field": (
        "api.yaml",
        "  revisionHistoryLimit: 5",
        "  revisionHistoryLimit: 5\n  replica: 3",
        "Deployment/agentroster-api: spec: Additional properties are not allowed ('replica'",
    ),
    "unknown-trigger-field": (
        "worker-scaledobject.yaml",
        "    - type: rabbitmq\n",
        "    - type: rabbitmq\n      queue: agentroster.commands\n",
        "spec/triggers/0: Additional properties are not allowed ('queue' was unexpected)",
    ),
    "misspelt-trigger-metadata": (
        "worker-scaledobject.yaml",
        "        mode: QueueLength",
        "        mode: QueueLength\n        queuelength: '10'",
        "rabbitmq trigger metadata: Additional properties are not allowed ('queuelength'",
    ),
    "env-var-not-a-setting": (
        "config.env",
        "AGENTROSTER_LOG_LEVEL=INFO",
        "AGENTROSTER_LOG_LEVEL=INFO\nAGENTROSTER_SWEEP_INTERVAL=1",
        "container worker: AGENTROSTER_SWEEP_INTERVAL is not a setting",
    ),
    "setting-out-of-bounds": (
        "config.env",
        "AGENTROSTER_API_PORT=8000",
        "AGENTROSTER_API_PORT=80000",
        "container api: AGENTROSTER_API_PORT: Input should be less than or equal to 65535",
    ),
    "wrong-queue": (
        "worker-scaledobject.yaml",
        "queueName: agentroster.commands",
        "queueName: agentroster.jobs",
        "watches queue agentroster.jobs, the worker consumes agentroster.commands",
    ),
    "probe-path-not-served": (
        "api.yaml",
        "path: /readyz",
        "path: /ready",
        "readinessProbe path /ready is not served",
    ),
    "probe-on-the-wrong-port": (
        "config.env",
        "AGENTROSTER_WORKER_PORT=8001",
        "AGENTROSTER_WORKER_PORT=9001",
        "container worker: livenessProbe port metrics is not 9001",
    ),
    "worker-on-loopback": (
        "config.env",
        "AGENTROSTER_WORKER_HOST=0.0.0.0",
        "AGENTROSTER_WORKER_HOST=127.0.0.1",
        "listens on 127.0.0.1: the kubelet cannot probe it",
    ),
    "writable-root": (
        "worker.yaml",
        "readOnlyRootFilesystem: true",
        "readOnlyRootFilesystem: false",
        "container worker: readOnlyRootFilesystem is not true",
    ),
    "scaled-to-zero": (
        "worker-scaledobject.yaml",
        "minReplicaCount: 1",
        "minReplicaCount: 0",
        "minReplicaCount below 1 stops the reaper and the relay",
    ),
    "not-a-command": (
        "worker.yaml",
        'args: ["worker"]',
        'args: ["workers"]',
        "`agentroster ['workers']` is no command",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_copy_fails(k8s_copy: Path, case: str) -> None:
    """A deliberate mistake in one file of the base is reported, with what is wrong."""
    file, old, new, expected = BROKEN[case]
    _edit(k8s_copy / "base" / file, old, new)
    problems = all_problems(rendered(k8s_copy / "overlays" / "production"))
    assert any(expected in problem for problem in problems), "\n".join(problems)


def test_the_queue_follows_the_prefix(k8s_copy: Path) -> None:
    """Another AGENTROSTER_PREFIX renames the watched queue too: still no problem."""
    _edit(k8s_copy / "base" / "config.env", "PREFIX=agentroster", "PREFIX=staging")
    objects = rendered(k8s_copy / "overlays" / "dev")
    (scaled,) = (o for o in objects if o["kind"] == "ScaledObject")
    assert scaled["spec"]["triggers"][0]["metadata"]["queueName"] == "staging.commands"
    assert all_problems(objects) == []


def test_without_kubectl_rendering_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("KUSTOMIZE", raising=False)
    with pytest.raises(RenderError) as raised:
        render(ROOT / "examples" / "keda-agent")
    assert str(raised.value) == INSTALL_HINT
    assert "kubectl" in INSTALL_HINT
    assert "kustomize" in INSTALL_HINT


def test_secrets_hold_only_example_values_marked_for_change() -> None:
    """Every example password, key and URL with credentials says CHANGE-ME."""
    checked: list[Any] = []
    for env in sorted((ROOT / "deploy" / "k8s" / "base").glob("*.env")):
        if env.name == "config.env":
            continue
        for line in env.read_text().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.partition("=")
                if not ("PASSWORD" in name or "KEY" in name or "@" in value):
                    continue  # a user name, a URL without credentials
                assert "CHANGE-ME" in value, f"{env.name}: {name}"
                checked.append(name)
    assert len(checked) >= 5
