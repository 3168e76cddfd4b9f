"""The API a plugin's Lua declares: queries, mutations, fields on generated types, plain result
types and inputs, each written in GraphQL type syntax (`[ShopProduct!]!`).

Types may name scalars, the plugin's generated types and inputs, core types and the plugin's own
`plugin.type`/`plugin.input` types. Every Lua-backed field is nullable at its outer level, even
when declared with `!`: a Lua error or a budget overrun is then an error on that field alone,
and the rest of the response stands.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import strawberry
from graphql import GraphQLSyntaxError, ListTypeNode, NonNullTypeNode, TypeNode, parse_type
from strawberry.scalars import JSON, Base64

from modula.db import column_values
from modula.errors import ModulaError, did_you_mean
from modula.lua.declarations import Declarations, HandlerRef
from modula.plugins.data import coerce_row
from modula.plugins.errors import PluginError
from modula.schema import core_types
from modula.schema.dynamic import TypeFactory, argument, python_name, resolver
from modula.schema.cost import LUA
from modula.schema.filters import UNSET
from modula.schema.table_types import TableApi

Fields = dict[str, tuple[Any, Any]]
CallLua = Callable[[HandlerRef, Any, dict, Any], Awaitable[Any]]

SCALARS: dict[str, Any] = {
    "Int": int, "Float": float, "String": str, "Boolean": bool, "ID": strawberry.ID,
    "JSON": JSON, "Date": dt.date, "DateTime": dt.datetime, "Decimal": Decimal, "Base64": Base64,
}
CORE_OUTPUTS: dict[str, type] = {
    "Site": core_types.Site, "Route": core_types.Route, "Datatype": core_types.Datatype,
    "Field": core_types.Field, "Content": core_types.Content,
}


@dataclasses.dataclass
class Output:
    """How a Lua result becomes a GraphQL value of one named type."""

    annotation: Any
    convert: Callable[[Any], Any]


class LuaApi:
    """Resolves the type names one plugin may use and builds its Lua-declared fields."""

    def __init__(self, factory: TypeFactory, plugin: str, declarations: Declarations, tables: dict[str, TableApi]) -> None:
        self.factory = factory
        self.plugin = plugin
        self.declarations = declarations
        self.outputs: dict[str, Output] = {}
        self.inputs: dict[str, Any] = {}
        for api in tables.values():
            spec = api.spec
            self.outputs[api.names.type] = Output(api.object, lambda row, spec=spec: coerce_row(spec, row))
            self.inputs[api.names.derived("Filter")] = api.filter
            self.inputs[api.names.derived("InsertInput")] = api.insert_input
        for name, cls in CORE_OUTPUTS.items():
            self.outputs[name] = Output(cls, cls.from_row)
        self._declare_types()

    def error(self, message: str, location: str | None = None) -> PluginError:
        return PluginError(self.plugin, message, code="PLUGIN_LOAD_FAILED", location=location)

    def _declare_types(self) -> None:
        # Create every class first: plugin types and inputs may refer to each other.
        types = {t.name: (t, self.factory.raw_class(t.name)) for t in self.declarations.types}
        inputs = {i.name: (i, self.factory.raw_class(i.name)) for i in self.declarations.inputs}
        for name in [*types, *inputs]:
            if name in SCALARS or name in self.outputs or name in self.inputs or (name in types and name in inputs):
                raise self.error(f"type {name} is declared twice or shadows a built-in or generated type")
        for name, (_, cls) in types.items():
            self.outputs[name] = Output(cls, lambda value, name=name: self._plain(name, value))
        self.inputs.update({name: cls for name, (_, cls) in inputs.items()})
        for name, (decl, cls) in types.items():
            fields = {python_name(f): (self.output_type(t, f"type {name}, field {f}", decl.location)[0],
                                       strawberry.field(name=f))
                      for f, t in sorted(decl.fields.items())}
            self.factory.finish_object(cls, fields, description=decl.description)
        for name, (decl, cls) in inputs.items():
            fields = {}
            for f, t in sorted(decl.fields.items()):
                annotation, required = self.input_type(t, f"input {name}, field {f}", decl.location)
                fields[python_name(f)] = (annotation, strawberry.field(name=f, **({} if required else {"default": UNSET})))
            self.factory.finish_input(cls, fields, description=decl.description)

    def _plain(self, name: str, value: Any) -> Any:
        decl = next(t for t in self.declarations.types if t.name == name)
        if not isinstance(value, dict):
            raise ModulaError("PLUGIN_ERROR", f"plugin {self.plugin}: a {name} must be a table, got {type(value).__name__}")
        out = {}
        for field_name, type_text in decl.fields.items():
            _, convert = self.output_type(type_text, name)
            out[python_name(field_name)] = convert(value.get(field_name))
        return out

    # --- GraphQL type syntax ------------------------------------------------------------------

    def _parse(self, text: str, where: str, location: str | None) -> TypeNode:
        try:
            return parse_type(text)
        except GraphQLSyntaxError as exc:
            raise self.error(f"{where}: {text!r} is not a GraphQL type ({exc.message})", location) from None

    def output_type(self, text: str, where: str, location: str | None = None) -> tuple[Any, Callable[[Any], Any]]:
        """(annotation, converter) for a declared result type; the outer level is nullable.
        `location` ("init.lua:12") is where the declaration is, for the error if a type is unknown."""
        node = self._parse(text, where, location)
        annotation, convert = self._output(node.type if isinstance(node, NonNullTypeNode) else node, where, location)
        return annotation | None, convert

    def _output(self, node: TypeNode, where: str, location: str | None) -> tuple[Any, Callable[[Any], Any]]:
        if isinstance(node, NonNullTypeNode):
            inner, convert = self._output(node.type, where, location)
            return _strip_optional(inner), _required(convert, where)
        if isinstance(node, ListTypeNode):
            inner, convert = self._output(node.type, where, location)
            return list[inner] | None, _each(convert)
        name = node.name.value
        if name in SCALARS:
            return SCALARS[name] | None, _scalar(name)
        if name in self.outputs:
            output = self.outputs[name]
            return output.annotation | None, lambda value, output=output: None if value is None else output.convert(value)
        raise self.error(f"{where}: unknown output type {name}{did_you_mean(name, [*SCALARS, *self.outputs])}",
                         location)

    def input_type(self, text: str, where: str, location: str | None = None) -> tuple[Any, bool]:
        """(annotation, required) for a declared argument or input field."""
        node = self._parse(text, where, location)
        return self._input(node, where, location), isinstance(node, NonNullTypeNode)

    def _input(self, node: TypeNode, where: str, location: str | None) -> Any:
        if isinstance(node, NonNullTypeNode):
            return _strip_optional(self._input(node.type, where, location))
        if isinstance(node, ListTypeNode):
            return list[self._input(node.type, where, location)] | None
        name = node.name.value
        if name in SCALARS:
            return SCALARS[name] | None
        if name in self.inputs:
            return self.inputs[name] | None
        raise self.error(f"{where}: unknown input type {name}{did_you_mean(name, [*SCALARS, *self.inputs])}",
                         location)

    # --- fields ---------------------------------------------------------------------------------

    def _arguments(self, args: dict[str, str], where: str, location: str | None) -> dict[str, tuple[Any, Any]]:
        out = {}
        for name, text in sorted(args.items()):
            annotation, required = self.input_type(text, f"{where}, argument {name}", location)
            out[python_name(name)] = (argument(annotation, name), inspect.Parameter.empty if required else UNSET)
        return out

    def operation_fields(self, kind: str, call: CallLua) -> Fields:
        fields: Fields = {}
        for op in self.declarations.operations:
            if op.kind != kind:
                continue
            where = f"plugin.{kind} {op.name}"
            returns, convert = self.output_type(op.returns, where, op.location)
            arguments = self._arguments(op.args, where, op.location)
            names = {python_name(a): a for a in op.args}

            async def resolve(root, info, op=op, convert=convert, names=names, **kwargs):
                args = {names[key]: plain_input(value) for key, value in kwargs.items() if value is not None}
                return convert(await call(op.handler, args, {"operation": op.name, "kind": kind}, info))

            fn = resolver(resolve, arguments, returns, name=op.name)
            make = strawberry.mutation if kind == "mutation" else strawberry.field
            fields[python_name(op.name)] = (returns, make(resolver=fn, name=op.name, description=op.description,
                                                          metadata={"cost": LUA}))
        return fields

    def type_fields(self, type_name: str, call: CallLua) -> Fields:
        """`plugin.field` declarations on `type_name` (a generated or plugin type)."""
        fields: Fields = {}
        for decl in self.declarations.fields:
            if decl.type != type_name:
                continue
            where = f"plugin.field {decl.type}.{decl.name}"
            returns, convert = self.output_type(decl.returns, where, decl.location)
            names = {python_name(a): a for a in decl.args}

            async def resolve(root, info, decl=decl, convert=convert, names=names, **kwargs):
                args = {names[key]: plain_input(value) for key, value in kwargs.items() if value is not None}
                return convert(await call(decl.handler, (dict(root), args), {"field": f"{decl.type}.{decl.name}"}, info))

            fn = resolver(resolve, self._arguments(decl.args, where, decl.location), returns, name=decl.name)
            fields["lua_" + decl.name] = (returns, strawberry.field(resolver=fn, name=decl.name, description=decl.description,
                                                                    metadata={"cost": LUA}))
        return fields

    def check_field_targets(self, generated: set[str]) -> None:
        for decl in self.declarations.fields:
            if decl.type not in generated:
                raise self.error(f"plugin.field {decl.type}.{decl.name}: {decl.type} is not one of this plugin's "
                                 f"generated types{did_you_mean(decl.type, generated)}", decl.location)


def plain_input(value: Any) -> Any:
    """An argument value as plain data for Lua: input objects become tables keyed by GraphQL names."""
    if isinstance(value, list):
        return [plain_input(v) for v in value]
    definition = getattr(value, "__strawberry_definition__", None)
    if definition is not None:
        out = {}
        for f in definition.fields:
            item = getattr(value, f.python_name)
            if item is not UNSET:
                out[f.graphql_name or f.python_name] = plain_input(item)
        return out
    if hasattr(value, "value") and not isinstance(value, (str, int, float, Decimal)):  # enums
        return value.value
    return value


def _strip_optional(annotation: Any) -> Any:
    """`X | None` -> `X` (for a `!` in the declared type)."""
    args = getattr(annotation, "__args__", ())
    return args[0] if type(None) in args else annotation


def _required(convert: Callable[[Any], Any], where: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is None:
            raise ModulaError("PLUGIN_ERROR", f"{where}: the handler returned nil for a non-null value")
        return convert(value)

    return check


def _each(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def each(value: Any) -> Any:
        if value is None:
            return None
        if value == {}:  # an empty Lua table
            return []
        if not isinstance(value, list):
            raise ModulaError("PLUGIN_ERROR", "the handler returned a non-list where a list was declared")
        return [convert(v) for v in value]

    return each


_SCALAR_COLUMN_TYPES = {"DateTime": "datetime", "Date": "date", "Decimal": "numeric"}


def _scalar(name: str) -> Callable[[Any], Any]:
    column_type = _SCALAR_COLUMN_TYPES.get(name)

    def convert(value: Any) -> Any:
        if column_type is None or not isinstance(value, (int, float, str)) or isinstance(value, bool):
            return value
        return column_values.from_plain(column_type, value)

    return convert
