# Everything a user runs, from a fresh clone. Python tools (cargo-lambda) go into .venv.

SHELL := bash
CARGO ?= cargo
VENV := .venv
# SAM CLI pins a botocore that aioboto3 (the Python peers, in $(VENV)) cannot use: its own venv.
DEPLOY_VENV := .venv-deploy
# moto_server, the independent S3 implementation the integration tests also run against.
MOTO_VENV := .venv-moto
# py-ocsf-models, the maintained OCSF library the OCSF findings are validated with.
OCSF_VENV := .venv-ocsf
# The write-up's Node.js baseline; npm installs its SDK here.
NODE_PEERS := peers/node
PYTHON ?= python3
OBJECTS ?= 100
PORT ?= 9000
BUCKET ?= acl-audit-demo
FUNCTIONS := sequential spawn-blocking join-all
STACK ?= acl-audit
# cargo lambda watch's port; local-s3 keeps 9000.
WATCH_PORT ?= 9001
FUNCTION ?= join-all
PAYLOAD ?= fixtures/console.json
REMOTE_PAYLOAD ?= fixtures/console-empty.json
WITH_TOOLS := PATH="$(CURDIR)/$(VENV)/bin:$(CURDIR)/$(DEPLOY_VENV)/bin:$$PATH"
SAM_OFFLINE := AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=none AWS_SECRET_ACCESS_KEY=none SAM_CLI_TELEMETRY=0

.PHONY: help run compare bench bench-peers instructions rehearse rehearse-inventory rehearse-sweep summarize test template-check local-loop-test sam-build-check lint fmt build sam-build deploy \
	deploy-cargo-lambda invoke logs watch invoke-local local-s3 bench-local-s3 tools clean python-venv aarch64-target

## help: this list of targets
help:
	@awk '/^## [a-z0-9-]+:/ { sub(/^## /, ""); print; next } /^## / { sub(/^## /, "    "); print }' $(MAKEFILE_LIST)

## run: audit a seeded local-s3 bucket ($(OBJECTS) objects) with `acl-audit scan`, as from a shell;
## findings into results/run-findings.jsonl
run:
	$(CARGO) build --release --quiet -p local-s3 -p acl-audit-cli
	@mkdir -p results
	@coproc endpoint { exec target/release/local-s3 --port 0 --seed-bucket $(BUCKET) --objects $(OBJECTS); }; \
	while read -r line <&"$${endpoint[0]}"; do eval "$$line"; [[ $$line == *AWS_SECRET_ACCESS_KEY* ]] && break; done; \
	target/release/acl-audit scan s3://$(BUCKET) --findings results/run-findings.jsonl; code=$$?; \
	kill $$endpoint_PID; \
	echo "acl-audit exited $$code (0 clean, 1 error, 3 findings, 4 incomplete); findings: results/run-findings.jsonl"; \
	[[ $$code == 0 || $$code == 3 ]]

## compare: one run of each strategy against an embedded local-s3 (loopback, no network model)
compare:
	$(CARGO) run --release --quiet -p acl-bench -- compare --objects $(OBJECTS)

## bench: the main job. Every strategy at every Lambda memory size, HTTPS + network model,
## CPU-limited children (BENCH_ARGS passes options, e.g. BENCH_ARGS="--start empty-pool" or
## "--sizes 128,1769 --runs 20" or "--endpoint URL --bucket NAME --seed")
bench:
	$(CARGO) build --release --quiet -p local-s3 -p acl-bench -p sequential -p spawn-blocking -p join-all
	target/release/acl-bench bench $(BENCH_ARGS)

## bench-peers: the same, with the seed's three Python functions (boto3, aioboto3 into .venv)
## and the write-up's Node.js baseline (@aws-sdk/client-s3 into peers/node/node_modules)
bench-peers: $(VENV)/.peers-installed $(NODE_PEERS)/node_modules/.installed
	$(MAKE) bench

# Without Node.js the sweep says so and runs without its peers.
$(NODE_PEERS)/node_modules/.installed: $(NODE_PEERS)/package.json $(NODE_PEERS)/package-lock.json
	@if command -v npm >/dev/null; then \
		npm ci --prefix $(NODE_PEERS) --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm not found: the sweep runs without the Node.js peers"; fi

$(VENV)/.peers-installed: $(VENV)/bin/python requirements/peers.txt
	$(VENV)/bin/pip install --quiet -r requirements/peers.txt
	touch $@

## instructions: instructions per ACL of a warm join-all invocation, counted by callgrind
## (valgrind), and where they go: the repeatable yardstick for a change to the client path
instructions:
	@command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)"; exit 2; }
	$(CARGO) build --profile profiling --quiet -p local-s3 -p acl-bench
	crates/acl-bench/scripts/instructions.sh

