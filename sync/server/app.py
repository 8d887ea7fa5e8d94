"""The township server: a FastAPI app over `Database`. Build it with `create_app()`.

The layout follows FastAPI's full-stack template: `routers/` (the gates' API and the
administrators'), `deps.py` (what a route needs), `errors.py` (every refusal is JSON
`{"error": <reason>, "detail": <sentence>}`), `gatekeeper.py` (the outermost layer: who
is asking, and how big a body may be, before any body is read). Bounds: docs/sync.md."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from sync.server import errors, models
from sync.server.db import Database
from sync.server.deps import Server
from sync.server.gatekeeper import Gatekeeper
from sync.server.routers import accounts, admin, dashboard, gate, reports, session
from sync.server.settings import Settings

__all__ = ["Settings", "create_app"]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    app.state.server.close()  # its threads and side files end with the app


def create_app(settings: Settings, db: Database | None = None) -> FastAPI:
    db = db or Database.open(settings.db_url, busy_timeout_ms=settings.busy_timeout_ms,
                             max_db_mb=settings.max_db_mb)
    app = FastAPI(title="gate township server", version="1", lifespan=lifespan,
                  description="Entries up from the gates, policy and lists down. See docs/sync.md.")
    app.state.server = Server.build(settings, db)
    app.add_middleware(Gatekeeper, settings=settings, direct={("POST", "/v1/entries"): gate.post_entries})
    errors.install(app)
    app.include_router(gate.router)
    app.include_router(admin.router)
    app.include_router(reports.router)
    app.include_router(session.router)
    app.include_router(accounts.router)
    dashboard.install(app)  # the office's pages, their static files and their error pages

    base_openapi = app.openapi

    def openapi() -> dict:
        """The batch body is read raw (gzip, size limits), so add its schema by hand."""
        if app.openapi_schema is None:
            schema = base_openapi()
            batch = models.Batch.model_json_schema(ref_template="#/components/schemas/{model}")
            comps = schema.setdefault("components", {}).setdefault("schemas", {})
            comps.update(batch.pop("$defs", {}))
            comps["Batch"] = batch
            comps["LostSeqs"] = models.LostSeqs.model_json_schema()
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend it
    return app
