# aptflow's developer commands. `make help` lists them; the README's two are
# `make run` and `make test`, and CI runs the same `make test` (.ci/run).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

GO ?= go
# PKGS narrows vet, staticcheck and the tests, e.g. make test PKGS=./internal/...
PKGS ?= ./...
# The vendored gofpdf (third_party/gofpdf) is a module of its own, which
# go.mod replaces: outside ./..., so vet, staticcheck and the tests name it by
# its path, from this module (whose go.mod gives its tests golang.org/x/image).
# VENDORED= leaves it out.
VENDORED ?= github.com/jung-kurt/gofpdf
# The Go files to format: all but those under var/ (data, possibly not even
# readable: the throwaway PostgreSQL's) and bin/.
GOFILES = find . \( -path ./var -o -path ./bin -o -path ./.git \) -prune -o -name '*.go' -print

.PHONY: help build run test test-load bench chaos fuzz lint vet staticcheck rules fmt-check fmt clean

help: ## List the targets
	@echo "Usage: make TARGET"
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z_-]+:.*## / { printf "  %-12s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

build: ## Build bin/aptflow
	$(GO) build -o bin/aptflow ./cmd/aptflow

# A DATABASE_URL set by the user is used as it is; otherwise a local
# PostgreSQL is found or started and the database aptflow created in it.
# Without SMTP_URL, aptflow writes the e-mails as .eml files under var/mail.
# Without ATTESTATION_SIGN_CERT, attestations are signed with a development
# certificate made once under var/signing (scripts/devcert).
# Before serving, it prints the commands to copy into another terminal (the
# README shows them): that terminal has neither the DATABASE_URL found here
# nor an HTTP_ADDR or PUBLIC_URL given to make run, so they are spelled out.
run: build ## Migrate and serve the API, workers and dashboard on a local PostgreSQL
	@if [[ -z "$${ATTESTATION_SIGN_CERT:-}$${ATTESTATION_SIGN_KEY:-}" ]]; then \
		eval "$$($(GO) run ./scripts/devcert var/signing)"; \
		echo "ATTESTATION_SIGN_CERT=$$ATTESTATION_SIGN_CERT (development certificate)"; \
	fi; \
	if [[ -z "$${DATABASE_URL:-}" ]]; then \
		admin=$$(./scripts/ensure-postgres.sh); \
		DATABASE_URL=$$(./scripts/ensure-db.sh aptflow "$$admin"); \
		export DATABASE_URL; \
	fi; \
	masked=$$(sed -E -e 's#^([a-z]+://[^:/@]*):[^@]*@#\1:***@#' -e "s#(password[[:space:]]*=[[:space:]]*)('[^']*'|[^[:space:]]*)#\1***#g" <<<"$$DATABASE_URL"); \
	echo "DATABASE_URL=$$masked"; \
	if [[ -z "$${WEBHOOK_SECRET_KEY:-}" ]]; then \
		WEBHOOK_SECRET_KEY=$$(./scripts/dev-webhook-key.sh); export WEBHOOK_SECRET_KEY; \
	fi; \
	bin/aptflow migrate; \
	quote() { printf "'%s'" "$$(sed "s/'/'\\\\''/g" <<<"$$1")"; }; \
	server=; \
	for v in HTTP_ADDR PUBLIC_URL; do \
		if [[ -n "$${!v:-}" ]]; then server+="$$v=$$(quote "$${!v}") "; fi; \
	done; \
	echo; \
	echo "In another terminal, from this directory: an API token, then the demo:"; \
	if [[ "$$masked" == "$$DATABASE_URL" ]]; then \
		echo "  export APTFLOW_TOKEN=\$$(DATABASE_URL=$$(quote "$$DATABASE_URL") bin/aptflow token create moi)"; \
	else \
		echo "  export DATABASE_URL=$$(quote "$$masked")   # with its password instead of ***"; \
		echo "  export APTFLOW_TOKEN=\$$(bin/aptflow token create moi)"; \
	fi; \
	echo "  $${server}bin/aptflow demo"; \
	echo; \
	exec bin/aptflow serve

test: lint rules ## Lint, check the alert rules, and run every test (the vendored gofpdf's too) with -race against real PostgreSQL and mailpit
	@TEST_DATABASE_URL=$$(./scripts/ensure-postgres.sh); export TEST_DATABASE_URL; \
	MAILPIT=$$(./scripts/ensure-mailpit.sh); export MAILPIT; \
	AXE_CORE_JS=$$(./scripts/ensure-axe.sh); export AXE_CORE_JS; \
	echo "$(GO) test -race -count=1 -timeout 8m $(PKGS) $(VENDORED)"; \
	$(GO) test -race -count=1 -timeout 8m $(PKGS) $(VENDORED)

# CI's machine may be busy: every test waits for conditions, never for a
# fixed time. This proves it: `make test` five times beside two busy loops.
test-load: ## Run make test 5 times in a row beside two CPU-burning loops
	@mkdir -p var; ./scripts/test-under-load.sh 5

