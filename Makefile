# Two commands do all the set-up: `make demo` and `make test`. Each creates .venv
# and installs trimkit into it (torch is pinned to the CPU wheel on this machine).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test test-quick test-slow lint install browser postgres clean

# pip compiles every installed file one by one (50 of the install's 68 s on a 2-core AMD EPYC); compileall
# does it on all cores afterwards (29 s on 2), so that no test process compiles what it imports.
# A file that does not compile (another Python's syntax in a package's data) is left as it is.
$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -e ".[dev]"
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib >/dev/null 2>&1 || true
	touch $(INSTALLED)

install: $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/trimkit demo

# The report's test opens pages in a real browser: Debian's chromium, installed here
# with apt-get where it is missing (as root, as on CI). Elsewhere install it yourself;
# the browser test fails under CI=true without it and is skipped otherwise.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the browser test"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	  else echo "warning: chromium is missing and this user cannot apt-get it; the browser test will skip"; fi; }

# The search and benchmark-queue tests run against a real PostgreSQL server: started here
# (Debian's postgresql installed with apt-get where it is missing and the user is root, as
# on CI), run as the postgres user, its URL written where tests/support/postgres.py reads it.
# Tests that need it fail under CI=true without it and are skipped otherwise.
postgres:
	@scripts/test-postgres.sh >/dev/null

# The fast suite, two workers (one core each); `make test-quick` leaves out the heavy tests
# (whole commands, servers, browsers, whole recipes, real data) for the edit loop.
PYTEST := $(BIN)/python -m pytest -q -n 2 --dist worksteal

lint: $(INSTALLED)
	$(BIN)/ruff check src tests benchmarks

test: $(INSTALLED) browser postgres lint
	$(PYTEST) --durations=10

test-quick: $(INSTALLED) lint
	$(PYTEST) -m "not slow and not heavy"

test-slow: $(INSTALLED) postgres
	$(BIN)/python -m pytest -q -m slow

clean:
	rm -rf $(VENV) build src/*.egg-info runs
