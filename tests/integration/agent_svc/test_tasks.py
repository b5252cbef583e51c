"""Tasks: the embedded durable queue across a restart, and Celery with a real worker."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from agent_svc.tasks import INTERRUPTED, EmbeddedTaskRunner
from tests.integration.agent_svc.apps import tasks_app
from tests.integration.agent_svc.conftest import serving

ROOT = Path(__file__).resolve().parents[3]


async def _poll(client: httpx.AsyncClient, url: str, until: set[str],
                timeout: float = 20.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            reply = await client.get(url)
            assert reply.status_code == 200, reply.text
            body: dict[str, Any] = reply.json()
            if body["status"] in until:
                return body
            await asyncio.sleep(0.02)


async def test_a_task_is_submitted_then_polled_to_its_result(tmp_path: Path) -> None:
    async with serving(tasks_app(), tmp_path) as server, httpx.AsyncClient() as client:
        base = server.http_url
        submitted = await client.post(f"{base}/square", json={"x": 5})
        broken = await client.post(f"{base}/broken", json={})
        assert submitted.status_code == 200
        body = submitted.json()
        assert body["status"] == "submitted" and body["task_id"]
        done = await _poll(client, f"{base}/square/{body['task_id']}", {"finished", "error"})
        failed = await _poll(client, f"{base}/broken/{broken.json()['task_id']}",
                             {"finished", "error"})
        unknown = await client.get(f"{base}/square/no-such-task")
        not_json = await client.post(f"{base}/square", content=b"{x")
    assert done == {"status": "finished", "result": {"result": 25}}
    assert failed["status"] == "error" and failed["result"] == "KeyError: 'missing'"
    assert unknown.status_code == 404 and unknown.json()["code"] == "task_not_found"
    assert not_json.status_code == 422


async def test_a_restart_loses_no_task_and_reruns_only_idempotent_ones(tmp_path: Path) -> None:
    held = asyncio.Event()  # never set: the first server's slow tasks never finish
    async with httpx.AsyncClient() as client:
        async with serving(tasks_app(held), tmp_path, task_concurrency=2) as first:
            base = first.http_url
            done = (await client.post(f"{base}/square", json={"x": 3})).json()["task_id"]
            await _poll(client, f"{base}/square/{done}", {"finished"})
            slow = (await client.post(f"{base}/slow", json={})).json()["task_id"]
            again = (await client.post(f"{base}/slow-idempotent", json={})).json()["task_id"]
            await _poll(client, f"{base}/slow/{slow}", {"running"})
            await _poll(client, f"{base}/slow-idempotent/{again}", {"running"})
            # Both workers are busy: this one waits in the queue when the server stops.
            queued = (await client.post(f"{base}/square", json={"x": 4})).json()["task_id"]
            assert (await client.get(f"{base}/square/{queued}")).json()["status"] == "pending"

        async with serving(tasks_app(), tmp_path, task_concurrency=2) as second:
            base = second.http_url
            interrupted = await _poll(client, f"{base}/slow/{slow}", {"error", "finished"})
            rerun = await _poll(client, f"{base}/slow-idempotent/{again}",
                                {"error", "finished"})
            ran_late = await _poll(client, f"{base}/square/{queued}", {"error", "finished"})
            kept = (await client.get(f"{base}/square/{done}")).json()
    assert interrupted == {"status": "error", "result": INTERRUPTED}
    assert rerun == {"status": "finished", "result": "ran again"}
    assert ran_late == {"status": "finished", "result": {"result": 16}}
    assert kept == {"status": "finished", "result": {"result": 9}}


@pytest.fixture
def celery_worker(redis_url: str, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real Celery worker process (``sandgate agent-worker``) on the test's Redis."""
    env = {**os.environ, "SANDGATE_TASK_BROKER": redis_url, "SANDGATE_TASK_CONCURRENCY": "2",
           "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "sandgate.cli.main", "agent-worker",
         "--app", "tests.integration.agent_svc.apps:task_app"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield worker
    finally:
        worker.terminate()
        try:
            worker.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.communicate(timeout=10)


async def test_with_a_broker_tasks_run_on_a_celery_worker(
        tmp_path: Path, redis_url: str, celery_worker: subprocess.Popen[bytes]) -> None:
    async with serving(tasks_app(), tmp_path, task_broker=redis_url) as server, \
            httpx.AsyncClient() as client:
        base = server.http_url
        submitted = (await client.post(f"{base}/square", json={"x": 7})).json()
        failing = (await client.post(f"{base}/broken", json={})).json()
        done = await _poll(client, f"{base}/square/{submitted['task_id']}",
                           {"finished", "error"}, timeout=60)
        failed = await _poll(client, f"{base}/broken/{failing['task_id']}",
                             {"finished", "error"}, timeout=60)
    assert celery_worker.poll() is None, "the Celery worker exited"
    assert submitted["status"] == "submitted" and submitted["queue"] == "celery"
    assert done == {"status": "finished", "result": {"result": 49}}
    assert failed["status"] == "error" and "KeyError" in failed["result"]


async def test_a_second_runner_on_the_same_task_file_refuses_to_start(tmp_path: Path) -> None:
    first = EmbeddedTaskRunner(tmp_path / "agent-tasks.db")
    await first.start({})
    try:
        with pytest.raises(RuntimeError, match="used by another agent server"):
            await EmbeddedTaskRunner(tmp_path / "agent-tasks.db").start({})
    finally:
        await first.stop()
    second = EmbeddedTaskRunner(tmp_path / "agent-tasks.db")
    await second.start({})
    await second.stop()
