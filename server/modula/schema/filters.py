"""The GraphQL pieces every generated table shares: column scalars, comparison filters, ordering,
page info; and the conversion of filter and order inputs into the CRUD builder's plain terms."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

import strawberry
from strawberry.scalars import JSON, Base64

from modula.errors import ModulaError

UNSET = strawberry.UNSET

# column type -> the GraphQL scalar of its values
SCALARS: dict[str, Any] = {
    "integer": int,
    "real": float,
    "numeric": Decimal,
    "text": str,
    "boolean": bool,
    "date": dt.date,
    "datetime": dt.datetime,
    "json": JSON,
    "blob": Base64,
}


def _comparison(name: str, scalar: Any, *, ordered: bool, text: bool = False, description: str = "") -> type:
    annotations: dict[str, Any] = {"eq": scalar | None, "neq": scalar | None}
    namespace: dict[str, Any] = {"eq": UNSET, "neq": UNSET}
    if ordered:
        for op in ("gt", "gte", "lt", "lte"):
            annotations[op] = scalar | None
            namespace[op] = UNSET
        annotations["in_"] = list[scalar] | None
        annotations["nin"] = list[scalar] | None
        namespace["in_"] = strawberry.field(default=UNSET, name="in")
        namespace["nin"] = UNSET
    if text:
        annotations["like"] = annotations["ilike"] = str | None
        namespace["like"] = strawberry.field(default=UNSET, description="SQL LIKE, case-sensitive: % any run, _ one character")
        namespace["ilike"] = strawberry.field(default=UNSET, description="like, ignoring case")
    annotations["is_null"] = bool | None
    namespace["is_null"] = UNSET
    cls = type(name, (), {**namespace, "__annotations__": annotations, "__module__": __name__, "__qualname__": name})
    return strawberry.input(cls, name=name, description=description or None)


IntFilter = _comparison("IntFilter", int, ordered=True)
FloatFilter = _comparison("FloatFilter", float, ordered=True)
DecimalFilter = _comparison("DecimalFilter", Decimal, ordered=True)
StringFilter = _comparison("StringFilter", str, ordered=True, text=True)
BooleanFilter = _comparison("BooleanFilter", bool, ordered=False)
DateFilter = _comparison("DateFilter", dt.date, ordered=True)
DateTimeFilter = _comparison("DateTimeFilter", dt.datetime, ordered=True)
NullFilter = _comparison("NullFilter", bool, ordered=False, description="Only isNull (eq/neq compare booleans) for json and blob columns.")

FILTERS: dict[str, type] = {
    "integer": IntFilter,
    "real": FloatFilter,
    "numeric": DecimalFilter,
    "text": StringFilter,
    "boolean": BooleanFilter,
    "date": DateFilter,
    "datetime": DateTimeFilter,
    "json": NullFilter,
    "blob": NullFilter,
}
# graphql operator name -> (python attribute, CRUD operator)
_OPERATORS = {"in": "in_", "isNull": "is_null"}
NUMERIC = frozenset({"integer", "real", "numeric"})
COMPARABLE = NUMERIC | {"text", "date", "datetime"}


@strawberry.enum(description="Sort direction; nulls sort first ascending and last descending.")
class OrderDirection(enum.Enum):
    ASC = "asc"
    DESC = "desc"


@strawberry.type(description="Where a page of a connection sits.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


def given(value: Any) -> bool:
    return value is not UNSET and value is not None


def to_where(value: Any, columns: dict[str, str], path: tuple) -> dict | None:
    """A generated `…Filter` input -> the CRUD builder's filter tree (keys are column names).

    `columns` maps python attribute names to column names."""
    if not given(value):
        return None
    where: dict[str, Any] = {}
    for attribute, column in columns.items():
        comparison = getattr(value, attribute)
        if not given(comparison):
            continue
        ops = {}
        for op in ("eq", "neq", "gt", "gte", "lt", "lte", "in", "nin", "like", "ilike", "isNull"):
            operand = getattr(comparison, _OPERATORS.get(op, op), UNSET)
            if given(operand):
                ops[op] = _plain(operand)
        if ops:
            where[column] = ops
    for logic in ("and", "or"):
        items = getattr(value, logic + "_")
        if given(items):
            where[logic] = [to_where(item, columns, (*path, logic, i)) or {} for i, item in enumerate(items)]
    negated = getattr(value, "not_")
    if given(negated):
        where["not"] = to_where(negated, columns, (*path, "not")) or {}
    return where


def _plain(operand: Any) -> Any:
    """An enum operand (a node's status) compares as the value it stands for."""
    if isinstance(operand, enum.Enum):
        return operand.value
    if isinstance(operand, list):
        return [_plain(item) for item in operand]
    return operand


def to_order(items: Any, columns: dict[str, str], path: tuple) -> list[tuple[str, str]]:
    """`[{price: DESC}, {name: ASC}]` -> [("price", "desc"), ("name", "asc")]; one column per item,
    since an input object's keys carry no order."""
    if not given(items):
        return []
    order: list[tuple[str, str]] = []
    for i, item in enumerate(items):
        chosen = [(column, getattr(item, attribute)) for attribute, column in columns.items()
                  if given(getattr(item, attribute, UNSET))]
        if len(chosen) != 1:
            raise ModulaError("INVALID_ORDER", "give exactly one column per orderBy item", (*path, i))
        column, direction = chosen[0]
        order.append((column, direction.value))
    return order
