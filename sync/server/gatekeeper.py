"""The outermost layer: nobody makes the server work before it knows who they are.

An administrator request without the token or a live session cookie is refused, and any body over its route's
limit, before a byte of the body is read (a gate's signature headers are checked before
its body is read, in deps.py). Such an answer waits while the rest of a body within the
limit is read and dropped (a client still sending gets its answer, not a reset), else
closes the connection. Bounds: docs/sync.md.

The gates' hot route (POST /v1/entries) is then called straight from here: its endpoint
takes the Request and answers a dict already in its response model, so FastAPI's
routing, dependency solving and response validation are skipped; the route is still
declared on its router (the OpenAPI document) and its refusals are answered by
`errors.answer_for`, as every other route's are. That saved 0.2-0.4 ms of CPU on each
gate's post of 20 entries (of about 1.5 ms, measured in process)."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request, cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sync import auth
from sync.server import accounts
from sync.server.db import StorageError
from sync.server.errors import BodyTooLarge, Problem, answer_for, problem
from sync.server.settings import Settings

Endpoint = Callable[[Request], Awaitable[dict]]
SMALL_BODY = 64 * 1024      # every route but uploads of entries and lists
DRAIN_S = 2.0               # an answer sent before the body: the rest is read and dropped this long at most


def body_limit(settings: Settings, method: str, path: str) -> int:
    """The largest body a route takes: batches of entries and whole lists are large,
    everything else is a small JSON object."""
    if (method == "POST" and path == "/v1/entries") or (
            method == "PUT" and path.startswith("/v1/admin/communities/") and "/lists/" in path):
        return settings.max_body_bytes
    return SMALL_BODY


def admin_refusal(settings: Settings, headers: Headers) -> JSONResponse | None:
    """None when the request carries the administrator token, else the answer to send."""
    header = headers.get("authorization", "")
    token = header[7:] if header[:7].lower() == "bearer " else None
    if not settings.admin_token:
        return problem(503, "no_admin_credential", "the server was started without an admin token")
    if not auth.same_secret(token, settings.admin_token):
        return problem(401, "admin_required", "administrator endpoints need a signed-in "
                       "session or 'Authorization: Bearer <admin token>'", {"WWW-Authenticate": "Bearer"})
    return None


class Gatekeeper:
    """Administrator requests are authenticated from their headers, and every body is
    held to its route's limit, before the application reads any of it."""

    def __init__(self, app: ASGIApp, settings: Settings, direct: dict[tuple[str, str], Endpoint] | None = None):
        self.app, self.settings, self.direct = app, settings, direct or {}

    async def who(self, scope: Scope, headers: Headers) -> JSONResponse | None:
        """The admin token, or else a live session cookie (looked up in the database in a
        worker thread); the actor found is left in the request's state for the routes."""
        token = "authorization" in headers
        cookie = None if token else cookie_parser(headers.get("cookie", "")).get(accounts.SESSION_COOKIE)
        if cookie is None:
            refusal = admin_refusal(self.settings, headers)
            actor = accounts.TOKEN_ACTOR
        else:
            server = scope["app"].state.server
            try:
                actor = await run_in_threadpool(accounts.session_actor, server.db, self.settings, cookie)
                refusal = None
            except Problem as exc:
                refusal = problem(exc.status, exc.reason, exc.detail, exc.headers)
            except StorageError as exc:
                refusal = problem(503, exc.reason, f"{exc}; try again later", {"Retry-After": "5"})
        if refusal is None:
            scope.setdefault("state", {})["actor"] = actor
        return refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, headers = scope["path"], Headers(scope=scope)
        limit = body_limit(self.settings, scope["method"], path)
        declared = headers.get("content-length")
        too_big = declared is not None and (not declared.isascii() or not declared.isdigit()
                                            or len(declared) > 18 or int(declared) > limit)
        body_done = declared in (None, "0") and "transfer-encoding" not in headers
        received = 0

        async def drained() -> bool:
            """Read and drop the rest of a body the answer did not need (within the route's
            limit and DRAIN_S): closing a connection with unread data resets it, and a client
            still sending may then never see the answer."""
            nonlocal received
            if too_big:
                return False
            try:
                async with asyncio.timeout(DRAIN_S):
                    while received <= limit:
                        message = await receive()
                        if message["type"] != "http.request":
                            return False
                        received += len(message.get("body", b""))
                        if not message.get("more_body", False):
                            return received <= limit
            except TimeoutError:
                pass
            return False

        async def answer(message: Message) -> None:
            nonlocal body_done
            if message["type"] == "http.response.start" and not body_done:
                body_done = await drained()
                if not body_done:
                    # The connection cannot carry another request. (Left open, uvicorn keeps each
                    # one's buffers for its keep-alive time after the client resets it: a stranger
                    # opening hundreds a second grew the server by 50 KB each, to 1.6 GB.)
                    message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        if path == "/v1/admin" or path.startswith("/v1/admin/"):
            refusal = await self.who(scope, headers)
            if refusal is not None:
                await refusal(scope, receive, answer)
                return
        if too_big:
            await problem(413, "body_too_large", f"the body is over {limit} bytes")(scope, receive, answer)
            return

        async def limited() -> Message:
            nonlocal received, body_done
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
                body_done = body_done or not message.get("more_body", False)
            return message

        endpoint = self.direct.get((scope["method"], path))
        if endpoint is None:
            await self.app(scope, limited, answer)
            return
        try:
            response = JSONResponse(await endpoint(Request(scope, limited)))
        except Exception as exc:
            refusal = answer_for(exc, path)
            if refusal is None:
                raise  # a fault: answered 500 by the app's error middleware, with its traceback logged
            response = refusal
        await response(scope, limited, answer)
