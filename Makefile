# The template's own commands. Needs only Python 3.11+ and make: uv is
# installed into .tools/ when it is not already on PATH.
.DEFAULT_GOAL := help
.PHONY: help serve test bench lint clean

PYTHON ?= python3
UV := $(or $(shell command -v uv 2>/dev/null),.tools/bin/uv)
VENV := .venv
BAKED := build/my-service
export UV_NO_PROGRESS := 1
# What these targets run, the baked project's own make targets included, finds
# the tools (uv above all) that `make` installed into .venv.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check "uv>=0.13,<0.14"

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

# A bake never overwrites build/my-service: edits made there are kept, and served.
serve: $(VENV)/.synced ## bake the default service into build/my-service (once) and serve it on $PORT (default 8000)
	@if [ -e $(BAKED) ]; then \
		echo "$(BAKED) exists: serving it as it is (remove it to bake the template again)"; \
	else \
		cookiecutter --no-input --output-dir build .; \
	fi
	cd $(BAKED) && uv sync --quiet
	cd $(BAKED) && uv run --no-sync my-service migrate
	cd $(BAKED) && exec uv run --no-sync my-service serve

# Groups start in the order conftest.py gives them (longest first), not by size.
# -v: a line as each test starts and as it ends, with its stack in its id and
# the share of the suite done.
test: $(VENV)/.synced ## run the whole test suite
	pytest -n auto --dist loadgroup --no-loadscope-reorder -v

# The load generator is wrk, a system package (`sudo apt-get install wrk`): without it,
# throughput and latency are reported as skipped. BENCH_ARGS passes options, e.g. --runs=9.
bench: $(VENV)/.synced ## measure the default service against bare baselines into docs/performance.md
	$(VENV)/bin/python -m benchmarks.run $(BENCH_ARGS)

lint: $(VENV)/.synced ## lint the hooks, tests and benchmarks
	$(VENV)/bin/ruff check hooks tests benchmarks local_extensions.py
	$(VENV)/bin/ruff format --check hooks tests benchmarks local_extensions.py

clean: ## remove the tools, the environment and baked projects
	rm -rf .tools $(VENV) build
