"""create_app(settings) -> the Starlette application: database, migrations, schema, routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from modula import health as probes
from modula.auth.viewer_cache import ViewerCache
from modula.cms.media import sweep_orphans
from modula.config import Settings
from modula.db.connection import Database
from modula.db.migrations import migrate
from modula.db.notifications import AUTH_CHANNEL, SCHEMA_CHANNEL, ChangeListener
from modula.graphql_http import graphql_endpoint
from modula.logs import RequestIds
from modula.lua.limits import Limits
from modula.media.images import parse_sizes
from modula.media.storage import storage_from_settings
from modula.media_http import media_endpoint
from modula.metrics import Metrics
from modula.outbox.deliveries import Deliverer
from modula.outbox.policy import DeliveryPolicy
from modula.outbox.worker import OutboxWorker
from modula.playground import assets, playground
from modula.plugins.host import PluginHost
from modula.schema.reloads import SchemaService

log = logging.getLogger("modula")


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "schemaGeneration": request.app.state.live_schema.current.generation})


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        database = Database(settings.database_url, pool_size=settings.database_pool_size,
                            plugin_pool_size=settings.plugin_pool_size)
        await database.connect()
        try:
            async with database.session() as session:
                applied = await migrate(session)
            if applied:
                log.info("applied migrations: %s", ", ".join(applied))
            media_storage = storage_from_settings(settings)
            async with database.session() as session:
                swept = await sweep_orphans(session, media_storage)
            if swept:
                log.info("removed the bytes of %d media uploads that never committed", swept)
            app.state.media_storage = media_storage
            plugins = PluginHost(database, limits=Limits.from_settings(settings))
            viewers = ViewerCache() if settings.viewer_cache else None
            schemas = SchemaService(database, plugins, settings.plugins_dir, settings, viewers=viewers)
            await schemas.start()
            app.state.settings = settings
            app.state.database = database
            app.state.schemas = schemas
            app.state.live_schema = schemas.live
            app.state.plugins = plugins
            tasks = [asyncio.create_task(schemas.follow(settings.follow_interval))]
            listener = None
            if settings.listen and not database.is_sqlite:
                listener = ChangeListener(database.url, {SCHEMA_CHANNEL: schemas.changed_elsewhere,
                                                         AUTH_CHANNEL: schemas.changed_elsewhere},
                                          on_connect=schemas.changed_elsewhere)
                tasks.append(asyncio.create_task(listener.run()))
            app.state.listener = listener
            if settings.watch:
                tasks.append(asyncio.create_task(schemas.watch()))
            deliveries = OutboxWorker(database, Deliverer(plugins), DeliveryPolicy.from_settings(settings))
            app.state.outbox = deliveries
            app.state.metrics = metrics
            if metrics is not None:
                metrics.watch(app.state)
            if settings.outbox_worker:
                tasks.append(asyncio.create_task(deliveries.run()))
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                if listener is not None:
                    await listener.close()
                await plugins.close()
        finally:
            await database.disconnect()

    parse_sizes(settings.media_sizes)  # a bad MODULA_MEDIA_SIZES stops the server before it starts
    metrics = Metrics() if settings.metrics else None
    extra_routes = [Route("/metrics", metrics.endpoint, methods=["GET"])] if metrics else []
    return Starlette(
        debug=settings.debug,
        routes=[
            Route("/graphql", graphql_endpoint, methods=["GET", "POST"]),
            Route("/health", health),
            Route("/health/live", probes.live),
            Route("/health/ready", probes.ready),
            Route("/media/{media_id:int}/{filename}", media_endpoint, methods=["GET"]),
            Route("/media/{media_id:int}/{size}/{filename}", media_endpoint, methods=["GET"]),
            Route("/playground", playground, methods=["GET"]),
            Mount("/playground/assets", app=assets, name="playground_assets"),
            *extra_routes,
        ],
        middleware=[Middleware(RequestIds, log_requests=settings.access_log), *_cors(settings)],
        lifespan=lifespan,
    )


def _cors(settings: Settings) -> list[Middleware]:
    """Browsers on `settings.cors_origins` may call the API; listed origins with credentials (the
    session cookie), "*" (any origin) never with them. No origins: no CORS headers at all."""
    if not settings.cors_origins:
        return []
    any_origin = "*" in settings.cors_origins
    return [Middleware(CORSMiddleware, allow_origins=["*"] if any_origin else list(settings.cors_origins),
                       allow_credentials=not any_origin, allow_methods=["GET", "POST"],
                       allow_headers=["Authorization", "Content-Type", "GraphQL-Require-Preflight", "Apollo-Require-Preflight"],
                       expose_headers=["X-Request-ID"])]
