# Two commands do all set-up on a fresh machine (Python >= 3.11 and a C compiler;
# Node >= 20 with npm for the Node verifiers in tests/interop):
#   make serve   install what is needed, migrate SQLite, create dev keys, serve on :3000
#   make test    install what is needed, run the whole suite (unit, SQLite, MariaDB, e2e,
#                third-party verifiers) on TEST_WORKERS processes, measuring branch
#                coverage against its floor
#   make test-fast  the inner loop: unit and API tests on SQLite (no MariaDB, no e2e)
# The checkout installs the server: `--extra server` (plain `pip install authgate` is the
# verifier kit alone, authgate.resource).
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
STAMP := $(VENV)/.installed
# Never download a Python build: use the interpreter on the machine.
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install node-install serve test test-fast lint format bench clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON) --extra server
	@touch $@

install: $(STAMP)

# Node's JOSE libraries, third-party verifiers of our tokens in tests/interop: `npm ci`
# from the lock file, once, like the venv. Without npm the Node checks skip locally
# (CI=true fails them: tests/interop/node_verifiers.py).
NODE_INTEROP := tests/interop/node
NODE_STAMP := $(NODE_INTEROP)/node_modules/.installed

$(NODE_STAMP): $(NODE_INTEROP)/package.json $(NODE_INTEROP)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		cd $(NODE_INTEROP) && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else \
		echo "npm not found: the Node checks of tests/interop will skip (and fail when CI=true)"; \
	fi

node-install: $(NODE_STAMP)

serve: install
	$(VENV)/bin/authgate serve

# pytest-xdist workers (one per core; CI has 2). Tests marked `serial` (they
# assert wall time) still run alone: tests/support/serial.py. Each worker has its own
# MariaDB database (tests/support/databases.py).
TEST_WORKERS ?= auto

# Branch coverage of src/authgate, e2e server processes included; the floor is
# [tool.coverage.report] fail_under in pyproject.toml. For a partial run, call pytest
# directly (`.venv/bin/python -m pytest tests/unit`): a subset is below the floor.
test: install $(NODE_STAMP)
	rm -f .coverage .coverage.*
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --cov --cov-report=term $(PYTEST_ARGS)

# One process: for these ~280 quick tests, starting xdist workers costs more than it
# saves (23 s alone, 37 s on two workers, 2026-12-01 on the 2-core machine).
test-fast: install
	$(VENV)/bin/python -m pytest -m "not mariadb and not e2e" tests/unit tests/api $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# make bench BENCH_ARGS="--db mariadb --scenarios refresh --algorithm ES256"
# (needs wrk: apt-get install -y wrk; MariaDB on 127.0.0.1:3306 for --db mariadb/both)
bench: $(UV)
	$(UV) sync --frozen --python $(PYTHON) --extra server --group bench
	$(VENV)/bin/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) $(NODE_INTEROP)/node_modules .mypy_cache .ruff_cache .pytest_cache .coverage .coverage.*
