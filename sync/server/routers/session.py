"""Signing in and out: POST /v1/session (login), GET (who am I), DELETE (logout).

The session token travels only in the `gate_session` cookie (HttpOnly, SameSite=Strict,
Secure except on plain http to loopback); the answer carries the session's CSRF token."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from sync.server import models
from sync.server.deps import Actor, changer, current_actor, sign_in, sign_out

router = APIRouter(prefix="/v1/session", tags=["session"])


def whoami(actor: Actor, expires_utc: str | None = None) -> dict:
    return {"username": actor.name, "role": actor.role, "community": actor.community,
            "csrf_token": actor.csrf, "expires_utc": expires_utc}


@router.post("", response_model=models.WhoAmI)
async def login(body: models.Login, request: Request, response: Response):
    """Sign in with a login and password; sets the session cookie. 401 bad_credentials,
    403 account_disabled, 429 too_many_logins (with Retry-After)."""
    session = await sign_in(request, response, body.username, body.password)
    return whoami(session.actor, session.expires_utc)


@router.get("", response_model=models.WhoAmI)
def who(actor: Actor = Depends(current_actor)):
    """Who this cookie (or token) is, and the session's CSRF token."""
    return whoami(actor)


@router.delete("", response_model=models.WhoAmI)
def logout(request: Request, response: Response, actor: Actor = Depends(changer)):
    """Sign out: the session ends on the server and the cookie is cleared."""
    sign_out(request, response, actor)
    return whoami(actor)
