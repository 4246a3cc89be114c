# ocbuild — see README.md.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
GO ?= go
IMAGE ?=
BENCH_FLAGS ?=

.PHONY: all build test unit image-check e2e e2e-cluster e2e-sandbox-cluster lint bench sandbox demo image image-push clean

all: build

## build: the static ocbuild binary in bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/ocbuild ./step
	@ls -l bin/ocbuild | awk '{printf "bin/ocbuild: %.1f MiB\n", $$5/1048576}'

## test: everything CI runs — lint, unit tests, the image check, the end-to-end
## suite, then the conformance suite against a running `make sandbox`
test: lint unit image-check e2e e2e-sandbox-cluster

## unit: unit tests of the main module (the image check has its own target)
unit:
	$(GO) test -count=1 -skip '^TestBuildImage$$' ./...

## image-check: build the step image for both platforms and check it (cross-compiles: minutes cold)
image-check:
	$(GO) test -count=1 -run 'TestBuildImage' ./step/imagebuild

## e2e: the end-to-end suite against the local sandbox (test/ module); the
## conformance suite runs in e2e-sandbox-cluster instead
e2e:
	cd test && $(GO) test -count=1 -timeout 75m $$($(GO) list ./... | grep -v '/e2e/conformance$$')

## e2e-cluster: the conformance suite against the existing cluster in KUBECONFIG
##   (opt in with OCBUILD_E2E_EXISTING_CLUSTER=true; test/e2e/cluster lists the
##   OCBUILD_E2E_* variables). It creates only its own namespaces and deletes them.
e2e-cluster:
	@if [ "$$OCBUILD_E2E_EXISTING_CLUSTER" != true ]; then \
	  echo "make e2e-cluster creates namespaces on the cluster in KUBECONFIG ($${KUBECONFIG:-unset})."; \
	  echo "Opt in with OCBUILD_E2E_EXISTING_CLUSTER=true; see README.md, \"Check your installation\"."; exit 2; fi
	cd test/e2e/conformance && $(GO) test -count=1 -timeout 60m

## e2e-sandbox-cluster: make e2e-cluster against a running `make sandbox`
e2e-sandbox-cluster:
	cd test && $(GO) build -o ../bin/sandbox ./cmd/sandbox && $(GO) build -o ../bin/e2e-against-sandbox ./cmd/e2e-against-sandbox
	bin/e2e-against-sandbox --sandbox bin/sandbox --root .

## lint: gofmt and go vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## bench: benchmarks (not part of test): unit benchmarks, then the sandbox figures:
##   step overhead beyond the OpenShift build's duration, API requests per build
##   by verb and resource (target: build.openshift.io <= 6), and the upload on a
##   1 GiB / 20,000-file incompressible tree: MiB/s of the physical limit (plain
##   tar to /dev/null), of an oc-like baseline (archive/tar + compress/gzip,
##   one stream) and of ocbuild (target >= 2x the baseline), peak RSS (target
##   <= 64 MiB) and the small-tree overhead (target <= 0.5x the baseline's);
##   see test/cmd/bench. Smaller: make bench BENCH_FLAGS='-runs 2 -tree-size 67108864 -tree-files 2000'
bench: build
	@awk 'BEGIN { printf "bin/ocbuild budget: 18 MiB\n" }'
	$(GO) test -run '^$$' -bench . -benchmem ./...
	cd test && $(GO) run ./cmd/bench $(BENCH_FLAGS)

## sandbox: run the local sandbox cluster in the foreground
sandbox:
	cd test && $(GO) run ./cmd/sandbox

## demo: sandbox + strategies + a BuildRun through ocbuild; prints digest, size, commit
demo:
	cd test && $(GO) run ./cmd/demo

clean:
	rm -rf bin dist .sandbox

## image: step image (linux/amd64+arm64 OCI index) in dist/ocbuild-image, no container engine
image:
	$(GO) run ./step/imagebuild --version $(VERSION) --out dist/ocbuild-image

## image-push: make image-push IMAGE=ghcr.io/ocbuild/ocbuild:v0.1.0
image-push:
	@test -n "$(IMAGE)" || { echo "usage: make image-push IMAGE=registry/repo:tag"; exit 2; }
	$(GO) run ./step/imagebuild --version $(VERSION) --out dist/ocbuild-image --push $(IMAGE)