# The bench (bench/, not a command of aptflow) starts its own stack: a fresh
# database aptflow_bench, a mailpit and bin/aptflow serve, all on loopback.
# It takes about three minutes. BENCH_FLAGS passes flags to it, e.g.
# BENCH_FLAGS='-pprof var/bench/pprof' for CPU profiles of aptflow.
bench: build ## Measure throughput, latency and memory next to their ceilings; update docs/PERFORMANCE.md
	@admin=$$(./scripts/ensure-postgres.sh); \
	MAILPIT=$$(./scripts/ensure-mailpit.sh); export MAILPIT; \
	BENCH_COMMAND="make bench$(if $(BENCH_FLAGS), BENCH_FLAGS='$(BENCH_FLAGS)')"; export BENCH_COMMAND; \
	$(GO) run ./bench -admin-url "$$admin" -aptflow bin/aptflow -doc docs/PERFORMANCE.md $(BENCH_FLAGS)

# bench-scale (bench/scale*.go) starts the same stack on a database
# aptflow_scale, seeds 200,000 then 2,000,000 dossiers by SQL over 100
# procedures, and measures every route at each size, the small procedure's
# and the big one's, then a decision's e-mail behind 50,000 reminders. It
# takes 20 to 40 minutes and about 6 GB of disk on a 2-core machine.
# BENCH_SCALE_FLAGS passes flags to it, e.g. BENCH_SCALE_FLAGS='-sizes 0,20000'.
bench-scale: build ## Measure every route at 0, 200,000 and 2,000,000 dossiers, and decisions behind bulk mail; update docs/PERFORMANCE.md
	@admin=$$(./scripts/ensure-postgres.sh); \
	MAILPIT=$$(./scripts/ensure-mailpit.sh); export MAILPIT; \
	BENCH_COMMAND="make bench-scale$(if $(BENCH_SCALE_FLAGS), BENCH_SCALE_FLAGS='$(BENCH_SCALE_FLAGS)')"; export BENCH_COMMAND; \
	$(GO) run ./bench scale -admin-url "$$admin" -aptflow bin/aptflow -doc docs/PERFORMANCE.md $(BENCH_SCALE_FLAGS)

# The fault suite (chaos/, not a command of aptflow) starts its own stack: a
# throwaway PostgreSQL cluster on 127.0.0.1:5433 (scripts/local-postgres.sh, in
# a fresh directory it removes at the end), a mailpit, aptflow serve and work,
# all on loopback. It takes three to four minutes; logs stay in var/chaos.
# CHAOS_FLAGS passes flags to it, e.g. CHAOS_FLAGS='-faults kill -kills 5'.
chaos: build ## Kill workers, break SMTP and restart PostgreSQL under load; count what is lost; update docs/RELIABILITY.md
	@MAILPIT=$$(./scripts/ensure-mailpit.sh); export MAILPIT; \
	CHAOS_COMMAND="make chaos$(if $(CHAOS_FLAGS), CHAOS_FLAGS='$(CHAOS_FLAGS)')"; export CHAOS_COMMAND; \
	$(GO) run ./chaos -aptflow bin/aptflow -doc docs/RELIABILITY.md $(CHAOS_FLAGS)

# Every `func FuzzX` of the tree, one after the other (go test fuzzes one
# target of one package at a time), for FUZZTIME each. `make test` runs their
# seed corpora (and what testdata/fuzz keeps of past failures) as plain tests.
FUZZTIME ?= 60s
fuzz: ## Fuzz every fuzz target for FUZZTIME each (default 60s)
	@for f in $$(grep -rlE --include='*_test.go' --exclude-dir=var --exclude-dir=bin '^func Fuzz[A-Z]' . | sort); do \
		for name in $$(sed -nE 's/^func (Fuzz[A-Za-z0-9_]+)\(.*/\1/p' "$$f"); do \
			echo "$(GO) test -run '^$$' -fuzz '^$$name\$$' -fuzztime $(FUZZTIME) ./$$(dirname "$${f#./}")"; \
			$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) "./$$(dirname "$${f#./}")"; \
		done; \
	done

lint: vet staticcheck fmt-check ## go vet, staticcheck and the gofmt check

vet:
	$(GO) vet $(PKGS) $(VENDORED)

# staticcheck at the version scripts/ensure-staticcheck.sh pins (installed
# with go install if missing), with every check but those a staticcheck.conf
# turns off where it says why (third_party/gofpdf/staticcheck.conf).
staticcheck:
	@sc=$$(./scripts/ensure-staticcheck.sh); \
	echo "staticcheck $(PKGS) $(VENDORED)"; \
	"$$sc" $(PKGS) $(VENDORED)

# The Prometheus alert rules, checked and unit-tested (deploy/prometheus/
# alerts_test.yml) by promtool, from Debian's prometheus package (.ci/run
# installs it). Missing, it fails: it is never skipped.
PROMTOOL ?= promtool
rules: ## Check and unit-test the Prometheus alert rules with promtool
	@command -v $(PROMTOOL) >/dev/null || { echo "promtool not found: apt-get install prometheus (or set PROMTOOL)"; exit 1; }
	$(PROMTOOL) check rules deploy/prometheus/alerts.yml
	$(PROMTOOL) test rules deploy/prometheus/alerts_test.yml

fmt-check:
	@files=$$($(GOFILES) | xargs -r gofmt -l); \
	if [[ -n "$$files" ]]; then \
		echo "gofmt needed (run make fmt):"; echo "$$files"; exit 1; \
	fi

fmt: ## Format the Go code with gofmt
	$(GOFILES) | xargs -r gofmt -w

clean: ## Stop the throwaway PostgreSQL (if any); remove bin/ and var/
	./scripts/local-postgres.sh stop
	rm -rf bin var