## rehearse: the state machine run locally (plan, parts in passes, add up), with K workers
## (REHEARSE_ARGS passes options, e.g. "--objects 100000 --workers 1,2,4,8 --acls-disabled")
rehearse:
	$(CARGO) build --release --quiet -p acl-map
	target/release/acl-map rehearse $(REHEARSE_ARGS)

## rehearse-inventory: one join-all invocation auditing a bucket from an S3 Inventory report
## of it, against the same from a listing (REHEARSE_ARGS, e.g. "--objects 1000000")
rehearse-inventory:
	$(CARGO) build --release --quiet -p acl-map
	target/release/acl-map rehearse-inventory $(REHEARSE_ARGS)

## rehearse-sweep: one join-all account sweep of 1 000 buckets (50 with ACLs enabled, 1 000
## objects each) against one of those 50 alone (REHEARSE_ARGS, e.g. "--buckets 200 --enabled 10")
rehearse-sweep:
	$(CARGO) build --release --quiet -p acl-map
	target/release/acl-map rehearse-sweep $(REHEARSE_ARGS)

## summarize: add up one state machine run's part reports (RESULTS=s3://bucket/parts/<execution name>/)
summarize:
	@test -n "$(RESULTS)" || { echo "RESULTS=s3://<results bucket>/parts/<execution name>/ is required (the stack's ResultsLocation output names the bucket)"; exit 2; }
	$(CARGO) run --release --quiet -p acl-map -- summarize $(RESULTS)

## test: every test of the workspace, against real local-s3 endpoints and moto_server on loopback,
## and the template's checks
test: template-check $(MOTO_VENV)/.installed $(OCSF_VENV)/.installed $(NODE_PEERS)/node_modules/.installed
	# The benchmark's tests run the functions' own binaries, which `cargo test` does not build.
	# --no-fail-fast: one run names every failing test, not only the first binary's.
	$(CARGO) build --workspace --bins
	ACL_BENCH_REQUIRE_PEERS=$$(test -f $(NODE_PEERS)/node_modules/.installed && echo 1) MOTO_SERVER=$(CURDIR)/$(MOTO_VENV)/bin/moto_server OCSF_VALIDATOR=$(CURDIR)/$(OCSF_VENV)/bin/python $(CARGO) test --workspace --all-targets --no-fail-fast
	$(CARGO) test --workspace --doc
	$(MAKE) local-loop-test
	$(MAKE) sam-build-check

## local-loop-test: local-s3 + cargo lambda watch + cargo lambda invoke with the fixtures, for each function
local-loop-test: $(VENV)/bin/cargo-lambda
	$(CARGO) build --quiet -p local-s3
	$(WITH_TOOLS) $(PYTHON) deploy/local_loop.py

## template-check: cfn-lint, sam validate --lint, and least privilege/packaging (deploy/check_template.py), offline
template-check: $(DEPLOY_VENV)/.installed
	$(DEPLOY_VENV)/bin/cfn-lint template.yaml deploy/member-role.yaml
	$(SAM_OFFLINE) $(DEPLOY_VENV)/bin/sam validate --lint
	$(DEPLOY_VENV)/bin/python deploy/check_template.py
	$(DEPLOY_VENV)/bin/python -m unittest discover -s deploy

$(DEPLOY_VENV)/.installed: requirements/deploy.txt | python-venv
	$(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install --quiet -r requirements/deploy.txt
	touch $@

$(OCSF_VENV)/.installed: requirements/ocsf.txt | python-venv
	$(PYTHON) -m venv $(OCSF_VENV)
	$(OCSF_VENV)/bin/pip install --quiet -r requirements/ocsf.txt
	touch $@

$(MOTO_VENV)/.installed: requirements/moto.txt | python-venv
	$(PYTHON) -m venv $(MOTO_VENV)
	$(MOTO_VENV)/bin/pip install --quiet -r requirements/moto.txt
	touch $@

## lint: formatting, clippy and the libraries' rustdoc, warnings as errors
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	# The libraries' doc links name real items (architecture.md sends readers to them).
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --lib --quiet

## fmt: format every crate (cargo fmt)
fmt:
	$(CARGO) fmt --all

## build: the three Lambda bootstraps for arm64 (target/lambda/<function>/bootstrap)
build: $(VENV)/bin/cargo-lambda aarch64-target
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CARGO) lambda build --release --arm64 $(addprefix -p ,$(FUNCTIONS))
	@for f in $(FUNCTIONS); do ls -l target/lambda/$$f/bootstrap; done

## sam-build: sam build (rust-cargolambda: cargo lambda build --release --arm64 per function) into .aws-sam/
sam-build: $(VENV)/bin/cargo-lambda $(DEPLOY_VENV)/.installed aarch64-target
	$(WITH_TOOLS) $(SAM_OFFLINE) sam build

