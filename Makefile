# skyswap: in-flight container updates for Raspberry Pi drones.
#   make demo    start the ground station (its page's URL first), deploy flight:v1 to the virtual drone through
#                drone-agent and containerd, then dronectl push flight:v2 mid-flight (DEMO_SECONDS=N, default 20;
#                0 = until Ctrl-C)
#   make test    every test (as root installs qemu-user-static, containerd, runc, mosquitto and chromium, starts containerd)
#   make bench   referee-measured figures, one JSON object per line (BENCH=hover,handoff,camera,update,ground,rollout,soak)
#   make soak    the soak alone: 50 updates per rate (250, 400, 1000 Hz) and load (quiet, hog)
#   make build   host binaries into bin/
#   make cross   linux/arm64 binaries (CGO_ENABLED=0) into bin/linux-arm64/
#   make images  flight:v1 and :v2, multi-arch OCI, no Docker: REGISTRY=host:port pushes, else images/out

SHELL   := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO      ?= go
FLIGHT_VERSION ?= v1
# The flight binaries come from skyswap-images -binary: the one build (and
# version stamps) that the images, the rig and make share.
FLIGHT  = bin/skyswap-images -version
CMDS    := ./cmd/drone-swarm ./cmd/drone-sim ./cmd/skyswap-demo ./cmd/skyswap-bench ./cmd/dronectl ./cmd/drone-agent ./cmd/skyswap-chaos
TESTFLAGS ?=
E2E     := ./images/flight ./agent/instances ./agent ./cmd/skyswap-demo ./rig/chaos ./controller/ground ./controller/rollout
E2E_RE  := /agent$$|/agent/instances$$|/images/flight$$|/cmd/skyswap-demo$$|/rig/chaos$$|/controller/ground$$|/controller/rollout$$

.PHONY: all build cross test demo bench soak deps vet clean images

all: build

deps:
	@scripts/dev-setup.sh go

build: deps
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ $(CMDS) ./cmd/skyswap-images
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/nats-server github.com/nats-io/nats-server/v2
	$(FLIGHT) $(FLIGHT_VERSION) -binary bin/flight
	$(FLIGHT) v2 -binary bin/flight-v2

cross: deps
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o bin/linux-arm64/ ./cmd/drone-sim ./cmd/drone-agent
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./cmd/skyswap-images
	$(FLIGHT) $(FLIGHT_VERSION) -platforms linux/arm64 -binary bin/linux-arm64/flight
	$(FLIGHT) v2 -platforms linux/arm64 -binary bin/linux-arm64/flight-v2
	@file bin/linux-arm64/* 2>/dev/null || ls -l bin/linux-arm64/

vet: deps
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }

test: deps
	@scripts/dev-setup.sh qemu containerd mosquitto chromium
	$(MAKE) --no-print-directory vet
	$(GO) test -count=1 $(TESTFLAGS) $$($(GO) list ./... | grep -v -E '$(E2E_RE)')
	@# The end-to-end flights run alone, one package at a time: they judge
	@# timing on a 2-core machine (and rig/chaos's CPU hog would load
	@# whatever ran beside it).
	$(GO) test -count=1 -p 1 -timeout 30m $(TESTFLAGS) $(E2E)

demo: build
	@scripts/dev-setup.sh containerd chromium
	bin/skyswap-demo

bench: build cross
	@scripts/dev-setup.sh containerd mosquitto chromium
	bin/skyswap-bench

# The soak alone, long: 50 updates per rate and load (SOAK_UPDATES to change).
soak: build
	@scripts/dev-setup.sh containerd mosquitto
	BENCH=soak SOAK_UPDATES=$${SOAK_UPDATES:-50} bin/skyswap-bench

images: deps
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./cmd/skyswap-images
	@set -e; for v in v1 v2; do \
		if [ -n "$(REGISTRY)" ]; then \
			echo "bin/skyswap-images -version $$v -push $(REGISTRY)/flight:$$v"; \
			bin/skyswap-images -version $$v -push $(REGISTRY)/flight:$$v; \
		else \
			echo "bin/skyswap-images -version $$v -layout images/out"; \
			bin/skyswap-images -version $$v -layout images/out; \
		fi; \
	done

clean:
	rm -rf bin/
