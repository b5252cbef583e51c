#!/usr/bin/env bash
# One command: bash examples/friday_agentscope/run.sh
# Builds the example's venv (once), starts SandboxService if none answers on
# $SANDGATE_TARGET (default 127.0.0.1:8002), then serves Friday on :8090.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/.cache/friday-agentscope-venv"

if [ ! -x "$venv/bin/python" ] || [ "$here/requirements.txt" -nt "$venv/.ready" ]; then
  echo "==> building $venv (agentscope 1.0.21 needs its own venv)"
  /usr/bin/python3 -m venv "$venv"
  extra=$("$root/.venv/bin/python" - "$root/pyproject.toml" <<'PY'
import sys, tomllib
print(" ".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["optional-dependencies"]["agent"]))
PY
)
  # shellcheck disable=SC2086
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt" $extra
  touch "$venv/.ready"
fi

if "$root/.venv/bin/python" -c "import socket,sys; sys.exit(socket.socket().connect_ex(('127.0.0.1', 8090)) != 0)"; then
  echo "error: 127.0.0.1:8090 is taken (a running 'make run' serves its built-in agent there); stop it first" >&2
  exit 1
fi

target="${SANDGATE_TARGET:-127.0.0.1:8002}"
if ! "$root/.venv/bin/python" -c "import grpc,sys; ch=grpc.insecure_channel('$target'); grpc.channel_ready_future(ch).result(timeout=1)" 2>/dev/null; then
  echo "==> starting SandboxService on $target (stops with this script)"
  "$root/.venv/bin/python" -m sandgate.cli.main sandbox-server &
  sandbox_pid=$!
  trap 'kill "$sandbox_pid" 2>/dev/null || true' EXIT
fi

[ -n "${DASHSCOPE_API_KEY:-}" ] || echo "warning: DASHSCOPE_API_KEY is not set; Friday cannot answer" >&2
cd "$here"
PYTHONPATH="$root:$here" "$venv/bin/python" app.py
