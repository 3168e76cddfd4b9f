"""SQL for a plan, per dialect: one statement whose single value is the JSON of `data` (SQLite:
json_object / json_group_array over ordered subqueries; PostgreSQL: json_build_object / json_agg
ordered by row number), with placeholders in the driver's own style and the getters of the values
to bind, in placeholder order.

A value Strawberry could not serialise (an Int beyond 32 bits, a Float that is not finite, a value
SQLite stored under another type than its column's) comes out as the string FALLBACK_MARK, and
an answer holding that mark is thrown away for Strawberry's.
"""

from __future__ import annotations

from dataclasses import dataclass

from modula.db.introspection import ColumnSpec
from modula.schema.compiled.plan import glob_pattern
from modula.schema.compiled.tree import INT_MAX, INT_MIN, Cond, Count, Getter, Insert, Plan, Select

FALLBACK_TEXT = "\x01MODULA_FALLBACK"
FALLBACK_MARK = b"\\u0001MODULA_FALLBACK"  # as both databases write it in JSON
_FLOAT_MAX = "1.7976931348623157e308"
_COMPARE = {"eq": "=", "neq": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


@dataclass
class Statement:
    sql: str
    params: list[Getter]


def quote(identifier: str) -> str:
    """Identifiers come from introspected table specs; quoting keeps any case or keyword intact."""
    return '"' + identifier.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A string constant of our own making (response keys, type names), quoted for SQL."""
    return "'" + text.replace("'", "''") + "'"


class Renderer:
    """Shared structure; the dialects differ in JSON functions, placeholders and a few operators."""

    dialect = ""

    def __init__(self) -> None:
        self.params: list[Getter] = []
        self._aliases = 0

    # -- entry points --

    def query(self, plan: Plan) -> Statement:
        pairs = [(key, self._root_value(value)) for key, value in plan.fields]
        return Statement("SELECT " + self.top(self.object(pairs)), self.params)

    def insert(self, insert: Insert) -> Statement:
        spec = insert.root.api.spec
        target = quote(spec.name)
        if insert.columns:
            names = ", ".join(quote(c.name) for c in insert.columns)
            values = ", ".join(self.bind(getter) for getter in insert.values)
            body = f"INSERT INTO {target} ({names}) VALUES ({values})"
        else:
            body = f"INSERT INTO {target} DEFAULT VALUES"
        returned = self.object(self._fields(insert.returning, None))  # SQLite's RETURNING takes no alias
        return Statement(f"{body} RETURNING {self.top(returned)}", self.params)

    # -- pieces --

    def _root_value(self, value) -> str:
        if isinstance(value, str):
            return literal(value)
        if isinstance(value, Count):
            return self.nested(self.count(value))
        if not isinstance(value, Select):
            return value.render(self)  # a core field (compiled/content.py)
        return self.nested(self.select(value, None))

    def count(self, count: Count) -> str:
        alias = self._alias()
        pairs = [(key, self.column_value("count(*)", "integer") if type_name is None else literal(type_name))
                 for key, type_name in count.fields]
        where = f" WHERE {self.condition(count.where, alias)}" if count.where is not None else ""
        return f"(SELECT {self.object(pairs)} FROM {quote(count.spec.name)} AS {alias}{where})"

    def _alias(self) -> str:
        self._aliases += 1
        return f"t{self._aliases}"

    def bind(self, getter: Getter) -> str:
        self.params.append(getter)
        return self.placeholder(len(self.params))

    def _fields(self, select: Select, alias: str | None) -> list[tuple[str, str]]:
        pairs = []
        for key, value in select.fields:
            if isinstance(value, str):
                pairs.append((key, literal(value)))
            elif isinstance(value, ColumnSpec):
                reference = quote(value.name) if alias is None else f"{alias}.{quote(value.name)}"
                pairs.append((key, self.column_value(reference, value.type)))
            else:
                pairs.append((key, self.nested(self.select(value, alias))))
        return pairs

    def select(self, select: Select, parent: str | None) -> str:
        """A scalar subquery giving the rows' JSON: an array, or one object (NULL when none)."""
        alias = self._alias()
        obj = self.object(self._fields(select, alias))
        conditions = []
        if select.link is not None:
            conditions.append(f"{alias}.{quote(select.link.column)} = {parent}.{quote(select.link.parent_column)}")
        if select.where is not None:
            conditions.append(self.condition(select.where, alias))
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        order = self.ordering(select.order, alias)
        page = self.page(select)
        source = f"{quote(select.spec.name)} AS {alias}"
        if not select.many:
            return f"(SELECT {obj} FROM {source}{where}{page})"
        return self.array(obj, source, where, order, page)

    def page(self, select: Select) -> str:
        text = ""
        if select.limit is not None:
            text += f" LIMIT {self.bind(select.limit)}"
        if select.offset is not None:
            if select.limit is None:
                text += " LIMIT -1" if self.dialect == "sqlite" else " LIMIT ALL"
            text += f" OFFSET {self.bind(select.offset)}"
        return text

    def ordering(self, order: list[tuple[ColumnSpec, str]], alias: str) -> str:
        """As crud.py orders: NULL is the smallest value; NOT NULL columns get no NULLS clause, so
        a plain index serves them on both dialects."""
        if not order:
            return ""
        terms = []
        for column, direction in order:
            term = f"{alias}.{quote(column.name)} {direction.upper()}"
            if column.nullable:
                term += " NULLS FIRST" if direction == "asc" else " NULLS LAST"
            terms.append(term)
        return " ORDER BY " + ", ".join(terms)

    def condition(self, cond: Cond, alias: str) -> str:
        kind = cond.kind
        if kind == "true":
            return "1 = 1"
        if kind == "false":
            return "1 = 0"
        if kind in ("and", "or"):
            if not cond.parts:
                return "1 = 1" if kind == "and" else "1 = 0"
            return "(" + f" {kind.upper()} ".join(self.condition(p, alias) for p in cond.parts) + ")"
        if kind == "not":
            return f"(NOT {self.condition(cond.parts[0], alias)})"
        column = f"{alias}.{quote(cond.column)}"
        if kind == "isnull":
            return f"({column} IS NOT NULL)" if cond.negated else f"({column} IS NULL)"
        if kind == "in":
            items = ", ".join(self.bind(g) for g in cond.values)
            return f"({column} {'NOT IN' if cond.negated else 'IN'} ({items}))"
        if kind in ("like", "ilike"):
            return self.like(column, kind, cond.values[0])
        return f"({column} {_COMPARE[cond.op]} {self.bind(cond.values[0])})"

    # -- dialect parts --

    def placeholder(self, number: int) -> str:
        raise NotImplementedError

    def object(self, pairs: list[tuple[str, str]]) -> str:
        raise NotImplementedError

    def top(self, expression: str) -> str:
        raise NotImplementedError

    def nested(self, subquery: str) -> str:
        raise NotImplementedError

    def array(self, obj: str, source: str, where: str, order: str, page: str) -> str:
        raise NotImplementedError

    def column_value(self, column: str, kind: str) -> str:
        raise NotImplementedError

    def like(self, column: str, kind: str, getter: Getter) -> str:
        raise NotImplementedError


class SQLite(Renderer):
    dialect = "sqlite"
    _MARK = f"char(1) || {literal(FALLBACK_TEXT[1:])}"

    def placeholder(self, number: int) -> str:
        return "?"

    def object(self, pairs: list[tuple[str, str]]) -> str:
        return "json_object(" + ", ".join(f"{literal(key)}, {value}" for key, value in pairs) + ")"

    def top(self, expression: str) -> str:
        return expression

    def nested(self, subquery: str) -> str:
        return f"json({subquery})"  # a subquery's result loses its JSON subtype

    def array(self, obj: str, source: str, where: str, order: str, page: str) -> str:
        # json_group_array keeps the order of an ordered subquery (SQLite 3.40 has no ORDER BY
        # inside aggregates).
        return f"(SELECT json_group_array(json(s.j)) FROM (SELECT {obj} AS j FROM {source}{where}{order}{page}) AS s)"

    def column_value(self, column: str, kind: str) -> str:
        # Tests by typeof(), never IS NULL: in a RETURNING clause SQLite 3.40 can evaluate
        # `column IS NULL` against another column of the new row.
        mark = self._MARK
        if kind == "integer":
            value = f"CASE WHEN {column} BETWEEN {INT_MIN} AND {INT_MAX} THEN {column} ELSE {mark} END"
            return f"CASE typeof({column}) WHEN 'integer' THEN {value} WHEN 'null' THEN NULL ELSE {mark} END"
        if kind == "real":
            # json_object writes 15 significant digits; 17 give back the very double Python reads.
            value = f"CASE WHEN abs({column}) <= {_FLOAT_MAX} THEN json(printf('%!.17g', {column})) ELSE {mark} END"
            return f"CASE typeof({column}) WHEN 'real' THEN {value} WHEN 'null' THEN NULL ELSE {mark} END"
        if kind == "boolean":
            value = f"CASE WHEN {column} THEN json('true') ELSE json('false') END"
            return f"CASE typeof({column}) WHEN 'integer' THEN {value} WHEN 'null' THEN NULL ELSE {mark} END"
        return f"CASE typeof({column}) WHEN 'text' THEN {column} WHEN 'null' THEN NULL ELSE {mark} END"

    def like(self, column: str, kind: str, getter: Getter) -> str:
        if kind == "ilike":
            return f"(lower({column}) LIKE lower({self.bind(getter)}) ESCAPE '\\')"
        # SQLite's LIKE ignores ASCII case; GLOB is its case-sensitive equivalent (as in crud.py).
        return f"({column} GLOB {self.bind(lambda variables, viewer: glob_pattern(getter(variables, viewer)))})"


class PostgreSQL(Renderer):
    dialect = "postgresql"
    _MARK = "'\"\\u0001MODULA_FALLBACK\"'::json"

    def placeholder(self, number: int) -> str:
        return f"${number}"

    def object(self, pairs: list[tuple[str, str]]) -> str:
        return "json_build_object(" + ", ".join(f"{literal(key)}, {value}" for key, value in pairs) + ")"

    def top(self, expression: str) -> str:
        return f"{expression}::text"

    def nested(self, subquery: str) -> str:
        return subquery

    def array(self, obj: str, source: str, where: str, order: str, page: str) -> str:
        numbered = f"row_number() OVER ({order.strip()})" if order else "1"
        return (f"(SELECT coalesce(json_agg(s.j ORDER BY s.n), '[]'::json) FROM "
                f"(SELECT {obj} AS j, {numbered} AS n FROM {source}{where}{order}{page}) AS s)")

    def column_value(self, column: str, kind: str) -> str:
        mark = self._MARK
        if kind == "integer":
            return (f"CASE WHEN {column} BETWEEN {INT_MIN} AND {INT_MAX} THEN to_json({column}) "
                    f"WHEN {column} IS NULL THEN NULL ELSE {mark} END")
        if kind == "real":
            value = f"{column}::float8"  # a float4 column comes back from asyncpg widened
            return (f"CASE WHEN {value} BETWEEN -{_FLOAT_MAX}::float8 AND {_FLOAT_MAX}::float8 THEN to_json({value}) "
                    f"WHEN {column} IS NULL THEN NULL ELSE {mark} END")
        return column

    def like(self, column: str, kind: str, getter: Getter) -> str:
        return f"({column} {'ILIKE' if kind == 'ilike' else 'LIKE'} {self.bind(getter)} ESCAPE '\\')"


def renderer(dialect: str) -> Renderer:
    return SQLite() if dialect == "sqlite" else PostgreSQL()

