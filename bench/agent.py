"""Agent service benchmarks: ``/process`` throughput and time to the first event.

``run_agent_bench(quick)`` serves :data:`bench.agent_app.app` (a query function
yielding one text message) with ``python -m agent_svc`` in a process of its own,
with the default settings (runs recorded in the SQLite session history), and
drives it with a minimal HTTP/1.1 client over keep-alive connections, so that
the client costs little next to the server:

- ``process_rps_c16``: completed ``/process`` streams per second, 16 clients each
  sending its next request when its last stream ended;
- ``process_first_event_ms_p50``: one client, request sent to the first SSE event read;
- ``process_stream_ms_p50``: one client, request sent to the stream's last byte.

``python -m bench.agent [--quick]`` prints the numbers as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["run_agent_bench"]

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 16
_URL = re.compile(r"at http://([\d.]+):(\d+)/process")
_BODY = json.dumps({"input": [{"role": "user", "content": [{"type": "text", "text": "ping"}]}]})


def _progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


class _Connection:
    """One keep-alive HTTP/1.1 connection that posts /process and reads the chunked SSE."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 host: str) -> None:
        self._reader = reader
        self._writer = writer
        body = _BODY.encode()
        self._request = (f"POST /process HTTP/1.1\r\nHost: {host}\r\n"
                         f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                         f"\r\n").encode() + body

    @classmethod
    async def open(cls, host: str, port: int) -> _Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, f"{host}:{port}")

    async def process(self) -> tuple[float, float]:
        """Seconds to the first event and to the end of the stream."""
        start = time.perf_counter()
        self._writer.write(self._request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"/process answered {head[:40]!r}")
        first = 0.0
        body = b""
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await self._reader.readexactly(size + 2)
            if not first and size:
                first = time.perf_counter() - start
            if size == 0:
                break
            body += chunk[:-2]
        if b'"status":"completed","error":null,"id":"response_' not in body:
            raise RuntimeError("a /process stream did not complete")
        return first, time.perf_counter() - start

    async def close(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()


async def _throughput(host: str, port: int, seconds: float) -> float:
    connections = [await _Connection.open(host, port) for _ in range(CLIENTS)]
    done = 0
    deadline = 0.0

    async def client(connection: _Connection) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await connection.process()
            done += 1

    # Warm up (imports, first SQLite writes), then count.
    deadline = time.perf_counter() + 1.0
    await asyncio.gather(*(client(c) for c in connections))
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(*(client(c) for c in connections))
    elapsed = time.perf_counter() - start
    for connection in connections:
        await connection.close()
    return done / elapsed


async def _latency(host: str, port: int, n: int) -> tuple[list[float], list[float]]:
    connection = await _Connection.open(host, port)
    firsts, totals = [], []
    for _ in range(20):
        await connection.process()
    for _ in range(n):
        first, total = await connection.process()
        firsts.append(first)
        totals.append(total)
    await connection.close()
    return firsts, totals


async def run_agent_bench(quick: bool) -> dict[str, object]:
    """Serve the trivial app in its own process and measure it."""
    state = Path(tempfile.mkdtemp(prefix="sg-agent-bench-"))
    env = {**os.environ, "SANDGATE_AGENT_STATE_DIR": str(state), "PYTHONPATH": str(ROOT),
           "SANDGATE_API_KEYS": "", "BEARER_TOKEN": ""}
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent_svc", "--app", "bench.agent_app:app", "--port", "0",
        "--grpc-port", "-1", cwd=state, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL)
    try:
        assert server.stdout is not None
        async with asyncio.timeout(60):
            line = (await server.stdout.readline()).decode()
        found = _URL.search(line)
        if found is None:
            raise RuntimeError(f"the agent server did not start: {line!r}")
        host, port = found.group(1), int(found.group(2))
        n = 100 if quick else 300
        _progress(f"/process first event and whole stream, one client ({n} runs)")
        firsts, totals = await _latency(host, port, n)
        seconds = 3.0 if quick else 10.0
        _progress(f"/process throughput, {CLIENTS} clients ({seconds:g} s)")
        rps = await _throughput(host, port, seconds)
    finally:
        if server.returncode is None:
            server.terminate()
            try:
                async with asyncio.timeout(20):
                    await server.wait()
            except TimeoutError:
                server.kill()
                await server.wait()
        shutil.rmtree(state, ignore_errors=True)
    return {"process_rps_c16": round(rps, 1),
            "process_first_event_ms_p50": round(statistics.median(firsts) * 1000, 2),
            "process_stream_ms_p50": round(statistics.median(totals) * 1000, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.agent",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, shorter load")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run_agent_bench(args.quick)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
