"""The gateway's channel to sandbox_svc comes back soon after sandbox_svc does."""

from __future__ import annotations

from gateway.control import CHANNEL_OPTIONS


def test_reconnect_backoff_to_a_restarted_sandbox_svc_is_capped_at_a_few_seconds() -> None:
    # gRPC's default cap is 120 s: after a 30 s outage new sessions were still told
    # "unreachable" for 12 s after sandbox_svc was back (tests/faults measures it).
    options = dict(CHANNEL_OPTIONS)
    assert 0 < int(options["grpc.max_reconnect_backoff_ms"]) <= 5000
    assert int(options["grpc.initial_reconnect_backoff_ms"]) <= \
        int(options["grpc.max_reconnect_backoff_ms"])
