"""Upstream MCP servers whose tools join the catalog.

The config file uses the ``mcpServers`` layout IDEs already use, plus a few
keys of ours::

    mcpServers:
      docs:                          # tools appear as docs__<tool>
        command: python3
        args: [docs_server.py]
        env: {DOCS_ROOT: /srv/docs}
      search:
        url: https://search.example/mcp
        headers: {Authorization: "Bearer ..."}
        prefix: web_                 # instead of search__
        tenants: [acme]              # only these tenants see it
        timeout_s: 20

Each upstream has a supervisor task that connects (the official ``mcp``
client, stdio or streamable HTTP), lists its tools, pings it, and reconnects
with backoff when it fails. An upstream that is down is reported (log, metric,
``status()``) and its tools leave the catalog; nothing else is affected.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mcp_types as types
import yaml
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from gateway.catalog import ToolSource, ToolSpec
from gateway.errors import UpstreamTimeoutError, UpstreamUnavailableError
from gateway.results import ContentBlock, ImageBlock, ResourceBlock, TextBlock, ToolResult
from gateway.telemetry import GatewayMetrics

__all__ = ["Federation", "UpstreamConfig", "UpstreamStatus", "load_upstreams"]

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_KEYS = {"command", "args", "env", "cwd", "url", "headers", "prefix", "tenants", "timeout_s",
         "type", "disabled", "description"}


@dataclass(frozen=True)
class UpstreamConfig:
    name: str
    prefix: str
    command: tuple[str, ...] = ()
    """argv of a stdio server (command first)."""
    env: Mapping[str, str] | None = None
    cwd: str | None = None
    url: str = ""
    """Streamable HTTP endpoint, used when ``command`` is empty."""
    headers: Mapping[str, str] | None = None
    tenants: frozenset[str] | None = None
    timeout_s: float = 30.0


@dataclass(frozen=True)
class UpstreamStatus:
    name: str
    ready: bool
    tools: int
    error: str


def _config(name: str, raw: Mapping[str, Any], timeout_s: float) -> UpstreamConfig:
    unknown = set(raw) - _KEYS
    if unknown:
        raise ValueError(f"upstream {name!r}: unknown keys {sorted(unknown)}; allowed: "
                         f"{sorted(_KEYS)}")
    if not _NAME.match(name):
        raise ValueError(f"upstream name {name!r} must be letters, digits, '_', '.' or '-'")
    command = raw.get("command")
    url = raw.get("url", "")
    if bool(command) == bool(url):
        raise ValueError(f"upstream {name!r} needs either 'command' (stdio) or 'url' "
                         "(streamable HTTP)")
    argv = (*([command] if isinstance(command, str) else list(command or [])),
            *map(str, raw.get("args") or []))
    tenants = raw.get("tenants")
    return UpstreamConfig(
        name=name, prefix=str(raw.get("prefix", f"{name}__")), command=tuple(argv),
        env={str(k): str(v) for k, v in (raw.get("env") or {}).items()} or None,
        cwd=raw.get("cwd"), url=str(url),
        headers={str(k): str(v) for k, v in (raw.get("headers") or {}).items()} or None,
        tenants=frozenset(map(str, tenants)) if tenants is not None else None,
        timeout_s=float(raw.get("timeout_s", timeout_s)))


def load_upstreams(path: Path, timeout_s: float = 30.0) -> list[UpstreamConfig]:
    """Upstreams from a JSON or YAML file with an ``mcpServers`` mapping.

    Raises:
        ValueError: the file is unreadable or an entry is malformed (says which).
    """
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read upstreams file {path}: {exc}") from None
    servers = doc.get("mcpServers") if isinstance(doc, dict) else None
    if not isinstance(servers, dict):
        raise ValueError(f"upstreams file {path}: expected a mapping 'mcpServers: {{name: "
                         "{command|url: ...}}}'")
    return [_config(str(name), raw, timeout_s) for name, raw in servers.items()
            if isinstance(raw, dict) and not raw.get("disabled")]


def _blocks(result: types.CallToolResult) -> tuple[ContentBlock, ...]:
    blocks: list[ContentBlock] = []
    for item in result.content:
        if isinstance(item, types.TextContent):
            blocks.append(TextBlock(item.text))
        elif isinstance(item, types.ImageContent):
            blocks.append(ImageBlock(base64.b64decode(item.data), item.mime_type))
        elif isinstance(item, types.AudioContent):
            blocks.append(ResourceBlock("audio:", item.mime_type,
                                        blob=base64.b64decode(item.data)))
        elif isinstance(item, types.EmbeddedResource):
            res = item.resource
            mime = res.mime_type or "application/octet-stream"
            if isinstance(res, types.TextResourceContents):
                blocks.append(ResourceBlock(str(res.uri), mime, text=res.text))
            else:
                blocks.append(ResourceBlock(str(res.uri), mime, blob=base64.b64decode(res.blob)))
        elif isinstance(item, types.ResourceLink):
            blocks.append(TextBlock(f"{item.name}: {item.uri}"))
    return tuple(blocks)


class _Upstream:
    """One upstream server and its supervisor."""

    def __init__(self, config: UpstreamConfig, ping_interval_s: float) -> None:
        self.config = config
        self.client: Client | None = None
        self.tools: tuple[ToolSpec, ...] = ()
        self.error = "not connected yet"
        self.attempted = asyncio.Event()
        self._ping_interval = ping_interval_s
        self._broken = asyncio.Event()

    @contextlib.asynccontextmanager
    async def _connect(self) -> AsyncIterator[Client]:
        cfg = self.config
        if cfg.command:
            params = StdioServerParameters(command=cfg.command[0], args=list(cfg.command[1:]),
                                           env=dict(cfg.env) if cfg.env else None, cwd=cfg.cwd)
            async with Client(params, cache=None, read_timeout_seconds=cfg.timeout_s) as client:
                yield client
            return
        async with create_mcp_http_client(headers=dict(cfg.headers or {})) as http:
            transport = streamable_http_client(cfg.url, http_client=http)
            async with Client(transport, cache=None,
                              read_timeout_seconds=cfg.timeout_s) as client:
                yield client

    def _spec(self, tool: types.Tool) -> ToolSpec:
        annotations = tool.annotations
        return ToolSpec(
            name=f"{self.config.prefix}{tool.name}", description=tool.description or "",
            input_schema=tool.input_schema, group=self.config.name, source=ToolSource.UPSTREAM,
            title=tool.title, read_only=bool(annotations and annotations.read_only_hint),
            tenants=self.config.tenants, upstream_name=tool.name)

    async def supervise(self) -> None:
        backoff = 0.5
        while True:
            try:
                async with self._connect() as client:
                    async with asyncio.timeout(self.config.timeout_s):
                        listed = await client.list_tools()
                    self.tools = tuple(self._spec(t) for t in listed.tools)
                    self.client, self.error = client, ""
                    self._broken.clear()
                    self.attempted.set()
                    logger.info("upstream %s connected: %d tools", self.config.name,
                                len(self.tools))
                    backoff = 0.5
                    await self._watch(client)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure of an upstream is reported, never raised
                self.error = _describe(exc)
            finally:
                self.client, self.tools = None, ()
            self.attempted.set()
            logger.warning("upstream %s unavailable (%s); retrying in %.1f s", self.config.name,
                           self.error, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)

    async def _watch(self, client: Client) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._ping_interval):
                    await self._broken.wait()
            if self._broken.is_set():
                self.error = self.error or "a call failed"
                return
            async with asyncio.timeout(self.config.timeout_s):
                await client.send_ping()

    def mark_broken(self, error: str) -> None:
        """Take the upstream out of the catalog now; its supervisor reconnects."""
        self.error = error
        self.client, self.tools = None, ()
        self._broken.set()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class Federation:
    """The upstream MCP servers of a gateway."""

    def __init__(self, configs: Sequence[UpstreamConfig], *, ping_interval_s: float = 10.0,
                 metrics: GatewayMetrics | None = None) -> None:
        self._upstreams = {c.name: _Upstream(c, ping_interval_s) for c in configs}
        self._tasks: list[asyncio.Task[None]] = []
        self._metrics = metrics

    async def start(self, wait_s: float = 5.0) -> None:
        """Start every supervisor; wait (bounded) for each first connection attempt."""
        self._tasks = [asyncio.create_task(u.supervise(), name=f"sandgate-upstream-{n}")
                       for n, u in self._upstreams.items()]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_s):
                await asyncio.gather(*(u.attempted.wait() for u in self._upstreams.values()))
        for status in self.status():
            if not status.ready:
                logger.warning("upstream %s is skipped for now: %s", status.name, status.error)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def tools(self) -> list[ToolSpec]:
        """Tools of the upstreams connected now."""
        if self._metrics is not None:
            self._metrics.upstreams_ready.set(
                sum(1 for u in self._upstreams.values() if u.client is not None))
        return [t for u in self._upstreams.values() for t in u.tools]

    def status(self) -> list[UpstreamStatus]:
        return [UpstreamStatus(n, u.client is not None, len(u.tools), u.error)
                for n, u in self._upstreams.items()]

    async def call(self, spec: ToolSpec, arguments: Mapping[str, Any]) -> ToolResult:
        """Forward a call to the tool's upstream.

        Raises:
            UpstreamUnavailableError: the upstream is down or the call broke.
            UpstreamTimeoutError: it did not answer within its timeout.
        """
        upstream = self._upstreams[spec.group]
        client = upstream.client
        if client is None:
            raise UpstreamUnavailableError(
                f"upstream {spec.group!r} is not connected ({upstream.error})")
        timeout = upstream.config.timeout_s
        try:
            async with asyncio.timeout(timeout):
                result = await client.call_tool(spec.upstream_name, dict(arguments),
                                                read_timeout_seconds=timeout)
        except TimeoutError:
            raise UpstreamTimeoutError(
                f"upstream {spec.group!r} did not answer {spec.upstream_name} within "
                f"{timeout:g} s") from None
        except MCPError as exc:
            raise UpstreamUnavailableError(
                f"upstream {spec.group!r} refused {spec.upstream_name}: {exc.message}") from None
        except Exception as exc:  # a broken connection: reconnect, report this call
            upstream.mark_broken(_describe(exc))
            raise UpstreamUnavailableError(
                f"upstream {spec.group!r} failed during {spec.upstream_name}: "
                f"{_describe(exc)}") from None
        return ToolResult(_blocks(result), is_error=bool(result.is_error),
                          structured=result.structured_content)
