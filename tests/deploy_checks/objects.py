"""References between the rendered objects resolve; every pod is hardened."""

from __future__ import annotations

from tests.deploy_checks.code_ties import port_of
from tests.deploy_checks.pods import by_kind_name, containers, pod_spec
from tests.deploy_checks.rendering import Object, name_of


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def reference_problems(objects: list[Object]) -> list[str]:
    """Selectors select pods, autoscalers scale rendered Deployments, ports resolve."""
    problems = []
    deployments = by_kind_name(objects, "Deployment")
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
                        if port_of(container, target) is None:
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
