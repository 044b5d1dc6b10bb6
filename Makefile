# The two commands of the README: `make run` (everything embedded, no servers) and `make test` (real
# middleware up, then every check). Every other target is a step of those two.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
BUF    := node_modules/.bin/buf
CONFIG ?= configs/dev.yaml

.PHONY: run test install dev-install stack-up stack-down redis-cluster-up redis-cluster-down kafka-cluster-up kafka-cluster-down mariadb-replica-up mariadb-replica-down browser proto proto-check lint typecheck audit buf-lint buf-breaking unit integration clean deploy-check deploy-config

run: $(VENV)/.installed
	$(BIN)/tidings dev --config $(CONFIG)

test: $(VENV)/.dev-installed $(BUF) stack-up redis-cluster-up kafka-cluster-up mariadb-replica-up browser lint typecheck buf-lint buf-breaking proto-check deploy-check
	$(BIN)/pytest

install: $(VENV)/.installed
dev-install: $(VENV)/.dev-installed

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

$(BUF): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

stack-up:
	./scripts/stack up

stack-down:
	./scripts/stack down

# A Redis Cluster (3 masters, 3 replicas on 7001-7006) beside the stack's Redis: tests/integration/test_redis_cluster.py
# runs the Redis contract suites on it, and configs/cluster.yaml points the cache at it. Starts in a few seconds.
redis-cluster-up:
	./scripts/redis-cluster up

redis-cluster-down:
	./scripts/redis-cluster down

# A Kafka cluster (3 KRaft brokers on 9192-9194, controllers on 9195-9197) beside the stack's broker, on the same jars:
# tests/integration/test_kafka_cluster.py runs the bus contract and a broker kill under load on it, and
# configs/cluster.yaml points the bus at it. About 10 s the first time (storage formatted), instant when it runs.
kafka-cluster-up:
	./scripts/kafka-cluster up

kafka-cluster-down:
	./scripts/kafka-cluster down

# A MariaDB primary (3316) and GTID replica (3317) beside the stack's MariaDB: tests/integration/test_mariadb_replica.py
# runs the store contracts, the read routing, the double delete under real lag and the replica outage on them, and
# configs/cluster.yaml points the database at them. Starts in a few seconds.
mariadb-replica-up:
	./scripts/mariadb-replica up

mariadb-replica-down:
	./scripts/mariadb-replica down

# Debian's Chromium for tests/browser (Playwright drives it; it never downloads a browser of its own).
browser:
	./scripts/browser

# Generated code is committed and never edited by hand; proto-check fails when it is stale.
proto: $(VENV)/.dev-installed
	$(BIN)/python scripts/protogen.py

proto-check: $(VENV)/.dev-installed
	$(BIN)/python scripts/protogen.py --check

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts
	$(BIN)/lint-imports --no-cache

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

# The installed dependencies against PyPI's vulnerability data; tidings itself (editable) is not on PyPI. A finding
# is fixed by raising the dependency's range in pyproject.toml; one with no fixed release yet is ignored here with
# --ignore-vuln <id> and a comment saying why. pip-audit reads each installed version's page of PyPI's JSON API
# (or OSV); a dependency it cannot look up fails the audit (--strict) rather than passing unchecked. It is not part
# of `make test` while the machine that runs the tests cannot reach those pages.
audit: $(VENV)/.dev-installed
	$(BIN)/pip-audit --strict --skip-editable --progress-spinner off

buf-lint: $(BUF)
	$(BUF) lint

# Contracts may grow but not break: compare with BREAKING_AGAINST (main by default; CI may pass HEAD~1).
BREAKING_AGAINST ?= .git\#branch=main
buf-breaking: $(BUF)
	$(BUF) breaking --against '$(BREAKING_AGAINST)' --path api/tidings

# deploy/, checked without Docker or a cluster: the ConfigMap is current, the Compose file meets the Compose
# Specification's JSON schema (check-jsonschema ships it) and the Kubernetes manifests Kubernetes' own schemas
# (kubernetes-validate ships them; --strict: unknown fields fail). kustomization.yaml has no Kubernetes schema.
# What no schema knows (ports, settings, commands, merged YAML anchors) is tests/unit/test_deploy.py's.
K8S_VERSION ?= 1.33.0
deploy-check: $(VENV)/.dev-installed
	$(BIN)/python scripts/deployconfig.py --check
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec deploy/compose/compose.yaml
	$(BIN)/kubernetes-validate --strict --quiet -k $(K8S_VERSION) \
	  $(filter-out %/kustomization.yaml,$(sort $(wildcard deploy/kubernetes/*.yaml deploy/kubernetes/*/*.yaml)))

# deploy/kubernetes/configmap.yaml from configs/production.example.yaml, after a change to the latter.
deploy-config: $(VENV)/.dev-installed
	$(BIN)/python scripts/deployconfig.py

unit: $(VENV)/.dev-installed
	$(BIN)/pytest tests/unit

integration: $(VENV)/.dev-installed stack-up redis-cluster-up
	$(BIN)/pytest tests/integration

clean:
	rm -rf $(VENV) node_modules .data .mypy_cache .ruff_cache .pytest_cache
