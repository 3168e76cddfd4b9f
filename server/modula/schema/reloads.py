"""Rebuilds and swaps the served schema when plugins or datatypes change, here or in another server
process.

Every plugin change bumps the schema generation in the database (in the same transaction as the
change). A process that changes a plugin rebuilds at once; the others hear of the new generation
(on PostgreSQL at once, through the LISTEN connection's notification; else by the poll, every
second by default) and load from the registry what changed before they rebuild: plugins run from
the code stored there, never from a process's own plugins folder. The same poll reads the auth
generation, so a process's cached viewers are forgotten as soon as a change to them made anywhere
is heard of. A build runs off the event loop and is swapped in only if it succeeds; each swap
logs what changed, with graphql-core's breaking and dangerous changes against the previous schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from graphql import find_breaking_changes, find_dangerous_changes

import sqlalchemy as sa

from modula.auth.viewer_cache import ViewerCache, current_auth_generation
from modula.cms.typed_content import datatype_shapes
from modula.config import Settings
from modula.db.connection import Database
from modula.db.core_tables import auth_state, schema_state
from modula.plugins import registry
from modula.plugins.errors import PluginError
from modula.plugins.host import PluginHost
from modula.schema.builder import build
from modula.schema.live import LiveSchema

log = logging.getLogger("modula.schema")


@dataclass
class SwapReport:
    generation: int
    plugins: list[str]
    failures: dict[str, str]
    breaking_changes: list[str] = field(default_factory=list)
    dangerous_changes: list[str] = field(default_factory=list)
    build_seconds: float = 0.0


# Both generations in one statement: the poll costs one round trip whatever it follows.
_GENERATIONS = sa.select(schema_state.c.generation.label("schema"), auth_state.c.generation.label("auth")).where(
    schema_state.c.id == 1, auth_state.c.id == 1)


class SchemaService:
    def __init__(self, database: Database, host: PluginHost, plugins_dir: Path, settings: Settings | None = None,
                 viewers: ViewerCache | None = None) -> None:
        self.database = database
        self.host = host
        self.plugins_dir = plugins_dir
        self.settings = settings  # the request limits and production mode the schemas are built with
        self.viewers = viewers  # the process's cached viewers, kept current by `poll`; None: no cache
        self.live: LiveSchema | None = None
        self.last_report: SwapReport | None = None
        self.builds = 0  # schemas built by this process, and the seconds they took (for /metrics)
        self.build_seconds = 0.0
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()  # set by a change notification: poll now, not at the interval

    async def start(self) -> SwapReport:
        if self.viewers is not None:
            # Before anything is cached, so the first poll forgets only what changed since.
            async with self.database.session() as session:
                self.viewers.sync(await current_auth_generation(session))
        await self.host.install_folders(self.plugins_dir)
        return await self.rebuild()

    async def _generation(self) -> int:
        async with self.database.session() as session:
            return await registry.current_generation(session)

    async def rebuild(self) -> SwapReport:
        """Build core + loaded plugins and serve it; the previous schema serves until then."""
        async with self._lock:
            return await self._rebuild()

    async def _rebuild(self) -> SwapReport:
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            # The registry's state at one generation: that number names exactly this schema.
            generation = await self.host.follow_registry()
            plugins = list(self.host.loaded.values())  # in install order: the earlier keeps a clashing name
            async with self.database.session() as session:
                datatypes = await datatype_shapes(session)
            result = await asyncio.to_thread(build, plugins, self.host, self.settings, datatypes)
            if self.live is None or generation > self.live.current.generation:
                break
            # A swap the database has not counted (a reload of unchanged files): count it, so the
            # number always grows, unless another change moved it meanwhile (then build that).
            async with self.database.session() as session, session.transaction():
                if await registry.bump_generation_from(session, generation):
                    generation += 1
                    break
        used = frozenset(p for p in plugins if p.name in result.plugins)
        retired = [(plugin, plugin.runtime.close) for plugin in self.host.take_retired()]
        report = SwapReport(generation, result.plugins, {**self.host.failures, **result.failures},
                            build_seconds=loop.time() - started)
        self.builds += 1
        self.build_seconds += report.build_seconds
        if self.live is None:
            self.live = LiveSchema.serving(result.schema, generation, used)
        else:
            old = self.live.current.schema._schema
            new = result.schema._schema
            report.breaking_changes = [f"{c.type.name}: {c.description}" for c in find_breaking_changes(old, new)]
            report.dangerous_changes = [f"{c.type.name}: {c.description}" for c in find_dangerous_changes(old, new)]
            self.live.swap(result.schema, generation, uses=used, retire=retired)
        self.last_report = report
        log.info("schema generation %d: plugins %s (%.0f ms)%s%s", generation, ", ".join(report.plugins) or "none",
                 report.build_seconds * 1000,
                 f"; left out: {report.failures}" if report.failures else "",
                 f"; breaking: {report.breaking_changes}" if report.breaking_changes else "")
        return report

    # --- plugin management (admin mutations, --watch) ----------------------------------------

    async def load_plugin(self, name: str) -> SwapReport:
        """Install (or upgrade) and serve the plugin. When the new version's schema does not fit,
        the version serving before is recorded again, so every process serves it (its tables may
        have gained the new additive changes)."""
        async with self._lock:
            previous = self.host.loaded.get(name)
            await self.host.install(self._folder(name))
            report = await self._rebuild()
            if name in report.failures and previous is not None:
                failure = report.failures[name]
                await self.host.reinstate(previous)
                report = await self._rebuild()
                report.failures[name] = f"{failure} (the previous version keeps serving)"
            return report

    async def datatypes_changed(self) -> SwapReport:
        """A datatype or its fields changed (and is committed): serve their generated types."""
        return await self.rebuild()

    async def reload_plugin(self, name: str) -> SwapReport:
        return await self.load_plugin(name)

    async def unload_plugin(self, name: str) -> SwapReport:
        async with self._lock:
            await self.host.unload(name)
            return await self._rebuild()

    def _folder(self, name: str) -> Path:
        loaded = self.host.loaded.get(name)
        folder = loaded.manifest.folder if loaded and loaded.manifest.folder else self.plugins_dir / name
        if not (folder / "plugin.json").is_file():
            raise PluginError(name, f"has no plugin.json in {folder}", code="NOT_FOUND")
        return folder

    def changed_elsewhere(self, _payload: str = "") -> None:
        """A change notification arrived (or the LISTEN connection came back and may have missed
        some): poll at once. The payload is only a hint; the poll reads the counters themselves."""
        self._wake.set()

    async def follow(self, interval: float = 1.0) -> None:
        """Forever: `poll` every `interval` seconds, and at once when `changed_elsewhere` is called."""
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
            self._wake.clear()
            try:
                await self.poll()
            except Exception:  # noqa: BLE001 - keep following; the old schema keeps serving
                log.exception("could not follow the schema generation")

    async def poll(self) -> None:
        """One look at the database: forget the cached viewers when the auth generation moved;
        when another process moved the schema generation on, sync plugins and rebuild."""
        async with self.database.session() as session:
            generations = await session.fetch_one(_GENERATIONS)
        if self.viewers is not None:
            self.viewers.sync(int(generations["auth"]))
        if generations["schema"] > self.live.current.generation:
            async with self._lock:
                # Our own change may have moved the generation while we waited.
                if await self._generation() > self.live.current.generation:
                    await self._rebuild()

    async def watch(self) -> None:
        """`modula serve --watch`: reload a plugin when its files change."""
        from watchfiles import awatch

        async for changes in awatch(self.plugins_dir):
            names = {Path(path).relative_to(self.plugins_dir.resolve()).parts[0] for _, path in changes
                     if Path(path).is_relative_to(self.plugins_dir.resolve())}
            for name in sorted(names):
                try:
                    await self.load_plugin(name)
                except PluginError as exc:
                    log.error("%s", exc.message)


