# statusflow developer commands. The two that matter: `make run` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export STATUSFLOW_KAFKA_HEAP ?= 768m

.PHONY: install run test check lint format typecheck unit-tests integration-tests e2e-tests \
        alerts-lint alerts-test dashboards-lint bench bench-resolve bench-worker bench-restart bench-state \
        bench-scaleout bench-webhooks bench-dispatch bench-record bench-peers bench-latency kafka-start kafka-stop tools tools-run clean

## Everything needed to run and test, into ./.venv (idempotent; re-runs when pyproject.toml changes)
install: $(STAMP)
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

## System tools: Java and Maven for the local Kafka (make run); Debian's prometheus too for the tests
KAFKA_TOOLS := java:openjdk-17-jre-headless mvn:maven
TEST_TOOLS := $(KAFKA_TOOLS) promtool:prometheus prometheus:prometheus
tools-run:
	@deploy/tools.sh $(KAFKA_TOOLS)
tools:
	@deploy/tools.sh $(TEST_TOOLS)

## The main job on the embedded default: local Kafka, the worker, a replayed sample stream, live statuses
run: install tools-run
	$(VENV)/bin/statusflow demo

## The whole test suite: lint, types, unit, integration, Kafka end-to-end, promtool rules
test: install tools check
	$(PY) -m pytest

check: lint typecheck
lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
format:
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
typecheck:
	$(VENV)/bin/mypy

unit-tests: install
	$(PY) -m pytest tests/unit
integration-tests: install
	$(PY) -m pytest tests/integration
e2e-tests: install tools
	$(PY) -m pytest tests/e2e

alerts-lint: tools
	promtool check rules deploy/prometheus/alerts.yaml
alerts-test: tools
	promtool test rules deploy/prometheus/tests/alerts_test.yaml

## Benchmarks: not tests. Figures go into README.md.
bench: bench-resolve bench-worker
bench-resolve: install
	$(PY) bench/resolve_bench.py
bench-worker: install
	$(PY) bench/worker_bench.py
bench-restart: install
	$(PY) bench/restart_bench.py
bench-state: install
	$(PY) bench/state_bench.py
bench-scaleout: install
	$(PY) bench/scaleout_bench.py
bench-webhooks: install
	$(PY) bench/webhooks_bench.py
bench-dispatch: install
	$(PY) bench/dispatch_bench.py
bench-record: install
	$(PY) bench/record_bench.py
bench-peers: install
	$(PY) bench/peers_bench.py
bench-latency: install
	$(PY) bench/latency_bench.py

kafka-start:
	deploy/kafka/kafka.sh start
kafka-stop:
	deploy/kafka/kafka.sh stop

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
