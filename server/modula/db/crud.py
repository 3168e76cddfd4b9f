"""Generic reads and writes over an introspected table (filters, ordering, aggregates, batched
children, bulk inserts and upserts) that give the same results on SQLite and PostgreSQL.

Values are always bound parameters and identifiers come only from the table spec. Error paths
name this module's parameters (("where", "and", 1, "price", "gt")); the GraphQL layer renames them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from modula.db import storable
from modula.db.connection import Session
from modula.db.introspection import TableSpec
from modula.db.types import UTCDateTime

Where = Mapping[str, Any]
OrderBy = Sequence[tuple[str, str]]
Row = dict[str, Any]
Path = tuple[str | int, ...]

_SQL_TYPES: dict[str, sa.types.TypeEngine] = {
    "integer": sa.BigInteger(), "real": sa.Float(), "numeric": sa.Numeric(), "text": sa.Text(),
    "boolean": sa.Boolean(), "date": sa.Date(), "datetime": UTCDateTime(), "blob": sa.LargeBinary(),
    "json": sa.JSON(none_as_null=True),  # Python None is SQL NULL, not the JSON text 'null'
}
_NUMBERS = frozenset({"integer", "real", "numeric"})
_ORDERED = _NUMBERS | {"text", "date", "datetime"}
_COMPARABLE = _ORDERED | {"boolean", "blob"}  # PostgreSQL's json type has no equality
_COMPARISONS = {"eq": operator.eq, "neq": operator.ne, "gt": operator.gt, "gte": operator.ge,
                "lt": operator.lt, "lte": operator.le}
_OPERATORS: dict[str, frozenset[str]] = {
    **{name: _ORDERED for name in ("gt", "gte", "lt", "lte")},
    **{name: _COMPARABLE for name in ("eq", "neq", "in", "nin")},
    "like": frozenset({"text"}), "ilike": frozenset({"text"}), "isNull": frozenset(_SQL_TYPES),
}
_AGGREGATES = {"sum": _NUMBERS, "avg": _NUMBERS, "min": _ORDERED, "max": _ORDERED}
# Driver values (aiosqlite's or asyncpg's) to the Python values of each column type.
_DECODERS: dict[str, Any] = {
    "integer": int, "real": float, "boolean": bool, "blob": bytes, "json": json.loads,
    "numeric": lambda v: _plain_decimal(v if isinstance(v, Decimal) else Decimal(str(v))),
    "date": lambda v: dt.date.fromisoformat(v) if isinstance(v, str) else v,
    "datetime": lambda v: _SQL_TYPES["datetime"].process_result_value(v, None),
}
_GLOB_LITERALS = {"*": "[*]", "?": "[?]", "[": "[[]"}
_ROW_NUMBER = "modula_row_number"


class CrudError(Exception):
    """Input the GraphQL types could not rule out (unknown column or operator, null comparison...)."""

    code = "INVALID_INPUT"

    def __init__(self, message: str, path: Path = (), *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = tuple(path)
        if code is not None:
            self.code = code


@dataclass(frozen=True)
class OnConflict:
    """Upsert: on a clash in `constraint_columns` (the primary key or a unique set) update
    `update_columns` from the new row where `where` holds; no update columns: skip the row."""

    constraint_columns: tuple[str, ...]
    update_columns: tuple[str, ...] = ()
    where: Where | None = None


@functools.lru_cache(maxsize=1024)
def table_of(spec: TableSpec) -> sa.Table:
    """A Core table for the spec, its columns typed so values bind the same way on both dialects."""
    columns = [sa.Column(c.name, _SQL_TYPES[c.type], primary_key=c.primary_key, nullable=c.nullable,
                         autoincrement=c.autoincrement) for c in spec.columns]
    return sa.Table(spec.name, sa.MetaData(), *columns)


@functools.lru_cache(maxsize=1024)
def crud_for(spec: TableSpec) -> TableCrud:
    """The shared (stateless) TableCrud of a spec."""
    return TableCrud(spec)


def _decode(kind: str, value: Any) -> Any:
    return value if value is None or kind not in _DECODERS else _DECODERS[kind](value)


def _plain_decimal(number: Decimal) -> Decimal:
    """Without trailing zeros (12.50 -> 12.5, 1E+2 -> 100): SQLite stores NUMERIC as REAL or INTEGER
    and cannot keep them, so PostgreSQL's are dropped too and both dialects answer alike."""
    if not number.is_finite():
        return number
    return Decimal(int(number)) if number == number.to_integral_value() else number.normalize()


