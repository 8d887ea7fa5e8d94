# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Debian packages: libzbar0 for pyzbar; postgresql so the server is also tested on PostgreSQL;
# chromium and chromium-driver for the queue screen's test (a real headless browser, never a
# downloaded one); espeak-ng for the voice prompts' test; tmux for the console's test in a real terminal.
RUNTIME_DEBS := libzbar0
TEST_DEBS := libzbar0 postgresql chromium chromium-driver espeak-ng tmux

.PHONY: demo test bench lint lock clean-venv

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test,console]'
	@touch $(STAMP)

demo: $(STAMP)
	@scripts/system-deps $(RUNTIME_DEBS)
	$(VENV)/bin/gate demo

test: $(STAMP)
	@scripts/system-deps $(TEST_DEBS)
	$(PY) -m pytest -n 2 -q

# House rules checked by machines: ruff (rules in pyproject.toml) and mypy.
lint: $(STAMP)
	$(VENV)/bin/ruff check kiosk devices sync tui tests bench
	$(VENV)/bin/mypy

bench: $(STAMP)
	@scripts/system-deps $(RUNTIME_DEBS)
	$(PY) bench/run.py

# The versions a Pi image installs (README "Installing on a Raspberry Pi"): resolved in a
# clean venv from pyproject.toml, the gate and its console, then frozen.
LOCK_VENV := .lock-venv
lock:
	rm -rf $(LOCK_VENV) && $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install -q '.[console]'
	echo "# pip install -c requirements.lock '.[console]'    (regenerate: make lock)" > requirements.lock
	$(LOCK_VENV)/bin/python -c "import datetime, platform; print(f'# Python {platform.python_version()}, \
	resolved {datetime.date.today()} from pyproject.toml')" >> requirements.lock
	$(LOCK_VENV)/bin/pip freeze --exclude gate >> requirements.lock
	rm -rf $(LOCK_VENV) build

clean-venv:
	rm -rf $(VENV)
