"""The plugin host: installs, loads, reloads and removes plugins, one sandboxed runtime each.

Installing runs init.lua (which only declares), then, in ONE transaction under the registry's
lock, plans the plugin's tables against the live database, creates or upgrades them, stores the
plugin's files in the registry and bumps the schema generation. Every process (the installing
one too) runs what the registry holds: `follow_registry` loads stored versions, no DDL. A failing plugin is reported by name, file and line, and never
stops the server or the other plugins.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from modula.auth import plugin_grants
from modula.db import confinement
from modula.db.connection import Database, Session
from modula.db.introspection import TableSpec, reflect_tables
from modula.db.plugin_sql import plugin_session, plugin_sql
from modula.errors import did_you_mean
from modula.logs import current_request_id
from modula.lua.declarations import Declarations, HandlerRef
from modula.lua.errors import LuaPluginError
from modula.lua.limits import Limits
from modula.lua.runtime import PluginRuntime
from modula.plugins import outbound_http, registry, tables
from modula.plugins.calls import PluginCall
from modula.plugins.data import TableHooks
from modula.plugins.errors import PluginError
from modula.plugins.files import PluginFiles
from modula.plugins.manifest import Manifest, parse_manifest, read_manifest
from modula.plugins.versions import api_changes, unchanged_version_warning

log = logging.getLogger("modula.plugins")
# How deep hooks may nest when a hook's own `insert` runs hooks in turn.
MAX_HOOK_DEPTH = 8

@dataclass(eq=False)  # compared and hashed by identity: each load is its own runtime
class LoadedPlugin:
    manifest: Manifest
    runtime: PluginRuntime
    declarations: Declarations
    tables: dict[str, TableSpec]
    checksum: str
    installed_generation: int = 0  # the registry's: the schema generation that recorded this version
    source: str = ""
    tables_generation: int = 0  # the registry's: the generation its `tables` were introspected at

    @property
    def name(self) -> str:
        return self.manifest.name


# A call stopped by its budget (instructions, memory, wall-clock seconds).
OVERRUN_CODES = frozenset({"BUDGET_EXCEEDED", "MEMORY_EXCEEDED", "TIMEOUT"})


@dataclass
class CallStats:
    """Calls into one plugin's handlers in this process (for /metrics)."""
    calls: int = 0
    overruns: int = 0
    seconds: float = 0.0