## sam-build-check: sam build offline, in debug mode, into .aws-sam/check, then check the three
## artefacts are aarch64 bootstraps
# SAM_BUILD_MODE=debug: cargo lambda builds without --release, so that the check takes minutes
# rather than three LTO links; `make sam-build` and `make deploy` build the release profile into
# .aws-sam/build, which this check leaves alone.
sam-build-check: $(VENV)/bin/cargo-lambda $(DEPLOY_VENV)/.installed aarch64-target
	$(WITH_TOOLS) $(SAM_OFFLINE) SAM_BUILD_MODE=debug sam build --build-dir .aws-sam/check
	$(PYTHON) deploy/check_artifacts.py .aws-sam/check

## deploy: sam build + sam deploy (--guided until samconfig.toml holds BucketName)
deploy: sam-build
	if grep -q '^parameter_overrides.*BucketName' samconfig.toml; then \
		$(WITH_TOOLS) sam deploy; else $(WITH_TOOLS) sam deploy --guided; fi

## deploy-cargo-lambda: each function with cargo lambda deploy (make build first); IAM_ROLE= an ARN
## that may read the bucket (the stack's AuditRole, for one), BUCKET= the bucket to audit
deploy-cargo-lambda: $(VENV)/bin/cargo-lambda
	test -n "$(IAM_ROLE)" || { echo "IAM_ROLE=arn:... is required: cargo lambda's own role cannot read S3"; exit 1; }
	for f in $(FUNCTIONS); do $(WITH_TOOLS) $(CARGO) lambda deploy $$f --binary-name $$f \
		--iam-role "$(IAM_ROLE)" --env-var BUCKET_NAME=$(BUCKET) --memory 256 --timeout 300 || exit 1; done

## invoke: each deployed function once (sam remote invoke), with $(REMOTE_PAYLOAD) ({}: the configured bucket)
invoke: $(DEPLOY_VENV)/.installed
	for f in SequentialFunction SpawnBlockingFunction JoinAllFunction; do \
		$(WITH_TOOLS) sam remote invoke $$f --stack-name $(STACK) --event-file $(REMOTE_PAYLOAD) || exit 1; done

## logs: tail the deployed functions' logs
logs: $(DEPLOY_VENV)/.installed
	$(WITH_TOOLS) sam logs --stack-name $(STACK) --tail

## watch: serve the three functions locally (cargo lambda watch) against `make local-s3`
watch: $(VENV)/bin/cargo-lambda
	$(WITH_TOOLS) $(CARGO) lambda watch -A 127.0.0.1 -P $(WATCH_PORT) --env-file deploy/local.env

## invoke-local: invoke FUNCTION (default join-all) served by `make watch` with PAYLOAD
invoke-local: $(VENV)/bin/cargo-lambda
	$(WITH_TOOLS) $(CARGO) lambda invoke $(FUNCTION) -A 127.0.0.1 -P $(WATCH_PORT) --data-file $(PAYLOAD) --output-format json

## local-s3: serve local-s3 on 127.0.0.1:$(PORT) with a seeded bucket, until Ctrl-C
local-s3:
	$(CARGO) run --release --quiet -p local-s3 -- --port $(PORT) --seed-bucket $(BUCKET) --objects $(OBJECTS)

## bench-local-s3: the endpoint's own GetObjectAcl requests/s
bench-local-s3:
	$(CARGO) run --release --quiet -p acl-bench -- endpoint

$(VENV)/bin/python: | python-venv
	$(PYTHON) -m venv $(VENV)

$(VENV)/bin/cargo-lambda: $(VENV)/bin/python requirements/tools.txt
	$(VENV)/bin/pip install --quiet -r requirements/tools.txt
	touch $@

# What the venvs need of the machine, named in one clear error rather than a venv half made.
python-venv:
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { echo "$(PYTHON) with its venv module is needed: apt-get install python3-venv (Debian/Ubuntu)"; exit 2; }

# sam build and make build cross-compile for arm64: rustup adds the target.
aarch64-target:
	@command -v rustup >/dev/null || { echo "rustup is needed to add the aarch64-unknown-linux-gnu target (https://rustup.rs); or install that target's standard library yourself"; exit 2; }
	rustup target add aarch64-unknown-linux-gnu

## tools: cargo-lambda into .venv (pinned in requirements/tools.txt)
tools: $(VENV)/bin/cargo-lambda

## clean: the build and the venvs
clean:
	$(CARGO) clean
	rm -rf $(VENV) $(DEPLOY_VENV) $(MOTO_VENV) $(OCSF_VENV)
