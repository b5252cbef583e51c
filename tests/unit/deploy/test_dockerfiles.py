"""deploy/docker: pinned bases, non-root users, and commands that exist.

No Docker engine runs here, so the Dockerfiles are parsed, not built.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from rendered_manifests import REPO

from sandgate.cli.main import build_parser

DOCKER = REPO / "deploy" / "docker"
DOCKERFILES = sorted(DOCKER.glob("Dockerfile.*"))
PYTHON_BASE = re.compile(r"^python:3\.11\.\d+-slim-bookworm$")
SANDGATE_IMAGE = re.compile(r"^sandgate/sandgate:\d+\.\d+\.\d+$")


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined: list[str] = []
    pending = ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    assert not pending, f"{path.name} ends inside a continued line"
    result = []
    for entry in joined:
        word, _, rest = entry.strip().partition(" ")
        result.append((word.upper(), rest.strip()))
    return result


def test_the_three_images_are_there() -> None:
    assert [p.name for p in DOCKERFILES] == [
        "Dockerfile.agent-app", "Dockerfile.sandbox", "Dockerfile.services"]


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_every_base_image_is_pinned_by_exact_tag(path: Path) -> None:
    stages: set[str] = set()
    for word, rest in _instructions(path):
        if word != "FROM":
            continue
        image, *alias = rest.split()
        assert image.lower() != "scratch"
        assert image in stages or PYTHON_BASE.match(image) or SANDGATE_IMAGE.match(image), (
            f"{path.name}: FROM {image} is not pinned to an exact tag")
        if alias:
            assert alias[0].upper() == "AS"
            stages.add(alias[1])
    assert "latest" not in path.read_text()


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_every_image_runs_as_a_numeric_non_root_user(path: Path) -> None:
    users = [rest for word, rest in _instructions(path) if word == "USER"]
    assert users, f"{path.name} has no USER"
    user, _, group = users[-1].partition(":")
    assert user.isdigit() and int(user) > 0, f"{path.name} ends as USER {users[-1]}"
    assert not group or (group.isdigit() and int(group) > 0)


def test_the_services_image_runs_the_sandgate_command() -> None:
    instructions = dict(_instructions(DOCKER / "Dockerfile.services"))
    assert json.loads(instructions["ENTRYPOINT"]) == ["sandgate"]


@pytest.mark.parametrize("command", ["gateway-server", "sandbox-server", "agent-server"])
def test_the_services_subcommands_exist_in_the_cli(command: str) -> None:
    try:
        args = build_parser().parse_args([command])
    except SystemExit:
        if command == "agent-server":
            pytest.skip("agent-server arrives with agent_svc")
        raise
    assert args.command == command


def test_the_sandbox_image_starts_sandboxd_on_tcp_with_a_token_file() -> None:
    instructions = _instructions(DOCKER / "Dockerfile.sandbox")
    (cmd,) = [rest for word, rest in instructions if word == "CMD"]
    assert json.loads(cmd) == ["python", "-m", "sandbox_svc.sandboxd", "--listen",
                               "0.0.0.0:8080", "--token-file", "/run/sandgate/token"]
    assert ("EXPOSE", "8080") in instructions


def test_sandboxd_accepts_the_sandbox_images_command_line(tmp_path: Path) -> None:
    from sandbox_svc.sandboxd.__main__ import main as sandboxd_main

    missing = tmp_path / "token"
    # The arguments parse; the daemon then stops at the token file that is not there.
    with pytest.raises(SystemExit) as info:
        sandboxd_main(["--listen", "0.0.0.0:8080", "--token-file", str(missing)])
    assert f"cannot read --token-file {missing}" in str(info.value.code)


def test_the_sandbox_requirements_match_the_project_pins() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = dict(d.split("==") for d in project["dependencies"])
    wanted = [line for line in (DOCKER / "sandbox-requirements.txt").read_text().splitlines()
              if line and not line.startswith("#")]
    assert wanted
    for line in wanted:
        name, version = line.split("==")
        assert pins[name] == version, name
    assert {"ipykernel", "playwright", "grpcio"} <= {line.split("==")[0] for line in wanted}


def test_the_agent_app_example_names_its_app() -> None:
    env = " ".join(rest for word, rest in _instructions(DOCKER / "Dockerfile.agent-app")
                   if word == "ENV")
    assert re.search(r"SANDGATE_AGENT_APP=[\w.]+:\w+", env)


def test_the_build_context_leaves_out_local_state_and_secrets() -> None:
    ignored = (REPO / ".dockerignore").read_text().splitlines()
    for entry in (".git", ".venv", "node_modules", "*.env", "tests"):
        assert entry in ignored
