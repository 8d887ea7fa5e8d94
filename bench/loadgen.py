"""A light load generator: gates posting signed batches over raw keep-alive HTTP/1.1,
all on one asyncio loop. The server under test shares the machine's two cores with its
load; httpx in threads spent more CPU per post than the server did (7 ms against 2.6),
so the bench measured the client as much as the server. Here a post costs the client
its signature and a few socket calls. The time of a post runs from its first byte sent
to its answer read."""
from __future__ import annotations

import asyncio
import time

from sync import auth
from sync.client import Credentials


class Connection:
    """One keep-alive connection; reopened when the server answers `Connection: close`."""

    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def post(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        await self.connect()
        assert self.reader is not None and self.writer is not None
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}"
                          f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        status_line, *lines = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        fields = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
        answer = await self.reader.readexactly(int(fields.get("content-length", "0")))
        if fields.get("connection", "").lower() == "close":
            self.close()
        return int(status_line.split(" ", 2)[1]), answer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Gate:
    """An enrolled gate that posts pre-built gzip batches to /v1/entries, in order."""

    def __init__(self, port: int, creds: Credentials):
        self.creds, self.key = creds, creds.key()
        self.conn = Connection(port)

    async def post(self, body: bytes) -> float:
        """Seconds from the request sent to its answer; raises unless it is 200."""
        headers = auth.sign_headers(self.key, self.creds.device_id, "POST", "/v1/entries", body)
        headers.update({"Content-Type": "application/json", "Content-Encoding": "gzip"})
        t0 = time.perf_counter()
        status, answer = await self.conn.post("/v1/entries", headers, body)
        dt = time.perf_counter() - t0
        if status != 200:
            raise RuntimeError(f"{status} {answer[:200]!r}")
        return dt


def run_gates(port: int, bodies: list[tuple[Credentials, list[bytes]]]) -> tuple[list[float], float]:
    """Every gate posts its bodies one after another, all gates at once. Answers the
    time of every post and the wall time of the whole."""
    times: list[float] = []

    async def one(creds: Credentials, mine: list[bytes], start: asyncio.Event) -> None:
        gate = Gate(port, creds)
        await gate.conn.connect()  # before the start: the timing holds no connection set-up
        await start.wait()
        try:
            for body in mine:
                times.append(await gate.post(body))
        finally:
            gate.conn.close()

    async def main() -> float:
        start = asyncio.Event()
        tasks = [asyncio.create_task(one(c, b, start)) for c, b in bodies]
        await asyncio.sleep(0)
        t0 = time.perf_counter()
        start.set()
        await asyncio.gather(*tasks)
        return time.perf_counter() - t0

    wall = asyncio.run(main())
    return times, wall
