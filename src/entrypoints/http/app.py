"""`create_app(container)`: the Starlette application."""

from __future__ import annotations

import contextlib

from starlette.applications import Starlette

from entrypoints.http import routes_catalog
from entrypoints.http.errors import EXCEPTION_HANDLERS


def create_app(container=None) -> Starlette:
    if container is None:
        from entrypoints.container import Container

        container = Container()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        yield

    app = Starlette(
        routes=[*routes_catalog.routes],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.container = container
    return app
