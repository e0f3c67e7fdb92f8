"""Offline checks of the Kubernetes manifests: render, validate against schemas, tie to the code.

Each check takes the rendered objects of one kustomization and returns its problems as lines
(`Kind/name: what is wrong`), so a test can assert that a good render has none and that a
deliberately broken one has the expected one. The schemas are vendored in tests/deploy_schemas/
(its README names their sources and versions); nothing here touches a cluster or the network.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from tests.deploy_checks.code_ties import keda_problems, probe_problems
from tests.deploy_checks.objects import hardening_problems, reference_problems
from tests.deploy_checks.pods import containers, is_registry, settings_problems
from tests.deploy_checks.rendering import INSTALL_HINT, Object, RenderError, name_of, render
from tests.deploy_checks.schemas import schema_problems

__all__ = [
    "CHECKS",
    "INSTALL_HINT",
    "Object",
    "RenderError",
    "all_problems",
    "containers",
    "is_registry",
    "name_of",
    "render",
]

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
