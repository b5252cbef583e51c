from __future__ import annotations

from pathlib import Path

import pytest

from sandbox_svc.settings import SandboxServiceSettings


def test_agentscope_env_file_keys_are_understood(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("PORT", "POOL_SIZE", "DEFAULT_SANDBOX_TYPE", "BEARER_TOKEN", "AUTO_CLEANUP"):
        monkeypatch.delenv(key, raising=False)
    env = tmp_path / "custom.env"
    env.write_text("HOST=0.0.0.0\nPORT=9123\nPOOL_SIZE=2\nDEFAULT_SANDBOX_TYPE=filesystem\n"
                   "BEARER_TOKEN=s3cret\nAUTO_CLEANUP=false\nCONTAINER_DEPLOYMENT=local\n"
                   "REDIS_ENABLED=False\n")
    settings = SandboxServiceSettings.load(env)
    assert (settings.host, settings.port, settings.pool_size) == ("0.0.0.0", 9123, 2)
    assert settings.default_template == "filesystem"
    assert settings.auto_cleanup is False
    assert settings.tenant_keys() == {"s3cret": "default"}
    assert settings.service_keys() == frozenset({"s3cret"})


def test_sandgate_prefixed_keys_win_over_seed_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDGATE_SANDBOX_PORT", "7001")
    monkeypatch.setenv("PORT", "7002")
    assert SandboxServiceSettings.load().port == 7001


def test_api_keys_parse_to_tenants(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDGATE_API_KEYS", "k1=acme, k2=globex")
    monkeypatch.delenv("BEARER_TOKEN", raising=False)
    assert SandboxServiceSettings.load().tenant_keys() == {"k1": "acme", "k2": "globex"}


def test_malformed_api_key_entry_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDGATE_API_KEYS", "justakey")
    with pytest.raises(ValueError, match="key=tenant"):
        SandboxServiceSettings.load().tenant_keys()


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SandboxServiceSettings.load(tmp_path / "nope.env")
