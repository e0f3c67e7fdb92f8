"""deploy/monitoring: alert rules checked and unit-tested with promtool, dashboard and rules
over metric names the code really exports, and the PrometheusRule equal to the rules file."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from agentroster.api.metrics import ApiMetrics
from agentroster.worker.metrics import WorkerMetrics

ROOT = Path(__file__).resolve().parent.parent
MONITORING = ROOT / "deploy" / "monitoring"
PROMETHEUS_RULE = ROOT / "deploy" / "k8s" / "components" / "monitoring" / "prometheusrule.yaml"
METRIC = re.compile(r"\bagentroster_[a-z0-9_]+")
#: What the issue asks the rules to cover, by alert name.
ALERTS = {
    "AgentrosterCommandsBacklogGrowing",
    "AgentrosterDeadLetters",
    "AgentrosterReaperPaused",
    "AgentrosterReaperBraking",
    "AgentrosterRecovering",
    "AgentrosterRelayLagging",
    "AgentrosterFlappingAgents",
    "AgentrosterApiErrors",
}


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run promtool; fails (never skips) with what to install when it is missing."""
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail(
            "promtool is missing: `apt-get install prometheus` (Debian's package ships it; "
            ".ci/run installs it)",
            pytrace=False,
        )
    return subprocess.run(
        [tool, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def exported_names() -> set[str]:
    """Every series name the worker's and the API's registries can expose."""
    names: set[str] = set()
    registries: list[CollectorRegistry] = [WorkerMetrics().registry, ApiMetrics().registry]
    for registry in registries:
        for family in registry.collect():
            if family.type == "counter":
                names.add(f"{family.name}_total")
            elif family.type == "histogram":
                names |= {f"{family.name}_{part}" for part in ("bucket", "sum", "count")}
            else:
                names.add(family.name)
    return names


def rules() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((MONITORING / "rules.yaml").read_text())
    return loaded


def dashboard_expressions() -> Iterator[str]:
    dashboard = json.loads((MONITORING / "dashboard.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield str(target["expr"])


def rule_expressions() -> Iterator[str]:
    for group in rules()["groups"]:
        for rule in group["rules"]:
            yield str(rule["expr"])


def test_promtool_checks_the_rules() -> None:
    done = promtool("check", "rules", MONITORING / "rules.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_unit_tests_of_the_alerts_pass() -> None:
    done = promtool("test", "rules", MONITORING / "rules.test.yaml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_broken_rule_fails_promtool(tmp_path: Path) -> None:
    broken = rules()
    broken["groups"][0]["rules"][0]["expr"] = "max(agentroster_commands_backlog > "
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(broken))
    done = promtool("check", "rules", tmp_path / "rules.yaml")
    assert done.returncode != 0


def test_the_dashboards_queries_parse(tmp_path: Path) -> None:
    """Each panel query, as a recording rule (Grafana's $__rate_interval as 5m), passes promtool."""
    recorded = [
        {"record": f"dashboard:query{n}", "expr": expr.replace("$__rate_interval", "5m")}
        for n, expr in enumerate(dashboard_expressions())
    ]
    file = tmp_path / "dashboard-queries.yaml"
    file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recorded}]}))
    done = promtool("check", "rules", file)
    assert done.returncode == 0, done.stdout + done.stderr


def test_rules_and_dashboard_use_only_exported_metrics() -> None:
    exported = exported_names()
    used = {m for e in (*rule_expressions(), *dashboard_expressions()) for m in METRIC.findall(e)}
    assert used, "no agentroster metric used"
    assert used <= exported, f"not exported by the code: {sorted(used - exported)}"


def test_the_dashboard_shows_every_exported_metric() -> None:
    """A metric added to the code without a panel fails here."""
    used = {m for e in dashboard_expressions() for m in METRIC.findall(e)}
    shown = {re.sub(r"_(bucket|sum|count)$", "", m) for m in used}
    exported = {re.sub(r"_(bucket|sum|count)$", "", m) for m in exported_names()}
    assert exported <= shown, f"no panel: {sorted(exported - shown)}"


def test_the_rules_cover_what_an_operator_must_know() -> None:
    names = {rule["alert"] for group in rules()["groups"] for rule in group["rules"]}
    assert names >= ALERTS
    for group in rules()["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in {"info", "warning", "critical"}
            assert rule["annotations"]["summary"]
            assert rule["annotations"]["description"]


def test_the_prometheusrule_is_the_rules_file() -> None:
    """deploy/k8s's PrometheusRule carries exactly rules.yaml's groups (one source)."""
    rule = yaml.safe_load(PROMETHEUS_RULE.read_text())
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == rules()["groups"], (
        "run `python deploy/monitoring/sync_prometheusrule.py` after editing rules.yaml"
    )
