from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandbox_svc.sandboxd.errors import InvalidInputError, PathOutsideWorkspaceError
from sandbox_svc.sandboxd.paths import Workspace


@pytest.fixture
def root(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "src" / "a.py").write_text("print(1)\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text("s3cret")
    return ws


@pytest.fixture
def ws(root: Path) -> Workspace:
    return Workspace(root)


def test_a_relative_path_starts_at_the_workspace(ws: Workspace, root: Path) -> None:
    assert ws.resolve("src/a.py") == root / "src" / "a.py"


def test_a_workspace_spelled_path_is_an_alias_of_the_real_root(ws: Workspace, root: Path) -> None:
    assert ws.resolve("/workspace/src/a.py") == root / "src" / "a.py"
    assert ws.resolve("/workspace") == root
    assert ws.resolve("/workspace/") == root


def test_an_empty_path_is_the_workspace_itself(ws: Workspace, root: Path) -> None:
    assert ws.resolve("") == root
    assert ws.is_root(ws.resolve("."))


def test_an_absolute_real_path_inside_the_workspace_is_accepted(ws: Workspace, root: Path) -> None:
    assert ws.resolve(str(root / "src")) == root / "src"


def test_paths_are_reported_in_the_sandbox_spelling(ws: Workspace, root: Path) -> None:
    assert ws.display(root / "src" / "a.py") == "/workspace/src/a.py"
    assert ws.display(root) == "/workspace"


@pytest.mark.parametrize(
    "path",
    ["../outside/secret", "src/../../outside", "/workspace/../outside", "/etc/passwd", "/"],
)
def test_a_path_that_climbs_out_of_the_workspace_is_rejected(ws: Workspace, path: str) -> None:
    with pytest.raises(PathOutsideWorkspaceError):
        ws.resolve(path)


def test_a_symlink_pointing_outside_is_rejected(ws: Workspace, root: Path) -> None:
    (root / "escape").symlink_to(root.parent / "outside")
    with pytest.raises(PathOutsideWorkspaceError):
        ws.resolve("escape/secret")
    with pytest.raises(PathOutsideWorkspaceError):
        ws.resolve("escape")


def test_a_new_file_under_a_symlink_pointing_outside_is_rejected(ws: Workspace, root: Path) -> None:
    (root / "escape").symlink_to(root.parent / "outside")
    with pytest.raises(PathOutsideWorkspaceError):
        ws.resolve("escape/new/deeper.txt")


def test_a_dangling_symlink_pointing_outside_is_rejected(ws: Workspace, root: Path) -> None:
    (root / "dangling").symlink_to(root.parent / "outside" / "not-yet")
    with pytest.raises(PathOutsideWorkspaceError):
        ws.resolve("dangling")


def test_a_symlink_inside_the_workspace_resolves_to_its_target(ws: Workspace, root: Path) -> None:
    (root / "link").symlink_to(root / "src" / "a.py")
    assert ws.resolve("link") == root / "src" / "a.py"


def test_without_following_the_final_link_the_link_itself_is_named(
    ws: Workspace, root: Path
) -> None:
    (root / "escape").symlink_to(root.parent / "outside")
    assert ws.resolve("escape", follow_final=False) == root / "escape"
    with pytest.raises(PathOutsideWorkspaceError):
        ws.resolve("escape/secret", follow_final=False)


def test_a_symlinked_workspace_root_is_resolved_to_its_real_directory(
    tmp_path: Path, root: Path
) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(root)
    ws = Workspace(alias)
    assert ws.root == Path(os.path.realpath(root))
    assert ws.resolve("/workspace/src") == root / "src"


def test_a_path_with_a_nul_byte_is_rejected(ws: Workspace) -> None:
    with pytest.raises(InvalidInputError):
        ws.resolve("src/a\x00.py")


@pytest.mark.parametrize(("path", "follow_final"), [
    ("loop/../escape/secret", True), ("loop/../escape/secret", False),
    ("loop/../escape/new/file", True), ("loop/../escape/new/file", False),
    ("missing/../loop/../escape/secret", True), ("missing/../loop/../escape/secret", False),
    ("loop/x/../../escape", True),  # without following, "escape" names the link itself
])
def test_a_symlink_loop_cannot_hide_a_symlink_that_leads_outside(
    ws: Workspace, root: Path, path: str, follow_final: bool
) -> None:
    # os.path.realpath leaves the rest of a path unresolved after a loop and then drops
    # the ".." lexically: "loop/../escape/secret" came back as "<ws>/escape/secret",
    # which looks inside while the kernel follows "escape" out (found by fuzzing).
    (root / "loop").symlink_to("loop")
    (root / "escape").symlink_to(root.parent / "outside")
    with pytest.raises(InvalidInputError):
        ws.resolve(path, follow_final=follow_final)


def test_a_path_through_a_symlink_loop_is_bad_input_naming_the_loop(ws: Workspace,
                                                                     root: Path) -> None:
    (root / "loop").symlink_to("loop")
    with pytest.raises(InvalidInputError, match="symlink loop"):
        ws.resolve("loop/x")
