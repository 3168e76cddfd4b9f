"""SQLAlchemy statements compiled once per shape: the driver's SQL text, the bound values in its
order, and how the driver's rows become dicts (the work `databases` redid on every call).

A shape is what SQLAlchemy's cache key describes: the statement with its values taken out
(multi-row INSERTs, which SQLAlchemy does not key, are keyed here by their column layout).
Compiling costs 90-160 µs; taking a key and binding its values about 20. Expanding IN lists stay
placeholders in the cached form and are spread per call, so lists of any length share one
entry; the cache is a bounded LRU, so shapes that vary without end (multi-row VALUES of every
length) cannot grow it past `size`.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.dialects.sqlite import pysqlite
from sqlalchemy.engine import processors
from sqlalchemy.engine.cursor import CursorResultMetaData
from sqlalchemy.sql.ddl import ExecutableDDLElement

SHAPE_CACHE_SIZE = 1000


class _PGNumeric(sa.Numeric):
    """Decimals go to asyncpg as text, as `databases` sent them (asyncpg parses them exactly)."""

    def bind_processor(self, dialect):
        return processors.to_str

    def result_processor(self, dialect, coltype):
        return None if self.asdecimal else processors.to_float


class _PGDialect(PGDialect):
    """PostgreSQL as asyncpg is spoken to: `$n` placeholders, the bind processing `databases` used."""

    colspecs = {**PGDialect.colspecs, sa.Numeric: _PGNumeric, sa.Float: sa.Float}
    implicit_returning = True
    supports_native_enum = True
    supports_smallserial = True
    supports_native_decimal = True
    _backslash_escapes = False
    _has_native_hstore = True


def dialect_for(name: str) -> sa.engine.Dialect:
    """The SQLAlchemy dialect statements are compiled with for the driver of `name`."""
    if name == "sqlite":
        dialect = pysqlite.dialect(paramstyle="qmark")
        dialect.supports_native_decimal = False  # sqlite3 stores no decimals; SQLAlchemy converts
        return dialect
    return _PGDialect(paramstyle="numeric_dollar")


class Shape:
    """One compiled statement shape: its SQL, which value goes to which placeholder, and (SQLite)
    how rows of each column layout are processed."""

    __slots__ = ("compiled", "sql", "binds", "expands", "is_ddl", "template", "_rows")

    def __init__(self, compiled, is_ddl: bool, template: sa.sql.ClauseElement | None = None) -> None:
        self.compiled = compiled
        self.template = template  # the statement itself, for a template (kept by identity)
        self.sql = compiled.string
        self.is_ddl = is_ddl
        self.expands = not is_ddl and bool(compiled.post_compile_params or compiled.literal_execute_params)
        bind_processors = {} if is_ddl else compiled._bind_processors
        self.binds = () if is_ddl else tuple((name, bind_processors.get(name)) for name in compiled.positiontup or ())
        self._rows: tuple[tuple, RowPlan] | None = None

    def row_plan(self, dialect, description) -> RowPlan:
        """How to turn rows of this cursor description into dicts, as SQLAlchemy's own result
        metadata would (result processors: SQLite dates, booleans, JSON, UTCDateTime...)."""
        names = tuple(column[0] for column in description)
        if self._rows is None or self._rows[0] != names:  # `SELECT *` can widen after ALTER TABLE
            self._rows = names, RowPlan.build(self.compiled, dialect, description)
        return self._rows[1]


class RowPlan:
    """Keys and per-column processors for turning driver tuples into dicts."""

    __slots__ = ("keys", "columns", "plain")

    def __init__(self, keys: list[str], columns: list[tuple[str, int, Any]]) -> None:
        self.keys = keys
        self.columns = columns
        # Keys in column order and nothing to convert: a plain zip.
        self.plain = all(p is None for _, _, p in columns) and [i for _, i, _ in columns] == list(range(len(columns)))

    @classmethod
    def build(cls, compiled, dialect, description) -> RowPlan:
        context = dialect.execution_ctx_cls()
        context.dialect = dialect
        context.result_column_struct = (
            compiled._result_columns, compiled._ordered_columns, compiled._textual_ordered_columns,
            compiled._ad_hoc_textual, compiled._loose_column_name_matching,
        )
        metadata = CursorResultMetaData(_ResultParent(context), description)
        keys = list(metadata._keys)
        index = metadata._key_to_index
        columns = [(key, index[key], metadata._processors[index[key]]) for key in keys]
        return cls(keys, columns)

    def dict(self, row: tuple) -> dict[str, Any]:
        if self.plain:
            return dict(zip(self.keys, row))
        return {key: (row[i] if process is None else process(row[i])) for key, i, process in self.columns}


class _ResultParent:
    """What CursorResultMetaData reads from its CursorResult: the execution context."""

    def __init__(self, context) -> None:
        self.context = context


class StatementCache:
    """Compiled shapes for one dialect, least recently used evicted past `size`."""

    def __init__(self, dialect: sa.engine.Dialect, size: int = SHAPE_CACHE_SIZE) -> None:
        self.dialect = dialect
        self.size = size
        self.compilations = 0
        self._shapes: collections.OrderedDict[Any, Shape] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._shapes)

    def prepare(self, statement: sa.sql.ClauseElement) -> tuple[str, list[Any], Shape]:
        """(SQL text, bound values in placeholder order, shape) for `statement`."""
        if isinstance(statement, sa.Insert) and statement._multi_values:
            prepared = self._prepare_rows_insert(statement)
            if prepared is not None:
                return prepared
        is_ddl = isinstance(statement, ExecutableDDLElement)
        cache_key = None if is_ddl else statement._generate_cache_key()
        if cache_key is None:  # DDL, or an element SQLAlchemy cannot key: compiled every time
            shape = self._compile(statement, None, is_ddl)
            if is_ddl:
                return shape.sql, [], shape
            return self._bound(shape, shape.compiled.construct_params())
        shape = self._shape(cache_key.key)
        if shape is None:
            shape = self._store(cache_key.key, self._compile(statement, cache_key, False))
        return self._bound(shape, shape.compiled.construct_params(extracted_parameters=cache_key.bindparams))

    def prepare_template(self, statement: sa.sql.ClauseElement, params: Mapping[str, Any]) -> tuple[str, list[Any], Shape]:
        """(SQL text, bound values, shape) for a template: a statement built once (a module
        constant) whose values are all named `sa.bindparam`s, given here by name. It is compiled on
        first use and found again by identity, so binding costs neither building nor keying it."""
        key = ("template", id(statement))
        shape = self._shape(key)
        if shape is None or shape.template is not statement:
            self.compilations += 1
            compiled = self.dialect.statement_compiler(self.dialect, statement, cache_key=None)
            shape = self._store(key, Shape(compiled, False, statement))
        return self._bound(shape, shape.compiled.construct_params(params=params))

    def _prepare_rows_insert(self, statement: sa.Insert) -> tuple[str, list[Any], Shape] | None:
        """A multi-row INSERT of plain values, which SQLAlchemy does not key: keyed here by the
        rest of the statement and each row's column names, compiled with a placeholder per value.
        None when a value is an SQL expression (then it is compiled as it comes)."""
        if len(statement._multi_values) != 1:
            return None
        columns = statement.table.c
        layout: list[tuple[str, ...]] = []
        values: dict[str, Any] = {}
        for i, row in enumerate(statement._multi_values[0]):
            if not isinstance(row, dict):
                return None
            names = []
            for j, (key, value) in enumerate(row.items()):
                name = key if isinstance(key, str) else getattr(key, "key", None)
                if name not in columns or isinstance(value, sa.sql.ClauseElement):
                    return None
                names.append(name)
                values[f"modula_row{i}_{j}"] = value
            layout.append(tuple(names))
        rest = statement._clone()
        rest._multi_values = ()
        rest_key = rest._generate_cache_key()
        if rest_key is None:
            return None
        key = ("rows insert", rest_key.key, tuple(layout))
        shape = self._shape(key)
        if shape is None:
            template = rest.values([
                {name: sa.bindparam(f"modula_row{i}_{j}", type_=columns[name].type) for j, name in enumerate(names)}
                for i, names in enumerate(layout)
            ])
            shape = self._store(key, self._compile(template, rest_key, False))
        return self._bound(shape, shape.compiled.construct_params(params=values, extracted_parameters=rest_key.bindparams))

    def _shape(self, key) -> Shape | None:
        shape = self._shapes.get(key)
        if shape is not None:
            self._shapes.move_to_end(key)
        return shape

    def _store(self, key, shape: Shape) -> Shape:
        self._shapes[key] = shape
        if len(self._shapes) > self.size:
            self._shapes.popitem(last=False)
        return shape

    @staticmethod
    def _bound(shape: Shape, params: dict[str, Any]) -> tuple[str, list[Any], Shape]:
        if not shape.expands:
            return shape.sql, [params[name] if process is None else process(params[name]) for name, process in shape.binds], shape
        # Expanding IN lists (and literal-execute values) are spread into the text per call.
        expanded = shape.compiled._process_parameters_for_postcompile(params, _populate_self=False)
        processors, values = expanded.processors, expanded.parameters
        args = []
        for name in expanded.positiontup:
            process = processors.get(name)
            args.append(values[name] if process is None else process(values[name]))
        return expanded.statement, args, shape

    def _compile(self, statement, cache_key, is_ddl: bool) -> Shape:
        self.compilations += 1
        if is_ddl:
            return Shape(statement.compile(dialect=self.dialect), True)
        return Shape(self.dialect.statement_compiler(self.dialect, statement, cache_key=cache_key), False)
