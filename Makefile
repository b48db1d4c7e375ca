# afteraction: the workspace's modules are looped over, because ./... does not
# cross module boundaries in a go.work workspace.
SHELL      := /bin/bash
export PATH := $(shell go env GOPATH)/bin:$(PATH)
MODULES    := $(shell go list -m -f '{{.Dir}}')
TESTFLAGS  ?= -race -shuffle=on -count=1 -timeout=20m
FUZZTIME   ?= 3s
BENCHTIME  ?= 2s
CHAOS_DURATION ?= 5m
CHAOS_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/afteraction_chaos?sslmode=disable
DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/afteraction?sslmode=disable

.PHONY: all build test fuzz bench bench-all lint tidy demo dev up down clean chaos

all: lint build test

## build: compile every module and put the binaries in bin/
build:
	@set -e; for m in $(MODULES); do echo "build $${m#$(CURDIR)/}"; (cd $$m && go build ./...); done
	@mkdir -p bin
	go build -o bin/ ./cmd/afteraction ./services/intake/cmd/intake ./services/review/cmd/review ./services/report/cmd/report ./services/tracker/cmd/tracker ./services/notify/cmd/notify

## test: every test of every module with -race -shuffle=on, a count per module, then brief fuzzing
test:
	@scripts/test-modules.sh $(TESTFLAGS) -- $(MODULES)
	@$(MAKE) --no-print-directory fuzz

## fuzz: run every Fuzz target briefly (FUZZTIME each)
fuzz:
	@scripts/fuzz.sh $(FUZZTIME) $(MODULES)

## bench: the performance figures, each against its baseline in the same run: a table,
## bench/results.json, and regressions over 20% against bench/baseline.json (bench/run.sh)
bench:
	@bench/run.sh

## bench-all: every benchmark of every module (BENCHTIME each)
bench-all:
	@set -e; for m in $(MODULES); do (cd $$m && go test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) ./... | grep -Ev '^(PASS|ok|\?)' || true); done

## chaos: the fault suite for CHAOS_DURATION over a three-node NATS cluster, two replicas of every
## service as processes; prints the invariant report and fails when one is violated
chaos:
	@mkdir -p bin
	go build -o bin/afteraction ./cmd/afteraction
	bin/afteraction chaos -duration $(CHAOS_DURATION) -database-url '$(CHAOS_DATABASE_URL)'

## lint: gofmt and go vet on every module
lint:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@set -e; for m in $(MODULES); do (cd $$m && go vet ./...); done
	@echo "lint ok"

## tidy: go mod tidy per module (sibling workspace modules are resolved by go.work)
tidy:
	@for m in $(MODULES); do (cd $$m && GOWORK=off GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true); done
	go work sync

## demo: run the whole pipeline once in one process and leave the report PDF in out/
demo:
	go run ./cmd/afteraction demo --out out

## dev: the whole pipeline in one process (embedded NATS) until Ctrl-C
dev:
	DATABASE_URL=$(DATABASE_URL) go run ./cmd/afteraction dev

## up/down: the stack in containers, for machines with a Docker engine
up:
	docker compose up -d --build
down:
	docker compose down

clean:
	rm -rf bin out
