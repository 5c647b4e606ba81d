# Everything a fresh machine needs is installed or built here and cached under .cache/ (gitignored).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

include test/cluster/tools/versions.env

comma      := ,
CACHE      := $(CURDIR)/.cache
BIN        := $(CACHE)/bin
TOOLS_DIR  := test/cluster/tools
S3_TOOLS   := test/s3/tools
NODE_BIN   := node_modules/.bin
export GOTOOLCHAIN := local
export GOFLAGS     := -buildvcs=false
export npm_config_update_notifier := false
export npm_config_fund := false
export npm_config_audit := false

# Node.js $(NODE) and npm $(NPM) (versions.env) run every recipe: their directory leads PATH, so `node`, `npm`, the
# node_modules/.bin scripts (#!/usr/bin/env node) and the children tests spawn with process.execPath all use it.
# The bootstrap node/npm on the machine's own PATH (any version >= 18) only downloads it.
NODE_ARCH  := $(patsubst x86_64,x64,$(patsubst aarch64,arm64,$(shell uname -m)))
NODE_DIR   := $(CACHE)/node-$(NODE)
NODE_EXE   := $(NODE_DIR)/bin/node
NODE_NPM   := $(NODE_DIR)/.npm-$(NPM)
BOOT_PATH  := $(PATH)
export PATH := $(NODE_DIR)/bin:$(PATH)

