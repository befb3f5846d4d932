# encryptiond: every entry point of the project. `make help` lists them.
#
# Tools (buf, the protoc plugins, grpcurl, ghz) are pinned in tools/go.mod and
# run with `go tool`, so a machine with only Go can run every target; the
# first run builds them (buf takes a few minutes), later runs use the cache.

GO        ?= go
TOOL      := $(GO) tool -modfile=tools/go.mod
BUF       := $(TOOL) buf
PROTODEPS := .build/protodeps
# The API imports google/api/annotations.proto (and through it
# google/api/http.proto) and google/rpc/status.proto; all come from
# grpc-gateway v1's third_party copy of googleapis. Nothing third-party is committed. The OpenAPI metadata is in
# proto/openapiv2.yaml, so no openapiv2 option .proto is needed.
GATEWAY_V1 := github.com/grpc-ecosystem/grpc-gateway@v1.16.0

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets and what each does for you.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# ARGS are more flags for `make run`, e.g. ARGS='-grpc-addr :19090 -http-addr :18080'.
ARGS ?=

.PHONY: run
run: ## Start encryptiond -dev on 127.0.0.1 (gRPC :9090, REST :8080) with its built-in Atlas emulator: no account needed. More flags: ARGS='-grpc-addr :9191'.
	$(GO) run ./cmd/encryptiond -dev $(ARGS)

# server/daemon's TestNodeReflectionClient runs a Node gRPC client that knows
# the service only through server reflection. When npm is on PATH, `make
# test` installs that client's packages from its committed lockfile into the
# git-ignored .build/ (again only after the lockfile changes) and tells the
# test where they are; without npm, or when the install fails (offline), the
# test skips and says why.
NODE_CLIENT := server/daemon/testdata/node-reflection
NODE_PREFIX := .build/node-reflection

.PHONY: test
test: ## Run every test, deployment kit included, with the race detector (with npm on PATH, also a Node client that knows the API only by reflection).
	@if command -v npm >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory $(NODE_PREFIX)/installed || \
	    echo "make test: could not install the Node reflection client; TestNodeReflectionClient will skip" >&2; \
	fi
	ENCRYPTIOND_NODE_MODULES=$(CURDIR)/$(NODE_PREFIX)/node_modules $(GO) test -race -shuffle=on -count=1 ./...
	$(GO) -C deploy test -race -shuffle=on -count=1 ./...

# --ignore-scripts: no package needs its install script to be loaded;
# --fetch-retries=1: fail in seconds, not minutes, when the registry is out
# of reach.
$(NODE_PREFIX)/installed: $(NODE_CLIENT)/package.json $(NODE_CLIENT)/package-lock.json
	@rm -rf $(NODE_PREFIX) && mkdir -p $(NODE_PREFIX)
	@cp $^ $(NODE_PREFIX)/
	npm ci --prefix $(NODE_PREFIX) --ignore-scripts --prefer-offline --fetch-retries=1 --no-audit --no-fund || \
	  { rm -rf $(NODE_PREFIX); exit 1; }
	@touch $@

# deploy/ is a module of its own (Kubernetes and kustomize stay out of the
# product's go.mod): the manifests, the Dockerfile against `make build`, the
# LICENSE.
.PHONY: test-deploy
test-deploy: ## Test only the deployment kit: the Kubernetes manifests, the Dockerfile against make build, the LICENSE.
	$(GO) -C deploy test -race -shuffle=on -count=1 ./...

# Every fuzz target, as package:Target. `make test` runs their seed corpora
# as ordinary tests; `make fuzz` explores each for FUZZTIME. The budget is a
# count of executions, not a duration: with a duration, Go 1.26's fuzzing
# coordinator can report a spurious "context deadline exceeded" failure when
# the time runs out while a worker is busy (go.dev/issue/75804, fixed in
# Go 1.27).
FUZZ_TARGETS := ./server:FuzzUpdateRules ./server:FuzzRESTUpdate ./atlas:FuzzDecodeResponse ./atlas:FuzzRedactSpellings
FUZZTIME ?= 100000x

