"""Render the kustomizations under deploy/kustomize with ``kubectl kustomize``."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

__all__ = ["KUSTOMIZE", "REPO", "containers", "find", "pod_specs", "render", "render_with"]

REPO = Path(__file__).resolve().parents[3]
KUSTOMIZE = REPO / "deploy" / "kustomize"
Doc = dict[str, Any]


def kubectl() -> str | None:
    return shutil.which("kubectl")


def _kustomize(directory: Path) -> list[Doc]:
    binary = kubectl()
    assert binary is not None
    done = subprocess.run([binary, "kustomize", str(directory)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, f"kubectl kustomize {directory} failed:\n{done.stderr}"
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ten times faster
    return [doc for doc in yaml.load_all(done.stdout, Loader=loader) if doc]


@functools.cache
def render(relative: str) -> tuple[Doc, ...]:
    """The rendered resources of ``deploy/kustomize/<relative>``."""
    return tuple(_kustomize(KUSTOMIZE / relative))


@functools.cache
def render_with(components: tuple[str, ...], scratch: Path) -> tuple[Doc, ...]:
    """The base plus ``components`` (names under components/), composed in ``scratch``."""
    scratch.mkdir(parents=True, exist_ok=True)
    root = os.path.relpath(KUSTOMIZE, scratch)  # kustomize refuses absolute paths
    (scratch / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [f"{root}/base"],
        "components": [f"{root}/components/{c}" for c in components]}))
    return tuple(_kustomize(scratch))


def find(docs: tuple[Doc, ...], kind: str, name: str | None = None) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind
            and (name is None or d["metadata"]["name"] == name)]


def pod_specs(docs: tuple[Doc, ...]) -> Iterator[tuple[Doc, Doc]]:
    """(workload, pod template) for every Deployment, StatefulSet, DaemonSet and Job."""
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield doc, doc["spec"]["template"]


def containers(pod_template: Doc) -> list[Doc]:
    spec = pod_template["spec"]
    return list(spec.get("initContainers", [])) + list(spec["containers"])
