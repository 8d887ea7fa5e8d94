# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Debian packages: libzbar0 for pyzbar; postgresql so the server is also tested on PostgreSQL;
# chromium and chromium-driver for the queue screen's test (a real headless browser, never a
# downloaded one); espeak-ng for the voice prompts' test; systemd for systemd-analyze (the units'
# test verifies them offline: no running systemd needed); tmux for the console's test in a real terminal.
RUNTIME_DEBS := libzbar0
TEST_DEBS := libzbar0 postgresql chromium chromium-driver espeak-ng systemd tmux

.PHONY: demo test bench lint lock clean-venv wheel install-pi

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

# A Pi runs the gate from a wheel, never from a checkout (docs/install-pi.md). `make install-pi`
# on the Pi (as root) or with DESTDIR=DIR for an image: the wheel as /opt/gate/releases/<version>
# (current -> it, the versions of requirements.lock), then `gate install`.
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
WHEEL := dist/gate-$(VERSION)-py3-none-any.whl
wheel: $(STAMP)
	rm -rf dist build && $(PY) -m pip wheel -q --no-deps -w dist . && rm -rf build

install-pi: wheel
	DESTDIR=$(DESTDIR) GATE_START_CHECK=true scripts/gate-release update $(WHEEL)
	$(DESTDIR)/opt/gate/current/bin/gate install $(if $(DESTDIR),--destdir $(DESTDIR))

clean-venv:
	rm -rf $(VENV)
