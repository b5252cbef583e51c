"""Authentication, tenancy, allowlists and rate limits at the MCP endpoint."""

from __future__ import annotations

import anyio
import httpx2
import mcp_types as types

from sandbox_svc.server import RunningService
from sandgate.service.keys import TENANT_HEADER

from .conftest import SERVICE_KEY, mcp_client, run_gateway

KEYS = "alice-key=acme,bob-key=globex"
_POST = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _text(result: types.CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def test_requests_without_a_valid_key_get_401(sandbox_service: RunningService) -> None:
    async with run_gateway(sandbox_service, api_keys=KEYS, bearer_token=SERVICE_KEY) as gateway:
        async with httpx2.AsyncClient() as http:
            missing = await http.post(gateway.mcp_url, content=b"{}", headers=_POST)
            wrong = await http.post(gateway.mcp_url, content=b"{}",
                                    headers={**_POST, **_bearer("nope")})
            acting = await http.post(gateway.mcp_url, content=b"{}",
                                     headers={**_POST, **_bearer("alice-key"),
                                              TENANT_HEADER: "globex"})
        assert [r.status_code for r in (missing, wrong, acting)] == [401, 401, 401]
        assert missing.headers["WWW-Authenticate"].startswith("Bearer")
        assert "api key" in missing.json()["error"]["message"].lower()
        assert gateway.host == "127.0.0.1" and not gateway.open


async def test_tenants_never_see_each_others_sandboxes(sandbox_service: RunningService) -> None:
    session = {"X-Sandgate-Session": "same-name"}
    async with run_gateway(sandbox_service, api_keys=KEYS, bearer_token=SERVICE_KEY) as gateway:
        async with mcp_client(gateway.mcp_url, {**_bearer("alice-key"), **session}) as alice, \
                mcp_client(gateway.mcp_url, {**_bearer("bob-key"), **session}) as bob, \
                mcp_client(gateway.mcp_url, {**_bearer(SERVICE_KEY), TENANT_HEADER: "acme",
                                             **session}) as service:
            with anyio.fail_after(30):
                await alice.call_tool("write_file", {"path": "secret", "content": "acme data"})
                seen_by_bob = await bob.call_tool("read_file", {"path": "secret"})
                seen_by_service = await service.call_tool("read_file", {"path": "secret"})
    assert seen_by_bob.is_error and "acme data" not in _text(seen_by_bob)
    assert _text(seen_by_service) == "acme data"
    owners = {r.tenant for r in await sandbox_service.manager.list_sandboxes("acme")}
    assert owners == {"acme"}


async def test_the_allowlist_filters_tools_list_and_tools_call_alike(
        sandbox_service: RunningService) -> None:
    async with run_gateway(sandbox_service, api_keys=KEYS, bearer_token=SERVICE_KEY,
                           tool_allowlist={"globex": ["run_shell_command", "read_*"]}) as gateway:
        async with mcp_client(gateway.mcp_url, _bearer("bob-key")) as bob, \
                mcp_client(gateway.mcp_url, _bearer("alice-key")) as alice:
            with anyio.fail_after(30):
                bobs = {t.name for t in (await bob.list_tools()).tools}
                alices = {t.name for t in (await alice.list_tools()).tools}
                refused = await bob.call_tool("write_file", {"path": "x", "content": "y"})
                allowed = await bob.call_tool("run_shell_command", {"command": "echo ok"})
    assert bobs == {"run_shell_command", "read_file", "read_text_file", "read_media_file",
                    "read_multiple_files"}
    assert {"write_file", "sandbox_release"} <= alices
    assert refused.is_error and "unknown tool" in _text(refused)
    assert not allowed.is_error


async def test_a_tenant_over_its_rate_limit_gets_429_with_a_retry_hint(
        sandbox_service: RunningService) -> None:
    async with run_gateway(sandbox_service, api_keys=KEYS, bearer_token=SERVICE_KEY,
                           rate_limit_per_s=0.5, rate_limit_burst=2) as gateway:
        async with httpx2.AsyncClient() as http:
            replies = [await http.post(gateway.mcp_url, content=b"{}",
                                       headers={**_POST, **_bearer("alice-key")})
                       for _ in range(3)]
            other = await http.post(gateway.mcp_url, content=b"{}",
                                    headers={**_POST, **_bearer("bob-key")})
    assert [r.status_code == 429 for r in replies] == [False, False, True]
    assert int(replies[2].headers["Retry-After"]) >= 1
    assert other.status_code != 429


async def test_without_keys_the_gateway_listens_on_loopback_only(
        sandbox_service: RunningService) -> None:
    async with run_gateway(sandbox_service, host="0.0.0.0") as gateway:
        assert gateway.open and gateway.host == "127.0.0.1"
        async with mcp_client(gateway.mcp_url) as client:
            with anyio.fail_after(30):
                result = await client.call_tool("run_shell_command", {"command": "echo ok"})
        assert not result.is_error
