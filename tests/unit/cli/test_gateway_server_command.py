from __future__ import annotations

from pathlib import Path

import pytest

from sandgate.cli.main import build_parser, main


def test_gateway_server_is_a_command_with_a_config_option() -> None:
    args = build_parser().parse_args(["gateway-server", "--config", "gateway.env"])
    assert (args.command, args.config) == ("gateway-server", Path("gateway.env"))


def test_gateway_server_runs_the_gateway_entry_point_and_reports_a_missing_config(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "absent.env"
    assert main(["gateway-server", "--config", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gateway: ") and str(missing) in err
