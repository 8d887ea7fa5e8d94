"""Shared fixtures and fakes. Tests use real parts: files, pseudo-terminals, servers on
127.0.0.1, a real PostgreSQL cluster. Test modules import shared things from here only,
never from one another.

Randomised tests take the `seed` fixture: one seed per run, from $GATE_TEST_SEED or
chosen at random, printed in the header and, for a failing test, with the line that
replays it. Hypothesis tests run with the same seed.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
SEED_ENV = "GATE_TEST_SEED"
# Set to "skip" to run without PostgreSQL on purpose; otherwise a missing one fails.
POSTGRES_ENV = "GATE_TEST_POSTGRES"


def run_gate(*args: str, input: str | None = None, timeout: float = 120,
             env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the `gate` command as a user would, from this checkout."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "kiosk.cli", *args], input=input,
                          capture_output=True, text=True, timeout=timeout,
                          env=full_env, cwd=cwd or ROOT)


@pytest.fixture
def gate():
    return run_gate


@pytest.fixture
def data_dir() -> Path:
    return DATA


# --- seeds ---------------------------------------------------------------------------

def session_seed() -> int:
    return int(os.environ[SEED_ENV])


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # Chosen once, in the first process; pytest-xdist's workers inherit the environment.
    text = os.environ.get(SEED_ENV) or str(random.SystemRandom().randrange(2**32))
    try:
        seed = int(text)
    except ValueError:
        raise pytest.UsageError(f"{SEED_ENV} must be a whole number, got {text!r}") from None
    os.environ[SEED_ENV] = str(seed)
    if getattr(config.option, "hypothesis_seed", None) is None:
        config.option.hypothesis_seed = seed  # Hypothesis's own --hypothesis-seed


def pytest_report_header(config: pytest.Config) -> str:
    return f"{SEED_ENV}={session_seed()} (set it to replay this run's random choices)"


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    """This run's seed for a randomised test; a failure prints how to replay it."""
    request.node.gate_seed = session_seed()
    return session_seed()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    randomised = hasattr(item, "gate_seed") or hasattr(getattr(item, "obj", None), "hypothesis")
    if report.failed and randomised:
        report.sections.append(("seed", f"replay with {SEED_ENV}={session_seed()} "
                                        f"python -m pytest '{item.nodeid}'"))


# --- the quick loop: `pytest -m "not slow"` ---------------------------------------

