"""Signing in and out: POST /v1/session (login), GET (who am I), DELETE (logout).

The session token travels only in the `gate_session` cookie (HttpOnly, SameSite=Strict,
Secure except on plain http to loopback); the answer carries the session's CSRF token."""
from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from sync.server import accounts, models
from sync.server.audit import audit
from sync.server.deps import Actor, changer, clear_session_cookie, current_actor, server, set_session_cookie

log = logging.getLogger("gate.server")
router = APIRouter(prefix="/v1/session", tags=["session"])


def whoami(actor: Actor, expires_utc: str | None = None) -> dict:
    return {"username": actor.name, "role": actor.role, "community": actor.community,
            "csrf_token": actor.csrf, "expires_utc": expires_utc}


@router.post("", response_model=models.WhoAmI)
async def login(body: models.Login, request: Request, response: Response):
    """Sign in with a login and password; sets the session cookie. 401 bad_credentials,
    403 account_disabled, 429 too_many_logins (with Retry-After)."""
    s = server(request)
    address = request.client.host if request.client else ""
    session = await run_in_threadpool(accounts.login, s.db, s.settings, body.username, body.password, address)
    set_session_cookie(request, response, session)
    audit(s.db, session.actor, "signed_in", session.actor.community, {"address": address})
    log.info("signed in: %s (%s)", session.actor.name, session.actor.role)
    return whoami(session.actor, session.expires_utc)


@router.get("", response_model=models.WhoAmI)
def who(actor: Actor = Depends(current_actor)):
    """Who this cookie (or token) is, and the session's CSRF token."""
    return whoami(actor)


@router.delete("", response_model=models.WhoAmI)
def logout(request: Request, response: Response, actor: Actor = Depends(changer)):
    """Sign out: the session ends on the server and the cookie is cleared."""
    token = request.cookies.get(accounts.SESSION_COOKIE)
    if token and actor.csrf is not None:
        accounts.logout(server(request).db, token)
        audit(server(request).db, actor, "signed_out", actor.community)
    clear_session_cookie(request, response)
    return whoami(actor)