.PHONY: fuzz
fuzz: ## Fuzz the update rules, REST request parsing, the decoding of Atlas's answers and secret redaction, FUZZTIME executions each (default 100000x).
	@for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; name=$${t##*:}; \
	  echo "fuzz $$name in $$pkg for $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

# The soak run: real binaries on 127.0.0.1, self-stopping after SOAK_DURATION.
SOAK_DURATION ?= 5m

.PHONY: soak
soak: ## Run the daemon under steady load for SOAK_DURATION (default 5m) with Atlas failing 5% of calls; writes the results into BENCH.md.
	$(GO) build -o .build/soak/ ./cmd/encryptiond ./cmd/atlas-emulator ./cmd/encryptiond-soak
	.build/soak/encryptiond-soak -bin .build/soak -duration $(SOAK_DURATION) -out BENCH.md

# The chaos run: the soak's load while the emulator restarts, connections
# drop and the daemon gets SIGTERM with calls in flight; then every change
# is accounted for from the audit log and the emulator's final state.
CHAOS_DURATION ?= 2m

.PHONY: chaos
chaos: ## Like soak, for CHAOS_DURATION (default 2m), through Atlas restarts, dropped connections and daemon SIGTERMs; checks every change against Atlas; writes BENCH.md.
	$(GO) build -o .build/soak/ ./cmd/encryptiond ./cmd/atlas-emulator ./cmd/encryptiond-soak
	.build/soak/encryptiond-soak -bin .build/soak -duration $(CHAOS_DURATION) -chaos -out BENCH.md

# The release build: static (no cgo), without local paths or VCS stamp, and
# stripped. The Dockerfile's `go build` uses the same environment and flags;
# deploy/image_test.go checks that they agree and that the binaries match.
GO_BUILD_ENV   := CGO_ENABLED=0
GO_BUILD_FLAGS := -trimpath -buildvcs=false -ldflags='-s -w'
BIN            ?= bin

.PHONY: build
build: ## Build encryptiond and the other commands into bin/ (BIN=dir): static binaries, built as the Dockerfile builds encryptiond.
	$(GO_BUILD_ENV) $(GO) build $(GO_BUILD_FLAGS) -o $(BIN)/ ./cmd/...

BENCH_BIN := .build/bench

.PHONY: bench
bench: ## Measure round trips, latency, throughput and memory against a reference proxy, and watches and lists at fleet scale (~2 min; uses wrk and curl if installed); writes BENCH.md.
	$(GO) build -o $(BENCH_BIN)/ ./cmd/encryptiond ./cmd/atlas-emulator ./cmd/encryptiond-bench
	$(GO) -C tools build -o ../$(BENCH_BIN)/ github.com/bojand/ghz/cmd/ghz
	$(BENCH_BIN)/encryptiond-bench -bin $(BENCH_BIN) -out BENCH.md

.PHONY: check-alerts
check-alerts: ## Check the Prometheus alert rules in deploy/prometheus/ with promtool, and run their tests.
	cd deploy/prometheus && $(GO) tool -modfile=../../tools/go.mod promtool check rules alerts.yaml
	cd deploy/prometheus && $(GO) tool -modfile=../../tools/go.mod promtool test rules alerts_test.yaml

.PHONY: protodeps
protodeps: ## Fetch the third-party .proto files the API imports into .build/ (generate and lint do it themselves).
	@rm -rf $(PROTODEPS)
	@mkdir -p $(PROTODEPS)/google/api $(PROTODEPS)/google/rpc
	@gw1=$$($(GO) mod download -json $(GATEWAY_V1) | grep '"Dir"' | cut -d'"' -f4) && \
	  test -n "$$gw1" && \
	  cp $$gw1/third_party/googleapis/google/api/annotations.proto \
	     $$gw1/third_party/googleapis/google/api/http.proto $(PROTODEPS)/google/api/ && \
	  cp $$gw1/third_party/googleapis/google/rpc/status.proto $(PROTODEPS)/google/rpc/
	@chmod -R u+w $(PROTODEPS)

.PHONY: generate
generate: protodeps ## After changing a .proto: regenerate gen/ (Go code, gateway, OpenAPI).
	$(BUF) generate
	$(GO) -C tools run ./openapi-params ../gen/openapiv2/encryptiond.swagger.json

.PHONY: check-generate
check-generate: generate ## Fail if gen/ is not what proto/ generates (CI runs it).
	@git add -N gen && git diff --exit-code --stat -- gen || \
	  (echo "gen/ is stale: run 'make generate' and commit the result" >&2; exit 1)

.PHONY: lint
lint: protodeps ## Check the .proto files (buf lint, buf format) and the Go code (gofmt, go vet).
	$(BUF) lint proto
	$(BUF) format -d --exit-code proto
	@out=$$(gofmt -l $$(git ls-files '*.go' ; git ls-files --others --exclude-standard '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) -C deploy vet ./...
	$(GO) -C tools vet ./protoc-gen-go-source ./openapi-params

# buf's `.git#branch=main` input cannot see the git-ignored third-party
# protos, so main's proto/ is unpacked beside a copy of them and compared.
AGAINST := .build/against

.PHONY: breaking
breaking: protodeps ## Check that proto/ breaks no client of the API as it is on the main branch.
	@rm -rf $(AGAINST) && mkdir -p $(AGAINST)/.build
	@git archive main buf.yaml proto | tar -x -C $(AGAINST)
	@cp -R $(PROTODEPS) $(AGAINST)/.build/
	$(BUF) breaking --against $(AGAINST)

.PHONY: clean
clean: ## Remove build output (bin/, .build/).
	rm -rf bin .build
