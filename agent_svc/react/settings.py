"""Configuration of the built-in ReAct agent: the model endpoint, limits, approvals.

Every field reads ``SANDGATE_<NAME>``; the model's key is also taken from
``OPENAI_API_KEY`` or ``DASHSCOPE_API_KEY``, the names users already have set.
DashScope's compatible mode is the documented example::

    SANDGATE_MODEL_BASE_URL=https://dashscope.aliyuncs.com/compatible-mode/v1
    SANDGATE_MODEL=qwen-turbo
    DASHSCOPE_API_KEY=sk-...

Any OpenAI-compatible chat-completions endpoint (vLLM, Ollama, OpenAI) works the
same way.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent_svc.react.errors import ModelNotConfiguredError

__all__ = ["DEFAULT_SYSTEM_PROMPT", "MODEL_KEYS", "ReactSettings"]

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant. You have tools that run in a sandbox of your own: "
    "run_ipython_cell runs Python in a persistent kernel, run_shell_command runs shell "
    "commands, and there are file tools. When a question needs computing, code or files, "
    "use the tools and check the results instead of guessing; then answer the user "
    "briefly, in the user's language.")

MODEL_KEYS = ("SANDGATE_MODEL_BASE_URL", "SANDGATE_MODEL",
              "SANDGATE_MODEL_API_KEY (or OPENAI_API_KEY or DASHSCOPE_API_KEY)")
"""What a user sets to give the agent a model; named in the not-configured error."""


def _alias(name: str, *more: str) -> AliasChoices:
    return AliasChoices(f"SANDGATE_{name}", *more)


class ReactSettings(BaseSettings):
    """Settings of the built-in ReAct agent."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True,
                                      protected_namespaces=())

    model_base_url: str = Field("", validation_alias=_alias("MODEL_BASE_URL"))
    """OpenAI-compatible endpoint, e.g. ``https://dashscope.aliyuncs.com/compatible-mode/v1``."""
    model_api_key: str = Field(
        "", validation_alias=_alias("MODEL_API_KEY", "OPENAI_API_KEY", "DASHSCOPE_API_KEY"))
    """Key sent as ``Authorization: Bearer``; never logged."""
    model: str = Field("", validation_alias=_alias("MODEL"))
    """Model name, e.g. ``qwen-turbo``; a request's ``model`` field overrides it."""
    model_timeout_s: float = Field(60.0, validation_alias=_alias("MODEL_TIMEOUT_S"))
    """Longest wait for the model to connect, or between two parts of its answer."""
    model_max_retries: int = Field(2, validation_alias=_alias("MODEL_MAX_RETRIES"))
    """Retries of a model call that failed to connect, timed out or got a 5xx/429."""
    max_steps: int = Field(10, validation_alias=_alias("AGENT_MAX_STEPS"))
    """Most model calls in one run; a run still calling tools after them fails
    with ``max_steps_exceeded``."""
    approval_tools: str = Field("", validation_alias=_alias("AGENT_APPROVAL_TOOLS"))
    """Comma-separated tool names or globs (``run_*``) that need a human's approval."""
    system_prompt: str = Field(DEFAULT_SYSTEM_PROMPT,
                               validation_alias=_alias("AGENT_SYSTEM_PROMPT"))
    tool_timeout_s: float = Field(600.0, validation_alias=_alias("AGENT_TOOL_TIMEOUT_S"))
    """Deadline of one tool call through the gateway."""
    tools_ttl_s: float = Field(30.0, validation_alias=_alias("AGENT_TOOLS_TTL_S"))
    """How long a listing of the gateway's tools is reused."""
    gateway_target: str = Field("127.0.0.1:8001",
                                validation_alias=_alias("GATEWAY_TARGET"))
    """gRPC address of the gateway's ToolGateway."""
    gateway_api_key: str = Field("", validation_alias=_alias("GATEWAY_KEY",
                                                            "SANDGATE_GATEWAY_API_KEY"))
    """Key presented to the gateway (empty when it runs without keys; the agent
    server falls back to its service key, ``BEARER_TOKEN``)."""

    @field_validator("model_timeout_s", "tool_timeout_s")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("timeouts must be positive (seconds)")
        return value

    @field_validator("tools_ttl_s")
    @classmethod
    def _non_negative(cls, value: float) -> float:
        if value < 0:
            raise ValueError("must not be negative (seconds; 0 lists the tools every run)")
        return value

    @field_validator("max_steps")
    @classmethod
    def _steps(cls, value: int) -> int:
        if not 1 <= value <= 1000:
            raise ValueError("max_steps must be between 1 and 1000")
        return value

    @field_validator("model_max_retries")
    @classmethod
    def _retries(cls, value: int) -> int:
        if not 0 <= value <= 10:
            raise ValueError("model_max_retries must be between 0 and 10")
        return value

    def approval_patterns(self) -> tuple[str, ...]:
        """The names and globs of ``approval_tools``, blanks dropped."""
        return tuple(filter(None, (p.strip() for p in self.approval_tools.split(","))))

    def needs_approval(self, tool: str) -> bool:
        """True when a call of ``tool`` waits for a human's approval."""
        return any(fnmatchcase(tool, pattern) for pattern in self.approval_patterns())

    def check_model(self) -> None:
        """Raise unless a model endpoint, a model name and a key are set.

        Raises:
            ModelNotConfiguredError: naming the keys that are missing.
        """
        missing = [key for key, value in zip(
            MODEL_KEYS, (self.model_base_url, self.model, self.model_api_key), strict=True)
            if not value]
        if missing:
            raise ModelNotConfiguredError(
                "the built-in agent has no model: set " + ", ".join(missing) + " (for "
                "example SANDGATE_MODEL_BASE_URL=https://dashscope.aliyuncs.com/"
                "compatible-mode/v1 and SANDGATE_MODEL=qwen-turbo with DASHSCOPE_API_KEY)")
