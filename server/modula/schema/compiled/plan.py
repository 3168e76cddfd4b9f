"""Planning: a parsed, validated operation over generated plugin-table fields -> a tree of selects
that the SQL module renders, with the request's values left as slots to bind; or `Fallback` when
the operation (or the shape of its values, or the viewer's permissions) asks for something only
Strawberry answers exactly (an error, a Lua field, a hook, a type whose values SQL cannot
serialise as Strawberry does).

The tree follows the resolvers in table_fields.py step by step: the same row filters, the same
filter semantics as crud.py (`TableCrud.filter`), the same ordering and page-size rules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import (
    BooleanValueNode,
    DocumentNode,
    EnumValueNode,
    FieldNode,
    FloatValueNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    ListTypeNode,
    ListValueNode,
    NamedTypeNode,
    NonNullTypeNode,
    NullValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
)

from modula.db.crud import _glob_pattern
from modula.db.introspection import ColumnSpec, TableSpec
from modula.schema.compiled.catalog import Catalog, GeneratedRoot, TableFields
from modula.schema.compiled.tree import (Cond, Count, Enum, Fallback, Getter, Insert, Link, Plan, Select, VarRef, constant,
                                         references, viewer_id)
from modula.schema.naming import column_field

# Column types whose GraphQL values the SQL reproduces exactly; others fall back when selected
# or compared (isNull works on every type).
SERIALISED = frozenset({"integer", "real", "text", "boolean"})
MAX_FIELDS = 50  # json_build_object takes at most 100 arguments on PostgreSQL
_FILTER_OPS = ("eq", "neq", "gt", "gte", "lt", "lte", "in", "nin", "like", "ilike", "isNull")
_FILTER_KEYS = frozenset(_FILTER_OPS)
_ORDERED = frozenset({"integer", "real", "text"})
_OPS_FOR = {**{op: _ORDERED for op in ("gt", "gte", "lt", "lte")},
            **{op: SERIALISED for op in ("eq", "neq", "in", "nin")},
            "like": frozenset({"text"}), "ilike": frozenset({"text"})}
_CONVERT: dict[str, Callable[[Any], Any]] = {"integer": int, "real": float, "text": str, "boolean": bool}
_SCALAR_OF = {"integer": "Int", "real": "Float", "text": "String", "boolean": "Boolean"}


# --- planning -------------------------------------------------------------------------------


class Planner:
    """Plans one operation for one viewer and the shape of one request's variables."""

    def __init__(self, catalog: Catalog, document: DocumentNode, operation_name: str | None, variables: dict,
                 viewer: Any, settings: Any, *, safe: bool) -> None:
        self.catalog = catalog
        self.document = document
        self.operation_name = operation_name
        self.raw_variables = variables
        self.viewer = viewer
        self.settings = settings
        self.safe = safe
        self.fragments = {d.name.value: d for d in document.definitions if d.kind == "fragment_definition"}
        self.variables: dict[str, tuple[str, bool, Any]] = {}  # name -> (type name, is a list, value)

    def plan(self) -> Plan:
        operation = self._operation()
        if operation.operation == OperationType.SUBSCRIPTION:
            raise Fallback
        if operation.operation == OperationType.MUTATION and self.safe:
            raise Fallback  # Strawberry refuses it with 405
        self._read_variables(operation)
        root_type = "Query" if operation.operation == OperationType.QUERY else "Mutation"
        fields = self._collect(operation.selection_set, root_type)
        plan = Plan()
        for key, nodes in fields.items():
            node = nodes[0]
            name = node.name.value
            if name == "__typename":
                plan.fields.append((key, root_type))
                continue
            root = self.catalog.roots.get(name)
            if root is None and operation.operation == OperationType.MUTATION:
                write = self.catalog.core_writes.get(name)
                if write is None or len(fields) != 1:
                    raise Fallback
                plan.write = write(self, key, nodes)
                continue
            if root is None:
                core = self.catalog.core.get(name)
                if core is None or operation.operation != OperationType.QUERY:
                    raise Fallback
                plan.fields.append((key, core(self, nodes)))
                continue
            if root.kind == "insert_one":
                if operation.operation != OperationType.MUTATION or len(fields) != 1:
                    raise Fallback
                plan.insert = self._insert(root, key, nodes)
            elif operation.operation != OperationType.QUERY:
                raise Fallback
            elif root.kind == "aggregate":
                plan.fields.append((key, self._count(root, nodes)))
            else:
                plan.fields.append((key, self._root_select(root, nodes)))
        return plan

    def _operation(self) -> OperationDefinitionNode:
        operations = [d for d in self.document.definitions if isinstance(d, OperationDefinitionNode)]
        if self.operation_name is not None:
            operations = [o for o in operations if o.name is not None and o.name.value == self.operation_name]
        if len(operations) != 1:
            raise Fallback
        return operations[0]

    def _read_variables(self, operation: OperationDefinitionNode) -> None:
        """Variables of scalar types (or lists of them) with values of the right Python type, and
        of generated filter and insert input types (their leaves are checked where used): the cache
        key holds the type of each value, so what is checked here holds for every request it serves."""
        for definition in operation.variable_definitions or ():
            name = definition.variable.name.value
            scalar, is_list, non_null = _variable_type(definition.type, self.catalog.inputs)
            if name in self.raw_variables:
                value = self.raw_variables[name]
            elif definition.default_value is not None:
                raise Fallback  # defaults are coerced by graphql-core; not worth repeating here
            else:
                value = None
            if value is None:
                if non_null:
                    raise Fallback
            elif scalar in self.catalog.inputs:
                items = value if is_list and isinstance(value, list) else [value]
                if not all(isinstance(item, dict) for item in items):
                    raise Fallback  # leaves are checked where they are used, against their columns
            elif is_list:
                if not isinstance(value, list) or not all(_scalar_fits(scalar, v) for v in value):
                    raise Fallback
            elif not _scalar_fits(scalar, value):
                raise Fallback
            self.variables[name] = (scalar, is_list, value)

    # -- selections --

    def _collect(self, selection_set: SelectionSetNode, type_name: str, into: dict | None = None,
                 seen: frozenset = frozenset()) -> dict[str, list[FieldNode]]:
        """Fields by response key in execution order, fragments spread, @skip/@include applied."""
        into = {} if into is None else into
        for selection in selection_set.selections:
            if not self._included(selection):
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                into.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                if selection.type_condition is not None and selection.type_condition.name.value != type_name:
                    raise Fallback
                self._collect(selection.selection_set, type_name, into, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in seen or fragment.type_condition.name.value != type_name:
                    raise Fallback
                self._collect(fragment.selection_set, type_name, into, seen | {name})
        return into

    def _included(self, selection: Any) -> bool:
        included = True
        for directive in selection.directives or ():
            name = directive.name.value
            if name not in ("skip", "include") or len(directive.arguments or ()) != 1:
                raise Fallback
            value = self._value(directive.arguments[0].value)
            if isinstance(value, VarRef):
                value = value.value
            if not isinstance(value, bool):
                raise Fallback
            included = included and (not value if name == "skip" else value)
        return included

    def _object(self, table: TableFields, nodes: list[FieldNode]) -> list[tuple[str, Any]]:
        merged: dict[str, list[FieldNode]] = {}
        for node in nodes:
            if node.selection_set is None:
                raise Fallback
            self._collect(node.selection_set, table.api.names.type, merged)
        if len(merged) > MAX_FIELDS:
            raise Fallback
        out: list[tuple[str, Any]] = []
        for key, field_nodes in merged.items():
            node = field_nodes[0]
            name = node.name.value
            if name == "__typename":
                out.append((key, table.api.names.type))
            elif name in table.columns:
                column = table.columns[name]
                if column.type not in SERIALISED:
                    raise Fallback
                out.append((key, column))
            elif name in table.objects:
                out.append((key, self._object_relation(table, table.objects[name], field_nodes)))
            elif name in table.arrays:
                out.append((key, self._array_relation(table.arrays[name], field_nodes)))
            else:
                raise Fallback  # a Lua field, a relation to a core table
        return out

    # -- fields --

    def _root_select(self, root: GeneratedRoot, nodes: list[FieldNode]) -> Select:
        table = self.catalog.tables[root.api.spec.name]
        args = self._arguments(nodes[0])
        if root.kind == "one":
            where = self._and([Cond("cmp", column=c, op="eq", values=[self._typed(args.get(column_field(c)), table.api.spec.column(c))])
                               for c in table.api.spec.primary_key])
            return Select(table.api.spec, table.api.names.type, self._object(table, nodes), many=False,
                          where=self._and([where, self._rule(table.api.spec)]), limit=constant(1))
        if set(args) - {"where", "orderBy", "limit", "offset"}:
            raise Fallback
        select = Select(table.api.spec, table.api.names.type, self._object(table, nodes), many=True,
                        where=self._and([self._where(table, args.get("where")), self._rule(table.api.spec)]),
                        order=self._order(table, args.get("orderBy")))
        select.limit, select.offset = self._page(args.get("limit"), args.get("offset"))
        return select

    def _count(self, root: GeneratedRoot, nodes: list[FieldNode]) -> Count:
        """Only `count` (sum/avg/min/max fall back); the filter's errors use no "where" path here."""
        table = self.catalog.tables[root.api.spec.name]
        args = self._arguments(nodes[0])
        type_name = root.api.names.derived("Aggregate")
        merged: dict[str, list[FieldNode]] = {}
        for node in nodes:
            self._collect(node.selection_set, type_name, merged)
        fields = []
        for key, field_nodes in merged.items():
            name = field_nodes[0].name.value
            if name not in ("count", "__typename"):
                raise Fallback
            fields.append((key, None if name == "count" else type_name))
        if set(args) - {"where"}:
            raise Fallback
        return Count(root.api.spec, fields, self._and([self._where(table, args.get("where")), self._rule(root.api.spec)]))

    def _object_relation(self, owner: TableFields, rel: Any, nodes: list[FieldNode]) -> Select:
        target = self.catalog.tables[rel.target]
        rule = self._rule(target.api.spec)
        if rule is not None and not rel.nullable:
            raise Fallback  # a hidden parent is an error on this non-null field
        return Select(target.api.spec, target.api.names.type, self._object(target, nodes), many=False, where=rule,
                      limit=constant(1), link=Link(rel.target_column, rel.column))

    def _array_relation(self, rel: Any, nodes: list[FieldNode]) -> Select:
        child = self.catalog.tables[rel.child]
        args = self._arguments(nodes[0])
        where = self._and([self._where(child, args.get("where")), self._rule(child.api.spec)])
        select = Select(child.api.spec, child.api.names.type, self._object(child, nodes), many=True, where=where,
                        order=self._order(child, args.get("orderBy")), link=Link(rel.column, rel.parent_column))
        if args.get("limit") is not None or args.get("offset") is not None:
            select.limit, select.offset = self._page(args.get("limit"), args.get("offset"))
        return select

    def _insert(self, root: GeneratedRoot, key: str, nodes: list[FieldNode]) -> Insert:
        api = root.api
        table = self.catalog.tables[api.spec.name]
        hooks = [h for h in root.binding.plugin.declarations.hooks
                 if h.table == api.spec.name and h.event in ("before_insert", "after_insert", "after_commit")]
        args = self._arguments(nodes[0])
        if hooks or set(args) != {"object"} or not isinstance(args["object"], dict):
            raise Fallback
        self._require("create", api.spec.name)
        self._require("read", api.spec.name)
        given = args["object"]
        if any(name not in table.columns for name in given):
            raise Fallback  # nested children
        columns, values = [], []
        for column in api.spec.columns:
            name = column_field(column.name)
            if name not in given:
                if not column.nullable and not column.has_default:
                    raise Fallback  # REQUIRED
                continue
            if given[name] is None:
                if not column.nullable and not column.has_default:
                    raise Fallback
                columns.append(column)
                values.append(constant(None))
                continue
            if column.type not in SERIALISED:
                raise Fallback
            columns.append(column)
            values.append(self._typed(given[name], column))
        returning = Select(api.spec, api.names.type, self._object(table, nodes), many=False)
        if any(isinstance(value, Select) for _, value in returning.fields):
            raise Fallback
        return Insert(root, key, columns, values, returning)

    # -- arguments --

    def _arguments(self, node: FieldNode) -> dict[str, Any]:
        return {a.name.value: self._value(a.value) for a in node.arguments or ()}

    def _value(self, node: Any) -> Any:
        """A literal as Python data; variables as VarRef (None when null now: the key holds that)."""
        if isinstance(node, VariableNode):
            _, _, value = self.variables[node.name.value]
            return references(node.name.value, value)
        if isinstance(node, ObjectValueNode):
            return {f.name.value: self._value(f.value) for f in node.fields}
        if isinstance(node, ListValueNode):
            return [self._value(v) for v in node.values]
        if isinstance(node, IntValueNode):
            return int(node.value)
        if isinstance(node, FloatValueNode):
            return float(node.value)
        if isinstance(node, StringValueNode):
            return node.value
        if isinstance(node, BooleanValueNode):
            return node.value
        if isinstance(node, NullValueNode):
            return None
        if isinstance(node, EnumValueNode):
            return Enum(node.value)
        raise Fallback

    def _typed(self, value: Any, column: ColumnSpec, check: Callable[[Any], None] | None = None) -> Getter:
        """The value to bind against `column`, converted as Strawberry's input types would."""
        if column.type not in SERIALISED:
            raise Fallback
        convert = _CONVERT[column.type]
        if isinstance(value, VarRef):
            if not _scalar_fits(_SCALAR_OF[column.type], value.value):
                raise Fallback  # a value inside an input-object variable that does not coerce
            return value.getter(_SCALAR_OF[column.type], convert, check)
        if value is None or isinstance(value, (dict, list, Enum)):
            raise Fallback
        if check is not None:
            check(value)
        return constant(convert(value))

    def _page(self, limit: Any, offset: Any) -> tuple[Getter, Getter | None]:
        """schema/paging.py `page`: a default size, an error (here: fall back) beyond the maximum."""
        settings = self.settings
        maximum = settings.max_page_size

        def check_limit(value: Any) -> None:
            if not 0 <= value <= maximum:
                raise Fallback

        def check_offset(value: Any) -> None:
            if value < 0:
                raise Fallback

        size = constant(min(settings.default_page_size, maximum)) if limit is None else self._int(limit, check_limit)
        return size, None if offset is None else self._int(offset, check_offset)

    def _int(self, value: Any, check: Callable[[Any], None]) -> Getter:
        if isinstance(value, VarRef):
            if not _scalar_fits("Int", value.value):
                raise Fallback  # a value inside an input-object variable that does not coerce
            return value.getter("Int", int, check)
        if not isinstance(value, int) or isinstance(value, bool):
            raise Fallback
        check(value)
        return constant(value)

    # -- filters, order and permissions --

    def _where(self, table: TableFields, value: Any) -> Cond | None:
        """schema/filters.py `to_where`, then crud.py `TableCrud.filter`: None matches every row."""
        if value is None:
            return None
        if not isinstance(value, dict) or not value.keys() <= table.filter_keys:
            raise Fallback  # an input-object variable with a field its type lacks
        parts: list[Cond] = []
        for column in table.api.spec.columns:
            comparison = value.get(column_field(column.name))
            if comparison is None:
                continue
            if not isinstance(comparison, dict) or not comparison.keys() <= _FILTER_KEYS:
                raise Fallback
            for op in _FILTER_OPS:
                operand = comparison.get(op)
                if operand is not None:
                    parts.append(self._condition(column, op, operand))
        for logic in ("and", "or"):
            items = value.get(logic)
            if items is None:
                continue
            items = items if isinstance(items, list) else [items]
            clauses = [self._where(table, item) or Cond("true") for item in items]
            parts.append(Cond("and" if logic == "and" else "or", clauses))
        negated = value.get("not")
        if negated is not None:
            inner = self._where(table, negated)
            parts.append(Cond("false") if inner is None else Cond("not", [inner]))
        return self._and(parts)

    def _condition(self, column: ColumnSpec, op: str, operand: Any) -> Cond:
        if op == "isNull":
            value = operand.value if isinstance(operand, VarRef) else operand
            if not isinstance(value, bool):
                raise Fallback
            return Cond("isnull", column=column.name, negated=not value)
        if column.type not in _OPS_FOR.get(op, ()):
            raise Fallback
        if op in ("in", "nin"):
            items = operand if isinstance(operand, list) else [operand]
            if any(item is None for item in items):
                raise Fallback
            if not items:
                return Cond("false" if op == "in" else "true")
            return Cond("in", column=column.name, values=[self._typed(item, column) for item in items], negated=op == "nin")
        if op in ("like", "ilike"):
            return Cond(op, column=column.name, values=[self._typed(operand, column, _check_pattern)])
        return Cond("cmp", column=column.name, op=op, values=[self._typed(operand, column)])

    def _order(self, table: TableFields, value: Any) -> list[tuple[ColumnSpec, str]]:
        """crud.py `_ordering`: the given columns, then the primary key's columns not named."""
        items = [] if value is None else value if isinstance(value, list) else [value]
        order: list[tuple[ColumnSpec, str]] = []
        for item in items:
            if not isinstance(item, dict):
                raise Fallback
            chosen = [(name, _direction(direction)) for name, direction in item.items() if direction is not None]
            if len(chosen) != 1 or chosen[0][0] not in table.orderable:
                raise Fallback  # INVALID_ORDER today, or a field the input lacks (in a variable)
            order.append((table.columns[chosen[0][0]], chosen[0][1]))
        named = {column.name for column, _ in order}
        spec = table.api.spec
        return order + [(spec.column(name), "asc") for name in spec.primary_key if name not in named]

    def _require(self, action: str, table: str) -> None:
        if not self.viewer.can(action, table):
            raise Fallback  # FORBIDDEN, as Strawberry reports it

    def _rule(self, spec: TableSpec) -> Cond | None:
        """schema/guards.py `row_filter` for reading the table: None for every row."""
        self._require("read", spec.name)
        rule = self.viewer.row_rule("read", spec.name)
        if rule is None:
            return None
        alternatives = []
        for part in rule.split("|"):
            kind, _, column = part.partition(":")
            if kind == "own" and column:
                if spec.column(column) is None:
                    raise Fallback  # an unknown column is an error today
                if self.viewer.user_id is None:
                    alternatives.append(Cond("or"))
                else:
                    alternatives.append(Cond("cmp", column=column, op="eq", values=[viewer_id]))
            else:
                alternatives.append(Cond("or"))  # a rule this table cannot honour grants nothing
        return alternatives[0] if len(alternatives) == 1 else Cond("or", alternatives)

    @staticmethod
    def _and(parts: list[Cond | None]) -> Cond | None:
        parts = [p for p in parts if p is not None]
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else Cond("and", parts)


def roots_known(document: DocumentNode, operation_name: str | None, catalog: Catalog) -> bool:
    """Whether every root field the operation may select (whatever its variables) is one the
    catalog knows, or __typename; False for a core field it does not compile, a Lua field, or no
    such operation."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)
                  and (operation_name is None or (d.name is not None and d.name.value == operation_name))]
    if len(operations) != 1:
        return False
    fragments = {d.name.value: d for d in document.definitions if d.kind == "fragment_definition"}
    pending, seen = [operations[0].selection_set], set()
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode):
                if selection.name.value != "__typename" and selection.name.value not in catalog.roots \
                        and selection.name.value not in catalog.core and selection.name.value not in catalog.core_writes:
                    return False
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
                seen.add(selection.name.value)
                if selection.name.value in fragments:
                    pending.append(fragments[selection.name.value].selection_set)
    return True


def _direction(value: Any) -> str:
    """OrderDirection as a literal, or as a variable's string (the cache key holds "ASC" and
    "DESC" by value, so the plan's order holds for every request it serves)."""
    name = value.name if isinstance(value, Enum) else value.value if isinstance(value, VarRef) else None
    if name not in ("ASC", "DESC"):
        raise Fallback
    return name.lower()


def _check_pattern(value: Any) -> None:
    if (len(value) - len(value.rstrip("\\"))) % 2:
        raise Fallback  # crud.py refuses a pattern ending in a lone backslash


def glob_pattern(value: str) -> str:
    """A LIKE pattern as SQLite's case-sensitive GLOB, exactly as crud.py turns it."""
    return _glob_pattern(value)


def _variable_type(node: Any, inputs: frozenset[str] | set[str]) -> tuple[str, bool, bool]:
    """(type name, is a list, non-null) of a supported variable type: a scalar, a list of non-null
    scalars, a generated filter, order or insert input (or a list of them); else Fallback."""
    non_null = isinstance(node, NonNullTypeNode)
    node = node.type if non_null else node
    if isinstance(node, ListTypeNode):
        inner = node.type
        if isinstance(inner, NonNullTypeNode):
            inner = inner.type
        else:
            raise Fallback
        if not isinstance(inner, NamedTypeNode) or (inner.name.value not in _SCALARS and inner.name.value not in inputs):
            raise Fallback
        return inner.name.value, True, non_null
    if not isinstance(node, NamedTypeNode) or (node.name.value not in _SCALARS and node.name.value not in inputs):
        raise Fallback
    return node.name.value, False, non_null


_SCALARS = frozenset({"Int", "Float", "String", "Boolean"})


def _scalar_fits(scalar: str, value: Any) -> bool:
    if isinstance(value, bool):
        return scalar == "Boolean"
    if scalar == "Int":
        return isinstance(value, int)
    if scalar == "Float":
        return isinstance(value, (int, float))
    if scalar == "String":
        return isinstance(value, str)
    return False
