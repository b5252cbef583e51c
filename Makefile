# Two commands set everything up on a fresh Debian/Ubuntu machine:
#   make run    install what is missing, then start Sandgate with embedded defaults
#   make test   install what is missing, then run lint and the test suite
#   make e2e    Sandgate on a kind cluster, tools called over MCP (needs docker, kind, kubectl)
#   make faults kill services under load and count what was lost (CI runs it too)
#   make soak   1000 sandbox create/delete cycles, then count what was left behind
.PHONY: run test faults soak bench lint protos bootstrap e2e

PY := .venv/bin/python

bootstrap:
	@bash scripts/bootstrap.sh

run: bootstrap
	$(PY) -m sandgate.cli.main up

test: bootstrap lint
	$(PY) -m pytest -q -p no:cacheprovider

# Services killed under load (SIGKILL of sandbox_svc, the gateway, one sandbox); prints
# acknowledged / lost / told writes per kill.
faults: bootstrap
	$(PY) -m pytest -q -p no:cacheprovider -m faults tests/faults

# 1000 create/delete cycles (make test runs 200); prints what was left behind.
soak: bootstrap
	SANDGATE_SOAK_CYCLES=1000 $(PY) -m pytest -q -p no:cacheprovider tests/faults/test_soak.py

lint:
	npx --offline buf lint
	$(PY) -m ruff check .
	$(PY) -m mypy

bench: bootstrap
	$(PY) -m sandgate.cli.main bench

protos: bootstrap
	$(PY) scripts/gen_protos.py

e2e: bootstrap
	bash scripts/e2e-kind.sh