BINARIES   := $(BIN)/kube-apiserver-$(KUBERNETES) $(BIN)/kubectl-$(KUBERNETES) $(BIN)/etcd-$(ETCD) $(BIN)/helm-$(HELM)
VELERO_CRDS := $(CACHE)/crds/velero-$(VELERO)
CERT_MANAGER_CRDS := $(CACHE)/crds/cert-manager-$(CERT_MANAGER)
KOPIA_BIN  := $(BIN)/kopia-$(KOPIA)
VELERO_TOOLS := test/velero/tools
VELERO_BIN := $(BIN)/velero-$(VELERO)
AWS_PLUGIN := $(CACHE)/velero-plugins-$(VELERO_AWS_PLUGIN)/velero-plugin-for-aws
# What Velero's and the plugin's images hold, for pods on the real node (test/cluster/node/veleroImages.ts).
VELERO_IMAGE_FILES := $(CACHE)/velero-image-$(VELERO)/velero-helper $(CACHE)/velero-image-$(VELERO)/restic $(CACHE)/velero-plugin-image-$(VELERO_AWS_PLUGIN)/cp-plugin
# The KOTS era's Velero with restic and its AWS plugin (test/velero/tools-kots), for the real node's scenario B.
VELERO_KOTS_TOOLS := test/velero/tools-kots
# The local-volume-provider stand-in (scenarios B.2 and C), named by its sources' hash as the build names it.
LVP_STANDIN := $(CACHE)/lvp-standin-$(shell LC_ALL=C cat $(VELERO_KOTS_TOOLS)/lvp-standin/*.go $(VELERO_KOTS_TOOLS)/go.sum | sha256sum | cut -c1-12)/cp-plugin
# (Without the files the first build makes too: both eras may pair with the same AWS plugin.)
VELERO_KOTS_FILES := $(filter-out $(VELERO_IMAGE_FILES),$(CACHE)/velero-image-$(VELERO_KOTS)/restic $(CACHE)/velero-plugin-image-$(VELERO_KOTS_AWS_PLUGIN)/cp-plugin) $(LVP_STANDIN)
# Ours (test/cluster/tools/fakenode): named by its source's hash, as test/cluster/binaries.ts finds it.
FAKE_NODE  := $(BIN)/fake-node-$(KUBERNETES)-$(shell LC_ALL=C cat $(TOOLS_DIR)/fakenode/*.go | sha256sum | cut -c1-12)
S3_CLIENTS := $(CACHE)/s3clients

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# --- dependencies --------------------------------------------------------------------------
# The official Node.js build, as the npm registry carries it (node-linux-<arch>: bin/node and headers, no npm).
# npm pack checks the tarball against the registry's integrity for that version, which the registry never
# lets change; the binary must then report the pinned version. The touch gives it a fresh mtime (npm tarballs
# date every file 1985), so node_modules below is reinstalled when the pin moves.
$(NODE_EXE):
	@echo "fetching Node.js $(NODE) (node-linux-$(NODE_ARCH)) from the npm registry ..."
	@scratch=$$(mktemp -d) && trap 'rm -rf "$$scratch"' EXIT && cd "$$scratch" && \
	  PATH="$(BOOT_PATH)" npm pack --silent node-linux-$(NODE_ARCH)@$(NODE) >/dev/null && \
	  tar -xzf node-linux-$(NODE_ARCH)-$(NODE).tgz package/bin/node && \
	  test "$$(package/bin/node --version)" = "v$(NODE)" && \
	  mkdir -p $(@D) && mv package/bin/node $@ && touch $@

# npm as Node.js $(NODE) bundles it, laid out as the nodejs.org archives do (lib/node_modules/npm, bin/npm and
# bin/npx linking to its CLI scripts); the stamp names the version so moving NPM alone refetches it.
$(NODE_NPM): | $(NODE_EXE)
	@echo "fetching npm $(NPM) from the npm registry ..."
	@scratch=$$(mktemp -d) && trap 'rm -rf "$$scratch"' EXIT && cd "$$scratch" && \
	  PATH="$(BOOT_PATH)" npm pack --silent npm@$(NPM) >/dev/null && tar -xzf npm-$(NPM).tgz && \
	  rm -rf $(NODE_DIR)/lib/node_modules/npm $(NODE_DIR)/.npm-* && mkdir -p $(NODE_DIR)/lib/node_modules && \
	  mv package $(NODE_DIR)/lib/node_modules/npm && \
	  ln -sfn ../lib/node_modules/npm/bin/npm-cli.js $(NODE_DIR)/bin/npm && \
	  ln -sfn ../lib/node_modules/npm/bin/npx-cli.js $(NODE_DIR)/bin/npx && \
	  test "$$(npm --version)" = "$(NPM)" && touch $@

.PHONY: nodejs
nodejs: $(NODE_EXE) $(NODE_NPM) ## the pinned Node.js and npm (versions.env), from the npm registry (cached)

node_modules/.package-lock.json: package.json package-lock.json $(NODE_EXE) $(NODE_NPM)
	npm ci --no-audit --no-fund
	@touch $@

.PHONY: deps
deps: node_modules/.package-lock.json ## npm packages (npm ci)

$(BIN)/kube-apiserver-$(KUBERNETES) $(BIN)/kubectl-$(KUBERNETES) $(BIN)/etcd-$(ETCD) $(BIN)/helm-$(HELM): $(TOOLS_DIR)/go.mod $(TOOLS_DIR)/versions.env
	@$(TOOLS_DIR)/build $(firstword $(subst -v, ,$(notdir $@))) $(BIN) >/dev/null

$(VELERO_CRDS):
	@echo "fetching Velero $(VELERO) CRDs from the Go module proxy ..."
	@dir=$$(cd $(TOOLS_DIR) && go mod download -json github.com/vmware-tanzu/velero@$(VELERO) | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir") or sys.exit("go mod download: " + d.get("Error", "no Dir")))'); \
	  mkdir -p $@.tmp && cp "$$dir"/config/crd/v1/bases/*.yaml $@.tmp/ && chmod 0644 $@.tmp/*.yaml && mv $@.tmp $@

# Outside our modules (a scratch dir), so the download touches no go.mod of ours.
$(CERT_MANAGER_CRDS):
	@echo "fetching cert-manager $(CERT_MANAGER) CRDs from the Go module proxy ..."
	@scratch=$$(mktemp -d) && dir=$$(cd $$scratch && GOFLAGS=-mod=mod go mod download -json github.com/cert-manager/cert-manager@$(CERT_MANAGER) | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir") or sys.exit("go mod download: " + d.get("Error", "no Dir")))'); \
	  rm -rf $$scratch && mkdir -p $@.tmp && cp "$$dir"/deploy/crds/cert-manager.io_issuers.yaml "$$dir"/deploy/crds/cert-manager.io_certificates.yaml $@.tmp/ && chmod 0644 $@.tmp/*.yaml && mv $@.tmp $@

.PHONY: tools
tools: $(BINARIES) $(VELERO_CRDS) $(CERT_MANAGER_CRDS) ## build kube-apiserver, kubectl, etcd, helm (cached) and fetch the Velero and cert-manager CRDs

.PHONY: pin
pin: ## rewrite the wrapper go.mod files (test/cluster, test/s3, test/velero tools) to the versions in versions.env
	$(TOOLS_DIR)/pin
	$(S3_TOOLS)/pin
	$(VELERO_TOOLS)/pin
	$(VELERO_KOTS_TOOLS)/pin
	$(PEERS)/pin

# --- S3 clients the S3 API is tested with (test/s3/clientTools.ts) ---------------------------
# kopia is built from the fork Velero links (test/s3/tools/go.mod); the touch keeps the binary newer
# than its prerequisites when a versions.env edit did not change KOPIA, so a warm run does nothing.
$(KOPIA_BIN): $(S3_TOOLS)/go.mod $(S3_TOOLS)/go.sum $(TOOLS_DIR)/versions.env
	@$(S3_TOOLS)/build $(BIN) >/dev/null && touch $@

$(S3_CLIENTS)/.stamp: $(TOOLS_DIR)/versions.env $(S3_TOOLS)/fetch-clients test/bench/fetch-debs
	@echo "fetching Debian packages for the S3 client tests: $(S3_CLIENT_DEBS) (and their missing Python dependencies) ..."
	@$(S3_TOOLS)/fetch-clients $(S3_CLIENTS) && touch $@

.PHONY: s3-clients
s3-clients: $(KOPIA_BIN) $(S3_CLIENTS)/.stamp ## build kopia and fetch restic, rclone, s3cmd, awscli (cached)

# --- the real Velero (end-to-end tests) --------------------------------------------------------
$(VELERO_BIN) $(AWS_PLUGIN) $(VELERO_IMAGE_FILES): $(VELERO_TOOLS)/go.mod $(VELERO_TOOLS)/go.sum $(VELERO_TOOLS)/velero/main.go $(VELERO_TOOLS)/build test/velero/build-restic $(TOOLS_DIR)/versions.env
	@$(VELERO_TOOLS)/build $(CACHE) >/dev/null && touch $(VELERO_BIN) $(AWS_PLUGIN) $(VELERO_IMAGE_FILES)

$(VELERO_KOTS_FILES): $(VELERO_KOTS_TOOLS)/go.mod $(VELERO_KOTS_TOOLS)/go.sum $(VELERO_KOTS_TOOLS)/build $(wildcard $(VELERO_KOTS_TOOLS)/lvp-standin/*.go) test/velero/build-restic $(TOOLS_DIR)/versions.env
	@$(VELERO_KOTS_TOOLS)/build $(CACHE) >/dev/null && touch $(VELERO_KOTS_FILES)

$(FAKE_NODE): $(TOOLS_DIR)/go.mod $(TOOLS_DIR)/go.sum $(wildcard $(TOOLS_DIR)/fakenode/*.go)
	@$(TOOLS_DIR)/build fake-node $(BIN) >/dev/null

.PHONY: velero
velero: $(VELERO_BIN) $(AWS_PLUGIN) $(VELERO_IMAGE_FILES) $(FAKE_NODE) ## build Velero, velero-plugin-for-aws and their images' commands (Go module proxy), and the e2e fake node (cached)

.PHONY: velero-kots
velero-kots: velero $(VELERO_KOTS_FILES) ## also the KOTS era's Velero 1.16 with restic and the local-volume-provider stand-in, for make test-kots (cached)

# --- the real node (test/cluster/node, docs/real-node.md): kubelet, containerd, kube-proxy beside our apiserver --
NODE_TOOLS := $(foreach t,kubelet kube-controller-manager kube-scheduler kube-proxy,$(BIN)/$(t)-$(KUBERNETES))
NODE_DEBS  := containerd runc containernetworking-plugins iptables conntrack socat
NODE_CMDS  := containerd containerd-shim-runc-v2 runc ctr iptables ip6tables conntrack socat /usr/lib/cni/bridge
# CoreDNS (cluster DNS) is pinned by its own module, so its dependencies move nothing Kubernetes is built with.
COREDNS_DIR := test/cluster/node/coredns
COREDNS    := $(BIN)/coredns-$(shell awk '$$1 == "github.com/coredns/coredns" { print $$2 } $$1 == "require" && $$2 == "github.com/coredns/coredns" { print $$3 }' $(COREDNS_DIR)/go.mod)

$(NODE_TOOLS): $(TOOLS_DIR)/go.mod $(TOOLS_DIR)/go.sum $(TOOLS_DIR)/versions.env
	@$(TOOLS_DIR)/build $(patsubst %-$(KUBERNETES),%,$(notdir $@)) $(BIN) >/dev/null

$(COREDNS): $(COREDNS_DIR)/go.mod $(COREDNS_DIR)/go.sum
	@$(COREDNS_DIR)/build $(BIN) >/dev/null && touch $@

# busybox for the node's test pods: Debian's static build, unpacked (not installed) under .cache/node-debs.
$(CACHE)/node-debs/.stamp: test/bench/fetch-debs
	@test/bench/fetch-debs $(CACHE)/node-debs busybox-static && touch $@

# The container runtime and network tools, from Debian, installed only when one is missing (needs root).
.PHONY: node-packages
node-packages:
	@missing=""; for c in $(NODE_CMDS); do command -v $$c >/dev/null || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "missing:$$missing; run as root to install the Debian packages $(NODE_DEBS)" >&2; \
	    if [ -n "$${CI:-}" ]; then exit 1; fi; echo "(the real node's suites will be skipped, saying why)" >&2; exit 0; \
	  fi; \
	  echo "installing Debian packages for the real node (missing:$$missing): $(NODE_DEBS)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(NODE_DEBS) >/dev/null; \
	fi

.PHONY: node-tools
node-tools: $(NODE_TOOLS) $(COREDNS) $(CACHE)/node-debs/.stamp node-packages ## build kubelet, controller-manager, scheduler, kube-proxy, CoreDNS (cached); install containerd, runc, CNI, iptables (root)

.PHONY: node-test
node-test: deps tools node-tools build image ## only the real node's suites (part of make test), the chart installed from `make image` included (root)
	$(NODE_BIN)/vitest run --project node

# Opt-in: these scenarios take 4-5 minutes on 2 cores and would take make test past 15 minutes (docs/e2e.md).
.PHONY: test-kots
test-kots: deps tools node-tools velero-kots build image ## the real node's KOTS-era scenarios (Velero 1.16 + restic through our S3 and with LVP, then the move to 1.18); not in make test (root)
	$(NODE_BIN)/vitest run --project kots

# --- build, lint, test ------------------------------------------------------------------------
.PHONY: build
build: deps ## compile TypeScript to dist/
	$(NODE_BIN)/tsc -p tsconfig.build.json

.PHONY: lint
lint: deps ## eslint, no warnings allowed
	$(NODE_BIN)/eslint --max-warnings 0 .

.PHONY: typecheck
typecheck: deps ## tsc --noEmit over src and tests
	$(NODE_BIN)/tsc -p tsconfig.json --noEmit

.PHONY: test
test: deps tools s3-clients velero node-tools lint typecheck build image ## everything: deps, tools, S3 clients, Velero, the real node, the image, lint, typecheck, unit, integration, e2e and real-node tests
	@mkdir -p $(CACHE) && rm -f $(CACHE)/vitest-results.json
	@# The summary line is printed whatever vitest's exit; the exit is vitest's, or the summary's when vitest said 0.
	@status=0; $(NODE_BIN)/vitest run --project '!kots' --reporter=default --reporter=json --outputFile.json=$(CACHE)/vitest-results.json || status=$$?; \
	  node test/summary.mjs $(CACHE)/vitest-results.json || { [ $$status -ne 0 ] || status=1; }; exit $$status

.PHONY: test-unit
test-unit: deps ## unit tests only (no control plane)
	$(NODE_BIN)/vitest run --project unit

.PHONY: fuzz
fuzz: deps ## only the fuzzers of every network-facing parser (test/fuzz), FUZZ_SECONDS per file (default 300; `make test` gives them 10)
	FUZZ_SECONDS=$(or $(FUZZ_SECONDS),300) $(NODE_BIN)/vitest run --project fuzz

.PHONY: e2e
e2e: deps tools velero build ## only the end-to-end suite: the real Velero against the local control plane and our storage
	$(NODE_BIN)/vitest run --project e2e

.PHONY: cluster
cluster: deps tools node-tools build image ## the real single-node cluster in the foreground with our image imported (root); prints a kubeconfig, Ctrl-C restores the host (IMAGES=more archives)
	node dist/test/cluster/node/main.js $(IMAGE) $(IMAGES)

.PHONY: control-plane
control-plane: deps tools build ## only etcd and kube-apiserver (no node, no root), in the foreground; prints a kubeconfig
	node dist/test/cluster/main.js

.PHONY: clean
clean: ## remove build output (keeps the tool cache)
	rm -rf dist coverage

.PHONY: demo
demo: deps tools build ## pod admission on a local control plane (DEMO_ONCE=1 exits after the showcase)
	node dist/test/cluster/demo.js

.PHONY: soak
soak: build ## crash-safety soak of the object store: SIGKILL a writer TRIALS times (default 1000)
	node dist/test/storage/soak.js $(or $(TRIALS),1000)

.PHONY: crds
crds: build ## regenerate chart/app-snapshots/crds from src/policy/crd.ts
	node dist/src/cli.js crds > chart/app-snapshots/crds/appsnapshots.io_policies.yaml

# --- the image (build/image, docs/image.md): built without a container engine or a base image ---------------
# Named as the chart pulls it by default (values.yaml image.repository, Chart.yaml appVersion), so a node that
# imports the archive needs no registry.
IMAGE_TAG  := $(shell sed -n 's/^appVersion: "\(.*\)"$$/\1/p' chart/app-snapshots/Chart.yaml)
IMAGE_REF  := $(shell sed -n 's/^  repository: //p' chart/app-snapshots/values.yaml | head -n 1):$(IMAGE_TAG)
IMAGE      := $(CACHE)/image/app-snapshots-$(IMAGE_TAG).oci.tar
# Debian (this machine's release) packages the image's files come from: what `ldd node` names, CA certificates,
# and gcc-12-base for the copyright file of the GCC runtime libraries. Changing the list: rm -r .cache/image/debs.
IMAGE_DEBS := libc6 libstdc++6 libgcc-s1 libatomic1 gcc-12-base ca-certificates
# Every date in the image is the commit's, so the same commit gives the same image digest.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)

$(CACHE)/image/debs/.stamp:
	@echo "fetching Debian packages for the image: $(IMAGE_DEBS)"
	@rm -rf $(@D) && test/bench/fetch-debs $(@D) $(IMAGE_DEBS) && touch $@

.PHONY: bundle
bundle: build ## esbuild bundle of dist/src, the program the image runs (.cache/image/app)
	node build/image/bundle.mjs $(CACHE)/image/app

.PHONY: image
image: bundle $(NODE_EXE) $(CACHE)/image/debs/.stamp ## the OCI image archive .cache/image/app-snapshots-<version>.oci.tar (docs/image.md)
	@python3 build/image/build.py --node $(NODE_EXE) --debs $(CACHE)/image/debs/root --bundle $(CACHE)/image/app --out $(IMAGE) \
	  --ref $(IMAGE_REF) --epoch $(SOURCE_DATE_EPOCH) --revision $$(git rev-parse HEAD 2>/dev/null || echo unknown) --rootfs $(CACHE)/image/rootfs

# --- benchmarks --------------------------------------------------------------------------------
# The peers the benchmarks compare against (test/bench/peers): versitygw (posix backend) for the S3 API,
# Kyverno as a second admission webhook, each built from the Go module proxy through its wrapper go.mod.
PEERS      := test/bench/peers
VERSITYGW_BIN := $(BIN)/versitygw-$(VERSITYGW)
KYVERNO_BIN := $(BIN)/kyverno-$(KYVERNO)

$(VERSITYGW_BIN): $(PEERS)/versitygw/go.mod $(PEERS)/versitygw/go.sum $(TOOLS_DIR)/versions.env
	@$(PEERS)/build versitygw $(BIN) >/dev/null && touch $@

$(KYVERNO_BIN): $(PEERS)/kyverno/go.mod $(PEERS)/kyverno/go.sum $(TOOLS_DIR)/versions.env
	@$(PEERS)/build kyverno $(BIN) >/dev/null && touch $@

$(BIN)/hey-$(HEY):
	@echo "building hey $(HEY) from the Go module proxy ..."
	@mkdir -p $(BIN) && tmp=$$(mktemp -d) && GOBIN=$$tmp go install github.com/rakyll/hey@$(HEY) && mv $$tmp/hey $@ && rmdir $$tmp

$(CACHE)/deb/.stamp: $(TOOLS_DIR)/versions.env
	@echo "fetching Debian packages for the benchmarks: $(BENCH_DEBS)"
	@test/bench/fetch-debs $(CACHE)/deb $(subst $(comma), ,$(BENCH_DEBS)) && touch $@

.PHONY: bench
bench: deps tools build $(BIN)/hey-$(HEY) $(CACHE)/deb/.stamp $(VERSITYGW_BIN) $(KYVERNO_BIN) ## benchmarks, as ratios against baselines measured in the same run; writes docs/benchmarks.md
	node dist/test/bench/webhook.js
	node dist/test/bench/storage.js
	node dist/test/bench/s3.js
	node dist/test/bench/s3Peer.js

.PHONY: bench-storage
bench-storage: deps build $(CACHE)/deb/.stamp ## only the object-store benchmarks (vs nginx and the raw disk; ~3-5 min, ~12 GiB of temp disk)
	node dist/test/bench/storage.js

.PHONY: bench-s3
bench-s3: deps build $(BIN)/hey-$(HEY) $(CACHE)/deb/.stamp ## only the S3 API benchmarks (vs nginx, the store in-process and the raw disk; ~5 min, ~4 GiB of temp disk)
	node dist/test/bench/s3.js

.PHONY: bench-s3-peer
bench-s3-peer: deps build $(CACHE)/deb/.stamp $(VERSITYGW_BIN) ## only the S3 API against versitygw (posix backend), same clients, same run (~4 min, ~2 GiB of temp disk)
	node dist/test/bench/s3Peer.js
