# make run | make test | make example | make bench | make lint | make screenshots | make cli-install-check
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 7071
# The browser tests drive Debian's Chromium (Playwright never downloads a browser here).
CHROMIUM ?= /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: install browser run test lint unit example bench screenshots clean cli-install-check

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

browser: $(CHROMIUM)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium
	test -x $(CHROMIUM)

run: install
	$(PY) -m devhost.stack --port $(PORT)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/actionlint

test: install browser lint
	$(PY) -m pytest -q

unit: $(VENV)/.installed
	$(PY) -m pytest -q tests/unit

example: install
	$(PY) -m examples.register_sample --api http://127.0.0.1:$(PORT)

bench: install
	$(PY) -m bench

# The `registry` command line from a fresh venv with nothing but `pip install .[cli]` (needs PyPI):
# it runs, and the Functions runtime is not there.
CLI_VENV := .local/cli-venv
cli-install-check:
	rm -rf $(CLI_VENV) build
	$(PYTHON) -m venv $(CLI_VENV)
	$(CLI_VENV)/bin/pip install --quiet --disable-pip-version-check '.[cli]'
	$(CLI_VENV)/bin/registry --help >/dev/null
	$(CLI_VENV)/bin/registry --version
	! $(CLI_VENV)/bin/python -c 'import azure.functions' 2>/dev/null
	rm -rf build
	@echo "ok: registry runs from a fresh install of .[cli], without azure-functions"

# The catalog's screenshots at desktop and phone widths, saved into docs/screenshots by the browser tests.
screenshots: install browser
	SAVE_SCREENSHOTS=1 $(PY) -m pytest -q tests/browser

clean:
	rm -rf .local
