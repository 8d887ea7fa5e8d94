"""Voice prompts for the person at the gate: the outcome said aloud, as the queue screen shows it.

Off by default (`[voice] enabled = false`). Two engines:

- `espeak-ng`: speaks the words in Mandarin (`-v cmn-latn-pinyin`, see ESPEAK_VOICES; `-v en`
  for English): the
  headline, and for a re-test or a refusal the next step too.
- `files`: plays recorded prompts from `files_dir` with `player` (e.g. `aplay -q`): one file
  per outcome, named by it (admit, retest, refuse, isolate, hold) with any extension, e.g.
  `retest.wav` saying 请复测，请到避风处休息片刻，再测一次.

The checkpoint never waits for it: events go to one worker thread through a queue of one,
and the newest prompt wins (a prompt not yet spoken is replaced, one being spoken is cut
short): at 1.5–3 s a person, a late prompt would describe the person before. A missing
espeak-ng, a missing file or a failing player is one log line, never a crash.
"""
from __future__ import annotations

import logging
import os
import queue
import shlex
import shutil
import signal
import subprocess
import threading
from pathlib import Path

from kiosk import reasons

log = logging.getLogger("gate.voice")

ENGINES = ("espeak-ng", "files")
# Mandarin as "cmn-latn-pinyin": espeak-ng 1.51 (Debian 12) turns each character into pinyin
# with a tone digit and, under plain "cmn", reads that in English ("ni three hao three");
# this voice reads it as pinyin. Our Chinese prompts hold no Latin text, so nothing else changes.
ESPEAK_VOICES = {"zh": "cmn-latn-pinyin", "en": "en"}
SPOKEN = ("admit", "retest", "refuse", "isolate", "hold")  # abandoned: nobody is there to hear it
WITH_NEXT_STEP = ("retest", "refuse", "isolate", "hold")
MAX_SECONDS = 15.0  # a prompt that runs longer than this is cut (a hung player)


class Voice:
    def __init__(self, *, engine: str = "espeak-ng", files_dir: str = "", player: str = "aplay -q",
                 lang: str | None = None, wav_dir: str | Path | None = None) -> None:
        """`wav_dir`: espeak-ng writes each prompt to a numbered WAV file there instead of the
        speaker (tests, and a check of the prompts without a speaker)."""
        if engine not in ENGINES:
            raise ValueError(f"[voice] engine must be one of {', '.join(ENGINES)}, not {engine!r}")
        if engine == "files" and not files_dir:
            raise ValueError("[voice] engine = \"files\" needs files_dir")
        self.engine, self.files_dir, self.lang = engine, Path(files_dir) if files_dir else None, lang
        self.player = shlex.split(player)
        self.wav_dir = Path(wav_dir) if wav_dir is not None else None
        self._pending: queue.Queue[tuple[str, str]] = queue.Queue(maxsize=1)
        self._current: subprocess.Popen | None = None
        self._stop = threading.Event()
        self._complained: set[str] = set()
        self._count = 0
        self.finished = 0  # prompts whose process is over: spoken, cut or failed
        self._thread: threading.Thread | None = None

    # -- from the checkpoint's thread: never blocks -------------------------------------------
    def on_event(self, event: dict) -> None:
        """A checkpoint listener: decisions, and the re-test (a state, not a decision)."""
        if event.get("type") == "decision" and event.get("action") in SPOKEN:
            self.say(str(event["action"]), self.words(event))
        elif event.get("type") == "state" and event.get("phase") == "retest":
            self.say("retest", self.words({"action": "retest", "reasons": ["fever_retest"]}))

    def words(self, decision: dict) -> str:
        from kiosk.api import outcome_words  # the queue screen's words: one place for them
        w = outcome_words(decision, self.lang)
        if decision.get("action") in WITH_NEXT_STEP and w["next"]:
            return f"{w['headline']}，{w['next']}" if (self.lang or reasons.default_lang()) == "zh" \
                else f"{w['headline']}. {w['next']}"
        return str(w["headline"])

    def say(self, key: str, text: str) -> None:
        """Cut the prompt being spoken and replace any not yet spoken: the newest wins. Cut
        first, then queue, so the cut can never hit the prompt just queued. No lock: the
        checkpoint's thread must not wait for the worker starting a process."""
        _cut(self._current)
        while True:
            try:
                self._pending.put_nowait((key, text[:200]))
                break
            except queue.Full:
                try:
                    self._pending.get_nowait()
                except queue.Empty:
                    pass

    # -- the worker -------------------------------------------------------------------
    def start(self) -> Voice:
        self._thread = threading.Thread(target=self._run, name="voice", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        _cut(self._current)
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                key, text = self._pending.get(timeout=0.2)
            except queue.Empty:
                continue
            argv = self._argv(key, text)
            if argv is not None:
                self._play(argv)

    def _argv(self, key: str, text: str) -> list[str] | None:
        if self.engine == "espeak-ng":
            exe = shutil.which("espeak-ng")
            if exe is None:
                self._complain("missing", "espeak-ng is not installed (apt-get install espeak-ng): no voice prompts")
                return None
            argv = [exe, "-v", ESPEAK_VOICES.get(self.lang or reasons.default_lang(), ESPEAK_VOICES["zh"])]
            if self.wav_dir is not None:
                self._count += 1
                argv += ["-w", str(self.wav_dir / f"{self._count:04d}-{key}.wav")]
            return [*argv, "--", text]
        assert self.files_dir is not None
        found = sorted(self.files_dir.glob(f"{key}.*"))
        if not found:
            self._complain(f"file:{key}", f"no recorded prompt {key}.* in {self.files_dir}")
            return None
        return [*self.player, str(found[0])]

    def _play(self, argv: list[str]) -> None:
        try:
            # its own process group: a cut reaches a player's children too (a shell wrapper)
            process = self._current = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                       stderr=subprocess.PIPE, start_new_session=True)
            try:
                _, err = process.communicate(timeout=MAX_SECONDS)
            except subprocess.TimeoutExpired:
                _cut(process, signal.SIGKILL)
                process.communicate()
                self._complain("timeout", f"{argv[0]} ran longer than {MAX_SECONDS:.0f} s; cut")
                return
            # a negative code is our own terminate (a newer prompt): not a failure
            if process.returncode > 0:
                detail = err.decode(errors="replace").strip().splitlines()[-1:] or [""]
                self._complain(f"exit:{argv[0]}", f"{Path(argv[0]).name} failed (exit {process.returncode}) "
                               f"{detail[0][:200]}".rstrip())
        except OSError as exc:
            self._complain(f"os:{argv[0]}", f"cannot run {argv[0]}: {exc.strerror}")
        finally:
            self._current = None
            self.finished += 1

    def _complain(self, kind: str, message: str) -> None:
        """Once per kind of failure: a gate that cannot speak says so once, not per person."""
        if kind not in self._complained:
            self._complained.add(kind)
            log.warning("voice: %s", message)


def _cut(process: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:  # it ended in between
        pass


def from_config(section: dict, lang: str | None) -> Voice | None:
    """The [voice] section: a started Voice, or None when it is off (no thread, no process)."""
    if not section.get("enabled"):
        return None
    return Voice(engine=section["engine"], files_dir=section["files_dir"], player=section["player"],
                 lang=lang).start()
