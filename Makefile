# Two commands set everything up on a fresh Debian/Ubuntu machine:
#   make run    install what is missing, then start Sandgate with embedded defaults
#   make test   install what is missing, then run lint and the test suite
#   make e2e    Sandgate on a kind cluster, tools called over MCP (needs docker, kind, kubectl)
.PHONY: run test bench lint protos bootstrap e2e

PY := .venv/bin/python

bootstrap:
	@bash scripts/bootstrap.sh

run: bootstrap
	$(PY) -m sandgate.cli.main up

test: bootstrap lint
	$(PY) -m pytest -q -p no:cacheprovider

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
