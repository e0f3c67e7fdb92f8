"""Render a kustomization with kubectl or kustomize; how problems name an object."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

Object = dict[str, Any]
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
