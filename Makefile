# Two commands do all set-up on a fresh machine (Python >= 3.11 and a C compiler):
#   make serve   install what is needed, migrate SQLite, create dev keys, serve on :3000
#   make test    install what is needed, run the whole suite (unit, SQLite, MariaDB, e2e)
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
STAMP := $(VENV)/.installed
# Never download a Python build: use the interpreter on the machine.
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install serve test lint format bench clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

install: $(STAMP)

serve: install
	$(VENV)/bin/authgate serve

test: install
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

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
	$(UV) sync --frozen --python $(PYTHON) --group bench
	$(VENV)/bin/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache
