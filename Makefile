# Front door. `make run` starts a local cluster; `make test` runs every test.
BUILD ?= build
CLUSTER ?= stor1
CS ?= 3
PY := /usr/bin/python3

.PHONY: deps build test unit systest run stop clean bench

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -G Ninja >/dev/null
	@cmake --build $(BUILD) -j2

unit: build
	cd $(BUILD) && ctest --output-on-failure -j2

systest: build
	$(PY) -m pytest -q tests/system

test: unit systest

run: build
	@VSTORAGE_CS=$(CS) bash scripts/local-cluster.sh start $(CLUSTER)

stop:
	@bash scripts/local-cluster.sh stop $(CLUSTER)

bench: build
	@bash bench/fio_bench.sh

clean:
	rm -rf $(BUILD)
