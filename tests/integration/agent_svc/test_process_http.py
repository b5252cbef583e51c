"""POST /process and the other routes of a real AgentApp server (uvicorn on 127.0.0.1:0)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2 as httpx
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agent_svc.app import AgentApp
from tests.integration.agent_svc.apps import Gate, echo_app, endpoints_app, gated_app
from tests.integration.agent_svc.conftest import USER_INPUT, parse_sse, read_events, serving


def _ask(text: str, **fields: object) -> dict[str, object]:
    return {"input": [{"role": "user", "content": [{"type": "text", "text": text}]}], **fields}


async def test_a_run_streams_the_recorded_event_sequence(tmp_path: Path) -> None:
    async with serving(echo_app(), tmp_path) as server, httpx.AsyncClient() as client:
        status, events = await read_events(client, f"{server.http_url}/process",
                                           _ask("hello", id="req-1"))
    assert status == 200
    assert [(e["object"], e["status"]) for e in events] == [
        ("response", "created"), ("response", "in_progress"), ("message", "in_progress"),
        ("content", "in_progress"), ("content", "in_progress"), ("message", "completed"),
        ("response", "completed")]
    assert [e["sequence_number"] for e in events] == list(range(7))
    assert {e["id"] for e in events if e["object"] == "response"} == {"req-1"}
    final = events[-1]
    assert final["output"][0]["content"][0]["text"] == "you said: hello"
    assert final["output"][0]["content"][0]["delta"] is None
    assert final["session_id"]  # generated for a request without one


async def test_stream_false_answers_one_json_response(tmp_path: Path) -> None:
    async with serving(echo_app(), tmp_path) as server, httpx.AsyncClient() as client:
        reply = await client.post(f"{server.http_url}/process",
                                  json=_ask("hi", stream=False, session_id="s-1"))
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    body = reply.json()
    assert body["object"] == "response" and body["status"] == "completed"
    assert body["session_id"] == "s-1"
    assert body["output"][0]["content"][0]["text"] == "you said: hi"


async def test_a_malformed_body_gets_422_naming_the_field(tmp_path: Path) -> None:
    async with serving(echo_app(), tmp_path) as server, httpx.AsyncClient() as client:
        missing = await client.post(f"{server.http_url}/process", json={"session_id": "s"})
        wrong = await client.post(f"{server.http_url}/process",
                                  json={"input": "hello", "stream": "sometimes"})
        not_json = await client.post(f"{server.http_url}/process", content=b"{nope")
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "input"]
    assert wrong.status_code == 422
    assert {tuple(d["loc"]) for d in wrong.json()["detail"]} == {
        ("body", "input"), ("body", "stream")}
    assert not_json.status_code == 422


async def test_an_exception_ends_the_stream_failed_without_a_traceback(tmp_path: Path) -> None:
    async with serving(echo_app(), tmp_path) as server, httpx.AsyncClient() as client:
        status, events = await read_events(client, f"{server.http_url}/process", _ask("fail"))
    assert status == 200
    final = events[-1]
    assert final["status"] == "failed"
    assert final["error"] == {"code": "agent_error",
                              "message": "ValueError: the model is unreachable"}
    assert events[-2]["object"] == "message" and events[-2]["status"] == "incomplete"
    assert "Traceback" not in str(events)


class QuotaSpentError(Exception):
    """An agent's domain error with a stable code, as the built-in agent's errors carry."""

    code = "quota_spent"


async def test_an_error_with_its_own_code_fails_the_run_with_that_code_and_its_message(
        tmp_path: Path) -> None:
    app = AgentApp(app_name="Coded")

    @app.query()
    async def query(self: AgentApp, msgs: object, **kwargs: object) -> AsyncIterator[str]:
        yield "working"
        raise QuotaSpentError("the monthly quota is spent; raise it or wait")

    async with serving(app, tmp_path) as server, httpx.AsyncClient() as client:
        status, events = await read_events(client, f"{server.http_url}/process", _ask("go"))
    assert status == 200
    assert events[-1]["status"] == "failed"
    assert events[-1]["error"] == {"code": "quota_spent",
                                   "message": "the monthly quota is spent; raise it or wait"}


async def test_a_tool_message_is_streamed_as_a_plugin_call(tmp_path: Path) -> None:
    async with serving(echo_app(), tmp_path) as server, httpx.AsyncClient() as client:
        _, events = await read_events(client, f"{server.http_url}/process", _ask("tool"))
    assert [m["type"] for m in events[-1]["output"]] == ["plugin_call", "message"]
    data = [e for e in events if e["object"] == "content" and e["type"] == "data"]
    assert data[0]["data"]["name"] == "run_shell_command" and data[0]["delta"] is False


async def test_cancel_interrupts_a_run_and_its_stream_ends_canceled(tmp_path: Path) -> None:
    gate = Gate()
    async with serving(gated_app(gate), tmp_path) as server, httpx.AsyncClient() as client:
        run = asyncio.create_task(read_events(client, f"{server.http_url}/process",
                                              _ask("go", session_id="s-cancel")))
        async with asyncio.timeout(10):
            await gate.entered.wait()
        reply = await client.post(f"{server.http_url}/process/cancel",
                                  json={"session_id": "s-cancel"})
        async with asyncio.timeout(10):
            _, events = await run
        again = await client.post(f"{server.http_url}/process/cancel",
                                  json={"session_id": "s-cancel"})
        malformed = await client.post(f"{server.http_url}/process/cancel", json={})
    assert reply.status_code == 200 and reply.json()["status"] == "canceling"
    assert reply.json()["response_id"] == events[0]["id"]
    assert gate.cancelled.is_set()
    assert events[-1]["status"] == "canceled"
    assert events[-1]["output"][0]["status"] == "incomplete"
    assert again.status_code == 404 and again.json()["code"] == "run_not_found"
    assert malformed.status_code == 422


async def test_a_second_run_of_a_busy_session_is_refused_not_interleaved(
        tmp_path: Path) -> None:
    gate = Gate()
    async with serving(gated_app(gate), tmp_path) as server, httpx.AsyncClient() as client:
        url = f"{server.http_url}/process"
        first = asyncio.create_task(read_events(client, url, _ask("a", session_id="busy")))
        async with asyncio.timeout(10):
            await gate.entered.wait()
        second = await client.post(url, json=_ask("b", session_id="busy"))
        other = asyncio.create_task(read_events(client, url, _ask("c", session_id="free")))
        await asyncio.sleep(0)
        gate.release.set()
        async with asyncio.timeout(10):
            (_, first_events), (_, other_events) = await asyncio.gather(first, other)
        after = await client.post(url, json=_ask("d", session_id="busy", stream=False))
    assert second.status_code == 409 and second.json()["code"] == "session_busy"
    assert first_events[-1]["status"] == "completed"
    assert other_events[-1]["status"] == "completed"
    assert after.status_code == 200


async def test_runs_are_recorded_in_the_session_history(tmp_path: Path) -> None:
    app = echo_app()
    async with serving(app, tmp_path) as server, httpx.AsyncClient() as client:
        await client.post(f"{server.http_url}/process",
                          json=_ask("one", session_id="h", user_id="u", stream=False))
        await client.post(f"{server.http_url}/process",
                          json=_ask("two", session_id="h", user_id="u", stream=False))
        assert app.session_history is not None
        session = await app.session_history.get_session("u", "h")
    assert session is not None
    assert [m.text() for m in session.messages] == ["one", "you said: one", "two",
                                                    "you said: two"]


async def test_custom_endpoints_answer_json_and_generators_stream(tmp_path: Path) -> None:
    async with serving(endpoints_app(), tmp_path) as server, httpx.AsyncClient() as client:
        base = server.http_url
        sync = await client.get(f"{base}/sync", params={"name": "ada"})
        coroutine = await client.post(f"{base}/async", json={"count": 21})
        bad = await client.post(f"{base}/async", json={"count": "many"})
        agen = await client.post(f"{base}/agen", json={"count": 3})
        gen = await client.get(f"{base}/gen")
        native = await client.get(f"{base}/native")
    assert sync.json() == {"hello": "ada"}
    assert coroutine.json() == {"double": 42}
    assert bad.status_code == 422
    assert agen.headers["content-type"].startswith("text/event-stream")
    assert parse_sse(agen.text) == [{"i": 0}, {"i": 1}, {"i": 2}]
    events = parse_sse(gen.text)
    assert events[:2] == [{"step": 1}, {"count": 2}]
    assert events[2]["error"]["code"] == "endpoint_error"
    assert native.json() == {"native": "fastapi"}


async def test_probes_and_init_and_shutdown_handlers(tmp_path: Path) -> None:
    app = echo_app()
    answers = {"gateway": False}

    @app.readiness_check
    async def gateway() -> bool:
        return answers["gateway"]

    async with serving(app, tmp_path) as server, httpx.AsyncClient() as client:
        health = await client.get(f"{server.http_url}/health")
        live = await client.get(f"{server.http_url}/liveness")
        not_ready = await client.get(f"{server.http_url}/readiness")
        answers["gateway"] = True
        ready = await client.get(f"{server.http_url}/readiness")
        assert app.state_log == ["init"]  # type: ignore[attr-defined]
    assert health.status_code == 200 and health.json()["status"] == "healthy"
    assert live.status_code == 200
    assert not_ready.status_code == 503
    assert not_ready.json() == {"ready": False, "checks": {"gateway": False}}
    assert ready.status_code == 200
    assert app.state_log == ["init", "shutdown"]  # type: ignore[attr-defined]


async def test_with_keys_every_route_but_the_probes_needs_a_bearer_key(tmp_path: Path) -> None:
    app = echo_app()
    async with serving(app, tmp_path, api_keys="k-acme=acme") as server, \
            httpx.AsyncClient() as client:
        url = f"{server.http_url}/process"
        anonymous = await client.post(url, json=_ask("hi", stream=False))
        wrong = await client.post(url, json=_ask("hi", stream=False),
                                  headers={"Authorization": "Bearer nope"})
        good = await client.post(url, json=_ask("hi", stream=False, session_id="k",
                                                 user_id="u"),
                                 headers={"Authorization": "Bearer k-acme"})
        root = await client.get(f"{server.http_url}/")
        health = await client.get(f"{server.http_url}/health")
        assert app.session_history is not None
        # The run is recorded under the tenant's user: tenants never share one.
        recorded = await app.session_history.get_session("acme:u", "k")
        assert recorded is not None and len(recorded.messages) == 2
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "unauthenticated"
    assert wrong.status_code == 401
    assert good.status_code == 200 and good.json()["status"] == "completed"
    assert root.status_code == 401
    assert health.status_code == 200


async def test_an_app_without_a_query_function_says_so(tmp_path: Path) -> None:
    async with serving(AgentApp(), tmp_path) as server, httpx.AsyncClient() as client:
        reply = await client.post(f"{server.http_url}/process", json={"input": USER_INPUT})
    assert reply.status_code == 501 and reply.json()["code"] == "not_configured"


async def test_each_run_is_a_span_that_continues_the_callers_trace(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
    async with serving(echo_app(tracer_provider=provider), tmp_path) as server, \
            httpx.AsyncClient() as client:
        await client.post(f"{server.http_url}/process", headers=headers,
                          json=_ask("hi", stream=False, session_id="traced", user_id="u"))
        await client.post(f"{server.http_url}/process", json=_ask("fail", stream=False))
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["agent.run", "agent.run"]
    ok, failed = spans
    assert format(ok.context.trace_id, "032x") == trace_id
    assert ok.attributes is not None and failed.attributes is not None
    assert ok.attributes["sandgate.session_id"] == "traced"
    assert ok.attributes["sandgate.run_status"] == "completed"
    assert failed.attributes["sandgate.run_status"] == "failed"
    assert failed.status.status_code.name == "ERROR"


async def test_a_fastapi_lifespan_and_app_state_work_as_in_the_seed(tmp_path: Path) -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.greeting = "hello from lifespan"
        events.append("started")
        yield
        events.append("stopped")

    app = AgentApp(app_name="Lifespan", lifespan=lifespan)

    @app.query(framework="sandgate")
    async def query(self: AgentApp, msgs: list[object], request: object = None,
                    **kwargs: object) -> AsyncIterator[str]:
        yield self.state.greeting

    async with serving(app, tmp_path) as server, httpx.AsyncClient() as client:
        reply = await client.post(f"{server.http_url}/process",
                                  json=_ask("hi", stream=False))
        assert events == ["started"]
    assert reply.json()["output"][0]["content"][0]["text"] == "hello from lifespan"
    assert events == ["started", "stopped"]
