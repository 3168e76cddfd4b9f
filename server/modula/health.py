"""The health probes a deployment asks: `/health/live` (the process answers) and `/health/ready`
(it can serve what the database says: database reachable, migrations applied, the schema at the
database's generation, the LISTEN connection up where there is one), each as JSON with the status
and the generation. Ready answers 503 with the failed checks named; a load balancer then sends
requests elsewhere until it is ready again."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse

from modula.db.migrations import unapplied
from modula.plugins.registry import current_generation

# A database that does not answer within this long counts as unreachable.
DATABASE_TIMEOUT_SECONDS = 2.0


async def live(request: Request) -> JSONResponse:
    return JSONResponse({"status": "live", "schemaGeneration": request.app.state.live_schema.current.generation})


async def ready(request: Request) -> JSONResponse:
    state = request.app.state
    served = state.live_schema.current.generation
    checks: dict[str, str] = {}
    database_generation = None
    try:
        database_generation, missing = await asyncio.wait_for(_database_state(state.database), DATABASE_TIMEOUT_SECONDS)
        checks["database"] = "ok"
        checks["migrations"] = "ok" if not missing else f"not applied: {', '.join(missing)}"
        checks["schema"] = ("ok" if served >= database_generation
                            else f"serving generation {served}, the database is at {database_generation}")
    except Exception as exc:  # noqa: BLE001 - any failure to ask the database is "not reachable"
        checks["database"] = f"unreachable: {type(exc).__name__}: {exc}".rstrip(": ")
    listener = getattr(state, "listener", None)
    if listener is not None:
        checks["listen"] = "ok" if listener.connected else "the LISTEN connection is down (following by the poll)"
    ok = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ready" if ok else "unready", "schemaGeneration": served,
                         "databaseGeneration": database_generation, "checks": checks}, status_code=200 if ok else 503)


async def _database_state(database) -> tuple[int, list[str]]:
    async with database.session() as session:
        return await current_generation(session), await unapplied(session)
