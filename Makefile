# Atelier: `make demo` runs the image loop end to end, `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.atelier-installed
PROMPT ?= A lighthouse on a rocky coast at sunset, orange and purple sky, calm blue sea

.PHONY: install tools demo test test-fast stop server worker lint bench chaos clean

install: $(STAMP)

# torch first, pinned, so pip takes the local CPU wheel; everything else then accepts that version.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install -q --disable-pip-version-check --no-compile torch==2.13.0
	@$(PY) -m pip install -q --disable-pip-version-check --no-compile -e '.[dev]'
	@touch $(STAMP)

demo: install
	@$(PY) -m starter up
	@$(PY) -m starter image "$(PROMPT)" --background opaque

stop:
	@$(PY) -m starter down

server: install
	$(PY) -m starter server

worker: install
	$(PY) -m workers

# Four test processes on two cores: most tests wait on servers and workers, not on a CPU.
# Every test is bounded by pytest-timeout (pyproject.toml); CI runs all of them, markers included.
XDIST := -n 4 --dist worksteal
test: install tools
	@$(PY) -m pytest -q $(XDIST)

# The inner loop: no worker or CLI processes, browser or TLS proxy (`-m slow|browser|proxy` selects those).
test-fast: install tools
	@$(PY) -m pytest -q $(XDIST) -m "not slow and not browser and not proxy"

# Debian's docker-compose validates docker-compose.yml, Debian's chromium runs the browser checks and nginx
# terminates TLS in front of the dev server for the secured-cluster tests, PostgreSQL's server runs the database
# tests (no Docker engine and no browser download needed). Installed when missing and when run as root; each is
# a command, or command:package where the package is named otherwise.
TOOLS := docker-compose chromium nginx pg_ctlcluster:postgresql
tools:
	@missing=""; for t in $(TOOLS); do command -v $${t%%:*} >/dev/null || missing="$$missing $${t#*:}"; done; \
	if [ -n "$$missing" ]; then \
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
			echo "installing$$missing"; \
			(apt-get install -y -qq $$missing >/dev/null 2>&1 || \
			 (apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null)) \
			|| echo "note: could not install$$missing; their tests are skipped outside CI"; \
		else echo "note:$$missing not installed; their tests are skipped outside CI"; fi; \
	fi

chaos: install
	@$(PY) -m tests.chaos --trials 24

bench: install
	@$(PY) -m bench.world_bench
	@$(PY) -m bench.scoring
	@$(PY) -m bench.rate_limits
	@$(PY) -m bench.streaming
	@$(PY) -m bench.api
	@$(PY) -m bench.studio
	@$(PY) -m bench.abuse
	@$(PY) -m bench.leaderboard
	@$(PY) -m bench.ratings
	@$(PY) -m bench.experiments
	@$(PY) -m bench.experiment_page
	@$(PY) -m bench.life

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean: stop
	rm -rf .atelier
