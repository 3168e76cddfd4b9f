"""Checks each declaration init.lua makes and turns it into a declaration dataclass."""
from __future__ import annotations

import re
from typing import Any

from modula.db.names import COLUMN_NAME, TABLE_NAME

from .declarations import (Declarations, FieldDecl, FieldResolverDecl, HandlerRef, HookDecl,
                           InputDecl, OperationDecl, TableDecl, TypeDecl)

GRAPHQL_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")
GRAPHQL_TYPE = re.compile(r"^(\[)?[_A-Za-z][_0-9A-Za-z]*!?(?(1)\]!?)$")
COLUMN_TYPES = ("integer", "real", "numeric", "text", "boolean", "date", "datetime", "json", "blob")
HOOK_EVENTS = ("before_insert", "after_insert", "before_update", "after_update",
               "before_delete", "after_delete", "after_commit")


class DeclarationError(Exception):
    """A declaration is invalid; the message tells the plugin author what to fix."""


class DeclarationCollector:
    """Validates declarations one by one as init.lua makes them, refusing duplicates."""

    def __init__(self, plugin: str) -> None:
        self.plugin = plugin
        self.result = Declarations()

    def declare(self, kind: str, spec: Any, location: str | None = None) -> None:
        """Check one declaration; `location` ("init.lua:12") is kept with it, so problems found
        later (an unknown type, a table the database refuses) name the line too."""
        if not isinstance(spec, dict):
            raise DeclarationError(f"plugin.{kind} expects a table with named fields")
        handler = {"define_table": self._table, "query": self._operation,
                   "mutation": self._operation, "field": self._field, "type": self._type,
                   "input": self._type, "on": self._hook}[kind]
        handler(kind, spec, location)

    def _table(self, kind: str, spec: dict, location: str | None) -> None:
        _only(kind, spec, {"name", "fields", "indexes", "unique", "graphql"})
        name = _required_str(kind, spec, "name")
        if not TABLE_NAME.match(name) or not name.startswith(self.plugin + "_"):
            raise DeclarationError(
                f"table name {name!r} must start with '{self.plugin}_' and match "
                f"{TABLE_NAME.pattern}")
        if any(t.name == name for t in self.result.tables):
            raise DeclarationError(f"table {name!r} is declared twice")
        raw_fields = spec.get("fields")
        if not isinstance(raw_fields, list) or not raw_fields:
            raise DeclarationError(f"table {name!r}: fields must be a non-empty list")
        fields = [_column(name, raw) for raw in raw_fields]
        names = [f.name for f in fields]
        for column in names:
            if names.count(column) > 1:
                raise DeclarationError(f"table {name!r}: column {column!r} is declared twice")
        if not any(f.primary_key for f in fields):
            raise DeclarationError(f"table {name!r} needs a primary key column")
        indexes = _column_lists(name, "indexes", spec.get("indexes", []), names)
        unique = _column_lists(name, "unique", spec.get("unique", []), names)
        graphql_type, graphql_list = self._graphql_names(name, spec.get("graphql"))
        self.result.tables.append(TableDecl(name, fields, indexes, unique, graphql_type, graphql_list, location))

    def _graphql_names(self, table: str, raw: Any) -> tuple[str | None, str | None]:
        """`graphql = {type = "ForumAnalysis", list = "forumAnalyses"}`: the names the generated API
        uses instead of the inflected ones (either may be left out)."""
        if raw is None:
            return None, None
        if not isinstance(raw, dict) or not raw:
            raise DeclarationError(f"table {table!r}: graphql must be a table such as "
                                   '{type = "ForumAnalysis", list = "forumAnalyses"}')
        _only(f"table {table!r} graphql", raw, {"type", "list"})
        chosen = {}
        for key, first in (("type", "an upper-case"), ("list", "a lower-case")):
            value = raw.get(key)
            if value is None:
                continue
            if (not isinstance(value, str) or not GRAPHQL_NAME.match(value) or value.startswith("__")
                    or value[0] != (value[0].upper() if key == "type" else value[0].lower()) or not value[0].isalpha()):
                raise DeclarationError(f"table {table!r}: graphql {key} {value!r} must be a GraphQL name "
                                       f"starting with {first} letter (letters, digits and _)")
            chosen[key] = value
        for other in self.result.tables:
            for key, value in chosen.items():
                if value in (other.graphql_type, other.graphql_list):
                    raise DeclarationError(f"table {table!r}: graphql {key} {value!r} is already the name of "
                                           f"table {other.name!r}")
        return chosen.get("type"), chosen.get("list")

    def _operation(self, kind: str, spec: dict, location: str | None) -> None:
        _only(kind, spec, {"name", "args", "returns", "handler", "description"})
        name = _graphql_name(kind, spec)
        if any(op.kind == kind and op.name == name for op in self.result.operations):
            raise DeclarationError(f"{kind} {name!r} is declared twice")
        self.result.operations.append(OperationDecl(
            kind, name, _args(kind, spec), _type_ref(kind, spec, "returns"),
            HandlerRef(spec["handler"], "operation"), _description(kind, spec), location))

    def _field(self, kind: str, spec: dict, location: str | None) -> None:
        _only(kind, spec, {"type", "name", "args", "returns", "handler", "description"})
        owner = _required_str(kind, spec, "type")
        if not GRAPHQL_NAME.match(owner):
            raise DeclarationError(f"field: type {owner!r} is not a GraphQL type name")
        name = _graphql_name(kind, spec)
        if any(f.type == owner and f.name == name for f in self.result.fields):
            raise DeclarationError(f"field {owner}.{name} is declared twice")
        self.result.fields.append(FieldResolverDecl(
            owner, name, _args(kind, spec), _type_ref(kind, spec, "returns"),
            HandlerRef(spec["handler"], "field"), _description(kind, spec), location))

    def _type(self, kind: str, spec: dict, location: str | None) -> None:
        _only(kind, spec, {"name", "fields", "description"})
        name = _graphql_name(kind, spec)
        taken = [t.name for t in self.result.types] + [i.name for i in self.result.inputs]
        if name in taken:
            raise DeclarationError(f"{kind} {name!r} is declared twice")
        fields = _type_map(kind, spec, "fields")
        if not fields:
            raise DeclarationError(f"{kind} {name!r}: fields must not be empty")
        decl_class = TypeDecl if kind == "type" else InputDecl
        target = self.result.types if kind == "type" else self.result.inputs
        target.append(decl_class(name, fields, _description(kind, spec), location))

    def _hook(self, kind: str, spec: dict, location: str | None) -> None:
        event = spec.get("event")
        if event not in HOOK_EVENTS:
            raise DeclarationError(
                f"plugin.on: unknown event {event!r}; expected one of {', '.join(HOOK_EVENTS)}")
        table = spec.get("table")
        if not isinstance(table, str) or not TABLE_NAME.match(table):
            raise DeclarationError(f"plugin.on: {table!r} is not a table name")
        self.result.hooks.append(HookDecl(event, table, HandlerRef(spec["handler"], "hook"), location))


