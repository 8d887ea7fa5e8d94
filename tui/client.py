"""The console's only way to the gate: its local API over the Unix socket.

Every call is bounded in time, so a hung daemon never freezes the screen, and fails
with `Unreachable` (the daemon is not there) or `Refused` (it said no, with why).
`events()` follows the server-sent events for as long as the console runs: when the
stream breaks (the daemon restarted, a socket that is not there yet) it says so with a
`_disconnected` event and tries again with back-off, then a `_connected` one.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

TIMEOUT_S = 5.0
STREAM_READ_TIMEOUT_S = 40.0  # the API sends a keep-alive every 15 s: silence this long is a dead stream
BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 5.0)  # the last one repeats: a restarted daemon is back within seconds
MAX_EVENT_BYTES = 64_000  # one event line; a longer one is not from our gate


class Unreachable(Exception):
    """The gate's API does not answer (not running, restarting, wrong socket)."""


class Refused(Exception):
    """The gate answered no: `code` is the API's stable error code (docs/api.md), `fields` a
    form's bad fields by error code, str() the gate's own sentence."""

    def __init__(self, detail: str, code: str = "", fields: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.code, self.fields = code, dict(fields or {})


class GateClient:
    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self.http = httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=socket_path),
                                      base_url="http://gate", timeout=TIMEOUT_S)

    async def close(self) -> None:
        await self.http.aclose()

    async def _request(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = await self.http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise Unreachable(f"{self.socket_path}: {type(exc).__name__}") from None
        if r.status_code == 422:  # a field out of its bounds: name the field
            detail = r.json().get("detail") or []
            where = detail[0].get("loc", ["?"])[-1] if detail and isinstance(detail[0], dict) else "?"
            raise Refused(f"{where}: {detail[0].get('msg', '') if detail else ''}", "out_of_bounds")
        if r.status_code >= 400:
            try:
                body = r.json()
            except ValueError:
                raise Refused(f"HTTP {r.status_code}", f"http_{r.status_code}") from None
            fields = body.get("fields") if isinstance(body.get("fields"), dict) else {}
            raise Refused(str(body.get("detail", r.status_code))[:300], str(body.get("error", ""))[:40],
                          {str(k)[:40]: str(v)[:40] for k, v in list(fields.items())[:20]})
        return r.json()

    async def state(self) -> dict:
        return await self._request("GET", "/v1/state")

    async def alarms(self) -> list[dict]:
        return (await self._request("GET", "/v1/alarms")).get("alarms", [])

    async def today(self) -> dict:
        """Today's figures (GET /v1/today)."""
        return await self._request("GET", "/v1/today")

    async def report(self, lang: str) -> dict:
        """A preview of today's daily report in `lang` (GET /v1/today/report)."""
        return await self._request("GET", "/v1/today/report", params={"lang": lang})

    async def people(self, name: str, household: str | None = None) -> list[dict]:
        params = {"name": name[:32], **({"household": household[:64]} if household else {})}
        return (await self._request("GET", "/v1/people", params=params)).get("people", [])

    async def command(self, name: str, **body: Any) -> dict:
        """A guard's command; the gate's state after it."""
        return await self._request("POST", f"/v1/commands/{name}", json=body)

    async def events(self) -> AsyncIterator[dict]:
        """The gate's events, forever, with `_connected` / `_disconnected` between streams."""
        attempt = 0
        while True:
            try:
                timeout = httpx.Timeout(TIMEOUT_S, read=STREAM_READ_TIMEOUT_S)
                async with self.http.stream("GET", "/v1/events", timeout=timeout) as r:
                    if r.status_code != 200:
                        raise httpx.HTTPStatusError("events", request=r.request, response=r)
                    attempt = 0
                    yield {"type": "_connected"}
                    async for line in r.aiter_lines():
                        if line.startswith("data: ") and len(line) <= MAX_EVENT_BYTES:
                            try:
                                event = json.loads(line[6:])
                            except ValueError:
                                continue
                            if isinstance(event, dict) and isinstance(event.get("type"), str):
                                yield event
            except (httpx.HTTPError, OSError):
                pass
            delay = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
            attempt += 1
            yield {"type": "_disconnected", "retry_in": delay}
            await asyncio.sleep(delay)
