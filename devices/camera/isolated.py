"""Run a decoder in a worker process, so a native crash costs one frame, not the gate.

zbar has known segfaults on some inputs; zxing-cpp is native code too. `IsolatedDecoder`
sends each frame to a worker over a pipe; if the worker dies (or hangs past `timeout_s`)
that frame reads as no code, the crash is counted and logged, and a fresh worker is
started for the next frame.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import time
from multiprocessing.connection import Connection

import numpy as np

from devices.camera.decoders import Decoded

log = logging.getLogger(__name__)


def _make(name: str, thorough: bool):
    """A decoder by name, or by "package.module:factory" for one defined elsewhere."""
    if ":" in name:
        import importlib
        module, _, attr = name.partition(":")
        return getattr(importlib.import_module(module), attr)()
    from devices.camera.decoders import make_decoder
    return make_decoder(name, isolate=False, thorough=thorough)


def _worker(conn: Connection, name: str, thorough: bool) -> None:
    decoder = _make(name, thorough)
    conn.send("ready")
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        shape, dtype, buf = msg
        img = np.frombuffer(buf, dtype=dtype).reshape(shape)
        try:
            out = [(d.text, d.step, d.corners) for d in decoder.decode(img)]
        except Exception as e:  # noqa: BLE001 - a Python error in the decoder is a result, not a death
            out = e.__class__.__name__ + ": " + str(e)
        conn.send(out)


class DecoderCrashed(RuntimeError):
    pass


class IsolatedDecoder:
    """`make_decoder(name)` in a worker process, restarted when it dies."""

    def __init__(self, name: str, timeout_s: float = 5.0, start_timeout_s: float = 60.0,
                 thorough: bool = False) -> None:
        self.inner = name
        self.thorough = thorough
        self.name = name
        self.timeout_s = timeout_s
        self.start_timeout_s = start_timeout_s
        self.crashes = 0
        self.restarts = 0
        self._ctx = mp.get_context("spawn")  # fork is unsafe with the scanner's threads
        self._proc: mp.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._start()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker, args=(child, self.inner, self.thorough), daemon=True,
                                 name=f"decoder-{self.inner}")
        proc.start()
        child.close()
        if not parent.poll(self.start_timeout_s) or parent.recv() != "ready":
            proc.kill()
            raise DecoderCrashed(f"decoder worker {self.inner} did not start")
        self._proc, self._conn = proc, parent

    def _restart(self, why: str) -> None:
        self.crashes += 1
        log.warning("decoder %s worker %s: %s; restarting", self.inner, self.pid, why)
        self._stop()
        self.restarts += 1
        self._start()

    def decode(self, image: np.ndarray) -> list[Decoded]:
        img = np.ascontiguousarray(image)
        msg = (img.shape, img.dtype.str, img.tobytes())
        if self._conn is None or self._proc is None or not self._proc.is_alive():
            self._restart("found dead")
        assert self._conn is not None
        try:
            self._conn.send(msg)
        except (BrokenPipeError, EOFError, OSError):
            self._restart("pipe broken")  # died while idle: this frame is still good to try
            self._conn.send(msg)
        deadline = time.monotonic() + self.timeout_s
        try:
            while not self._conn.poll(0.05):
                if not self._proc.is_alive():
                    raise EOFError
                if time.monotonic() > deadline:
                    self._restart(f"no answer in {self.timeout_s:g} s")
                    return []
            out = self._conn.recv()
        except (EOFError, OSError, ConnectionResetError):
            code = self._proc.exitcode if self._proc else None
            self._restart(f"died on a frame (exit code {code})")
            return []
        if isinstance(out, str):
            log.warning("decoder %s raised %s", self.inner, out)
            return []
        return [Decoded(t, s, tuple(tuple(p) for p in c)) for t, s, c in out]

    def _stop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            self._conn.close()
        if self._proc is not None:
            self._proc.join(0.5)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(1)
        self._proc = self._conn = None

    def close(self) -> None:
        self._stop()

    def __del__(self) -> None:
        try:
            self._stop()
        except Exception:  # noqa: BLE001
            pass