def _untyped(column: sa.ColumnElement, kind: str) -> sa.ColumnElement:
    """The column as its driver returns it (JSON as text), whatever the dialect: `Session` hands
    back driver values on PostgreSQL but SQLAlchemy-processed ones on SQLite; `_decode` follows."""
    return sa.cast(column, sa.Text) if kind == "json" else sa.type_coerce(column, sa.types.NullType())


def _glob_pattern(like: str) -> str:
    """A LIKE pattern (with backslash escapes) as the equivalent SQLite GLOB pattern."""
    out, chars = [], iter(like)
    for char in chars:
        if char == "\\":
            out.append(_GLOB_LITERALS.get(escaped := next(chars, "\\"), escaped))
        else:
            out.append({"%": "*", "_": "?"}.get(char) or _GLOB_LITERALS.get(char, char))
    return "".join(out)


def _where(statement, condition):
    return statement if condition is None else statement.where(condition)


class TableCrud:
    """Query and change one table described by a `TableSpec`."""

    def __init__(self, spec: TableSpec) -> None:
        self.spec = spec
        self.table = table_of(spec)
        self._kinds = {c.name: c.type for c in spec.columns}

    def filter(self, where: Where | None, dialect: str, path: Path = ("where",)) -> sa.ColumnElement[bool] | None:
        """The condition for a filter tree; None when it matches every row.

        Keys are column names (each mapping operators to operands) or and/or/not; keys of one
        object are ANDed, `and: []` is true and `or: []` false. Comparisons follow SQL: neq and
        nin never match NULL. like and ilike take % and _ with backslash escapes; like is
        case-sensitive on both dialects, ilike ignores case (SQLite: of ASCII letters only).
        """
        if not where:
            return None
        if not isinstance(where, Mapping):
            raise CrudError("expected an object of conditions", path)
        parts = []
        for key, value in where.items():
            here = (*path, key)
            if key in ("and", "or"):
                if not isinstance(value, list):
                    raise CrudError(f"{key} takes a list of conditions", here)
                clauses = [self.filter(w, dialect, (*here, i)) for i, w in enumerate(value)]
                clauses = [sa.true() if c is None else c for c in clauses]
                parts.append(sa.and_(sa.true(), *clauses) if key == "and" else sa.or_(sa.false(), *clauses))
            elif key == "not":
                inner = self.filter(value, dialect, here)
                parts.append(sa.false() if inner is None else sa.not_(inner))
            else:
                column = self._column(key, here)
                if not isinstance(value, Mapping) or not value:
                    raise CrudError("expected operators such as eq or gt", here)
                parts += [self._condition(column, op, operand, dialect, (*here, op)) for op, operand in value.items()]
        return sa.and_(*parts)

    async def find(self, session: Session, *, where: Where | None = None, order_by: OrderBy | None = None,
                   limit: int | None = None, offset: int = 0, lock: bool = False) -> list[Row]:
        """Rows matching `where`, in `order_by` order then by primary key. `lock` holds them until the
        transaction ends (FOR UPDATE; SQLite's write transactions already exclude each other)."""
        _check_page(limit, offset)
        statement = _where(self._select(self.table), self.filter(where, session.dialect))
        statement = statement.order_by(*self._ordering(order_by)).limit(limit).offset(offset or None)
        if lock and session.dialect == "postgresql":
            statement = statement.with_for_update()
        return self._decode_rows(await session.fetch_all(statement))

    async def count(self, session: Session, *, where: Where | None = None) -> int:
        statement = _where(sa.select(sa.func.count()).select_from(self.table), self.filter(where, session.dialect))
        return int(await session.fetch_value(statement))

    async def aggregate(self, session: Session, *, where: Where | None = None, sum: Sequence[str] = (),
                        avg: Sequence[str] = (), min: Sequence[str] = (), max: Sequence[str] = ()) -> dict[str, Any]:
        """{"count": n, "sum": {column: value}, "avg": ..., "min": ..., "max": ...} in one statement.

        sum and avg take number columns, min and max also text, date and datetime; avg is a float.
        """
        selected, labels = [sa.func.count().label("count")], []
        for function, names in {"sum": sum, "avg": avg, "min": min, "max": max}.items():
            for i, name in enumerate(names):
                column, kind = self._column(name, (function, i)), self._kinds.get(name)
                if kind not in _AGGREGATES[function]:
                    raise CrudError(f"{function} does not apply to {kind} column {name}", (function, i))
                label = f"{function}_{len(labels)}"
                selected.append(sa.type_coerce(getattr(sa.func, function)(column), sa.types.NullType()).label(label))
                labels.append((function, name, label))
        row = await session.fetch_one(
            _where(sa.select(*selected).select_from(self.table), self.filter(where, session.dialect)))
        result: dict[str, Any] = {"count": int(row["count"]), "sum": {}, "avg": {}, "min": {}, "max": {}}
        for function, name, label in labels:
            result[function][name] = _decode("real" if function == "avg" else self._kinds[name], row[label])
        return result

    async def by_pk(self, session: Session, key: Mapping[str, Any]) -> Row | None:
        return await self._one(session, self._select(self.table).where(self._key_filter(key)))

    async def by_keys(self, session: Session, column: str, keys: Sequence[Any], *, where: Where | None = None,
                      order_by: OrderBy | None = None, limit: int | None = None, offset: int = 0) -> dict[Any, list[Row]]:
        """Rows whose `column` is one of `keys`, grouped by key, in one statement (for DataLoaders).

        Every key is in the result ([] when nothing matches); limit and offset apply per key.
        """
        _check_page(limit, offset)
        target = self._column(column, ("column",))
        groups: dict[Any, list[Row]] = {key: [] for key in keys}
        wanted = [key for key in groups if key is not None]
        if not wanted:
            return groups
        condition = target.in_(wanted)
        if (extra := self.filter(where, session.dialect)) is not None:
            condition = sa.and_(condition, extra)
        ordering = self._ordering(order_by)
        if limit is None and not offset:
            statement = self._select(self.table).where(condition).order_by(*ordering)
        else:
            number = sa.func.row_number().over(partition_by=target, order_by=ordering).label(_ROW_NUMBER)
            ranked = sa.select(*self.table.c, number).where(condition).subquery()
            rank = ranked.c[_ROW_NUMBER]
            statement = self._select(ranked).where(rank > offset).order_by(rank)
            statement = statement if limit is None else statement.where(rank <= offset + limit)
        for row in self._decode_rows(await session.fetch_all(statement)):
            groups[row[column]].append(row)
        return groups

    async def insert(self, session: Session, rows: Sequence[Mapping[str, Any]], *,
                     on_conflict: OnConflict | None = None) -> list[Row]:
        """Insert rows and return them as stored, in input order.

        Omitted columns get their default. Rows giving the same defaulted columns share one
        statement (several statements run in one transaction). Rows that `on_conflict` skipped
        are not returned.
        """
        for i, row in enumerate(rows):
            for name, value in row.items():
                self._column(name, ("rows", i, name))
                self._storable(name, value, ("rows", i, name))
        if on_conflict is not None:
            self._check_conflict(rows, on_conflict)
        defaulted = {c.name for c in self.spec.columns if c.has_default}
        # An omitted column without a default is NULL either way; sending it lets more rows share a statement.
        nulls = {c.name: None for c in self.spec.columns if not c.has_default}
        groups: dict[tuple[str, ...] | int, list[int]] = {}
        for i, row in enumerate(rows):
            given = tuple(sorted(defaulted & row.keys()))
            # A row that sends no column at all is INSERT ... DEFAULT VALUES: one statement each.
            groups.setdefault(given if given or nulls else i, []).append(i)
        batches = [(indexes, [{**nulls, **rows[i]} for i in indexes]) for indexes in groups.values()]
        statements = [self._insert(session.dialect, values, on_conflict) for _, values in batches]  # all checked first
        stored: list[Row | None] = [None] * len(rows)
        async with session.transaction() if len(batches) > 1 else contextlib.nullcontext():
            for (indexes, values), statement in zip(batches, statements):
                returned = self._decode_rows(await session.fetch_all(statement))
                match = self._given_key(values, on_conflict.constraint_columns if on_conflict else ())
                for i, row in zip(indexes, self._pair(values, returned, match)):
                    stored[i] = row
        return [row for row in stored if row is not None]

    async def update(self, session: Session, *, where: Where | None, set: Mapping[str, Any]) -> list[Row]:
        """Set columns on every row matching `where`; returns the changed rows."""
        statement = _where(sa.update(self.table), self.filter(where, session.dialect))
        statement = statement.values(self._values(set)).returning(*self._returned(self.table))
        return self._decode_rows(await session.fetch_all(statement))

    async def update_by_pk(self, session: Session, key: Mapping[str, Any], set: Mapping[str, Any]) -> Row | None:
        statement = sa.update(self.table).where(self._key_filter(key)).values(self._values(set))
        return await self._one(session, statement.returning(*self._returned(self.table)))

    async def delete(self, session: Session, *, where: Where | None) -> list[Row]:
        """Delete every row matching `where`; returns the deleted rows."""
        statement = _where(sa.delete(self.table), self.filter(where, session.dialect))
        return self._decode_rows(await session.fetch_all(statement.returning(*self._returned(self.table))))

    async def delete_by_pk(self, session: Session, key: Mapping[str, Any]) -> Row | None:
        statement = sa.delete(self.table).where(self._key_filter(key))
        return await self._one(session, statement.returning(*self._returned(self.table)))

    def _condition(self, column: sa.Column, op: str, operand: Any, dialect: str, path: Path) -> sa.ColumnElement[bool]:
        kind = self._kinds[column.name]
        if op not in _OPERATORS:
            raise CrudError(f"unknown operator {op!r}; use {', '.join(_OPERATORS)}", path)
        if kind not in _OPERATORS[op]:
            raise CrudError(f"{op} does not apply to {kind} column {column.name}", path)
        if op == "isNull":
            if not isinstance(operand, bool):
                raise CrudError("isNull takes true or false", path)
            return column.is_(None) if operand else column.is_not(None)
        if op in ("in", "nin"):
            if not isinstance(operand, (list, tuple)) or any(v is None for v in operand):
                raise CrudError(f"{op} takes a list of values without null; use isNull", path)
            if not operand:
                return sa.false() if op == "in" else sa.true()
            return column.in_(operand) if op == "in" else column.not_in(operand)
        if operand is None:
            raise CrudError(f"{op} cannot compare with null; use isNull", path)
        if op in ("like", "ilike"):
            if not isinstance(operand, str) or (len(operand) - len(operand.rstrip("\\"))) % 2:
                raise CrudError(f"{op} takes a text pattern that does not end in a lone backslash", path)
            if op == "ilike":
                return column.ilike(operand, escape="\\")
            # SQLite's LIKE ignores ASCII case; GLOB is its case-sensitive equivalent.
            if dialect == "sqlite":
                return column.op("GLOB", is_comparison=True)(_glob_pattern(operand))
            return column.like(operand, escape="\\")
        return _COMPARISONS[op](column, operand)

    def _ordering(self, order_by: OrderBy | None) -> list[sa.ColumnElement]:
        """ORDER BY terms: NULL sorts as the smallest value on both dialects; the primary key breaks ties.
        NOT NULL columns get no NULLS clause, so PostgreSQL can serve the order from a plain index."""
        terms, named = [], set()
        for i, (name, direction) in enumerate(order_by or ()):
            column = self._column(name, ("order_by", i))
            if direction not in ("asc", "desc") or self._kinds[name] == "json":
                raise CrudError(f"order by a non-json column, asc or desc (not {name} {direction})", ("order_by", i))
            if not self.spec.column(name).nullable:  # a plain index serves it on both dialects
                terms.append(column.asc() if direction == "asc" else column.desc())
            else:  # the order plugins/tables.py indexes nullable columns in, on both dialects
                terms.append(column.asc().nulls_first() if direction == "asc" else column.desc().nulls_last())
            named.add(name)
        return terms + [self.table.c[name].asc() for name in self.spec.primary_key if name not in named]

    def _insert(self, dialect: str, values: list[Row], on_conflict: OnConflict | None) -> sa.Insert:
        if on_conflict is None:
            statement = sa.insert(self.table)
        else:
            statement = (postgresql if dialect == "postgresql" else sqlite).insert(self.table)
            target = list(on_conflict.constraint_columns)
            if on_conflict.update_columns:
                statement = statement.on_conflict_do_update(
                    index_elements=target,
                    set_={name: statement.excluded[name] for name in on_conflict.update_columns},
                    where=self.filter(on_conflict.where, dialect, ("on_conflict", "where")),
                )
            else:
                statement = statement.on_conflict_do_nothing(index_elements=target)
        return statement.values(values).returning(*self._returned(self.table))

    def _check_conflict(self, rows: Sequence[Mapping[str, Any]], on_conflict: OnConflict) -> None:
        target = on_conflict.constraint_columns
        if set(target) not in [set(self.spec.primary_key), *(set(u) for u in self.spec.unique)]:
            raise CrudError(f"not the primary key or a unique column set of {self.spec.name}",
                            ("on_conflict", "constraint_columns"))
        for i, name in enumerate(on_conflict.update_columns):
            self._column(name, ("on_conflict", "update_columns", i))
        if on_conflict.where and not on_conflict.update_columns:
            raise CrudError("where applies only when update_columns are given", ("on_conflict", "where"))
        generated = all(self.spec.column(name).has_default for name in target)
        seen: dict[tuple, int] = {}
        for i, row in enumerate(rows):
            key = tuple(row.get(name) for name in target)
            if generated and key == (None,) * len(target):
                continue  # a new row (e.g. without its generated primary key): it inserts in a statement of its own
            if None in key:
                missing = target[key.index(None)]
                raise CrudError(f"each row needs {missing} to detect a conflict", ("rows", i, missing))
            if key in seen:
                raise CrudError(f"rows {seen[key]} and {i} have the same {', '.join(target)}", ("rows", i))
            seen[key] = i

    def _given_key(self, rows: list[Row], preferred: tuple[str, ...]) -> tuple[str, ...]:
        """The first of `preferred`, the primary key or a unique column set that every row gives; () if none."""
        candidates = [preferred, self.spec.primary_key, *self.spec.unique]
        return next((key for key in candidates if key and all(row.get(n) is not None for row in rows for n in key)), ())

    def _pair(self, values: list[Row], returned: list[Row], match: tuple[str, ...]) -> list[Row | None]:
        """The returned rows aligned with the rows sent (None where on_conflict skipped one)."""
        if not match:
            # Only new rows with generated keys: those ascend in VALUES order on both dialects.
            return sorted(returned, key=lambda row: tuple(row[name] for name in self.spec.primary_key))
        by_key = {tuple(row[name] for name in match): row for row in returned}
        return [by_key.get(tuple(row[name] for name in match)) for row in values]

    def _column(self, name: str, path: Path) -> sa.Column:
        if name not in self._kinds:
            raise CrudError(f"unknown column {name!r} in {self.spec.name}", path)
        return self.table.c[name]

    def _values(self, values: Mapping[str, Any]) -> Row:
        if not values:
            raise CrudError("nothing to set", ("set",))
        for name, value in values.items():
            self._column(name, ("set", name))
            self._storable(name, value, ("set", name))
        return dict(values)

    def _storable(self, name: str, value: Any, path: Path) -> None:
        """A value from a hook or a Lua handler is checked like a client's (see db/storable.py)."""
        found = storable.problem(value)
        if found is not None:
            raise CrudError(f"{self.spec.name}.{name} {found}", path, code="INVALID_VALUE")

    def _key_filter(self, key: Mapping[str, Any]) -> sa.ColumnElement[bool]:
        pk = self.spec.primary_key
        if not pk:
            raise CrudError(f"{self.spec.name} has no primary key", ("key",))
        if wrong := next((name for name in [*key, *pk] if name not in pk or key.get(name) is None), None):
            raise CrudError(f"give exactly the primary key columns {', '.join(pk)}", ("key", wrong))
        return sa.and_(*(self.table.c[name] == key[name] for name in pk))

    def _returned(self, source: sa.FromClause) -> list[sa.ColumnElement]:
        return [_untyped(source.c[name], kind).label(name) for name, kind in self._kinds.items()]

    def _select(self, source: sa.FromClause) -> sa.Select:
        return sa.select(*self._returned(source))

    async def _one(self, session: Session, statement: sa.Executable) -> Row | None:
        row = await session.fetch_one(statement)
        return None if row is None else self.decode_row(row)

    def decode_row(self, row: Mapping[str, Any]) -> Row:
        """A row as the driver returned it, in the Python types of its columns."""
        return {name: _decode(kind, row[name]) for name, kind in self._kinds.items()}

    def _decode_rows(self, rows: list[Mapping[str, Any]]) -> list[Row]:
        return [self.decode_row(row) for row in rows]


def _check_page(limit: int | None, offset: int) -> None:
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise CrudError("limit must be 0 or more", ("limit",))
    if not isinstance(offset, int) or offset < 0:
        raise CrudError("offset must be 0 or more", ("offset",))
