"""Catalog: per-tenant views, routing and argument checks."""

from __future__ import annotations

import pytest

from gateway.catalog import Allowlist, Catalog, ToolSource, ToolSpec
from gateway.errors import ToolArgumentsError, ToolNotFoundError
from gateway.tools import default_groups

SPECS = [s for g in default_groups(1024) for s in g.specs]
ROUTES = {"base": "base", "filesystem": "filesystem", "browser": "browser"}


def _upstream(name: str, tenants: frozenset[str] | None = None) -> ToolSpec:
    return ToolSpec(name, "from upstream", {"type": "object"}, "up", ToolSource.UPSTREAM,
                    tenants=tenants, upstream_name=name.split("__")[-1])


def test_every_sandbox_tool_routes_to_its_groups_template() -> None:
    catalog = Catalog(SPECS, ROUTES)
    shell = catalog.resolve("acme", "run_shell_command")
    assert catalog.template_for(shell) == "base"
    assert catalog.template_for(catalog.resolve("acme", "read_file")) == "filesystem"


def test_a_group_without_a_template_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="filesystem"):
        Catalog(SPECS, {"base": "base"})


def test_allowlist_patterns_filter_listing_and_resolving() -> None:
    catalog = Catalog(SPECS, ROUTES, allowlist=Allowlist({"acme": ["read_*"], "*": ["run_*"]}))
    assert {s.name for s in catalog.list_for("acme")} == {
        "read_file", "read_text_file", "read_media_file", "read_multiple_files"}
    assert {s.name for s in catalog.list_for("other")} == {"run_shell_command",
                                                            "run_ipython_cell"}
    with pytest.raises(ToolNotFoundError):
        catalog.resolve("acme", "run_shell_command")


def test_upstream_tools_are_listed_per_tenant_and_never_shadow_built_ins() -> None:
    upstream = [_upstream("up__echo", frozenset({"acme"})), _upstream("read_file")]
    catalog = Catalog(SPECS, ROUTES, upstream_tools=lambda: upstream)
    assert "up__echo" in {s.name for s in catalog.list_for("acme")}
    assert "up__echo" not in {s.name for s in catalog.list_for("globex")}
    assert catalog.resolve("acme", "read_file").source is ToolSource.SANDBOX


def test_bad_arguments_say_what_is_wrong_and_what_is_expected() -> None:
    catalog = Catalog(SPECS, ROUTES)
    spec = catalog.resolve("acme", "edit_file")
    catalog.check_arguments(spec, {"path": "a", "edits": [{"oldText": "x", "newText": "y"}]})
    with pytest.raises(ToolArgumentsError) as missing:
        catalog.check_arguments(spec, {"path": "a"})
    with pytest.raises(ToolArgumentsError) as nested:
        catalog.check_arguments(spec, {"path": "a", "edits": [{"oldText": "x"}]})
    assert "edits" in str(missing.value) and "path (string, required)" in str(missing.value)
    assert "edits/0" in str(nested.value) and "newText" in str(nested.value)


def test_an_upstream_tool_with_a_broken_schema_is_passed_through_unchecked() -> None:
    broken = ToolSpec("up__odd", "", {"type": "no-such-type"}, "up", ToolSource.UPSTREAM)
    catalog = Catalog(SPECS, ROUTES, upstream_tools=lambda: [broken])
    catalog.check_arguments(broken, {"anything": 1})
