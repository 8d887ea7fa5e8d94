"""The command line as a new user tries it: every mistake gets one line on stderr that
names what is wrong, a non-zero exit, and never a traceback (kiosk/cli.py)."""
from __future__ import annotations

import os

import pytest

UNREACHABLE = "http://127.0.0.1:1"  # nothing listens on port 1: the connection is refused at once

# (what the user did, argv, gate.toml text or None, extra environment, a word the line must hold)
BAD_INPUT = [
    ("unknown command", ["fly"], None, {}, "unknown command"),
    ("bad global log level", ["--log-level", "loud", "decide"], None, {}, "--log-level"),
    ("bad GATE_LOG_LEVEL", ["decide"], None, {"GATE_LOG_LEVEL": "chatty"}, "GATE_LOG_LEVEL"),
    ("port out of range", ["server", "--port", "99999"], None, {}, "0..65535"),
    ("port not a number", ["server", "--port", "eighty"], None, {}, "not a port number"),
    ("typo in a gate.toml key", ["db", "stats"], "[store]\nretention_dys = 3\n", {}, "retention_dys"),
    ("unknown gate.toml section", ["db", "stats"], "[stor]\npath = 'x.db'\n", {}, "[stor]"),
    ("gate.toml not TOML", ["db", "stats"], "retention_days = \n", {}, "not valid TOML"),
    ("gate.toml value of the wrong type", ["db", "stats"], "[store]\nretention_days = 'two weeks'\n", {},
     "whole number"),
    ("env override not a number", ["db", "purge"], None, {"GATE_STORE_RETENTION_DAYS": "abc"},
     "GATE_STORE_RETENTION_DAYS"),
    ("GATE_CONFIG names no file", ["db", "stats"], None, {"GATE_CONFIG": "/nonexistent/gate.toml"},
     "does not exist"),
    ("language not offered", ["decide", "--lang", "fr"], None, {}, "--lang"),
    ("a required option missing", ["township", "token", "--community", "c"], None, {}, "--gate"),
    ("no admin token", ["township", "alarms", "--admin-token-file", "/nonexistent/token"], None,
     {"GATE_ADMIN_TOKEN": ""}, "admin token"),
    ("server not reachable", ["township", "devices", "--server", UNREACHABLE], None,
     {"GATE_ADMIN_TOKEN": "t"}, "cannot reach"),
    ("list file not JSON", ["township", "list", "--community", "c", "--name", "households", "{list}"], None,
     {"GATE_ADMIN_TOKEN": "t"}, "not JSON"),
    ("no such scan source", ["scan", "--source", "/nonexistent/cam"], None, {}, "no such source"),
    ("an image that is not one", ["scan", "--source", "{image}"], None, {}, "as an image"),
    ("no such serial port", ["thermometer", "read", "--port", "/nonexistent/tty", "--protocol", "ascii"], None, {},
     "cannot open serial port"),
    ("calibration file missing", ["thermometer", "calibrate", "/nonexistent/pairs.csv"], None, {},
     "No such file"),
    ("no credentials to sync with", ["sync", "--once", "--credentials", "/nonexistent/creds.json"], None, {},
     "gate enroll"),
    ("enroll without a token", ["enroll", "--server", UNREACHABLE], None, {"GATE_ENROLL_TOKEN": ""}, "--token"),
    ("a case that breaks the contract", ["decide"], None, {}, "now"),
    ("signing key missing", ["codes", "issue", "health", "--key", "/nonexistent/k.pem", "--person-ref", "p1:x",
                             "--name", "张三", "--colour", "green"], None, {}, "/nonexistent/k.pem"),
]


