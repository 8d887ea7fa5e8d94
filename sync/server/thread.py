"""The township server in a thread of this process, on 127.0.0.1: for `gate demo` (and the
tests, through sync.testing). `gate server` is the way to run it for real."""
from __future__ import annotations

import socket
import threading
import time

import httpx

from sync.server.app import Settings, create_app


def wait_http(url: str, timeout_s: float = 20.0) -> None:
    """Until the server at `url` answers (its clock endpoint), or TimeoutError."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            httpx.get(url + "/v1/time", timeout=1.0)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no server at {url}") from None
            time.sleep(0.05)


class ServerThread:
    """`create_app` served by uvicorn in a thread on a socket bound to 127.0.0.1 (port 0: any free)."""

    def __init__(self, settings: Settings, port: int = 0):
        import uvicorn

        self.app = create_app(settings)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.port: int = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        wait_http(self.url)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()
        self.app.state.server.db.close()
