"""failure_result: the one mapping from a failed status to what an MCP caller sees."""

from __future__ import annotations

import grpc
import pytest

from gateway.errors import Hop, ProtocolError, failure_result

Code = grpc.StatusCode


@pytest.mark.parametrize("hop,code", [
    (Hop.GATEWAY, Code.NOT_FOUND), (Hop.GATEWAY, Code.INVALID_ARGUMENT),
    (Hop.SANDBOX, Code.NOT_FOUND), (Hop.SANDBOX, Code.INVALID_ARGUMENT),
    (Hop.SANDBOX, Code.FAILED_PRECONDITION), (Hop.SANDBOX, Code.RESOURCE_EXHAUSTED),
    (Hop.SANDBOX, Code.DEADLINE_EXCEEDED), (Hop.CONTROL_PLANE, Code.RESOURCE_EXHAUSTED),
    (Hop.UPSTREAM, Code.UNAVAILABLE),
    (Hop.UPSTREAM, Code.INTERNAL),
])
def test_bad_input_missing_things_and_limits_are_error_results(hop: Hop, code: Code) -> None:
    result = failure_result(hop, code, "what went wrong", sandbox_id="sbx-1")
    assert result.is_error and result.sandbox_id == "sbx-1"
    assert result.text.startswith("Error: what went wrong")


def test_limits_come_with_a_hint_the_model_can_act_on() -> None:
    result = failure_result(Hop.CONTROL_PLANE, Code.RESOURCE_EXHAUSTED, "limit of 64")
    assert "sandbox_release" in result.text


@pytest.mark.parametrize("hop,code", [
    (Hop.CONTROL_PLANE, Code.INVALID_ARGUMENT), (Hop.CONTROL_PLANE, Code.UNAUTHENTICATED),
    (Hop.SANDBOX, Code.UNAUTHENTICATED), (Hop.GATEWAY, Code.FAILED_PRECONDITION),
])
def test_misconfiguration_is_a_protocol_error_that_hides_the_detail(hop: Hop,
                                                                     code: Code) -> None:
    with pytest.raises(ProtocolError) as raised:
        failure_result(hop, code, "secret-token-xyz rejected")
    assert raised.value.code == Code.FAILED_PRECONDITION
    assert "secret-token-xyz" not in str(raised.value) and "request" in str(raised.value)


def test_internal_faults_are_protocol_errors_with_only_a_request_id() -> None:
    with pytest.raises(ProtocolError) as raised:
        failure_result(Hop.SANDBOX, Code.INTERNAL, "Traceback (most recent call last)")
    assert raised.value.code == Code.INTERNAL
    assert "Traceback" not in str(raised.value)


def test_control_plane_outages_hide_their_details_behind_a_request_id() -> None:
    result = failure_result(Hop.CONTROL_PLANE, Code.UNAVAILABLE,
                            "sandbox exited during start-up: Traceback (most recent call last)")
    assert result.is_error and "Traceback" not in result.text
    assert "request" in result.text and "retry" in result.text
