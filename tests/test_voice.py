"""Voice prompts: espeak-ng in Mandarin (written to WAV files here), recorded files, off by default."""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import stat
import subprocess
import time
import wave
from pathlib import Path

import pytest
from support import wait_for

from kiosk import clock, config
from kiosk.codes import issue, keys, trust
from kiosk.daemon import Daemon, Options
from kiosk.people import person_ref
from kiosk.voice import ESPEAK_VOICES, Voice, from_config

ADMIT = {"type": "decision", "action": "admit", "reasons": ["all_checks_passed"], "readings_c": [36.6]}
REFUSE = {"type": "decision", "action": "refuse", "reasons": ["red_code"], "readings_c": []}
RETEST = {"type": "state", "phase": "retest"}


def seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


@pytest.fixture
def espeak():
    if not shutil.which("espeak-ng"):
        pytest.fail("the voice prompts are tested with espeak-ng: run `scripts/system-deps espeak-ng` (make test does)")


def test_espeak_ng_says_the_outcome_in_mandarin(tmp_path, espeak):
    voice = Voice(engine="espeak-ng", lang="zh", wav_dir=tmp_path).start()
    try:
        assert voice.words(ADMIT) == "请通行"
        assert voice.words(REFUSE) == "暂不能进入，请在一旁稍候，工作人员会为您登记"
        # each prompt is let finish (a newer one cuts the one being spoken, WAV file and all)
        voice.on_event(ADMIT)
        wait_for(lambda: voice.finished == 1)
        voice.on_event(RETEST)
        wait_for(lambda: voice.finished == 2)
        voice.on_event({"type": "decision", "action": "abandoned", "reasons": ["timeout_measuring"]})
        voice.on_event({"type": "reading", "body_c": 36.6})
        time.sleep(0.5)
    finally:
        voice.stop()
    admit, retest = seconds(next(tmp_path.glob("*-admit.wav"))), seconds(next(tmp_path.glob("*-retest.wav")))
    # three syllables, then a headline with its next step (请复测，请到避风处休息片刻，再测一次)
    assert 0.5 < admit < 5 and retest > 2 * admit
    assert len(list(tmp_path.glob("*.wav"))) == 2  # nobody hears an abandoned check or a reading


def test_the_prompts_are_read_in_mandarin(espeak):
    """espeak-ng's phonemes for each Chinese prompt: Mandarin syllables, no switch to English
    (plain `-v cmn` in espeak-ng 1.51 reads the tone digits in English)."""
    voice = Voice(engine="espeak-ng", lang="zh")
    for event in (ADMIT, REFUSE, {"type": "decision", "action": "retest", "reasons": ["fever_retest"]}):
        text = voice.words(event)
        out = subprocess.run(["espeak-ng", "-v", ESPEAK_VOICES["zh"], "-q", "-x", "--", text],
                             capture_output=True, text=True, timeout=30, check=True).stdout
        assert "(en)" not in out and out.count("_|") >= len(text.replace("，", "")) - 2, (text, out)


def test_the_newest_prompt_wins(tmp_path, espeak):
    voice = Voice(engine="espeak-ng", lang="zh", wav_dir=tmp_path)
    for action in ("admit", "refuse", "admit", "refuse", "hold"):  # five people faster than speech
        voice.on_event({"type": "decision", "action": action, "reasons": ["risk_area_travel"]})
    voice.start()
    try:
        wait_for(lambda: any(tmp_path.glob("*.wav")))
        time.sleep(1.0)
    finally:
        voice.stop()
    assert [p.name for p in tmp_path.glob("*.wav")] == ["0001-hold.wav"]


def test_a_newer_prompt_cuts_the_one_being_spoken(tmp_path):
    prompts, log_file = tmp_path / "prompts", tmp_path / "player.log"
    prompts.mkdir()
    for name in ("admit", "refuse"):
        (prompts / f"{name}.wav").write_bytes(b"RIFF")
    player = tmp_path / "player"  # a prompt of 30 seconds, unless it is cut
    player.write_text(f"#!/bin/sh\necho \"start $(basename $1)\" >> {log_file}\nsleep 30\n"
                      f"echo \"end $(basename $1)\" >> {log_file}\n")
    player.chmod(player.stat().st_mode | stat.S_IXUSR)
    voice = Voice(engine="files", files_dir=str(prompts), player=str(player)).start()
    try:
        voice.on_event(ADMIT)
        wait_for(lambda: log_file.exists() and "start admit.wav" in log_file.read_text())
        voice.on_event(REFUSE)  # the next person's outcome
        wait_for(lambda: "start refuse.wav" in log_file.read_text())
    finally:
        voice.stop()
    assert log_file.read_text().split("\n")[:2] == ["start admit.wav", "start refuse.wav"]
    assert "end" not in log_file.read_text()


