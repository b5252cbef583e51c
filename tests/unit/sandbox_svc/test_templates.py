from __future__ import annotations

from pathlib import Path

import pytest

from sandbox_svc.errors import InvalidRequestError, TemplateNotFoundError
from sandbox_svc.templates import load_templates


def test_builtin_templates_are_base_filesystem_and_browser() -> None:
    catalog = load_templates(None)
    assert catalog.names() == ["base", "browser", "filesystem"]
    assert catalog.get("filesystem").tool_groups == ("base", "filesystem")
    assert catalog.get("browser").network and "browser" in catalog.get("browser").tool_groups


def test_unknown_template_error_names_the_available_ones() -> None:
    with pytest.raises(TemplateNotFoundError) as info:
        load_templates(None).get("gpu")
    assert info.value.known == ["base", "browser", "filesystem"]
    assert "base, browser, filesystem" in str(info.value)


def test_file_adds_and_overrides_templates(tmp_path: Path) -> None:
    path = tmp_path / "templates.yaml"
    path.write_text(
        "templates:\n"
        "  - {name: data, tool_groups: [base, filesystem], memory_mb: 2048, pool_size: 0}\n"
        "  - {name: base, pool_size: 3}\n")
    catalog = load_templates(path)
    assert catalog.names() == ["base", "browser", "data", "filesystem"]
    assert catalog.get("data").memory_mb == 2048
    assert catalog.get("base").pool_size == 3


@pytest.mark.parametrize("entry, fragment", [
    ("{name: x, memory_mb: 1}", "memory_mb=1 is out of range"),
    ("{name: x, tool_groups: [gpu]}", "unknown tool groups"),
    ("{name: x, colour: red}", "unknown keys"),
    ("{name: 'bad name'}", "must be non-empty letters"),
])
def test_bad_template_entries_are_rejected_with_what_is_allowed(
        tmp_path: Path, entry: str, fragment: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(f"templates:\n  - {entry}\n")
    with pytest.raises(InvalidRequestError, match=fragment):
        load_templates(path)


def test_pool_size_override_applies_to_every_template() -> None:
    catalog = load_templates(None).with_pool_size(0)
    assert {t.pool_size for t in catalog.all()} == {0}


def test_every_builtin_template_names_a_seccomp_profile() -> None:
    catalog = load_templates(None)
    assert {t.name: t.seccomp for t in catalog.all()} == {
        "base": "default", "filesystem": "default", "browser": "browser"}


def test_a_template_file_chooses_a_seccomp_profile_by_name(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("templates:\n  - {name: web, seccomp: browser}\n  - {name: plain}\n")
    catalog = load_templates(path)
    assert catalog.get("web").seccomp == "browser"
    assert catalog.get("plain").seccomp == "default"


@pytest.mark.parametrize("value", ["unconfined", "''", "null", "[default]"])
def test_an_unknown_seccomp_profile_is_rejected_naming_the_profiles(
        tmp_path: Path, value: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(f"templates:\n  - {{name: x, seccomp: {value}}}\n")
    with pytest.raises(InvalidRequestError) as info:
        load_templates(path)
    assert "unknown seccomp profile" in str(info.value)
    assert "allowed: default, browser" in str(info.value)


def test_base_and_filesystem_warm_their_kernel_in_the_pool_and_browser_does_not() -> None:
    catalog = load_templates(None)
    assert [t.name for t in catalog.all() if t.warm_kernel] == ["base", "filesystem"]


def test_a_warm_kernel_needs_the_base_tools(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("templates:\n  - {name: web, tool_groups: [browser], warm_kernel: true}\n")
    with pytest.raises(InvalidRequestError, match="warm_kernel needs the 'base' tool group"):
        load_templates(path)
