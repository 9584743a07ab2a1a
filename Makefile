# Switchyard — the two commands a new user needs are `make run` and `make test`.
# Everything else is installed on first use: uv (into .tools/ when not on PATH), then the
# locked workspace (uv.lock) into .venv/.

PYTHON ?= python3
CONFIG ?= config.yaml
PORT ?= 4000
TOPOLOGY ?= split
PYTEST_ARGS ?=
UV_VERSION := 0.13.9

UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := .tools/bin/uv
endif
RUN := $(UV) run --frozen --no-sync

.PHONY: install run test lint format proto proto-check bench mock-upstream clean

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.synced: uv.lock pyproject.toml $(wildcard */pyproject.toml */*/pyproject.toml */*/*/pyproject.toml) | $(UV)
	$(UV) sync --frozen --all-packages
	@touch $@

install: .venv/.synced

run: install
	$(RUN) switchyard up --config $(CONFIG) --port $(PORT) --topology $(TOPOLOGY)

test: install proto-check
	$(RUN) pytest $(PYTEST_ARGS)

lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy services edge clients/python/switchyard-client/src
	cd proto && ../$(RUN) buf lint

format: install
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

proto: install
	$(RUN) python scripts/gen_protos.py

proto-check: install
	@rm -rf .proto-check && mkdir -p .proto-check
	@$(RUN) python scripts/gen_protos.py .proto-check
	@diff -r clients/python/switchyard-proto/src/switchyard .proto-check/switchyard \
		|| (echo "generated code is out of date: run 'make proto' and commit" && rm -rf .proto-check && exit 1)
	@rm -rf .proto-check
	@echo "proto-check: generated code matches proto/"

bench: install
	$(RUN) python benchmarks/run.py

mock-upstream: install
	$(RUN) python benchmarks/mock_upstream.py --port 8000

clean:
	rm -rf .venv .tools .switchyard .proto-check .pytest_cache
