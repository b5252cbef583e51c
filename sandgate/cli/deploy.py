"""``sandgate deploy``: render an overlay, point it at your registry, apply it, wait.

    sandgate deploy --overlay kind|ack|acs [--image-registry REG] [--dry-run]
                    [--kustomize-dir DIR] [--context CTX] [--timeout S]

1. renders ``DIR/overlays/OVERLAY`` with ``kubectl kustomize``;
2. with ``--image-registry REG``, rewrites every Sandgate image
   (``sandgate/NAME:TAG`` becomes ``REG/NAME:TAG``) in the Pod templates and in
   the sandbox templates' ``kubernetes.image`` (which kustomize's ``images:``
   cannot reach: they live in a ConfigMap);
3. ``--dry-run`` prints the YAML and stops; otherwise applies it with
   ``kubectl apply --server-side`` and waits for every Deployment to be
   Available, printing kubectl's progress.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import yaml

__all__ = ["DeployError", "DeployOptions", "OVERLAYS", "rewrite_images", "run_deploy"]

OVERLAYS = ("kind", "ack", "acs")
_OURS = "sandgate/"
_POD_HOLDERS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
_FIELD_MANAGER = "sandgate"


class DeployError(Exception):
    """Rendering, applying or waiting failed; the message says what to do."""


@dataclass(frozen=True)
class DeployOptions:
    """What ``sandgate deploy`` was asked to do."""

    overlay: str
    image_registry: str = ""
    dry_run: bool = False
    kustomize_dir: Path = Path("deploy/kustomize")
    context: str = ""
    """kubectl context (default: kubectl's current one)."""
    timeout_s: float = 300.0
    """How long to wait for the Deployments, in total."""
    kubectl: str = "kubectl"


def _image(image: str, registry: str) -> str:
    if not image.startswith(_OURS):
        return image
    return f"{registry.rstrip('/')}/{image[len(_OURS):]}"


def _containers(pod_spec: object) -> Iterable[dict[str, object]]:
    if not isinstance(pod_spec, dict):
        return
    for key in ("initContainers", "containers"):
        for container in pod_spec.get(key) or []:
            if isinstance(container, dict):
                yield container


def _rewrite_templates_file(text: str, registry: str) -> str:
    loaded = yaml.safe_load(text)
    templates = loaded.get("templates") if isinstance(loaded, dict) else None
    for template in templates if isinstance(templates, list) else []:
        pod = template.get("kubernetes") if isinstance(template, dict) else None
        if isinstance(pod, dict) and isinstance(pod.get("image"), str):
            pod["image"] = _image(pod["image"], registry)
    return yaml.safe_dump(loaded, sort_keys=False)


def rewrite_images(rendered: str, registry: str) -> str:
    """``rendered`` with every ``sandgate/NAME`` image moved to ``registry``.

    Raises:
        DeployError: the YAML does not parse.
    """
    try:
        documents = [d for d in yaml.safe_load_all(rendered) if d is not None]
    except yaml.YAMLError as exc:
        raise DeployError(f"the rendered overlay is not YAML: {exc}") from None
    for doc in documents:
        kind = doc.get("kind")
        if kind in _POD_HOLDERS:
            pod_spec = (doc.get("spec") or {}).get("template", {}).get("spec")
            for container in _containers(pod_spec):
                if isinstance(container.get("image"), str):
                    container["image"] = _image(str(container["image"]), registry)
        elif kind == "ConfigMap" and isinstance((doc.get("data") or {}).get("templates.yaml"),
                                                str):
            doc["data"]["templates.yaml"] = _rewrite_templates_file(
                doc["data"]["templates.yaml"], registry)
    return yaml.safe_dump_all(documents, sort_keys=False)


def _deployments(rendered: str) -> list[tuple[str, str]]:
    return [((d.get("metadata") or {}).get("namespace", "default"), d["metadata"]["name"])
            for d in yaml.safe_load_all(rendered)
            if isinstance(d, dict) and d.get("kind") == "Deployment"]


def _kubectl(options: DeployOptions, *args: str) -> list[str]:
    context = ["--context", options.context] if options.context else []
    return [options.kubectl, *context, *args]


def _run(command: Sequence[str], *, stdin: str | None = None, timeout: float,
         out: TextIO | None = None) -> str:
    try:
        done = subprocess.run(command, input=stdin, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except FileNotFoundError:
        raise DeployError(f"{command[0]} not found; install kubectl (Debian: "
                          "apt-get install kubectl) or put it on PATH") from None
    except subprocess.TimeoutExpired:
        raise DeployError(f"{' '.join(command[:3])} ... did not finish within "
                          f"{timeout:.0f} s") from None
    if out is not None and done.stdout:
        out.write(done.stdout)
        out.flush()
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise DeployError(f"{' '.join(command[:3])} ... failed: "
                          f"{detail[-1] if detail else f'exit {done.returncode}'}")
    return done.stdout


def render(options: DeployOptions) -> str:
    """The overlay rendered by kustomize, images rewritten when asked.

    Raises:
        DeployError: unknown overlay, missing directory, or kustomize failed.
    """
    if options.overlay not in OVERLAYS:
        raise DeployError(f"unknown overlay {options.overlay!r}; choose one of "
                          f"{', '.join(OVERLAYS)}")
    directory = options.kustomize_dir / "overlays" / options.overlay
    if not (directory / "kustomization.yaml").is_file():
        raise DeployError(f"{directory} has no kustomization.yaml; run from a Sandgate "
                          "checkout or pass --kustomize-dir")
    rendered = _run([options.kubectl, "kustomize", str(directory)], timeout=60)
    return rewrite_images(rendered, options.image_registry) if options.image_registry \
        else rendered


def run_deploy(options: DeployOptions, out: TextIO | None = None) -> int:
    """Render, then print (``dry_run``) or apply and wait; returns the exit status.

    Args:
        options: what to deploy, and how.
        out: where the YAML or the progress goes (default: standard output).

    Raises:
        DeployError: a step failed; the message names it.
    """
    out = out or sys.stdout
    rendered = render(options)
    if options.dry_run:
        out.write(rendered)
        return 0
    deadline = time.monotonic() + options.timeout_s
    print(f"applying overlay {options.overlay} ({rendered.count('kind:')} objects) "
          "with kubectl apply --server-side", file=out, flush=True)
    _run(_kubectl(options, "apply", "--server-side", f"--field-manager={_FIELD_MANAGER}",
                  "-f", "-"), stdin=rendered, timeout=120, out=out)
    for namespace, name in _deployments(rendered):
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeployError(f"deployment {namespace}/{name} was not checked: the "
                              f"{options.timeout_s:.0f} s timeout passed")
        print(f"waiting for deployment {namespace}/{name} to be available", file=out,
              flush=True)
        _run(_kubectl(options, "rollout", "status", f"deployment/{name}", "-n", namespace,
                      f"--timeout={max(int(left), 1)}s"), timeout=left + 10, out=out)
    print(f"sandgate is deployed (overlay {options.overlay})", file=out, flush=True)
    return 0
