"""`gate server --workers N`: N processes serving one listening socket, dealing the
connections out evenly between them.

uvicorn's workers accept every connection waiting whenever they wake: the first worker
to wake took them all, and gates keep their connections alive, so a whole township's
load stayed on one worker while the other idled (measured: 8 gates, 3.4 s of CPU against
0.07). Separate sockets on one port (SO_REUSEPORT) spread connections by a hash, not by
load: 6 to 2 as often as 4 to 4. A pause after each accept still dealt 50 gates 38 to
12. Here the workers count their connections in memory they share (`TakeTurns`). The
parent starts the workers, starts a worker again if one dies, and stops them all on
SIGTERM or SIGINT."""
from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import time
from typing import Any

log = logging.getLogger("gate.server")
RESTART_PAUSE_S = 1.0  # a worker that dies at once is not started again in a tight loop
STOP_GRACE_S = 30.0    # a worker finishing its requests after SIGTERM, before SIGKILL
BACKLOG = 2048         # connections the kernel holds for the workers to take
LEAVE_S = 0.02         # a connection left for a worker holding fewer, at most this long
NOT_READY = 2**31 - 1  # the count of a worker still starting (dealt nothing until it serves)


class TakeTurns(socket.socket):
    """A listening socket shared by the workers, dealing connections out evenly: `held`
    counts each worker's open connections, in memory they share, and a worker holding
    more than another leaves the next connection to it, unless that one has not taken
    it within LEAVE_S (busy with an upload, or stuck): then the connection goes to
    whoever is free, so a storm of gates connecting at once is dealt out evenly, and
    later ones go to the worker with the fewest."""

    def __init__(self, *args: Any, held: Any, me: int, **kw: Any):
        super().__init__(*args, **kw)
        self._mine: list[socket.socket] = []  # connections this worker accepted
        self._held, self._me = held, me
        self._left_since = self._left_last = 0.0  # this worker leaving a connection waiting

    def accept(self):
        self._mine = [c for c in self._mine if c.fileno() != -1]  # the ones still open
        self._held[self._me] = len(self._mine)
        if len(self._mine) > min(self._held):
            now = time.monotonic()
            if now - self._left_last > LEAVE_S:  # a connection newly waiting (asyncio asks
                self._left_since = now           # again at once while one waits)
            self._left_last = now
            if now - self._left_since < LEAVE_S:
                raise BlockingIOError  # asyncio's accept loop ends here; it tries again soon
        conn, addr = super().accept()
        self._mine.append(conn)
        self._held[self._me] = len(self._mine)
        self._left_last = 0.0  # the next connection left waiting waits afresh
        return conn, addr

    def serving(self) -> None:
        """This worker has started serving: the others deal connections to it from now."""
        self._held[self._me] = len(self._mine)


def listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return sock


def _worker(app: str, sock: socket.socket, options: dict[str, Any], held: Any, me: int) -> None:
    import uvicorn

    host, port = sock.getsockname()[:2]
    turns = TakeTurns(sock.family, sock.type, sock.proto, fileno=sock.detach(), held=held, me=me)

    class Worker(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            turns.serving()

    config = uvicorn.Config(app, factory=True, host=host, port=port, backlog=BACKLOG, **options)
    Worker(config).run(sockets=[turns])


def serve(app: str, workers: int, host: str, port: int, options: dict[str, Any]) -> int:
    """Run `workers` processes of the app factory `app` ("module:function") until a
    signal; answers the exit status. Raises OSError when the address cannot be had."""
    sock = listen(host, port)
    port = sock.getsockname()[1]
    spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: no state forked
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda sig, frame: stopping.append(sig))
    signal.signal(signal.SIGINT, lambda sig, frame: stopping.append(sig))

    held = spawn.Array("i", workers, lock=False)  # each worker's open connections

    def start(me: int) -> multiprocessing.process.BaseProcess:
        held[me] = NOT_READY  # until it serves, the others deal without it
        p = spawn.Process(target=_worker, args=(app, sock, options, held, me), daemon=False)
        p.start()
        return p

    procs = [start(i) for i in range(workers)]
    log.info("serving http://%s:%d with %d workers (%s)", host, port, workers,
             ", ".join(str(p.pid) for p in procs))
    try:
        while not stopping:
            time.sleep(0.2)
            for i, p in enumerate(procs):
                if not p.is_alive() and not stopping:
                    log.error("worker %s ended (exit status %s); starting another", p.pid, p.exitcode)
                    time.sleep(RESTART_PAUSE_S)
                    procs[i] = start(i)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for p in procs:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join()
        sock.close()
    return 0