@dataclass
class PluginHost:
    database: Database
    limits: Limits = field(default_factory=Limits)
    # One client per list of allowed hosts: a pooled connection is reused only by plugins that
    # could have opened it (outbound_http checks addresses when it connects).
    http_clients: dict[tuple[str, ...], httpx.AsyncClient] = field(default_factory=dict)
    loaded: dict[str, LoadedPlugin] = field(default_factory=dict)  # in install order (the registry's)
    failures: dict[str, str] = field(default_factory=dict)
    retired: list[LoadedPlugin] = field(default_factory=list)
    call_stats: dict[str, CallStats] = field(default_factory=dict)  # by plugin name

    async def install_folders(self, plugins_dir: Path) -> None:
        """Install every plugin folder in `plugins_dir` the registry does not hold as it is (new or
        changed files), except those the registry has disabled. Failures are logged and kept,
        never raised. Plugins already installed are left to `follow_registry`."""
        if not plugins_dir.is_dir():
            return
        async with self.database.session() as session:
            known = {row["name"]: row for row in await registry.list_plugins(session)}
            stored = {name for name, row in known.items() if await registry.has_files(session, row["id"])}
        for folder in sorted(p for p in plugins_dir.iterdir() if (p / "plugin.json").is_file()):
            row = known.get(folder.name)
            if row is not None and not row["enabled"]:
                continue
            try:
                if row is not None and folder.name in stored and row["checksum"] == registry.checksum(folder):
                    continue
                await self.install(folder)
            except PluginError as exc:
                self.failures[exc.plugin] = exc.message
                log.error("%s", exc.message, extra={"plugin": exc.plugin})

    async def follow_registry(self) -> int:
        """Run exactly the enabled plugins the registry holds, in install order: load the versions
        recorded since this host loaded its own (from the stored files) and retire those removed or
        disabled. Returns the generation this state is. A stored version that fails to load is
        retired and reported, as it would fail in any process."""
        async with self.database.session() as session:
            generation, stored = await registry.snapshot(
                session, {name: plugin.installed_generation for name, plugin in self.loaded.items()})
        enabled = {plugin.name for plugin in stored}
        for name in [name for name in self.loaded if name not in enabled]:
            version = self.loaded[name].manifest.version
            self._retire(name)
            _lifecycle(f"plugin {name} {version} unloaded: the registry no longer has it enabled (generation {generation})",
                       name, version, generation)
        changed = [entry for entry in stored if (current := self.loaded.get(entry.name)) is None
                   or current.installed_generation != entry.installed_generation]
        # A new version whose install left the tables alone keeps the specs introspected before; the
        # rest share one introspection (each costs a connection and the dialect's setup).
        kept = {entry.name: self.loaded[entry.name].tables for entry in changed if entry.name in self.loaded
                and self.loaded[entry.name].tables_generation == entry.tables_generation}
        wanted = tuple(entry.name + "_" for entry in changed if entry.name not in kept)
        specs = await reflect_tables(self.database.url, prefix=wanted) if wanted else {}
        for entry in changed:
            try:
                tables = kept.get(entry.name)
                if tables is None:
                    tables = {name: spec for name, spec in specs.items() if name.startswith(entry.name + "_")}
                plugin = await self.load_stored(entry, tables)
            except PluginError as exc:
                self._retire(entry.name)
                self.failures[entry.name] = exc.message
                log.error("%s", exc.message, extra={"plugin": entry.name, "generation": entry.installed_generation})
                continue
            before = self.loaded.get(entry.name)
            self._retire(entry.name)
            self.failures.pop(entry.name, None)
            self.loaded[entry.name] = plugin
            version = plugin.manifest.version
            change = f"reloaded ({before.manifest.version} -> {version})" if before is not None else "loaded"
            _lifecycle(f"plugin {entry.name} {version} {change} from the registry (generation {entry.installed_generation})",
                       entry.name, version, entry.installed_generation)
        order = {plugin.name: position for position, plugin in enumerate(stored)}
        self.loaded = dict(sorted(self.loaded.items(), key=lambda item: order[item[0]]))
        return generation

    async def load_stored(self, stored: registry.StoredPlugin, specs: dict[str, TableSpec]) -> LoadedPlugin:
        """Run the stored version's init.lua beside its tables' `specs`; no DDL, nothing written."""
        manifest = parse_manifest(stored.files, stored.name)
        runtime = PluginRuntime(manifest.name, limits=self.limits, http_hosts=list(manifest.http_hosts))
        try:
            declarations = await _declare(manifest, runtime)
            _check_hooks(manifest.name, declarations)
        except PluginError:
            runtime.close()
            raise
        except Exception as exc:
            runtime.close()
            log.exception("plugin %s failed to load", manifest.name)
            raise PluginError(manifest.name, f"load failed: {exc}") from exc
        return LoadedPlugin(manifest, runtime, declarations, specs, stored.checksum, stored.installed_generation,
                            stored.source, stored.tables_generation)

    async def install(self, folder: Path, *, progress: Callable[[str], None] | None = None) -> LoadedPlugin:
        """Install the plugin in `folder`: store its files in the registry and create or upgrade its
        tables, in one transaction under the registry's lock; all or nothing. When the registry
        already holds these files and the tables are as declared (another process installed them),
        nothing is written. `progress(step)` hears of each step done (the CLI shows them)."""
        step = progress or (lambda message: None)
        manifest = read_manifest(folder)
        source = str(folder.resolve())
        step(f"manifest read: {manifest.name} {manifest.version}")
        await self._check_namespace(manifest.name)
        runtime = PluginRuntime(manifest.name, limits=self.limits, http_hosts=list(manifest.http_hosts))
        try:
            declarations = await _declare(manifest, runtime)
            _check_hooks(manifest.name, declarations)
            step(f"init.lua loaded: {len(declarations.tables)} table(s), {len(declarations.operations)} operation(s), "
                 f"{len(declarations.hooks)} hook(s)")
            prefix = manifest.name + "_"
            digest = manifest.files.checksum
            async with self.database.session() as session:
                async with session.transaction():
                    await registry.change_lock(session)
                    # Planned under the lock: what another process installed meanwhile is in place.
                    live = await reflect_tables(self.database.url, prefix=prefix)
                    metadata = tables.declared_tables(manifest.name, declarations.tables, live)
                    plan = tables.plan(manifest.name, metadata, live, self.database.dialect)
                    own_tables = [t.name for t in tables.plugin_tables(manifest.name, metadata)]
                    known = await registry.get_plugin(session, manifest.name)
                    same_version = (known is not None and known["version"] == manifest.version
                                    and known["checksum"] != digest)
                    previous_files = await registry.stored_files(session, known["id"]) if same_version else None
                    written = not (plan.empty and known is not None and known["checksum"] == digest and known["enabled"]
                                   and await registry.has_files(session, known["id"]))
                    if not written:
                        installed_generation, source = known["installed_generation"], known["source"]
                        tables_generation = known["tables_generation"]
                    else:
                        await tables.apply(session, plan)
                        installed_generation = await registry.record(session, manifest, manifest.files, source,
                                                                     tables_changed=not plan.empty)
                        tables_generation = (installed_generation if not plan.empty or known is None
                                             else known["tables_generation"])
                        await plugin_grants.propose(session, manifest.name, manifest.grants)
                        await confinement.provision_plugin_role(session, _grant(manifest, own_tables, self.limits), own_tables)
            if not plan.empty:
                log.info("plugin %s %s: %s", manifest.name, manifest.version, ", ".join(plan.describe()),
                         extra={"plugin": manifest.name, "version": manifest.version})
            upgraded = {table.name for table, _ in plan.new_columns} | {index.table.name for index in plan.new_indexes}
            step(f"tables: {len(plan.new_tables)} created, {len(upgraded)} upgraded ({', '.join(plan.describe())})"
                 if not plan.empty else "tables: already up to date")
            specs = live if plan.empty else await reflect_tables(self.database.url, prefix=prefix)
            step(f"introspected: {len(specs)} table(s), {sum(len(spec.columns) for spec in specs.values())} column(s)")
            if previous_files is not None:
                changes = plan.describe() + await self._api_changes(previous_files, declarations)
                if changes:
                    warning = unchanged_version_warning(manifest.name, manifest.version, changes)
                    log.warning("%s", warning, extra={"plugin": manifest.name, "version": manifest.version})
                    step(f"warning: {warning}")
        except PluginError:
            runtime.close()
            raise
        except Exception as exc:
            runtime.close()
            log.exception("plugin %s failed to install", manifest.name)
            raise PluginError(manifest.name, f"install failed: {exc}") from exc
        before = self.loaded.get(manifest.name)
        self._retire(manifest.name)
        self.failures.pop(manifest.name, None)
        plugin = LoadedPlugin(manifest, runtime, declarations, specs, digest, installed_generation, source, tables_generation)
        self.loaded[manifest.name] = plugin
        if not written:
            change = "loaded (as installed)"
        elif known is None:
            change = "installed"
        else:
            change = f"installed over {known['version']}" + (" (reloaded)" if before is not None else "")
        _lifecycle(f"plugin {manifest.name} {manifest.version} {change} from {source or '(unknown)'} "
                   f"(generation {installed_generation})", manifest.name, manifest.version, installed_generation)
        return plugin

    async def _api_changes(self, previous: PluginFiles, declarations: Declarations) -> list[str]:
        """What `declarations` change in the GraphQL API the `previous` files of the plugin declare
        (their init.lua runs in a throwaway runtime; files that no longer load count as no change)."""
        if not previous.files:
            return []
        try:
            manifest = parse_manifest(previous, "previous version")
        except PluginError:
            return []
        runtime = PluginRuntime(manifest.name, limits=self.limits, http_hosts=list(manifest.http_hosts))
        try:
            old = await _declare(manifest, runtime)
        except PluginError:
            return []
        finally:
            runtime.close()
        return api_changes(old, declarations)

    async def reinstate(self, plugin: LoadedPlugin) -> None:
        """Record `plugin` (a version this host ran before) in the registry again, as the current
        version: every process then loads it, with the tables as they are now."""
        async with self.database.session() as session, session.transaction():
            await registry.change_lock(session)
            await registry.record(session, plugin.manifest, plugin.manifest.files, plugin.source, tables_changed=False)

    async def _check_namespace(self, name: str) -> None:
        """Tables are a plugin's by prefix (`shop_*`), so `shop` and `shop_extra` cannot both be
        installed: one would own the other's tables."""
        async with self.database.session() as session:
            others = [row["name"] for row in await registry.list_plugins(session) if row["name"] != name]
        for other in others:
            if other.startswith(name + "_") or name.startswith(other + "_"):
                raise PluginError(name, f"its tables ({name}_*) would overlap those of the installed plugin {other} "
                                        f"({other}_*): choose another name", code="PLUGIN_LOAD_FAILED")

    async def unload(self, name: str) -> None:
        """Stop serving the plugin, here and (through the registry) in every process sharing the
        database, also after restarts; its tables and data stay."""
        if name not in self.loaded:
            raise PluginError(name, "is not loaded", code="NOT_FOUND")
        version = self.loaded[name].manifest.version
        self._retire(name)
        async with self.database.session() as session, session.transaction():
            await registry.change_lock(session)
            await registry.set_enabled(session, name, False)
        _lifecycle(f"plugin {name} {version} unloaded (disabled in the registry)", name, version)

    def _retire(self, name: str) -> None:
        """Stop handing out the plugin; its runtime stays open for requests still using it until
        the owner of the served schema closes it (see `take_retired`)."""
        plugin = self.loaded.pop(name, None)
        if plugin is not None:
            self.retired.append(plugin)

    def take_retired(self) -> list[LoadedPlugin]:
        retired, self.retired = self.retired, []
        return retired

    async def remove(self, name: str) -> None:
        """Forget the plugin in the registry. Its tables are kept: they hold user data."""
        self._retire(name)
        async with self.database.session() as session:
            async with session.transaction():
                await registry.change_lock(session)
                row = await registry.get_plugin(session, name)
                if row is None:
                    raise PluginError(name, "is not installed", code="NOT_FOUND")
                await registry.forget(session, name)
        _lifecycle(f"plugin {name} {row['version']} removed (its tables are kept)", name, row["version"])

    async def call(self, name: str, handler: HandlerRef, args: Any, ctx: dict, *, session: Session | None = None) -> Any:
        """Run one Lua handler of the loaded plugin `name` (see `call_plugin`)."""
        plugin = self.loaded.get(name)
        if plugin is None:
            raise PluginError(name, "is not loaded", code="NOT_FOUND")
        return await self.call_plugin(plugin, handler, args, ctx, session=session)

    async def call_plugin(self, plugin: LoadedPlugin, handler: HandlerRef, args: Any, ctx: dict, *,
                          session: Session | None = None, hook_depth: int = 0) -> Any:
        """Run one Lua handler with its SQL confined to what the plugin may touch.

        `session` lets the plugin's statements join the caller's transaction: on SQLite any
        session, on PostgreSQL only one logged in as the plugin's role (see `write_session`); a host
        session's privileges are never lent to plugin SQL. The handler's own `insert` runs the
        table's hooks on its connection, `hook_depth` counting how deep such hooks nest.
        """
        grant = _grant(plugin.manifest, list(plugin.tables), self.limits)
        shared = session if session is not None and (self.database.is_sqlite or session.login_role) else None
        stats = self.call_stats.setdefault(plugin.name, CallStats())
        started = time.perf_counter()
        try:
            async with plugin_sql(self.database, grant, session=shared) as sql:
                async def run_hook(hook, row, path):
                    if hook_depth >= MAX_HOOK_DEPTH:
                        raise PluginError(plugin.name, f"hooks nested {MAX_HOOK_DEPTH} deep: does the {hook.event} "
                                                       f"hook of {hook.table} insert into its own table?")
                    hook_ctx = {**ctx, "event": hook.event, "table": hook.table}
                    return await self.call_plugin(plugin, hook.handler, row, hook_ctx, session=sql.session,
                                                  hook_depth=hook_depth + 1)

                hooks = TableHooks(plugin.declarations.hooks, run_hook)
                call = PluginCall(plugin, sql, http_client=self.http_client(plugin.manifest), hooks=hooks)
                return await plugin.runtime.call(handler, args, ctx, call)
        except LuaPluginError as exc:
            if exc.code in OVERRUN_CODES:
                stats.overruns += 1
            raise PluginError(plugin.name, exc.message, code=exc.code, location=exc.location) from None
        finally:
            stats.calls += 1
            stats.seconds += time.perf_counter() - started

    async def core_event(self, event: str, table: str, row: dict, ctx: dict) -> None:
        """Run every loaded plugin's hook on a core event (after the change committed)."""
        for plugin in list(self.loaded.values()):
            for hook in plugin.declarations.hooks:
                if hook.event == event and hook.table == table:
                    try:
                        await self.call_plugin(plugin, hook.handler, row, {**ctx, "plugin": plugin.name, "event": event, "table": table})
                    except PluginError as exc:
                        log.error("%s", exc.message)

    @contextlib.asynccontextmanager
    async def write_session(self, plugin: LoadedPlugin, request_session: Session) -> AsyncIterator[Session]:
        """The connection a generated mutation of the plugin's tables runs on, so its hooks' SQL
        shares the mutation's transaction: the request's own on SQLite, one logged in as the
        plugin's role on PostgreSQL (which has every right the mutation needs on the plugin's tables)."""
        if self.database.is_sqlite:
            yield request_session
            return
        async with plugin_session(self.database, plugin.name) as session:
            yield session

    async def close(self) -> None:
        for plugin in [*self.loaded.values(), *self.take_retired()]:
            plugin.runtime.close()
        self.loaded.clear()
        for client in self.http_clients.values():
            await client.aclose()
        self.http_clients.clear()

    def http_client(self, manifest: Manifest) -> httpx.AsyncClient:
        """The client `http.request` of a plugin with this manifest goes out through."""
        hosts = tuple(manifest.http_hosts)
        client = self.http_clients.get(hosts)
        if client is None:
            client = self.http_clients[hosts] = outbound_http.client_for(hosts)
        return client