def test_no_espeak_ng_is_one_log_line_not_a_crash(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: espeak-ng is not there
    voice = Voice(engine="espeak-ng", lang="zh").start()
    try:
        with caplog.at_level(logging.WARNING, logger="gate.voice"):
            for _ in range(3):
                voice.on_event(ADMIT)
                time.sleep(0.3)
    finally:
        voice.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "gate.voice"]
    assert len(lines) == 1 and "espeak-ng is not installed" in lines[0]


def test_recorded_files_and_a_failing_player(tmp_path, caplog):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "admit.wav").write_bytes(b"RIFF recorded")
    played = tmp_path / "played.txt"
    player = tmp_path / "player"
    player.write_text(f"#!/bin/sh\necho \"$1\" >> {played}\n")
    player.chmod(player.stat().st_mode | stat.S_IXUSR)
    voice = Voice(engine="files", files_dir=str(prompts), player=str(player)).start()
    try:
        voice.on_event(ADMIT)
        wait_for(lambda: played.exists())
        with caplog.at_level(logging.WARNING, logger="gate.voice"):
            voice.on_event(REFUSE)  # no refuse.* recorded
            time.sleep(0.5)
    finally:
        voice.stop()
    assert played.read_text().split() == [str(prompts / "admit.wav")]
    assert any("no recorded prompt refuse" in r.getMessage() for r in caplog.records)
    caplog.clear()
    broken = Voice(engine="files", files_dir=str(prompts), player="false").start()
    try:
        with caplog.at_level(logging.WARNING, logger="gate.voice"):
            for _ in range(3):
                broken.on_event(ADMIT)
                time.sleep(0.3)
    finally:
        broken.stop()
    assert [r.getMessage() for r in caplog.records] == ["voice: false failed (exit 1)"]


def test_bad_voice_settings_are_named():
    with pytest.raises(ValueError, match="engine"):
        Voice(engine="festival")
    with pytest.raises(ValueError, match="files_dir"):
        Voice(engine="files")
    assert from_config(config.load(env={})["voice"], "zh") is None  # off by default


@pytest.mark.parametrize("enabled", [False, True])
def test_the_daemon_speaks_only_when_enabled(tmp_path, monkeypatch, enabled):
    """A stand-in espeak-ng first on PATH records every run: off by default, none; enabled, one a decision."""
    bin_dir, runs = tmp_path / "bin", tmp_path / "runs.txt"
    bin_dir.mkdir()
    fake = bin_dir / "espeak-ng"
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {runs}\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    key = keys.generate("Ed25519")
    (tmp_path / "trust.json").write_text(json.dumps(
        {"keys": [trust.entry_for(key.public_key(), ["health"], label="township")]}))
    cfg = config.load(env={})
    cfg["gate"].update(device_id="east-1", community="lotus-garden")
    if enabled:
        cfg["voice"]["enabled"] = True
    daemon = Daemon(cfg, Options(db=str(tmp_path / "g.db"), camera="sim", port="sim",
                                 trust=str(tmp_path / "trust.json"), api_socket=str(tmp_path / "api.sock")))
    daemon.start()
    try:
        assert (daemon.voice is not None) is enabled
        red = issue.health_code(key, person_ref=person_ref("110105197707073456", "salt"), name="张伟", colour="red",
                                issued_at=clock.utc_now() - dt.timedelta(seconds=20))
        daemon.camera_sim.show(red, seconds=3.0)  # long enough for a loaded machine to decode a frame
        wait_for(lambda: len(daemon.store.entries()) == 1, timeout=60)
        time.sleep(1.0)  # time enough for a prompt to start, were there one
    finally:
        daemon.stop()
    if enabled:
        assert runs.read_text().split("\n")[0] == "-v cmn-latn-pinyin -- 暂不能进入，请在一旁稍候，工作人员会为您登记"
    else:
        assert not runs.exists()
