"""Regenerate the vendored schemas of tests/deploy_schemas/ (see its README for the sources).

    python tests/deploy_schemas/vendor.py \\
        --kubernetes <kubernetes-validate wheel>/kubernetes_validate/kubernetes-json-schema/v1.32.0-local-strict \\
        --crd <keda>/config/crd/bases/keda.sh_scaledobjects.yaml \\
        --crd <keda>/config/crd/bases/keda.sh_triggerauthentications.yaml \\
        --crd <prometheus-operator>/example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml

Kubernetes: the kinds in `KINDS` are copied unchanged, and `_definitions.json` is cut down to
the definitions they reach (the whole file is 1.3 MB). CRDs: each served version's
`openAPIV3Schema`, unchanged, as `<kind>-<group>-<version>.json`. Run by hand when updating;
never by the tests.
"""  # noqa: E501 - the command above is one line per argument

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
#: The Kubernetes kinds the manifests use, as kubernetes-validate names their schema files.
KINDS = (
    "configmap-v1",
    "namespace-v1",
    "deployment-apps-v1",
    "horizontalpodautoscaler-autoscaling-v2",
    "job-batch-v1",
    "poddisruptionbudget-policy-v1",
    "secret-v1",
    "service-v1",
    "serviceaccount-v1",
)
DEFINITIONS = "_definitions.json"
#: How a kind's schema refers to a definition, and how definitions refer to each other.
REF_PREFIXES = (f"/api/{DEFINITIONS}#/$defs/", "#/$defs/")


def _refs(node: Any) -> set[str]:
    """Names of the definitions `node` refers to directly."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found |= {value.removeprefix(p) for p in REF_PREFIXES if value.startswith(p)}
            else:
                found |= _refs(value)
    elif isinstance(node, list):
        for item in node:
            found |= _refs(item)
    return found


def vendor_kubernetes(source: Path, target: Path) -> None:
    """Copy the kinds' schemas and the definitions they reach, transitively."""
    target.mkdir(parents=True, exist_ok=True)
    definitions = json.loads((source / DEFINITIONS).read_text())
    wanted: set[str] = set()
    pending: set[str] = set()
    for kind in KINDS:
        schema = json.loads((source / f"{kind}.json").read_text())
        (target / f"{kind}.json").write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
        pending |= _refs(schema)
    while pending:
        name = pending.pop()
        if name not in wanted:
            wanted.add(name)
            pending |= _refs(definitions["$defs"][name]) - wanted
    pruned = {**definitions, "$defs": {name: definitions["$defs"][name] for name in sorted(wanted)}}
    (target / DEFINITIONS).write_text(json.dumps(pruned, indent=1, sort_keys=True) + "\n")


def vendor_crd(source: Path, target: Path) -> None:
    """Write each served version's openAPIV3Schema of one CRD."""
    target.mkdir(parents=True, exist_ok=True)
    crd = yaml.safe_load(source.read_text())
    spec = crd["spec"]
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        name = f"{spec['names']['kind'].lower()}-{spec['group']}-{version['name']}.json"
        schema = version["schema"]["openAPIV3Schema"]
        (target / name).write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")


def main() -> None:
    """Parse the arguments and write the schemas."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubernetes", type=Path, required=True)
    parser.add_argument("--crd", type=Path, action="append", default=[])
    args = parser.parse_args()
    vendor_kubernetes(args.kubernetes, HERE / "kubernetes")
    for crd in args.crd:
        vendor_crd(crd, HERE / "crds")


if __name__ == "__main__":
    main()
