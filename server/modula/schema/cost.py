"""What an operation may cost, estimated before it runs: the objects it can return, each list
counted at its `limit` or `first` (or the default page size), nested lists multiplied, a Lua
field counted at a configurable weight per call. Operations over the maximum are refused whole.

The estimate is planned once per schema, document and operation (an LRU that goes with the
schema), with the page sizes that come from variables left as slots; a request only fills them.
Introspection (`__schema`, `__type`) is not counted: its size is the schema's, not the data's.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_composite_type,
)

LUA = "lua"  # a field's `metadata={"cost": LUA}`: its resolver runs a plugin's Lua handler
_PAGE_ARGUMENTS = ("limit", "first")
_DEFAULT = object()  # a list whose size is the default page size


@dataclass
class _Node:
    """A field that returns objects: how many of them per parent (an int, a variable's name, or
    the default), what each costs itself, and the fields below."""

    size: Any = 1
    weight: int = 1
    lua_calls: int = 0  # Lua fields selected on each of these objects (each a call per object)
    children: list[_Node] = field(default_factory=list)


@dataclass(frozen=True)
class CostSettings:
    max_cost: int
    lua_field_cost: int
    default_page_size: int


class CostPlans:
    """The estimates of one schema's operations."""

    def __init__(self, schema: GraphQLSchema, validate: Any = None, rules: Any = (), maxsize: int = 512) -> None:
        self.schema = schema
        self.validate = validate  # (schema, document, rules) -> errors: the schema's validation cache
        self.rules = rules
        self.maxsize = maxsize
        self._plans: OrderedDict[tuple[str, str | None], _Node | None] = OrderedDict()

    def estimate(self, query: str, operation_name: str | None, document: Any, variables: dict,
                 settings: CostSettings) -> int | None:
        """The operation's cost, or None for a document that does not validate (its errors, a
        depth or alias limit among them, are what the client hears)."""
        key = (query, operation_name)
        if key in self._plans:
            self._plans.move_to_end(key)
            plan = self._plans[key]
        else:
            valid = self.validate is None or not self.validate(self.schema, document, self.rules)
            plan = _Planner(self.schema, document).plan(operation_name) if valid else None
            self._plans[key] = plan
            while len(self._plans) > self.maxsize:
                self._plans.popitem(last=False)
        if plan is None:
            return None
        return _cost(plan, 1, variables, settings) - 1  # the root object itself is free


def _cost(node: _Node, parents: int, variables: dict, settings: CostSettings) -> int:
    count = parents * _size(node.size, variables, settings)
    total = count * (node.weight + node.lua_calls * settings.lua_field_cost)
    for child in node.children:
        total += _cost(child, count, variables, settings)
    return total


def _size(size: Any, variables: dict, settings: CostSettings) -> int:
    if isinstance(size, str):
        size = variables.get(size)
        if size is None:
            size = _DEFAULT
    if size is _DEFAULT or not isinstance(size, int) or isinstance(size, bool):
        return settings.default_page_size
    return max(size, 0)


class _Planner:
    def __init__(self, schema: GraphQLSchema, document: Any) -> None:
        self.schema = schema
        self.document = document
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}

    def plan(self, operation_name: str | None) -> _Node | None:
        operations = [d for d in self.document.definitions if isinstance(d, OperationDefinitionNode)
                      and (operation_name is None or (d.name is not None and d.name.value == operation_name))]
        if len(operations) != 1:
            return None
        operation = operations[0]
        root = {OperationType.QUERY: self.schema.query_type, OperationType.MUTATION: self.schema.mutation_type,
                OperationType.SUBSCRIPTION: self.schema.subscription_type}[operation.operation]
        if root is None:
            return None
        node = _Node()
        try:
            self._selection(operation.selection_set, root, node, frozenset(), in_connection=False)
        except LookupError:
            return None
        return node

    def _selection(self, selection_set: SelectionSetNode, parent: Any, node: _Node, seen: frozenset,
                   *, in_connection: bool) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                self._field(selection, parent, node, seen, in_connection=in_connection)
            elif isinstance(selection, InlineFragmentNode):
                target = parent if selection.type_condition is None else self._type(selection.type_condition.name.value)
                self._selection(selection.selection_set, target, node, seen, in_connection=in_connection)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in seen:
                    raise LookupError(name)  # a cycle: validation refuses it
                fragment = self.fragments.get(name)
                if fragment is None:
                    raise LookupError(name)
                self._selection(fragment.selection_set, self._type(fragment.type_condition.name.value), node,
                                seen | {name}, in_connection=in_connection)

    def _field(self, selection: FieldNode, parent: Any, node: _Node, seen: frozenset, *, in_connection: bool) -> None:
        name = selection.name.value
        if name.startswith("__"):
            return  # __typename is free; introspection is the schema's size, not the data's
        definition = getattr(parent, "fields", {}).get(name)
        if definition is None:
            raise LookupError(name)
        lua = _is_lua(definition)
        returns = get_named_type(definition.type)
        if not is_composite_type(returns):
            if lua:
                node.lua_calls += 1
            return
        child = _Node()
        if lua:
            node.lua_calls += 1
        is_connection = returns.name.endswith("Connection") and "first" in definition.args
        if _is_list(definition.type) or is_connection:
            # edges and nodes of a connection are counted at the connection's `first`
            child.size = 1 if in_connection and not definition.args.keys() & set(_PAGE_ARGUMENTS) \
                else self._page(selection, definition)
        node.children.append(child)
        if selection.selection_set is not None:
            self._selection(selection.selection_set, returns, child, seen, in_connection=is_connection)

    def _page(self, selection: FieldNode, definition: Any) -> Any:
        for argument in selection.arguments or ():
            if argument.name.value in _PAGE_ARGUMENTS and argument.name.value in definition.args:
                value = argument.value
                if isinstance(value, IntValueNode):
                    return int(value.value)
                if isinstance(value, VariableNode):
                    return value.name.value
        return _DEFAULT

    def _type(self, name: str) -> Any:
        found = self.schema.get_type(name)
        if found is None:
            raise LookupError(name)
        return found


def _is_list(graphql_type: Any) -> bool:
    if isinstance(graphql_type, GraphQLNonNull):
        graphql_type = graphql_type.of_type
    return isinstance(graphql_type, GraphQLList)


def _is_lua(definition: Any) -> bool:
    strawberry_field = (definition.extensions or {}).get("strawberry-definition")
    metadata = getattr(strawberry_field, "metadata", None) or {}
    return metadata.get("cost") == LUA

