# Two commands on a fresh Debian/Ubuntu machine with Python 3.11:
#   make demo   install (if needed) and launch the app on http://127.0.0.1:7860
#   make test   install (if needed), lint (ruff + mypy + import contracts), and run the whole test suite
# The install step is idempotent: it reruns only when a requirements/packages file changed.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
HOST ?= 127.0.0.1
PORT ?= 7860

.PHONY: install demo lint test data clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt packages.txt
	@missing=$$(for p in $$(grep -v '^\s*#' packages.txt); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install $$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

# A plain command (no shell syntax): make runs it without a shell, so a SIGTERM to make reaches
# the app, which then removes its temp folder (demo/workspace.py).
demo: install
	$(VENV)/bin/python app.py --host $(HOST) --port $(PORT)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: lint
	GRADIO_ANALYTICS_ENABLED=False $(VENV)/bin/python -m pytest -q tests

data: install
	$(VENV)/bin/python -m fgg.data --export

clean:
	rm -rf $(VENV) data/cache .pytest_cache
