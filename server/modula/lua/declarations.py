"""What a plugin's init.lua declares: tables, GraphQL operations, fields, types and hooks, as plain data."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

HandlerKind = Literal["operation", "field", "hook"]


@dataclass(frozen=True)
class HandlerRef:
    """An opaque handle to a Lua handler inside one runtime; pass it back to ``PluginRuntime.call``.

    ``kind`` fixes how ``call`` passes arguments: an operation gets ``(args, ctx)``, a field
    ``(row, args, ctx)`` from ``args=(row, field_args)``, a hook ``(row, ctx)``.
    """

    index: int
    kind: HandlerKind


@dataclass
class FieldDecl:
    name: str
    type: str
    primary_key: bool = False
    not_null: bool = False
    foreign_key: str | None = None
    default: Any = None
    unique: bool = False


@dataclass
class TableDecl:
    name: str
    fields: list[FieldDecl]
    indexes: list[list[str]] = field(default_factory=list)
    unique: list[list[str]] = field(default_factory=list)
    graphql_type: str | None = None  # `graphql = {type = "ForumAnalysis"}`: instead of the inflected name
    graphql_list: str | None = None  # `graphql = {list = "forumAnalyses"}`
    location: str | None = None


@dataclass
class OperationDecl:
    kind: Literal["query", "mutation"]
    name: str
    args: dict[str, str]
    returns: str
    handler: HandlerRef
    description: str | None = None
    location: str | None = None  # "init.lua:12", where init.lua declared it


@dataclass
class FieldResolverDecl:
    type: str
    name: str
    args: dict[str, str]
    returns: str
    handler: HandlerRef
    description: str | None = None
    location: str | None = None  # "init.lua:12", where init.lua declared it


@dataclass
class TypeDecl:
    name: str
    fields: dict[str, str]
    description: str | None = None
    location: str | None = None  # "init.lua:12", where init.lua declared it


@dataclass
class InputDecl:
    name: str
    fields: dict[str, str]
    description: str | None = None
    location: str | None = None  # "init.lua:12", where init.lua declared it


@dataclass
class HookDecl:
    event: str
    table: str
    handler: HandlerRef
    location: str | None = None


@dataclass
class Declarations:
    tables: list[TableDecl] = field(default_factory=list)
    operations: list[OperationDecl] = field(default_factory=list)
    fields: list[FieldResolverDecl] = field(default_factory=list)
    types: list[TypeDecl] = field(default_factory=list)
    inputs: list[InputDecl] = field(default_factory=list)
    hooks: list[HookDecl] = field(default_factory=list)
