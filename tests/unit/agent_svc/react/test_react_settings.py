"""The agent's settings: the familiar key names, approval globs, the missing-model error."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent_svc.react import ModelNotConfiguredError, ReactSettings

_KEYS = ("SANDGATE_MODEL_BASE_URL", "SANDGATE_MODEL", "SANDGATE_MODEL_API_KEY",
         "OPENAI_API_KEY", "DASHSCOPE_API_KEY", "SANDGATE_AGENT_APPROVAL_TOOLS",
         "SANDGATE_AGENT_MAX_STEPS")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in _KEYS:
        monkeypatch.delenv(key, raising=False)


def test_the_dashscope_example_configures_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDGATE_MODEL_BASE_URL",
                       "https://dashscope.aliyuncs.com/compatible-mode/v1")
    monkeypatch.setenv("SANDGATE_MODEL", "qwen-turbo")
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-dash")
    monkeypatch.setenv("SANDGATE_AGENT_MAX_STEPS", "4")
    settings = ReactSettings()
    settings.check_model()
    assert (settings.model, settings.model_api_key, settings.max_steps) == (
        "qwen-turbo", "sk-dash", 4)


def test_the_sandgate_key_wins_over_openai_and_dashscope_keys(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-dash")
    assert ReactSettings().model_api_key == "sk-openai"
    monkeypatch.setenv("SANDGATE_MODEL_API_KEY", "sk-own")
    assert ReactSettings().model_api_key == "sk-own"


def test_without_a_model_the_error_names_only_the_missing_keys(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDGATE_MODEL", "qwen-turbo")
    with pytest.raises(ModelNotConfiguredError) as info:
        ReactSettings().check_model()
    assert info.value.code == "model_not_configured"
    assert "SANDGATE_MODEL_BASE_URL" in info.value.message
    assert "SANDGATE_MODEL_API_KEY (or OPENAI_API_KEY or DASHSCOPE_API_KEY)" in info.value.message
    assert "SANDGATE_MODEL," not in info.value.message


def test_approval_tools_are_names_or_globs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDGATE_AGENT_APPROVAL_TOOLS", " run_* , write_file,,")
    settings = ReactSettings()
    assert settings.approval_patterns() == ("run_*", "write_file")
    assert settings.needs_approval("run_shell_command")
    assert settings.needs_approval("write_file")
    assert not settings.needs_approval("read_file")
    assert not ReactSettings(approval_tools="").needs_approval("run_shell_command")


def test_out_of_range_limits_are_refused_with_the_allowed_range() -> None:
    with pytest.raises(ValidationError, match="between 1 and 1000"):
        ReactSettings(max_steps=0)
    with pytest.raises(ValidationError, match="positive"):
        ReactSettings(model_timeout_s=0)
