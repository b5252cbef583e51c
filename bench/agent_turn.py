"""Agent benchmark: one built-in-agent turn with a tool call, the model answering at once.

``run_agent_turn_bench(quick)`` starts SandboxService (real bwrap sandboxes), the
gateway and the scripted model server (a fake OpenAI-compatible endpoint that
answers without thinking) in this process, and times
:meth:`ReactAgent.run` for one request of one session:

- ``agent_tool_turn_ms_p50``: model call -> ``run_shell_command("echo hi")``
  through the gateway (ToolGateway gRPC) in the session's warm sandbox -> model
  call -> answer; what the agent itself adds to a turn, without model latency.

``python -m bench.agent_turn [--quick]`` prints the numbers as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from agent_svc.protocol import AgentRequest, Message, MessageType, Role, TextContent
from agent_svc.react import ReactAgent, ReactSettings
from gateway.server import build_gateway
from gateway.settings import GatewaySettings
from sandbox_svc.server import build_server
from sandbox_svc.settings import SandboxServiceSettings
from sandgate.sdk import AsyncToolGateway
from tests.fixtures.scripted_model import SCRIPTS, ScriptedModel

__all__ = ["run_agent_turn_bench"]

_WARM_RUNS = 5


def _progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


async def _turn(agent: ReactAgent, request: AgentRequest) -> None:
    outputs = [item async for item in agent.run(request.input, request)
               if isinstance(item, Message) and item.type == MessageType.PLUGIN_CALL_OUTPUT]
    if len(outputs) != 1:
        raise RuntimeError(f"expected one tool call per turn, got {len(outputs)}")


async def run_agent_turn_bench(quick: bool) -> dict[str, float]:
    """Time the built-in agent's tool turn; see the module docstring."""
    n = 20 if quick else 60
    state = Path(tempfile.mkdtemp(prefix="sg-bag-", dir="/tmp"))
    state.chmod(0o711)
    templates = state / "templates.yaml"
    # Base tools run in the filesystem template by default; nothing else is warmed.
    templates.write_text("templates:\n  - {name: base, pool_size: 0}\n"
                         "  - {name: filesystem, tool_groups: [base, filesystem], pool_size: 1}\n"
                         "  - {name: browser, tool_groups: [base, filesystem, browser], "
                         "network: true, pool_size: 0}\n")
    sandboxes = await build_server(SandboxServiceSettings(
        host="127.0.0.1", port=0, state_dir=state, pool_size=None, max_sandboxes=8,
        templates_file=templates, api_keys="", bearer_token="bench-service-key",
        auto_cleanup=True, reap_interval_s=3600.0))
    try:
        gateway = await build_gateway(GatewaySettings(
            port=0, grpc_port=0, sandbox_target=sandboxes.address,
            sandbox_key="bench-service-key", api_keys="", bearer_token=""))
        try:
            async with ScriptedModel(SCRIPTS["echo"]) as model:
                settings = ReactSettings(
                    model_base_url=model.base_url, model="scripted", model_api_key="bench",
                    model_max_retries=0, approval_tools="")
                agent = ReactAgent(settings, lambda: AsyncToolGateway(gateway.grpc_address))
                request = AgentRequest(
                    input=[Message(role=Role.USER, content=[TextContent(text="say hi")])],
                    session_id="bench-agent", user_id="bench")
                try:
                    _progress(f"built-in agent tool turn ({n} runs)")
                    for _ in range(_WARM_RUNS):  # binds the sandbox, opens connections
                        await _turn(agent, request)
                    samples = []
                    for _ in range(n):
                        start = time.perf_counter()
                        await _turn(agent, request)
                        samples.append(time.perf_counter() - start)
                finally:
                    await agent.close()
        finally:
            await gateway.stop(grace=0.5)
    finally:
        await sandboxes.stop(grace=0.5)
        shutil.rmtree(state, ignore_errors=True)
    return {"agent_tool_turn_ms_p50": round(statistics.median(samples) * 1000, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.agent_turn",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run_agent_turn_bench(args.quick)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
