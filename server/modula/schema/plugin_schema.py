"""One plugin's part of the schema: generated types and CRUD for its tables, plus what its Lua
declares, wired to the plugin's runtime and to its hooks.

Resolvers hold the `LoadedPlugin` they were built for, so a request that started on this schema
finishes with the same plugin runtime even if the plugin is reloaded meanwhile.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from modula.plugins.data import TableWriter
from modula.plugins.errors import PluginError
from modula.schema import table_types
from modula.schema.compiled.catalog import Catalog
from modula.schema.dynamic import TypeFactory
from modula.schema.guards import require
from modula.schema.lua_fields import LuaApi
from modula.schema.naming import column_field
from modula.schema.table_fields import mutation_fields, query_fields, relation_fields
from modula.schema.table_types import TableApi

Fields = dict[str, tuple[Any, Any]]


@dataclass
class PluginPart:
    name: str
    query: Fields = field(default_factory=dict)
    mutation: Fields = field(default_factory=dict)
    type_names: set[str] = field(default_factory=set)
    catalog: Catalog = field(default_factory=Catalog)  # what the fast path may compile


class PluginBinding:
    """How generated and Lua resolvers reach one loaded plugin."""

    def __init__(self, host, plugin) -> None:
        self.host = host  # PluginHost
        self.plugin = plugin  # LoadedPlugin

    def lua_context(self, info, extra: dict) -> dict:
        """`ctx` for Lua: the plugin, request metadata, the viewer, and what the viewer may do
        (`ctx.can(action, resource)` reads `grants`; the prelude adds it)."""
        request = info.context.request
        meta = {"method": request.method, "path": request.url.path} if request is not None else {}
        viewer = info.context.viewer
        grants = {f"{action}:{resource}": True for resource, action in viewer.permissions}
        return {"plugin": self.plugin.name, "request": meta, "viewer": viewer.to_lua(),
                "grants": {"admin": viewer.is_admin, "allowed": grants}, **extra}

    async def call(self, handler, args: Any, extra: dict, info) -> Any:
        """A Lua query, field or mutation: `read` (queries, fields) or `update` (mutations) on
        the resource `plugin:<name>`."""
        require(info, "update" if extra.get("kind") == "mutation" else "read", f"plugin:{self.plugin.name}")
        return await self.host.call_plugin(self.plugin, handler, args, self.lua_context(info, extra), session=info.context.session)

    @contextlib.asynccontextmanager
    async def writing(self, info) -> AsyncIterator[TableWriter]:
        """A transaction for one generated mutation; hooks run inside it, on the same connection."""
        async with self.host.write_session(self.plugin, info.context.session) as session, session.transaction():
            async def run_hook(hook, row, path):
                ctx = self.lua_context(info, {"event": hook.event, "table": hook.table})
                return await self.host.call_plugin(self.plugin, hook.handler, row, ctx, session=session)

            yield TableWriter(session, self.plugin.tables, self.plugin.declarations.hooks, run_hook,
                              plugin=self.plugin.name)


def plugin_part(factory: TypeFactory, host, plugin) -> PluginPart:
    """Generate the plugin's fields and types; raises PluginError when its declarations do not fit."""
    binding = PluginBinding(host, plugin)
    specs = plugin.tables
    chosen = {decl.name: decl for decl in plugin.declarations.tables}
    apis: dict[str, TableApi] = {}
    for name, spec in sorted(specs.items()):
        decl = chosen.get(name)
        apis[name] = table_types.create(factory, plugin.name, spec, decl and decl.graphql_type, decl and decl.graphql_list)
    _check_distinct_names(plugin.name, apis, chosen)
    objects, arrays = table_types.relations(specs, {name: api.names for name, api in apis.items()})
    for name, api in apis.items():
        api.object_relations, api.array_relations = objects[name], arrays[name]

    lua = LuaApi(factory, plugin.name, plugin.declarations, apis)
    lua.check_field_targets({api.names.type for api in apis.values()})
    part = PluginPart(plugin.name)
    for api in apis.values():
        relations = relation_fields(api, apis)
        extra = lua.type_fields(api.names.type, binding.call)
        _check_unique(plugin.name, api.names.type,
                      [*(column_field(c.name) for c in api.spec.columns), *_graphql_names(relations), *_graphql_names(extra)])
        table_types.finish(factory, api, apis, extra, relations)
        _merge(plugin.name, part.query, query_fields(api))
        _merge(plugin.name, part.mutation, mutation_fields(api, apis, binding))
        part.catalog.add(api, binding)
        part.type_names |= {api.names.type, *(api.names.derived(s) for s in (
            "Filter", "OrderBy", "InsertInput", "SetInput", "Column", "OnConflict", "MutationResponse", "Edge",
            "Connection", "Aggregate", "SumFields", "AvgFields", "MinMaxFields"))}
    _merge(plugin.name, part.query, lua.operation_fields("query", binding.call))
    _merge(plugin.name, part.mutation, lua.operation_fields("mutation", binding.call))
    part.type_names |= {t.name for t in plugin.declarations.types} | {i.name for i in plugin.declarations.inputs}
    return part


def _check_distinct_names(plugin: str, apis: dict[str, TableApi], decls: dict) -> None:
    """Two tables of one plugin may not generate one name (an explicit `graphql` name may equal
    another table's inflected one)."""
    owners: dict[str, str] = {}
    for table, api in apis.items():
        names = api.names
        for name in dict.fromkeys((names.type, names.list, names.one, names.insert, names.insert_one)):
            if name in owners:
                decl = decls.get(table)
                raise PluginError(plugin, f"tables {owners[name]} and {table} would both generate {name}: give one "
                                          "of them other names with graphql = {type = ..., list = ...}",
                                  code="PLUGIN_LOAD_FAILED", location=decl.location if decl else None)
            owners[name] = table


def _graphql_names(fields: Fields) -> list[str]:
    return [value.graphql_name for _, value in fields.values()]


def _check_unique(plugin: str, owner: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise PluginError(plugin, f"{owner} would have two fields named {name}", code="PLUGIN_LOAD_FAILED")
        seen.add(name)


def _merge(plugin: str, into: Fields, fields: Fields) -> None:
    for key, value in fields.items():
        name = value[1].graphql_name
        if any(v[1].graphql_name == name for v in into.values()):
            raise PluginError(plugin, f"the root field {name} is defined twice", code="PLUGIN_LOAD_FAILED")
        into[key] = value
