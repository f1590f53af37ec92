# Everything a user runs, from a fresh clone. Python tools (cargo-lambda) go into .venv.

SHELL := bash
CARGO ?= cargo
VENV := .venv
# SAM CLI pins a botocore that aioboto3 (the Python peers, in $(VENV)) cannot use: its own venv.
DEPLOY_VENV := .venv-deploy
PYTHON ?= python3
OBJECTS ?= 100
PORT ?= 9000
BUCKET ?= acl-audit-demo
FUNCTIONS := sequential spawn-blocking join-all

.PHONY: run bench bench-peers test template-check lint fmt build local-s3 bench-local-s3 tools clean

## run: start an embedded local-s3 with $(OBJECTS) objects and run the three strategies once (loopback)
run:
	$(CARGO) run --release --quiet -p acl-bench -- compare --objects $(OBJECTS)

## bench: the main job. Every strategy at every Lambda memory size, HTTPS + network model,
## CPU-limited children (BENCH_ARGS passes options, e.g. BENCH_ARGS="--start empty-pool" or
## "--sizes 128,1769 --runs 20" or "--endpoint URL --bucket NAME --seed")
bench:
	$(CARGO) build --release --quiet -p local-s3 -p acl-bench
	target/release/acl-bench bench $(BENCH_ARGS)

## bench-peers: the same, with the seed's three Python functions (boto3, aioboto3 into .venv)
bench-peers: $(VENV)/.peers-installed
	$(MAKE) bench

$(VENV)/.peers-installed: $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet aioboto3
	touch $@

## test: every test of the workspace, against real local-s3 endpoints on loopback, and the template's checks
test: template-check
	$(CARGO) test --workspace --all-targets
	$(CARGO) test --workspace --doc

## template-check: cfn-lint, sam validate --lint, and least privilege/packaging (deploy/check_template.py), offline
template-check: $(DEPLOY_VENV)/.installed
	$(DEPLOY_VENV)/bin/cfn-lint template.yaml
	AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=none AWS_SECRET_ACCESS_KEY=none SAM_CLI_TELEMETRY=0 \
		$(DEPLOY_VENV)/bin/sam validate --lint
	$(DEPLOY_VENV)/bin/python deploy/check_template.py
	$(DEPLOY_VENV)/bin/python -m unittest discover -s deploy

$(DEPLOY_VENV)/.installed:
	$(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install --quiet --upgrade pip
	$(DEPLOY_VENV)/bin/pip install --quiet cfn-lint aws-sam-cli
	touch $@

## lint: formatting and clippy, warnings as errors
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## build: the three Lambda bootstraps for arm64 (target/lambda/<function>/bootstrap)
build: $(VENV)/bin/cargo-lambda
	rustup target add aarch64-unknown-linux-gnu
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CARGO) lambda build --release --arm64 $(addprefix -p ,$(FUNCTIONS))
	@for f in $(FUNCTIONS); do ls -l target/lambda/$$f/bootstrap; done

## local-s3: serve local-s3 on 127.0.0.1:$(PORT) with a seeded bucket, until Ctrl-C
local-s3:
	$(CARGO) run --release --quiet -p local-s3 -- --port $(PORT) --seed-bucket $(BUCKET) --objects $(OBJECTS)

## bench-local-s3: the endpoint's own GetObjectAcl requests/s
bench-local-s3:
	$(CARGO) run --release --quiet -p acl-bench -- endpoint

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip

$(VENV)/bin/cargo-lambda: $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet cargo-lambda

tools: $(VENV)/bin/cargo-lambda

clean:
	$(CARGO) clean
	rm -rf $(VENV) $(DEPLOY_VENV)
