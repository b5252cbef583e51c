"""agent_svc and sandgate.agent import without mcp and without the other services."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

_BLOCKED = textwrap.dedent("""
    import importlib.abc, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("mcp", "gateway", "sandbox_svc", "playwright"):
                raise ModuleNotFoundError(f"blocked for this test: {name}")
            return None

    sys.meta_path.insert(0, Block())
    from sandgate.agent import AgentApp, AgentRequest, InMemoryStateService, sequential
    from sandgate.agent import SQLiteSessionHistoryService, RedisStateService
    import agent_svc.server, agent_svc.tasks.celery_runner, agent_svc.grpc_server
    import agent_svc.adapters.agentscope
    print(AgentApp.__name__, AgentRequest.__name__)
""")


def test_the_agent_packages_import_with_mcp_and_the_sandbox_services_blocked() -> None:
    result = subprocess.run([sys.executable, "-c", _BLOCKED], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["AgentApp", "AgentRequest"]