def _lifecycle(message: str, plugin: str, version: str, generation: int | None = None) -> None:
    """A plugin started or stopped serving: one info line, at start and at every change."""
    log.info("%s", message, extra={"plugin": plugin, "version": version, "generation": generation})


def _grant(manifest: Manifest, own_tables: list[str], limits: Limits) -> confinement.PluginGrant:
    # A statement never outlives the budget of the call that runs it.
    timeout_ms = min(confinement.PluginGrant.statement_timeout_ms, max(1, int(limits.seconds * 1000)))
    return confinement.PluginGrant(plugin=manifest.name, readable=manifest.readable, own_tables=frozenset(own_tables),
                                   statement_timeout_ms=timeout_ms)


async def _declare(manifest: Manifest, runtime: PluginRuntime) -> Declarations:
    try:
        return await runtime.load_async(manifest.init_lua, "init.lua", log_extra={"request_id": current_request_id()})
    except LuaPluginError as exc:
        raise PluginError(manifest.name, exc.message, location=exc.location or "init.lua", code="PLUGIN_LOAD_FAILED") from None


# Core events a plugin may watch: they run after the core change committed (so a webhook never
# announces content that a rollback then takes back), and their failures are logged, not raised.
# after_commit is queued in the outbox with the change and run by its worker, retried until it succeeds.
CORE_EVENTS = {"content": ("after_insert", "after_update", "after_delete", "after_commit")}


def _check_hooks(plugin: str, declarations: Declarations) -> None:
    # Events are checked as init.lua declares them; which tables a hook may watch is the host's rule.
    own = {t.name for t in declarations.tables}
    for hook in declarations.hooks:
        if hook.table in CORE_EVENTS:
            if hook.event not in CORE_EVENTS[hook.table]:
                raise PluginError(plugin, f"hook {hook.event} on {hook.table}: core tables offer only "
                                          f"{', '.join(CORE_EVENTS[hook.table])}", location=hook.location)
        elif hook.table not in own:
            raise PluginError(plugin, f"hook {hook.event} names table {hook.table!r}, which the plugin does not define"
                                      f"{did_you_mean(hook.table, own)}", location=hook.location)
