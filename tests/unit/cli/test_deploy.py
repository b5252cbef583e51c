"""``sandgate deploy``: rendering, image rewriting, and the apply-and-wait sequence.

kubectl cannot apply (even with --dry-run=client) without an API server, so
the apply path runs against a stand-in kubectl that records what it was asked
and delegates ``kustomize`` to the real one.
"""

from __future__ import annotations

import io
import json
import stat
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from sandgate.cli.deploy import DeployError, DeployOptions, rewrite_images, run_deploy
from sandgate.cli.main import main

REPO = Path(__file__).resolve().parents[3]
REGISTRY = "registry.example/team"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


@pytest.fixture
def kustomize_dir(tmp_path: Path) -> Path:
    """A tiny overlay: one Deployment and a templates ConfigMap, like the real ones."""
    root = tmp_path / "kustomize"
    _write(root / "base" / "kustomization.yaml", """\
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        resources: [app.yaml]
        configMapGenerator:
          - name: sandgate-templates
            namespace: sandgate
            files: [templates.yaml]
        """)
    _write(root / "base" / "app.yaml", """\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: gateway, namespace: sandgate}
        spec:
          selector: {matchLabels: {app: gateway}}
          template:
            metadata: {labels: {app: gateway}}
            spec:
              containers:
                - {name: gateway, image: "sandgate/sandgate:0.1.0"}
                - {name: sidecar, image: "otel/collector:1.0"}
        """)
    _write(root / "base" / "templates.yaml", """\
        templates:
          - name: base
            kubernetes: {image: "sandgate/sandbox:0.1.0"}
        """)
    _write(root / "overlays" / "kind" / "kustomization.yaml", """\
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        resources: [../../base]
        """)
    return root


def _images(rendered: str) -> list[str]:
    found = []
    for doc in yaml.safe_load_all(rendered):
        if doc and doc["kind"] == "Deployment":
            found += [c["image"] for c in doc["spec"]["template"]["spec"]["containers"]]
        elif doc and doc["kind"] == "ConfigMap":
            for template in yaml.safe_load(doc["data"]["templates.yaml"])["templates"]:
                found.append(template["kubernetes"]["image"])
    return found


def test_a_dry_run_prints_the_rendered_overlay(kustomize_dir: Path) -> None:
    out = io.StringIO()
    assert run_deploy(DeployOptions("kind", dry_run=True, kustomize_dir=kustomize_dir), out) == 0
    assert sorted(_images(out.getvalue())) == [
        "otel/collector:1.0", "sandgate/sandbox:0.1.0", "sandgate/sandgate:0.1.0"]


def test_an_image_registry_moves_every_sandgate_image_and_no_other(kustomize_dir: Path) -> None:
    out = io.StringIO()
    run_deploy(DeployOptions("kind", image_registry=REGISTRY + "/", dry_run=True,
                             kustomize_dir=kustomize_dir), out)
    assert sorted(_images(out.getvalue())) == [
        "otel/collector:1.0", f"{REGISTRY}/sandbox:0.1.0", f"{REGISTRY}/sandgate:0.1.0"]


def test_an_unknown_overlay_or_a_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match="kind, ack, acs"):
        run_deploy(DeployOptions("prod", dry_run=True, kustomize_dir=tmp_path))
    with pytest.raises(DeployError, match="kustomization.yaml"):
        run_deploy(DeployOptions("kind", dry_run=True, kustomize_dir=tmp_path))


def test_rewriting_refuses_yaml_that_does_not_parse() -> None:
    with pytest.raises(DeployError):
        rewrite_images("kind: [unclosed", REGISTRY)


def _stand_in_kubectl(tmp_path: Path, *, fail_rollout: bool = False) -> tuple[Path, Path]:
    log = tmp_path / "kubectl.log"
    script = tmp_path / "kubectl"
    script.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import json, os, subprocess, sys
        args = sys.argv[1:]
        if args[:1] == ["kustomize"]:
            sys.exit(subprocess.run(["kubectl", *args]).returncode)
        stdin = sys.stdin.read() if "-f" in args else ""
        with open({str(log)!r}, "a") as log:
            log.write(json.dumps({{"args": args, "stdin": stdin}}) + "\\n")
        if "rollout" in args:
            if {fail_rollout!r}:
                print("error: deployment exceeded its progress deadline", file=sys.stderr)
                sys.exit(1)
            name = args[args.index("status") + 1].split("/")[1]
            print(f'deployment "{{name}}" successfully rolled out')
        else:
            print("deployment.apps/gateway serverside-applied")
        """))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, log


def test_apply_is_server_side_then_every_deployment_is_awaited(
        kustomize_dir: Path, tmp_path: Path) -> None:
    kubectl, log = _stand_in_kubectl(tmp_path)
    out = io.StringIO()
    options = DeployOptions("kind", image_registry=REGISTRY, kustomize_dir=kustomize_dir,
                            context="kind-sandgate", kubectl=str(kubectl))
    assert run_deploy(options, out) == 0
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    apply, rollout = calls
    assert apply["args"] == ["--context", "kind-sandgate", "apply", "--server-side",
                             "--field-manager=sandgate", "-f", "-"]
    assert f"{REGISTRY}/sandgate:0.1.0" in _images(apply["stdin"])
    assert rollout["args"][:6] == ["--context", "kind-sandgate", "rollout", "status",
                                   "deployment/gateway", "-n"]
    assert "successfully rolled out" in out.getvalue()


def test_a_deployment_that_never_becomes_available_fails_the_deploy(
        kustomize_dir: Path, tmp_path: Path) -> None:
    kubectl, _ = _stand_in_kubectl(tmp_path, fail_rollout=True)
    with pytest.raises(DeployError, match="progress deadline"):
        run_deploy(DeployOptions("kind", kustomize_dir=kustomize_dir, kubectl=str(kubectl)),
                   io.StringIO())


def test_the_command_line_prints_a_dry_run(kustomize_dir: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "--overlay", "kind", "--dry-run",
                 "--kustomize-dir", str(kustomize_dir)]) == 0
    assert "sandgate/sandgate:0.1.0" in capsys.readouterr().out


def test_the_command_line_reports_a_failure_without_a_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "--overlay", "kind", "--dry-run",
                 "--kustomize-dir", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith("sandgate deploy: ")




@pytest.mark.parametrize("overlay", ["kind", "ack", "acs"])
def test_every_shipped_overlay_renders_with_all_its_images_moved(overlay: str) -> None:
    out = io.StringIO()
    run_deploy(DeployOptions(overlay, image_registry=REGISTRY, dry_run=True,
                             kustomize_dir=REPO / "deploy" / "kustomize"), out)
    images = _all_images(out.getvalue())
    assert f"{REGISTRY}/sandgate:0.1.0" in images and f"{REGISTRY}/sandbox:0.1.0" in images
    assert not [image for image in images if image.startswith("sandgate/")]


def _all_images(rendered: str) -> list[str]:
    found = []
    for doc in yaml.safe_load_all(rendered):
        spec = ((doc or {}).get("spec") or {}).get("template", {}).get("spec") or {}
        found += [c["image"] for c in spec.get("containers", []) + spec.get("initContainers", [])]
        templates = ((doc or {}).get("data") or {}).get("templates.yaml")
        if templates:
            found += [t["kubernetes"]["image"] for t in yaml.safe_load(templates)["templates"]
                      if "image" in t.get("kubernetes", {})]
    return found
