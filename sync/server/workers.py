"""`gate server --workers N`: N processes serving one listening socket, each taking one
new connection at a time, so the connections spread by how busy each worker is.

uvicorn's workers accept every connection waiting whenever they wake: the first worker
to wake took them all, and gates keep their connections alive, so a whole township's
load stayed on one worker while the other idled (measured: 8 gates, 3.4 s of CPU against
0.07). Separate sockets on one port (SO_REUSEPORT) spread connections by a hash, not by
load: 6 to 2 as often as 4 to 4. Here a worker busy with an upload comes back to the
socket later, and the idle one takes the next connection. The parent starts the
workers, starts a worker again if one dies, and stops them all on SIGTERM or SIGINT."""
from __future__ import annotations

import asyncio
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
TURN_S = 0.001         # a worker's pause after accepting, for each connection it holds...
MAX_TURN_S = 0.005     # ...up to this: 200 new connections a second per worker at the least


class TakeTurns(socket.socket):
    """A listening socket shared by the workers: each accepts one connection, then leaves
    the next ones to the others for a while, longer the more connections it holds
    (TURN_S for each, at most MAX_TURN_S), so a storm of gates connecting at once is
    dealt out evenly, and a steady trickle goes to the worker with the fewest."""

    def __init__(self, *args: Any, **kw: Any):
        super().__init__(*args, **kw)
        self._taken = False
        self._held: list[socket.socket] = []  # connections this worker accepted

    def accept(self):
        if self._taken:
            raise BlockingIOError  # asyncio's accept loop ends here until _next_turn
        conn, addr = super().accept()
        self._held = [c for c in self._held if c.fileno() != -1] + [conn]  # the ones still open
        self._taken = True
        asyncio.get_running_loop().call_later(min(TURN_S * len(self._held), MAX_TURN_S), self._next_turn)
        return conn, addr

    def _next_turn(self) -> None:
        self._taken = False


def listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return sock


def _worker(app: str, sock: socket.socket, options: dict[str, Any]) -> None:
    import uvicorn

    host, port = sock.getsockname()[:2]
    turns = TakeTurns(sock.family, sock.type, sock.proto, fileno=sock.detach())
    config = uvicorn.Config(app, factory=True, host=host, port=port, backlog=BACKLOG, **options)
    uvicorn.Server(config).run(sockets=[turns])


def serve(app: str, workers: int, host: str, port: int, options: dict[str, Any]) -> int:
    """Run `workers` processes of the app factory `app` ("module:function") until a
    signal; answers the exit status. Raises OSError when the address cannot be had."""
    sock = listen(host, port)
    port = sock.getsockname()[1]
    spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: no state forked
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda sig, frame: stopping.append(sig))
    signal.signal(signal.SIGINT, lambda sig, frame: stopping.append(sig))

    def start() -> multiprocessing.process.BaseProcess:
        p = spawn.Process(target=_worker, args=(app, sock, options), daemon=False)
        p.start()
        return p

    procs = [start() for _ in range(workers)]
    log.info("serving http://%s:%d with %d workers (%s)", host, port, workers,
             ", ".join(str(p.pid) for p in procs))
    try:
        while not stopping:
            time.sleep(0.2)
            for i, p in enumerate(procs):
                if not p.is_alive() and not stopping:
                    log.error("worker %s ended (exit status %s); starting another", p.pid, p.exitcode)
                    time.sleep(RESTART_PAUSE_S)
                    procs[i] = start()
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
