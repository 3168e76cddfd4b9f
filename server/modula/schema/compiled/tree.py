"""What planning produces: a tree of selects, counts and an insert, with conditions, and the
values to bind as getters over (variables, viewer); `Fallback` leaves an operation to Strawberry."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modula.db.introspection import ColumnSpec, TableSpec
from modula.schema.compiled.catalog import GeneratedRoot

INT_MIN, INT_MAX = -(2**31), 2**31 - 1  # GraphQL's Int


class Fallback(Exception):
    """Leave this operation (or these values) to Strawberry."""


# --- values: constants now, variables and the viewer's id when bound ------------------------

Getter = Callable[[dict, Any], Any]  # (variables, viewer) -> the value to bind


def constant(value: Any) -> Getter:
    return lambda variables, viewer: value


def viewer_id(variables: dict, viewer: Any) -> Any:
    return viewer.user_id


@dataclass(frozen=True)
class VarRef:
    """A variable, or a value inside a list or input-object variable, as it appears in an argument."""

    name: str
    path: tuple  # keys and indexes into the variable's value
    value: Any  # its value when the plan was made (only its shape may be relied on)

    def getter(self, scalar: str, convert: Callable[[Any], Any], check: Callable[[Any], None] | None = None) -> Getter:
        """Checks what the cache key does not hold (an Int's range, a Float's finiteness) when bound."""
        name, path = self.name, self.path

        def get(variables: dict, viewer: Any) -> Any:
            value = variables[name]
            for step in path:
                value = value[step]
            if scalar == "Int" and not INT_MIN <= value <= INT_MAX:
                raise Fallback  # Strawberry reports the value
            if scalar == "Float" and not math.isfinite(value):
                raise Fallback
            if check is not None:
                check(value)
            return convert(value)

        return get


def references(name: str, value: Any, path: tuple = ()) -> Any:
    """A variable's value with every leaf a VarRef (null stays None: the cache key holds it)."""
    if isinstance(value, dict):
        return {key: references(name, item, (*path, key)) for key, item in value.items()}
    if isinstance(value, list):
        return [references(name, item, (*path, i)) for i, item in enumerate(value)]
    return None if value is None else VarRef(name, path, value)


@dataclass(frozen=True)
class Enum:
    name: str


# --- the tree -------------------------------------------------------------------------------


@dataclass
class Cond:
    """A condition: kind is and/or/not/true/false, cmp (op on a column with a value), isnull,
    in/nin (a list of values), like/ilike/glob."""

    kind: str
    parts: list[Cond] = field(default_factory=list)
    column: str = ""
    op: str = ""
    values: list[Getter] = field(default_factory=list)
    negated: bool = False


@dataclass
class Link:
    """How a nested select joins its parent: `column` of this table = `parent_column` of the parent."""

    column: str
    parent_column: str


@dataclass
class Select:
    """Rows of one table as JSON: a list (`many`) or one object."""

    spec: TableSpec
    type_name: str
    fields: list[tuple[str, Any]]  # (response key, ColumnSpec | str for __typename | Select)
    many: bool
    where: Cond | None = None
    order: list[tuple[ColumnSpec, str]] = field(default_factory=list)
    limit: Getter | None = None
    offset: Getter | None = None
    link: Link | None = None


@dataclass
class Count:
    """…Aggregate { count }: the matching rows counted; `fields` are (key, None) for count and
    (key, type name) for __typename."""

    spec: TableSpec
    fields: list[tuple[str, str | None]]
    where: Cond | None = None


@dataclass
class Insert:
    """insert…One without hooks, children or onConflict: one INSERT … RETURNING the selection."""

    root: GeneratedRoot
    key: str
    columns: list[ColumnSpec]
    values: list[Getter]
    returning: Select


@dataclass
class Plan:
    """Root fields in selection order: (key, Select | Count | the __typename value); or an Insert;
    or a core write (compiled/content.py), which runs its service and shapes its answer itself."""

    fields: list[tuple[str, Any]] = field(default_factory=list)
    insert: Insert | None = None
    write: Any = None
