"""Run a decoder in a worker process, so a native crash costs one frame, not the gate.

zbar has known segfaults on some inputs; zxing-cpp is native code too. `IsolatedDecoder`
sends each frame to a worker over a pipe; if the worker dies (or hangs past `timeout_s`)
that frame reads as no code, the crash is counted and logged, and a fresh worker is
started for the next frame.
"""
from __future__ import annotations

import importlib
import logging
import multiprocessing as mp
import time
from collections.abc import Callable
from multiprocessing.connection import Connection

import numpy as np

from devices.camera.decoded import Decoded, Decoder

log = logging.getLogger("gate.camera")

Factory = Callable[[], Decoder]


def _make(name: str, factory: Factory | None) -> Decoder:
    """The decoder from its factory (a picklable callable: the worker is spawned), or from
    "package.module:factory" when there is none."""
    if factory is not None:
        return factory()
    module, _, attr = name.partition(":")
    return getattr(importlib.import_module(module), attr)()


def _worker(conn: Connection, name: str, factory: Factory | None) -> None:
    decoder = _make(name, factory)
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
            conn.send([(d.text, d.step, d.corners) for d in decoder.decode(img)])
        except Exception as e:  # noqa: BLE001 - a Python error in the decoder is a result, not a death
            conn.send(e.__class__.__name__ + ": " + str(e))


class DecoderCrashed(RuntimeError):
    pass


class IsolatedDecoder:
    """A decoder in a worker process, restarted when it dies: `factory()` makes it there
    (`make_decoder("zbar")` passes one), or `name` is "package.module:factory"."""

    def __init__(self, name: str, factory: Factory | None = None, timeout_s: float = 5.0,
                 start_timeout_s: float = 60.0) -> None:
        if factory is None and ":" not in name:
            raise ValueError(f"decoder {name!r}: give a factory or a \"module:factory\" name")
        self.inner = name
        self.factory = factory
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
        proc = self._ctx.Process(target=_worker, args=(child, self.inner, self.factory), daemon=True,
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
        try:
            self._send(msg)
        except (BrokenPipeError, EOFError, OSError):
            self._restart("pipe broken")  # died while idle: this frame is still good to try
            self._send(msg)
        conn, proc = self._conn, self._proc
        assert conn is not None and proc is not None  # _start set both
        deadline = time.monotonic() + self.timeout_s
        try:
            while not conn.poll(0.05):
                if not proc.is_alive():
                    raise EOFError
                if time.monotonic() > deadline:
                    self._restart(f"no answer in {self.timeout_s:g} s")
                    return []
            out = conn.recv()
        except (EOFError, OSError, ConnectionResetError):
            self._restart(f"died on a frame (exit code {proc.exitcode})")
            return []
        if isinstance(out, str):
            log.warning("decoder %s raised %s", self.inner, out)
            return []
        return [Decoded(t, s, tuple(tuple(p) for p in c)) for t, s, c in out]

    def _send(self, msg: object) -> None:
        assert self._conn is not None  # _start set it
        self._conn.send(msg)

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
