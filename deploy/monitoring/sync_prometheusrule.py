"""Write deploy/k8s/components/monitoring/prometheusrule.yaml from rules.yaml (its one source).

    python deploy/monitoring/sync_prometheusrule.py

tests/test_monitoring.py fails while the PrometheusRule's groups differ from rules.yaml's.
"""

from __future__ import annotations

from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
TARGET = HERE.parent / "k8s" / "components" / "monitoring" / "prometheusrule.yaml"
HEADER = """\
# GENERATED from deploy/monitoring/rules.yaml by deploy/monitoring/sync_prometheusrule.py:
# edit rules.yaml, then run the script. The Prometheus Operator's rule selector must match
# these labels (`ruleSelector` of your Prometheus object).
"""


def prometheus_rule(groups: list[dict[str, object]]) -> dict[str, object]:
    """The PrometheusRule object (monitoring.coreos.com/v1) holding `groups`."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "agentroster",
            "labels": {
                "app.kubernetes.io/name": "agentroster",
                "app.kubernetes.io/component": "monitoring",
            },
        },
        "spec": {"groups": groups},
    }


def main() -> None:
    """Regenerate the PrometheusRule."""
    groups = yaml.safe_load((HERE / "rules.yaml").read_text())["groups"]
    body = yaml.safe_dump(prometheus_rule(groups), sort_keys=False, width=100)
    TARGET.write_text(HEADER + body)


if __name__ == "__main__":
    main()