def _column(table: str, raw: Any) -> FieldDecl:
    if not isinstance(raw, dict):
        raise DeclarationError(f"table {table!r}: each field must be a table with a name and type")
    _only(f"table {table!r} field", raw,
          {"name", "type", "primary_key", "not_null", "foreign_key", "default", "unique"})
    name = raw.get("name")
    if not isinstance(name, str) or not COLUMN_NAME.match(name):
        raise DeclarationError(f"table {table!r}: column name {name!r} must match "
                               f"{COLUMN_NAME.pattern}")
    column_type = raw.get("type")
    if column_type not in COLUMN_TYPES:
        raise DeclarationError(f"table {table!r}, column {name!r}: type {column_type!r} must "
                               f"be one of {', '.join(COLUMN_TYPES)}")
    flags = {}
    for flag in ("primary_key", "not_null", "unique"):
        value = raw.get(flag, False)
        if not isinstance(value, bool):
            raise DeclarationError(f"table {table!r}, column {name!r}: {flag} must be a boolean")
        flags[flag] = value
    foreign_key = raw.get("foreign_key")
    if foreign_key is not None and (not isinstance(foreign_key, str)
                                    or not TABLE_NAME.match(foreign_key)):
        raise DeclarationError(f"table {table!r}, column {name!r}: foreign_key must be a "
                               "table name")
    default = raw.get("default")
    if default is not None and not isinstance(default, (str, int, float, bool)):
        raise DeclarationError(f"table {table!r}, column {name!r}: default must be a scalar")
    return FieldDecl(name, column_type, foreign_key=foreign_key, default=default, **flags)


def _column_lists(table: str, key: str, raw: Any, columns: list[str]) -> list[list[str]]:
    if raw == {}:
        return []
    if not isinstance(raw, list):
        raise DeclarationError(f"table {table!r}: {key} must be a list of column lists")
    result = []
    for entry in raw:
        if not isinstance(entry, list) or not entry:
            raise DeclarationError(f"table {table!r}: each entry of {key} must be a non-empty "
                                   "list of column names")
        for column in entry:
            if column not in columns:
                raise DeclarationError(f"table {table!r}: {key} names unknown column {column!r}")
        result.append(list(entry))
    return result


def _only(kind: str, spec: dict, allowed: set[str]) -> None:
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise DeclarationError(f"{kind}: unknown key(s) {', '.join(unknown)}; "
                               f"allowed: {', '.join(sorted(allowed))}")


def _required_str(kind: str, spec: dict, key: str) -> str:
    value = spec.get(key)
    if not isinstance(value, str) or not value:
        raise DeclarationError(f"{kind}: {key} must be a non-empty string")
    return value


def _graphql_name(kind: str, spec: dict) -> str:
    name = _required_str(kind, spec, "name")
    if not GRAPHQL_NAME.match(name):
        raise DeclarationError(f"{kind}: {name!r} is not a valid GraphQL name")
    return name


def _type_ref(kind: str, spec: dict, key: str) -> str:
    value = _required_str(kind, spec, key)
    if not GRAPHQL_TYPE.match(value):
        raise DeclarationError(f"{kind}: {key} {value!r} is not a GraphQL type like "
                               "'Int!' or '[Product!]'")
    return value


def _type_map(kind: str, spec: dict, key: str) -> dict[str, str]:
    raw = spec.get(key, {})
    if not isinstance(raw, dict):
        raise DeclarationError(f"{kind}: {key} must map names to GraphQL types")
    for name, type_ref in raw.items():
        if not GRAPHQL_NAME.match(name):
            raise DeclarationError(f"{kind}: {key} name {name!r} is not a valid GraphQL name")
        _type_ref(f"{kind} {key}", {name: type_ref}, name)
    return dict(raw)


def _args(kind: str, spec: dict) -> dict[str, str]:
    return _type_map(kind, spec, "args")


def _description(kind: str, spec: dict) -> str | None:
    value = spec.get("description")
    if value is not None and not isinstance(value, str):
        raise DeclarationError(f"{kind}: description must be a string")
    return value