@pytest.mark.parametrize("what,argv,toml,env,word", BAD_INPUT, ids=[case[0] for case in BAD_INPUT])
def test_bad_input_is_one_line_and_a_failure(gate, tmp_path, what, argv, toml, env, word):
    (tmp_path / "not-an-image.png").write_text("hello")
    (tmp_path / "rows.json").write_text("{households: [")
    argv = [a.format(image=tmp_path / "not-an-image.png", list=tmp_path / "rows.json") for a in argv]
    if toml is not None:
        (tmp_path / "gate.toml").write_text(toml)
    full_env = {"GATE_CONFIG": str(tmp_path / "gate.toml") if toml is not None else os.devnull, **env}
    out = gate(*argv, env=full_env, cwd=tmp_path, input='{"now": 1}\n', timeout=60)
    lines = out.stderr.splitlines()
    assert out.returncode != 0, f"{what}: exit 0\n{out.stderr}"
    assert len(lines) == 1, f"{what}: {len(lines)} lines on stderr:\n{out.stderr}"
    assert "Traceback" not in out.stderr
    assert lines[0].startswith("gate"), lines[0]
    assert word in lines[0], f"{what}: {lines[0]!r} does not name {word!r}"


def test_a_bug_is_one_line_unless_debugging(capsys, caplog):
    """An exception no module names is a bug: one line and exit 1; the traceback only when debugging."""
    from kiosk import cli

    try:
        {}["missing"]
    except KeyError as exc:
        bug = exc
    assert cli.report(bug, "decide", debug=False) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: KeyError" in err and "--log-level debug" in err
    assert not caplog.records
    assert cli.report(bug, "decide", debug=True) == 1
    assert any(r.exc_info for r in caplog.records)


def test_version(gate):
    out = gate("--version")
    assert out.returncode == 0 and out.stdout.startswith("gate ")


def test_log_level_before_or_after_the_command(gate, tmp_path):
    env = {"GATE_CONFIG": os.devnull}
    case = '{"now": "2026-11-25T08:00:00+08:00", "policy": {"risk_level": "low"}, "direction": "in", ' \
           '"subject": {"kind": "resident"}, "code": {"colour": "green", "valid": true}, "readings_c": [36.5]}\n'
    for argv in (["--log-level", "debug", "decide"], ["decide", "--log-level", "debug"]):
        out = gate(*argv, input=case, env=env)
        assert out.returncode == 0, out.stderr
        assert '"action": "admit"' in out.stdout


def test_township_options_after_the_action(gate):
    """--server works after the action as well as before it (and the later one wins)."""
    env = {"GATE_ADMIN_TOKEN": "t", "GATE_CONFIG": os.devnull}
    before = gate("township", "--server", UNREACHABLE, "alarms", env=env)
    after = gate("township", "alarms", "--server", UNREACHABLE, env=env)
    for out in (before, after):
        assert out.returncode == 1 and f"cannot reach {UNREACHABLE}" in out.stderr


def test_township_with_nothing_to_show_says_so(gate, tmp_path):
    """A new township: no alarms, no gates. Each command says so, and no line shows Python's None."""
    from sync.server.app import Settings
    from sync.server.thread import ServerThread

    with ServerThread(Settings(db_url=str(tmp_path / "township.db"), admin_token="t")) as server:
        env = {"GATE_ADMIN_TOKEN": "t", "GATE_CONFIG": os.devnull}
        alarms = gate("township", "alarms", "--server", server.url, env=env)
        devices = gate("township", "devices", "--server", server.url, env=env)
        assert alarms.returncode == 0 and alarms.stdout.strip() == "no alarms", alarms.stderr
        assert devices.returncode == 0 and devices.stdout.startswith("no gates enrolled"), devices.stderr
        bare = gate("township", "token", "--server", server.url, "--community", "c", "--gate", "east", "--bare",
                    env=env)
        assert bare.returncode == 0, bare.stderr
        [token] = bare.stdout.split()
        assert len(token) >= 20
        from sync.client import enroll
        enroll(server.url, token)  # enrolled, never synced: no last-seen time, no clock offset yet
        listed = gate("township", "devices", "--server", server.url, env=env)
        assert listed.returncode == 0 and "c/east" in listed.stdout, listed.stderr
        assert "None" not in alarms.stdout + devices.stdout + listed.stdout
