"""Composes the GraphQL schema that a server generation serves: the core, a generated type per
datatype, and every loaded plugin.

A plugin whose part does not fit (a name another plugin or the core already uses, a type its Lua
names but nobody defines, a schema Strawberry refuses) is reported and left out; the others are
served. Builds take hundreds of milliseconds for many tables: callers run them off the event loop.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from strawberry.schema.config import StrawberryConfig

from modula.cms.typed_content import DatatypeShape
from modula.config import Settings
from modula.plugins.errors import PluginError
from modula.schema.compiled import content as core_content
from modula.schema.compiled import content_write
from modula.schema.compiled.catalog import Catalog
from modula.schema.compiled.run import CompiledOperations
from modula.schema.content_nodes import ContentNodes
from modula.schema.core_schema import Mutation, Query
from modula.schema.cost import CostPlans
from modula.schema.datatype_schema import datatype_parts
from modula.schema.dynamic import TypeFactory, resolve_default
from modula.schema.errors import ModulaSchema, mask_internal_errors
from modula.schema.limits import Limits, RequestLimits
from modula.schema.naming import datatype_names
from modula.schema.persisted import PersistedQueries
from modula.schema.plugin_schema import PluginPart, plugin_part
from modula.schema.validation_cache import validation_cache

log = logging.getLogger("modula.schema")


@dataclass
class Build:
    schema: ModulaSchema
    plugins: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    locations: dict[str, str] = field(default_factory=dict)  # plugin -> "init.lua:12" of its failure, when known


# The part that holds the datatypes' fields; not a valid plugin name, so no plugin can have it.
_DATATYPES = "(datatypes)"


def _schema(query: type, mutation: type, settings: Settings | None = None, catalog: Catalog | None = None,
            nodes: ContentNodes | None = None, owners: dict[str, str] | None = None) -> ModulaSchema:
    limits = Limits.from_settings(settings or Settings())
    validation = validation_cache(maxsize=256)
    schema = ModulaSchema(
        query=query,
        mutation=mutation,
        config=StrawberryConfig(default_resolver=resolve_default),
        # Factories: a fresh extension per request (they hold the request's state) over LRU caches:
        # RequestLimits parses through a module-level one (as Strawberry's ParserCache would), and
        # validation results are cached per schema, in a cache that goes with it (a probe measured
        # 3-5x throughput from the two caches).
        extensions=[lambda: RequestLimits(limits), validation, mask_internal_errors],
    )
    # The fast path's plans live with the schema and go with it when a swap retires it.
    catalog = catalog or Catalog()
    catalog.core.update(core_content.ROOTS)  # contents and content(id:)
    catalog.core_writes.update(content_write.WRITES)  # createContent
    catalog.inputs |= content_write.INPUTS
    schema.content_nodes = nodes or ContentNodes()  # content rows -> their datatype's generated type
    catalog.content_types = schema.content_nodes.type_names()
    schema.compiled = CompiledOperations(catalog, schema._schema, limits, validation.validate)
    # the estimates of its operations (of those that validate), which go with it
    schema.costs = CostPlans(schema._schema, validation.validate, schema.compiled.rules)
    schema.persisted = PersistedQueries()  # automatic persisted queries, afresh with each generation
    schema.name_owners = owners if owners is not None else {}  # who generated which name (core names aside)
    return schema


def build_schema(settings: Settings | None = None) -> ModulaSchema:
    """The core schema alone."""
    return _schema(Query, Mutation, settings)


@functools.cache
def core_names() -> frozenset[str]:
    """Type and root field names of the core schema: plugins may not take them."""
    graphql = build_schema()._schema
    roots = [*graphql.query_type.fields, *graphql.mutation_type.fields]
    return frozenset(graphql.type_map) | frozenset(roots)


def build(plugins: Sequence[Any] = (), host: Any = None, settings: Settings | None = None,
          datatypes: Sequence[DatatypeShape] = ()) -> Build:
    """Core + `datatypes` + `plugins` (LoadedPlugin objects of `host`), in the order given: when two
    generate the same name, the one given first keeps it (datatypes before plugins)."""
    factory = TypeFactory()
    parts: list[PluginPart] = []
    failures: dict[str, str] = {}
    locations: dict[str, str] = {}
    owners = dict.fromkeys(core_names(), "the core schema")
    nodes = ContentNodes()
    if datatypes:
        parts.append(_datatypes_part(factory, datatypes, nodes, owners, failures))
    for plugin in plugins:
        try:
            part = plugin_part(factory, host, plugin)
            names = part.type_names | _root_names(part)
            clash = sorted(names & owners.keys())
            if clash:
                taken = ", ".join(f"{name} (from {owners[name]})" for name in clash[:5])
                raise PluginError(plugin.name, f"generates names already in use: {taken}", code="PLUGIN_LOAD_FAILED")
        except PluginError as exc:
            failures[plugin.name] = exc.message
            if exc.location:
                locations[plugin.name] = exc.location
            log.error("%s", exc.message)
            continue
        owners.update(dict.fromkeys(names, f"plugin {plugin.name}"))
        parts.append(part)
    schema, refused = _compose(factory, parts, settings, nodes, owners)
    failures.update(refused)
    return Build(schema, [p.name for p in parts if p.name not in refused and p.name != _DATATYPES], failures,
                 locations)


def _datatypes_part(factory: TypeFactory, shapes: Sequence[DatatypeShape], nodes: ContentNodes,
                    owners: dict[str, str], failures: dict[str, str]) -> PluginPart:
    """The generated types of every datatype whose names are free (the others are reported)."""
    accepted = []
    for shape in shapes:
        generated = datatype_names(shape.type)
        names = {*generated.types(), *generated.roots()}
        clash = sorted(names & owners.keys())
        if clash:
            taken = ", ".join(f"{name} (from {owners[name]})" for name in clash[:5])
            failures[f"datatype {shape.type}"] = f"datatype {shape.type} generates names already in use: {taken}"
            log.error("%s", failures[f"datatype {shape.type}"])
            continue
        owners.update(dict.fromkeys(names, f"datatype {shape.type}"))
        accepted.append(shape)
    part = PluginPart(_DATATYPES)
    for generated in datatype_parts(factory, accepted, nodes):
        part.query.update(generated.query)
        part.mutation.update(generated.mutation)
        part.type_names |= generated.type_names
    return part


def _root_names(part: PluginPart) -> set[str]:
    return {value.graphql_name for _, value in (*part.query.values(), *part.mutation.values())}


def _compose(factory: TypeFactory, parts: list[PluginPart], settings: Settings | None, nodes: ContentNodes,
             owners: dict[str, str]) -> tuple[ModulaSchema, dict[str, str]]:
    """The schema with every part; when Strawberry refuses it, parts are added one by one and
    those it refuses are left out."""
    try:
        return _roots(factory, parts, settings, nodes, owners), {}
    except Exception:  # noqa: BLE001 - find the plugin to blame below
        log.warning("schema build failed with all plugins; adding them one by one")
    accepted: list[PluginPart] = []
    refused: dict[str, str] = {}
    for part in parts:
        try:
            _roots(factory, [*accepted, part])
            accepted.append(part)
        except Exception as exc:  # noqa: BLE001 - Strawberry's errors vary; report the text
            refused[part.name] = f"plugin {part.name}: its schema was refused: {exc}"
            log.error("%s", refused[part.name])
    if _DATATYPES in refused:  # none of them is served: content reads as generic Content
        nodes.types.clear()
    return _roots(factory, accepted, settings, nodes, owners), refused


def _roots(factory: TypeFactory, parts: list[PluginPart], settings: Settings | None = None,
           nodes: ContentNodes | None = None, owners: dict[str, str] | None = None) -> ModulaSchema:
    query = {k: v for part in parts for k, v in part.query.items()}
    mutation = {k: v for part in parts for k, v in part.mutation.items()}
    catalog = Catalog()
    for part in parts:
        catalog.merge(part.catalog)
    return _schema(factory.object_type("Query", query, bases=(Query,)), factory.object_type("Mutation", mutation, bases=(Mutation,)),
                   settings, catalog, nodes, owners)


def export_sdl(schema: ModulaSchema) -> str:
    return schema.as_str().rstrip() + "\n"