# Tests that take many seconds, by file (every test in it) or file::test (every
# parameter). One list, here, so a test file needs no change to join or leave it.
SLOW = {
    # kill rounds, soak
    "tests/test_sync_faults.py": "SIGKILL rounds against client and server",
    "tests/test_store.py::test_writer_killed_mid_transaction_leaves_a_consistent_store": "kills writers",
    "tests/test_store.py::test_seq_gap_free_under_concurrent_writers": "concurrent writer processes",
    # fuzzing and properties
    "tests/test_server_fuzz.py": "schema-driven fuzzing of the server",
    "tests/test_codes_fuzz.py": "Hypothesis on every layer of the verifier",
    "tests/test_rules.py::test_properties": "Hypothesis over random facts",
    "tests/test_thermometer_protocols.py::test_ascii_parser_never_raises_and_only_returns_matching_lines":
        "Hypothesis on the line parser",
    # hundreds of pictures
    "tests/test_camera_soft.py::test_random_modules_behind_real_patterns_never_read": "500 symbols",
    "tests/test_camera_soft.py::test_damaged_symbols_read_right_or_not_at_all": "hundreds of damaged symbols",
    "tests/test_camera_decode.py::test_native_crash_in_the_decoder_costs_one_frame": "crashes a worker",
    "tests/test_codes_dcc.py::test_gate_codes_vectors_reports_every_step": "all 237 EU cases in a subprocess",
    "tests/test_codes_cli.py::test_issue_a_pass_as_png_and_verify_the_picture": "renders and reads a QR image",
    # the whole gate, or waiting out a timeout or a back-off
    "tests/test_demo.py": "the whole demo",
    "tests/test_gate_run.py": "the whole gate on simulated devices",
    "tests/test_gate_faults.py": "the whole gate, killed, hung, unplugged",
    "tests/test_console.py": "the console against a running gate",
    "tests/test_console_snapshots.py": "the console against a running gate",
    "tests/test_console_tmux.py": "gate demo in a real tmux terminal",
    "tests/test_queue_screen.py": "a real Chromium",
    "tests/test_office_browser.py": "a real Chromium",
    "tests/test_voice.py": "espeak-ng renders speech",
    "tests/test_server_hardening.py": "a server per test, hostile bodies",
    "tests/test_office_scale.py": "servers sharing one database, two worker processes",
    "tests/test_server_api.py": "a township server per test",
    "tests/test_sync_client.py": "a gate and a township server per test, back-offs",
    "tests/test_thermometer_cli.py::test_unplugged_simulator_comes_back": "waits for a reconnect",
    "tests/test_store.py::test_gate_db_refuses_what_is_not_a_store_and_creates_nothing": "a dozen gate commands",
    "tests/test_store.py::test_gate_db_errors_are_one_line_in_the_users_language": "gate commands in two languages",
    "tests/test_camera_live.py::test_no_retries_on_busy_frames_where_zxing_placed_nothing": "renders busy scenes",
    "tests/test_camera_decode.py::test_a_code_like_poster_does_not_cost_a_cascade_every_frame": "a poster's frames",
    "tests/test_office_dash.py": "the office's pages against servers with gates syncing",
    "tests/test_office_auth.py": "a server per test, Argon2 hashing on every sign-in",
    "tests/test_thermometer_driver.py": "reconnects and silences waited out on real ptys",
    "tests/test_scan_cmd.py": "gate scan over folders, videos and live sources",
    "tests/test_thermometer_cli.py::test_wrong_protocol_gives_up_after_the_default_timeout": "waits 10 s",
    "tests/test_thermometer_cli.py::test_silent_device_times_out": "waits out a timeout",
    "tests/test_install.py::test_an_update_that_does_not_start_rolls_back": "makes two venvs",
    "tests/test_install.py::test_firstboot_turns_a_fresh_image_into_a_gate": "builds the wheel, makes a venv",
    "tests/test_cli.py::test_each_documented_list_format_uploads": "nine gate commands",
    "tests/test_cli_errors.py::test_township_with_nothing_to_show_says_so": "five gate commands and a server",
    "tests/test_cli_errors.py::test_bad_input_is_one_line_and_a_failure": "24 gate commands",
    "tests/test_office_reports.py::test_figures_match_the_headless_demo": "the headless demo, 24 people",
    "tests/test_office_reports.py::test_township_report_command_writes_xlsx_and_text": "three gate commands",
    "tests/test_office_reports.py::test_roles_community_staff_and_read_only": "two Argon2 sign-ins",
    "tests/test_office_reports.py::test_chart_counts_days_and_is_svg_with_chinese_labels": "imports matplotlib",
    "tests/test_office_auth.py::test_township_user_commands": "eight gate commands, Argon2 hashes",
    "tests/test_office_auth.py::test_failed_logins_are_limited_across_servers_on_one_database":
        "two servers, a dozen Argon2 checks",
    "tests/test_office_auth.py::test_passwords_are_never_stored_or_logged_in_clear": "a dozen Argon2 hashes",
    "tests/test_office_auth.py::test_every_change_is_in_the_audit_log_with_who_and_when":
        "four accounts, eight Argon2 hashes",
}
# Tests that take these fixtures are slow too.
SLOW_FIXTURES = {
    "frames": "tests/test_camera_decode.py renders its whole frame set",
}
# A test run once per database (db_url) is quick on SQLite; the PostgreSQL run joins `make test`.
SLOW_PARAMS = {"postgres"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    modules = {}
    for item in items:
        path, _, name = item.nodeid.partition("::")
        modules[path] = getattr(item, "module", None)
        params = getattr(item, "callspec", None)
        if (path in SLOW or f"{path}::{name.split('[')[0]}" in SLOW
                or SLOW_FIXTURES.keys() & set(getattr(item, "fixturenames", ()))
                or params is not None and SLOW_PARAMS & {str(v) for v in params.params.values()}):
            item.add_marker(pytest.mark.slow)
    # A renamed test must not quietly leave the list.
    stale = [key for key in SLOW if "::" in key and key.split("::")[0] in modules
             and not hasattr(modules[key.split("::")[0]], key.split("::")[1])]
    if stale:
        raise pytest.UsageError(f"tests/conftest.py SLOW names tests that do not exist: {', '.join(stale)}")


# --- PostgreSQL ----------------------------------------------------------------------

@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL cluster for the session (each xdist worker has its own).
    Missing PostgreSQL fails the tests that need it, saying what to install, unless
    GATE_TEST_POSTGRES=skip asks to skip them."""
    from sync.testing import PostgresCluster

    why = PostgresCluster.available()
    if why:
        if os.environ.get(POSTGRES_ENV) == "skip":
            pytest.skip(f"{POSTGRES_ENV}=skip: {why}")
        pytest.fail(f"{why}. The township server is tested on PostgreSQL too: `make test` installs "
                    f"it, or set {POSTGRES_ENV}=skip to leave those tests out", pytrace=False)
    cluster = PostgresCluster().start()
    yield cluster
    cluster.stop()


# --- a camera that can be unplugged --------------------------------------------------

class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class FakeDevice:
    """What is plugged in: whether it opens, whether it gives frames, what was set on it."""

    def __init__(self) -> None:
        self.present = True
        self.giving = True
        self.opens = 0
        self.props: dict[int, float] = {}
        self.frames = 0


class FakeCapture:
    """Behaves like cv2.VideoCapture on a V4L2 device (there is no camera on the test machine)."""

    def __init__(self, dev: FakeDevice, device, api) -> None:
        self.dev, self.device, self.api = dev, device, api
        dev.opens += 1
        self.opened = dev.present

    def isOpened(self) -> bool:  # noqa: N802 - cv2's name
        return self.opened

    def set(self, prop, value) -> bool:
        import cv2
        if prop == cv2.CAP_PROP_FOCUS:
            return False  # this camera has no focus control
        self.dev.props[prop] = value
        return True

    def read(self):
        import numpy as np
        if not (self.opened and self.dev.present and self.dev.giving):
            return False, None
        self.dev.frames += 1
        return True, np.full((48, 64, 3), self.dev.frames % 256, np.uint8)

    def release(self) -> None:
        self.opened = False


@pytest.fixture
def signer(tmp_path):
    """The township's health-code key; its public half is trusted in tmp_path/trust.json."""
    from kiosk.codes import keys, trust
    key = keys.generate("Ed25519")
    (tmp_path / "trust.json").write_text(json.dumps(
        {"keys": [trust.entry_for(key.public_key(), ["health"], label="township")]}))
    return key


@pytest.fixture
def browser(tmp_path, monkeypatch):
    """Debian's Chromium, headless, through its chromedriver: never a downloaded browser."""
    chromium, chromedriver = "/usr/bin/chromium", "/usr/bin/chromedriver"
    missing = [p for p in (chromium, chromedriver) if not shutil.which(p)]
    if missing:
        pytest.fail(f"pages are tested in Debian's Chromium: missing {', '.join(missing)}; "
                    "run `scripts/system-deps chromium chromium-driver` (make test does)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is missing: pip install -e '.[test]'")
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never fetch a driver
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1280,900", "--lang=zh-CN"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    try:
        yield driver
    finally:
        driver.quit()
