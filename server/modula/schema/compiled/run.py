"""Running compiled operations: plans cached per document, operation, shape of the variables and
the viewer's permissions, in an LRU that belongs to one schema (and goes when it goes); a warmed
request only binds its values into cached SQL text and splices the database's JSON into the answer.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError, GraphQLSchema, specified_rules

from modula.db.errors import DatabaseError
from modula.schema.compiled.catalog import Catalog
from modula.schema.compiled.plan import Planner, roots_known
from modula.schema.compiled.tree import Fallback, Getter, Insert
from modula.schema.compiled.sql import FALLBACK_MARK, renderer
from modula.schema.limits import Limits, document_rules, parse_within


log = logging.getLogger("modula.fastpath")


class RawJSON:
    """JSON text made elsewhere (here: by the database), spliced into the response as it is."""

    __slots__ = ("text",)

    def __init__(self, text: bytes) -> None:
        self.text = text


@dataclass(frozen=True)
class Compiled:
    """One plan, ready to bind: a read (`sql` gives `data`) or an insert (gives `data[key]`)."""

    sql: str | None  # None: no statement (only __typename fields)
    params: list[Getter]
    constant: bytes | None = None
    insert: Insert | None = None
    marked: bool = True  # may hold FALLBACK_MARK
    write: Any = None  # a core write (compiled/content.py): its answer is `data[key]`


_DIRECTIONS = frozenset({"ASC", "DESC"})
_FALLBACK = object()  # a cache entry: this operation always goes to Strawberry


class CompiledOperations:
    """The fast path of one schema."""

    def __init__(self, catalog: Catalog, schema: GraphQLSchema, limits: Limits, validate: Any, maxsize: int = 512) -> None:
        self.catalog = catalog
        self.schema = schema
        self.limits = limits
        self.validate = validate  # (schema, document, rules) -> errors: the schema's validation cache
        self.rules = (*specified_rules, *document_rules(limits.max_depth, limits.max_aliases))
        self.maxsize = maxsize
        self.plans: OrderedDict[tuple, Any] = OrderedDict()
        # (document, operation name) whose root fields the fast path never answers (core, Lua):
        # decided once, before the variables are looked at, and kept apart so they evict no plan.
        self.foreign: OrderedDict[tuple, None] = OrderedDict()
        self.compilations = 0  # plans made (SQL built), for tests and benchmarks
        self.answered = 0  # operations the fast path answered

    async def answer(self, params: dict[str, Any], context: Any, *, safe: bool) -> dict[str, Any] | None:
        """The GraphQL response, or None when Strawberry must answer."""
        if not self.catalog.roots and not self.catalog.core:
            return None
        if (params["query"], params["operationName"]) in self.foreign:
            return None
        variables = params["variables"] or {}
        session = context.session
        viewer = context.viewer
        try:
            key = (params["query"], params["operationName"], safe, _shape(variables), _permissions(viewer),
                   session.dialect, context.settings.default_page_size, context.settings.max_page_size)
        except Fallback:
            return None
        compiled = self.plans.get(key)
        if compiled is None:
            compiled = self._compile(params, variables, context, safe=safe)
            if compiled is None:
                return None  # set aside among the foreign operations
            self.plans[key] = compiled
            while len(self.plans) > self.maxsize:
                self.plans.popitem(last=False)
        else:
            self.plans.move_to_end(key)
        if compiled is _FALLBACK:
            return None
        try:
            values = [getter(variables, viewer) for getter in compiled.params]
        except Fallback:
            return None
        if compiled.write is not None:
            data = await compiled.write.run(variables, context)
        elif compiled.insert is not None:
            data = await self._insert(compiled, values, context)
        elif compiled.sql is None:
            data = compiled.constant
        else:
            try:
                rows = await session.fetch_native(compiled.sql, values)
            except DatabaseError:
                return None  # Strawberry meets the same failure and reports it its way
            data = rows[0][0].encode()
        if data is None or (compiled.marked and FALLBACK_MARK in data):
            return None
        self.answered += 1
        return {"data": RawJSON(data)}

    def _compile(self, params: dict[str, Any], variables: dict, context: Any, *, safe: bool) -> Any:
        """A Compiled plan, _FALLBACK for these variables and this viewer, or None for an operation
        the fast path never answers."""
        try:
            document = parse_within(params["query"], self.limits.max_tokens)
        except GraphQLError:
            return _FALLBACK
        if self.validate(self.schema, document, self.rules):
            return _FALLBACK
        if not roots_known(document, params["operationName"], self.catalog):
            self.foreign[(params["query"], params["operationName"])] = None
            while len(self.foreign) > self.maxsize:
                self.foreign.popitem(last=False)
            return None
        try:
            plan = Planner(self.catalog, document, params["operationName"], variables, context.viewer,
                           context.settings, safe=safe).plan()
        except Fallback:
            return _FALLBACK
        except Exception:  # noqa: BLE001 - a planner bug must not cost the request: Strawberry answers
            log.exception("the fast path could not plan an operation; Strawberry answers it")
            return _FALLBACK
        if plan.write is None and not self.catalog.roots and all(isinstance(value, str) for _, value in plan.fields):
            # Only __typename on a schema of the core alone: Strawberry answers it there, with its
            # extensions (it did before core content compiled; test_graphql_over_http pins that).
            return _FALLBACK
        self.compilations += 1
        if plan.write is not None:
            return Compiled(None, [], write=plan.write, marked=False)
        render = renderer(context.session.dialect)
        if plan.insert is not None:
            statement = render.insert(plan.insert)
            return Compiled(statement.sql, statement.params, insert=plan.insert)
        if all(isinstance(value, str) for _, value in plan.fields):
            text = json.dumps(dict(plan.fields), separators=(",", ":")).encode()
            return Compiled(None, [], constant=text, marked=False)
        statement = render.query(plan)
        return Compiled(statement.sql, statement.params)

    async def _insert(self, compiled: Compiled, values: list, context: Any) -> bytes | None:
        """On the connection generated mutations write on (the plugin's role on PostgreSQL): one
        INSERT ... RETURNING, atomic by itself; on SQLite under the process's write lock."""
        insert = compiled.insert
        binding = insert.root.binding
        session = context.session
        try:
            async with binding.host.write_session(binding.plugin, session) as writer:
                rows = await writer.write_native(compiled.sql, values)
        except DatabaseError:
            return None  # rolled back; Strawberry reports the failure with its path
        row = rows[0][0].encode() if rows else b"null"
        return b'{"' + insert.key.encode() + b'":' + row + b"}"


def _shape(value: Any) -> Any:
    """What of the variables' values decides a plan: their types, list lengths, the keys of
    objects, booleans (they choose @skip/@include and isNull), the strings ASC and DESC (an
    orderBy's directions), and which are null; other strings and numbers only by type."""
    if isinstance(value, dict):
        return tuple((name, _leaf(item)) for name, item in value.items())
    raise Fallback


def _leaf(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, list):
        return tuple(_leaf(item) for item in value)
    if isinstance(value, dict):
        return "{", _shape(value)
    if value in _DIRECTIONS:
        return value  # an orderBy's direction in a variable chooses the SQL
    if isinstance(value, (int, float, str)):
        return type(value)
    raise Fallback


def _permissions(viewer: Any) -> Any:
    """The part of the viewer a plan depends on (its id is bound, not planned)."""
    if viewer.is_admin:
        return True
    return viewer.user_id is None, frozenset(viewer.permissions.items())
