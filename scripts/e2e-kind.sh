#!/usr/bin/env bash
# One command, a real cluster: Sandgate on kind, sandbox tools called over MCP.
#
#   make e2e            (or: bash scripts/e2e-kind.sh)
#
# Needs docker, kind and kubectl on PATH, and the dev environment (make test
# sets it up). It creates a kind cluster, builds both images (deploy/docker)
# and loads them into it, creates the key Secret, deploys the kind overlay
# with `sandgate deploy` (which waits for the Deployments), port-forwards the
# gateway, runs the e2e tests (pytest -m e2e tests/e2e) and deletes the cluster.
#
# Environment:
#   SANDGATE_E2E_CLUSTER   kind cluster name (default sandgate-e2e)
#   SANDGATE_E2E_KEEP=1    keep the cluster afterwards (reused by the next run)
#   SANDGATE_E2E_PORT      local port for the gateway (default 18000)
set -euo pipefail

cd "$(dirname "$0")/.."
CLUSTER="${SANDGATE_E2E_CLUSTER:-sandgate-e2e}"
PORT="${SANDGATE_E2E_PORT:-18000}"
CONTEXT="kind-${CLUSTER}"
PY=.venv/bin/python
SERVICES_IMAGE=sandgate/sandgate:0.1.0
SANDBOX_IMAGE=sandgate/sandbox:0.1.0

for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null || { echo "e2e: $tool is not on PATH; install it first" >&2; exit 2; }
done
[ -x "$PY" ] || { echo "e2e: no .venv; run 'make test' (or bash scripts/bootstrap.sh) first" >&2; exit 2; }

forward_pid=""
cleanup() {
  status=$?
  [ -n "$forward_pid" ] && kill "$forward_pid" 2>/dev/null || true
  if [ "$status" -ne 0 ]; then
    echo "e2e: failed; what the cluster says:" >&2
    kubectl --context "$CONTEXT" get pods -A -o wide >&2 || true
    kubectl --context "$CONTEXT" -n sandgate logs deploy/sandbox-svc --tail=50 >&2 || true
  fi
  if [ "${SANDGATE_E2E_KEEP:-0}" != 1 ]; then
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  fi
  exit "$status"
}
trap cleanup EXIT

echo "e2e: kind cluster $CLUSTER"
kind get clusters 2>/dev/null | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --wait 180s

echo "e2e: building and loading the images"
docker build -q -f deploy/docker/Dockerfile.services -t "$SERVICES_IMAGE" .
docker build -q -f deploy/docker/Dockerfile.sandbox -t "$SANDBOX_IMAGE" .
kind load docker-image --name "$CLUSTER" "$SERVICES_IMAGE" "$SANDBOX_IMAGE"

echo "e2e: keys"
TOKEN="$($PY -c 'import secrets; print(secrets.token_urlsafe(24))')"
kubectl --context "$CONTEXT" create namespace sandgate --dry-run=client -o yaml \
  | kubectl --context "$CONTEXT" apply -f - >/dev/null
kubectl --context "$CONTEXT" -n sandgate create secret generic sandgate-keys \
  --from-literal=BEARER_TOKEN="$TOKEN" \
  --dry-run=client -o yaml | kubectl --context "$CONTEXT" apply -f - >/dev/null

echo "e2e: deploying the kind overlay"
$PY -m sandgate.cli.main deploy --overlay kind --context "$CONTEXT" --timeout 600
# A rolled-out Deployment may still hold Pods of the previous key: restart them.
kubectl --context "$CONTEXT" -n sandgate rollout restart deploy >/dev/null
for deploy in gateway sandbox-svc agent-svc; do
  kubectl --context "$CONTEXT" -n sandgate rollout status "deploy/$deploy" --timeout=300s
done

echo "e2e: port-forwarding the gateway to 127.0.0.1:$PORT"
kubectl --context "$CONTEXT" -n sandgate port-forward svc/gateway "$PORT:8000" >/dev/null &
forward_pid=$!
for _ in $(seq 1 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.2
done

SANDGATE_E2E_MCP_URL="http://127.0.0.1:$PORT/mcp" SANDGATE_E2E_TOKEN="$TOKEN" \
SANDGATE_E2E_CONTEXT="$CONTEXT" \
  $PY -m pytest -p no:cacheprovider -m e2e tests/e2e -v
