"""Township staff accounts and the audit log: /v1/admin/users and /v1/admin/audit.

Users are managed by the township administrator (a signed-in admin, or the admin token
for first set-up and scripts); the audit log is read by township roles, and by community
staff for their own community."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from sync.server import accounts, audit, models
from sync.server.deps import Actor, reader, server, township, township_admin
from sync.server.errors import Problem

router = APIRouter(prefix="/v1/admin", tags=["accounts"])
USER_PATH = Path(pattern=accounts.USERNAME)


def _known(found: bool, username: str) -> None:
    if not found:
        raise Problem(404, "unknown_user", f"no user {username!r}")


@router.get("/users", response_model=models.Users)
def list_users(request: Request, actor: Actor = Depends(township)):
    return {"users": accounts.users(server(request).db)}


@router.post("/users", response_model=models.User, status_code=201)
async def add_user(new: models.NewUser, request: Request, actor: Actor = Depends(township_admin)):
    db = server(request).db
    return await run_in_threadpool(accounts.add_user, db, new.username, new.password, new.role, new.community,
                                   audit.step(actor, "user_added", new.community,
                                              {"username": new.username, "role": new.role}))


@router.post("/users/{username}/disable", response_model=models.User)
async def disable_user(request: Request, username: str = USER_PATH, actor: Actor = Depends(township_admin)):
    db = server(request).db
    _known(accounts.disable_user(db, username, audit.step(actor, "user_disabled", None, {"username": username})),
           username)
    return accounts.user(db, username)


@router.post("/users/{username}/enable", response_model=models.User)
async def enable_user(request: Request, username: str = USER_PATH, actor: Actor = Depends(township_admin)):
    db = server(request).db
    _known(accounts.enable_user(db, username, audit.step(actor, "user_enabled", None, {"username": username})),
           username)
    return accounts.user(db, username)


@router.put("/users/{username}/password", response_model=models.User)
async def set_password(body: models.NewPassword, request: Request, username: str = USER_PATH,
                       actor: Actor = Depends(township_admin)):
    """A new password for a user; their open sessions end."""
    db = server(request).db
    _known(await run_in_threadpool(accounts.set_password, db, username, body.password,
                                   audit.step(actor, "password_set", None, {"username": username})), username)
    return accounts.user(db, username)


@router.get("/audit", response_model=models.AuditLog)
def audit_log(request: Request, before: int | None = Query(None, ge=1, le=2**63 - 1),
              limit: int = Query(100, ge=1, le=1000),
              community: str | None = Query(None, pattern=models.SLUG),
              actor: Actor = Depends(reader)):
    """Who changed what and when, newest first. Community staff see their community's rows."""
    if not actor.township:
        community = actor.community
    rows = audit.records(server(request).db, before=before, limit=limit, community=community)
    return {"records": rows, "next_before": rows[-1]["id"] if len(rows) == limit else None}
