# hcp.etcd: every command a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := $(CURDIR)/.venv
BIN         := $(VENV)/bin
# Debian's python3 when there is one: built with PGO and LTO, it runs ansible's per-task Python processes
# with about 15% less CPU than a python built without them (20 tasks: 10.4 s vs 12.5 s user, same machine).
PYTHON      ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
# The collection is installed (as a link to this checkout) into a collections path inside the repo.
COLLECTIONS := $(CURDIR)/.collections
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(BIN):$(PATH)

NAME   ?= demo
POLICY ?= HighlyAvailable
ETCD   ?= 3.5

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

## ---- install -----------------------------------------------------------------------------

$(BIN)/ansible: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

.PHONY: install
install: $(BIN)/ansible ## create .venv and install the collection into .collections
	mkdir -p $(COLLECTIONS)/ansible_collections/hcp
	ln -sfn $(CURDIR) $(COLLECTIONS)/ansible_collections/hcp/etcd
	@$(BIN)/ansible-doc -l hcp.etcd 2>/dev/null | sed 's/^/  installed: /'

.PHONY: build
build: install ## build the collection artifact (hcp-etcd-<version>.tar.gz)
	$(BIN)/ansible-galaxy collection build --force --output-path $(CURDIR)/.cache/dist .

## ---- tests -------------------------------------------------------------------------------

.PHONY: test checks
# The end-to-end run mostly waits on pods and leaves part of the 2 cores idle: the static checks run
# beside it (one make job, one check after the other), not before it. Their lines interleave with the
# e2e's progress lines; the e2e's summary comes last.
test: install ## every test: lint, sanity, units, end-to-end and fault injection on a real cluster
	@$(MAKE) --no-print-directory -j2 e2e checks \
	  || { echo "make test: FAILED (the failed target's 'Error' line and its output are above)"; exit 1; }
	@echo "make test: lint, sanity, units and e2e passed"
checks: lint sanity units

.PHONY: lint
# antsibull-docs copies the collection and kubernetes.core into a temporary tree, with `git ls-files`
# when a source sits in a git work tree: the ceiling keeps the venv's kubernetes.core (inside this
# ignored .venv) from being copied empty.
lint: install ## ansible-lint (production profile), changelog fragments, plugin docs (antsibull-docs)
	$(BIN)/ansible-lint --offline --profile production
	$(BIN)/antsibull-changelog lint
	GIT_CEILING_DIRECTORIES=$(CURDIR) $(BIN)/antsibull-docs lint-collection-docs --plugin-docs .

.PHONY: sanity
sanity: install ## ansible-test sanity, offline
	tests/sanity/run.sh

.PHONY: units
units: install ## unit tests (pytest) of the pure logic
	tests/unit/run.sh

.PHONY: e2e
e2e: install ## molecule scenarios, fleet and reduced fault run on the local cluster (or $KUBECONFIG), E2E_JOBS at a time
	tests/e2e/run.sh
e2e-faults: install ## kill the restore at every step and rerun; helper pod and etcd pod faults (FAULT_POINTS="2 7 11")
	tests/e2e/faults.sh
.PHONY: artifact-test
artifact-test: install ## the built artifact installed into a fresh venv (ansible-core + declared requirements): backup and restore from it
	SCENARIOS=artifact tests/e2e/run.sh
.PHONY: e2e-faults-ci
e2e-faults-ci: install ## the reduced fault run of make test: the controller killed mid-swap (rerun), the module killed after a data move (rollback from the journal)
	SCENARIOS=faults-ci tests/e2e/run.sh

.PHONY: bench
bench: install ## benchmark vs the documented procedure / kubectl cp, the store's encoding, the fleet (bench/results.md, compression.md, store-backup.md, fleet.md; BENCH_SMOKE=1: quick)
	bench/run.sh
	bench/compression.sh
	bench/store-backup.sh
	bench/fleet.sh
.PHONY: bench-store
bench-store: install ## backup to and restore from the S3 store (MinIO) with each encoding, real Kubernetes objects vs random bytes (bench/store-backup.md)
	bench/store-backup.sh
.PHONY: bench-fleet
bench-fleet: install ## one backup run over 1, 2, 4 and 8 control planes with as many forks: wall time and controller memory (bench/fleet.md)
	bench/fleet.sh
.PHONY: bench-compression
bench-compression: install ## the store's zstd / age encoding on real Kubernetes objects (the local cluster's etcd + 4000 generated through its API) vs random bytes
	bench/compression.sh

## ---- local cluster -------------------------------------------------------------------------

.PHONY: cluster-up cluster-down cluster-status kubeconfig
cluster-up: ## start the hermetic single-node Kubernetes
	tests/cluster/cluster.sh up
cluster-down: ## stop it and remove its state
	tests/cluster/cluster.sh down
cluster-status: ## show what runs
	tests/cluster/cluster.sh status
kubeconfig: ## print the kubeconfig path (make -s kubeconfig)
	@tests/cluster/cluster.sh kubeconfig

.PHONY: hcp-up hcp-down
hcp-up: ## miniature hosted control plane: make hcp-up NAME=x [POLICY=SingleReplica] [ETCD=3.4|3.6|3.7] [API=real]
	HCP_API=$(or $(API),writers) tests/cluster/hcp.sh up "$(NAME)" "$(POLICY)" "$(ETCD)"
hcp-down: ## remove it: make hcp-down NAME=x
	tests/cluster/hcp.sh down "$(NAME)"

.PHONY: s3-up s3-down
s3-up: install ## a real S3 server (MinIO, TLS) for the backup store; prints the env file to source
	tests/cluster/s3.sh up
s3-down: ## stop it and remove its data
	tests/cluster/s3.sh down

## ---- demo --------------------------------------------------------------------------------

.PHONY: demo demo-down
demo: install ## backup, damage, restore and verdict on a miniature control plane
	tests/demo/demo.sh
demo-down: ## remove the demo control plane and stop the cluster
	-tests/cluster/hcp.sh down demo
	tests/cluster/cluster.sh down

.PHONY: clean
clean: ## remove the venv, the installed collection and test output
	rm -rf $(VENV) $(COLLECTIONS) tests/output .cache
