"""Every refusal the township server gives is JSON `{"error": <reason>, "detail": <sentence>}`."""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sync import auth
from sync.server.db import Rejected, StorageError

log = logging.getLogger("gate.server")

HTTP_REASONS = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}


class Problem(Exception):
    def __init__(self, status: int, reason: str, detail: str, headers: dict | None = None):
        super().__init__(detail)
        self.status, self.reason, self.detail, self.headers = status, reason, detail, headers


class BodyTooLarge(StarletteHTTPException):
    """Raised from the body stream itself, so it passes FastAPI's body parsing untouched."""

    def __init__(self, limit: int):
        super().__init__(413, f"the body is over {limit} bytes; send smaller batches")


def problem(status: int, reason: str, detail: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": reason, "detail": detail}, status_code=status, headers=headers)


def answer_for(exc: Exception, path: str) -> JSONResponse | None:
    """The answer to a refusal of a request to `path`, or None for a fault of the server
    (a 500, below)."""
    if isinstance(exc, Problem):
        return problem(exc.status, exc.reason, exc.detail, exc.headers)
    if isinstance(exc, Rejected):
        return problem(exc.status, exc.reason, exc.detail)
    if isinstance(exc, auth.AuthError):
        return problem(exc.status, exc.reason, str(exc))
    if isinstance(exc, StorageError):
        log.warning("storage: %s on %s", exc, path)
        return problem(503, exc.reason, f"{exc}; try again later", {"Retry-After": "5"})
    if isinstance(exc, BodyTooLarge):
        return problem(413, "body_too_large", str(exc.detail))
    if isinstance(exc, StarletteHTTPException):
        reason = HTTP_REASONS.get(exc.status_code, "refused")
        return problem(exc.status_code, reason, str(exc.detail), getattr(exc, "headers", None))
    if isinstance(exc, RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return problem(422, "invalid_request", f"{where}: {first.get('msg', 'invalid')}")
    return None


def install(app: FastAPI) -> None:
    """The one place exceptions become answers."""

    async def on_refusal(request: Request, exc: Exception):
        answer = answer_for(exc, request.url.path)
        assert answer is not None  # registered below for refusals only
        return answer

    for refusal in (Problem, Rejected, auth.AuthError, StorageError, BodyTooLarge,
                    StarletteHTTPException, RequestValidationError):
        app.add_exception_handler(refusal, on_refusal)

    @app.exception_handler(Exception)
    async def _on_fault(request: Request, exc: Exception):
        """A fault of the server (a bug, or the database refusing what it should take): the
        request's transaction was rolled back; named in one line, the traceback in the log."""
        return problem(500, "server_fault", f"the server failed ({type(exc).__name__}); nothing of this "
                       "request was stored; the server's log says why")
