"""``run_ipython_cell``: the Friday agent's Python tool, run in a Sandgate sandbox.

It replaces agentscope's ``execute_python_code``, which runs code on the host
running the agent. Here each conversation (session) gets its own sandbox from
SandboxService, with a persistent IPython kernel: variables survive from one
call to the next, and nothing touches the host. The sandbox service is found at
``$SANDGATE_TARGET`` (default ``127.0.0.1:8002``) with ``$SANDGATE_API_KEY``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from agentscope.message import TextBlock
from agentscope.tool import ToolResponse

from sandgate import AsyncSandbox

__all__ = ["run_ipython_cell_in_sandbox"]


def run_ipython_cell_in_sandbox(session_id: str, user_id: str = ""
                                ) -> Callable[[str], Awaitable[ToolResponse]]:
    """The tool function for one conversation: its cells run in that session's sandbox."""

    async def run_ipython_cell(code: str) -> ToolResponse:
        """Run Python code in a persistent IPython kernel inside a secure sandbox.

        Variables, imports and files persist between calls in this conversation.
        The value of the last expression is returned, as in a notebook.

        Args:
            code (str): the Python code to run.
        """
        sbx = await AsyncSandbox.acquire(session_id, template="base", user_id=user_id)
        try:
            execution = await sbx.run_code(code, timeout=60.0)
        finally:
            await sbx.close()
        parts = []
        if execution.stdout:
            parts.append("stdout:\n" + "".join(execution.stdout))
        if execution.stderr:
            parts.append("stderr:\n" + "".join(execution.stderr))
        if execution.text is not None:
            parts.append(f"result: {execution.text}")
        if execution.error is not None:
            parts.append(f"error: {execution.error.name}: {execution.error.value}")
        text = "\n".join(parts) or "(no output)"
        return ToolResponse(content=[TextBlock(type="text", text=text)])

    return run_ipython_cell
