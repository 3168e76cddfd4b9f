"""`modula plugins check PATH`: validate a plugin folder without touching the real database, and
show the GraphQL it would add to the core schema."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from graphql import GraphQLObjectType, GraphQLSchema, print_type

from modula.lua.errors import LuaPluginError
from modula.lua.limits import Limits
from modula.lua.runtime import PluginRuntime
from modula.plugins.errors import PluginError
from modula.plugins.manifest import read_manifest


@dataclass
class CheckReport:
    problems: list[str] = field(default_factory=list)  # one line each: "path:line: what is wrong"
    sdl: str = ""  # the types and root fields the plugin adds

    @property
    def ok(self) -> bool:
        return not self.problems


async def check_plugin(folder: Path, limits: Limits = Limits()) -> CheckReport:
    """Manifest, then init.lua (syntax and declarations: table names, columns, hooks), then an install
    into a throwaway SQLite database and a schema build (types named in registrations)."""
    report = CheckReport()
    shown, folder = folder, folder.resolve()  # problems name the folder as the user wrote it
    try:
        manifest = read_manifest(folder)
    except PluginError as exc:
        report.problems.append(_line(shown, exc.location, _without_location(exc)))
        return report
    runtime = PluginRuntime(manifest.name, limits=limits, http_hosts=list(manifest.http_hosts))
    try:
        await runtime.load_async(manifest.init_lua, "init.lua")
    except LuaPluginError as exc:
        report.problems.append(_line(shown, exc.location or "init.lua", exc.message))
        return report
    finally:
        runtime.close()
    with tempfile.TemporaryDirectory(prefix="modula-check-") as scratch:
        await _install_and_build(folder, shown, f"sqlite:///{Path(scratch) / 'check.db'}", report, limits)
    return report


async def _install_and_build(folder: Path, shown: Path, database_url: str, report: CheckReport,
                             limits: Limits) -> None:
    from modula.db.connection import Database
    from modula.db.migrations import migrate
    from modula.plugins.host import PluginHost
    from modula.schema.builder import build, build_schema

    database = Database(database_url)
    await database.connect()
    host = PluginHost(database, limits=limits)
    try:
        async with database.session() as session:
            await migrate(session)
        try:
            plugin = await host.install(folder)
        except PluginError as exc:
            report.problems.append(_line(shown, exc.location, _without_location(exc)))
            return
        result = build([plugin], host)
        if plugin.name in result.failures:
            # a registration names a type or a name that does not fit: both come from init.lua
            location = result.locations.get(plugin.name)
            message = result.failures[plugin.name]
            report.problems.append(_line(shown, location or "init.lua",
                                         message.replace(f" ({location})", "", 1) if location else message))
            return
        report.sdl = added_sdl(build_schema()._schema, result.schema._schema)
    finally:
        await host.close()
        await database.disconnect()


def added_sdl(core: GraphQLSchema, extended: GraphQLSchema) -> str:
    """The SDL of what `extended` has beyond `core`: new types, then new root fields as `extend type`."""
    parts = [print_type(t) for name, t in sorted(extended.type_map.items())
             if name not in core.type_map and not name.startswith("__")]
    for root in ("query_type", "mutation_type"):
        old, new = getattr(core, root), getattr(extended, root)
        if new is None:
            continue
        fields = {name: f for name, f in new.fields.items() if old is None or name not in old.fields}
        if fields:
            parts.append("extend " + print_type(GraphQLObjectType(new.name, fields)))
    return "\n\n".join(parts) + "\n" if parts else ""


def _line(folder: Path, location: str | None, message: str) -> str:
    """`<folder>/init.lua:12: message`, the way compilers name a place."""
    return f"{folder / location if location else folder}: {message}"


def _without_location(exc: PluginError) -> str:
    """The error's message without the "(init.lua:3)" the line already starts with."""
    return exc.message.replace(f" ({exc.location})", "", 1) if exc.location else exc.message
