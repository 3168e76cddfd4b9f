"""Content nodes and their field values: the coupled, all-or-nothing writes at the heart of the CMS.

Creating content inserts a `content_data` row, takes its generated id and inserts one
`content_fields` row per value, in one transaction. Every value is checked against the
datatype's field list and the field's type first; a bad request writes nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from modula.cms import content_tree, known_fields
from modula.cms.field_types import REFERENCE_TABLES, InvalidValue, StoredValue, parse_value
from modula.db import content_paths
from modula.db import core_tables as t
from modula.db.connection import Session
from modula.db.errors import CheckAgain, UniqueViolation
from modula.db.types import utcnow
from modula.errors import ModulaError, Problems, not_found

STATUSES = ("draft", "published")


@dataclass(frozen=True)
class FieldValue:
    field_id: int
    value: str | None


@dataclass(frozen=True)
class NewContent:
    route_id: int
    datatype_id: int
    parent_id: int | None
    fields: Sequence[FieldValue]
    status: str = "draft"
    author_id: int | None = None
    slug: str | None = None  # None: derived from the node's title-like value, free among its siblings


async def create_content(session: Session, new: NewContent) -> dict[str, Any]:
    """Insert a content node and all its field values, or nothing at all."""
    if new.status not in STATUSES:
        raise ModulaError("INVALID_VALUE", f"status must be one of {', '.join(STATUSES)}", ("input", "status"))
    if new.slug is not None:
        content_tree.check_slug(new.slug, ("input", "slug"))
    if session.dialect == "postgresql" and not session.in_transaction:
        created = await _create_in_one_statement(session, new)
        if created is not None:
            return created
    async with session.transaction(short=True):
        # The route, locked on PostgreSQL (sibling positions are read, then written), and the
        # datatype with its fields: one statement.
        rows = await session.fetch_all(_ROUTE_AND_FIELDS, {"route_id": new.route_id, "datatype_id": new.datatype_id})
        if rows[0]["route__id"] is None:
            raise not_found("route", new.route_id, ("input", "routeId"))
        datatype_fields = _fields_of(rows, new.datatype_id, ("input", "datatypeId"))
        parent_path = None
        if new.parent_id is not None:
            parent_path = (await _check_parent(session, new.parent_id, new.route_id, ("input", "parentId")))["tree_path"]
        stored = await _check_values(session, datatype_fields, new.fields, ("input", "fields"), require_all=True)
        slug = new.slug
        if slug is None:
            slug = await _derived_slug(session, new, _base_slug(datatype_fields, stored))

        now = utcnow()
        node = {
            "new_route_id": new.route_id,
            "new_datatype_id": new.datatype_id,
            "new_parent_id": new.parent_id,
            "new_author_id": new.author_id,
            "new_status": new.status,
            "new_slug": slug,
            "new_tree_path": content_paths.tree_path(parent_path, slug),
            "new_created_at": now,
            "new_updated_at": now,
        }
        with _slug_taken(slug, ("input", "slug")):  # an explicit slug is checked by the unique index
            if session.dialect == "postgresql":  # the node and its values in one round trip
                return await session.fetch_one(_INSERT_WITH_VALUES[new.parent_id is None], {**node, **_value_arrays(stored)})
            content = await session.fetch_one(_INSERT_ROOT if new.parent_id is None else _INSERT_CHILD, node)
        await _insert_values(session, content["id"], stored)
    return content


async def _create_in_one_statement(session: Session, new: NewContent) -> dict[str, Any] | None:
    """PostgreSQL: the values checked against the fields this process knows, then the node and its
    values in one autocommitted statement that re-checks, under the route's lock, what was assumed
    (sql/postgresql/0017). None when it cannot be done so, with nothing written: no such datatype,
    a bad value, a reference to look up, or a route, parent or field not as known. The checked
    write then runs and reports what is wrong, in its order."""
    known = await known_fields.fields_with_generation(session, new.datatype_id)
    if known is None:
        return None
    datatype_fields, fields_generation = known
    stored, references, problems = _parsed_values(datatype_fields, new.fields, ("input", "fields"), require_all=True)
    if problems.items or references:
        return None
    now = utcnow()
    # The function derives a free slug from `base` (sql/postgresql/0017) when none is given.
    base = None if new.slug is not None else _base_slug(datatype_fields, stored)
    try:
        with _slug_taken(new.slug or "", ("input", "slug")):
            return await session.fetch_one(_CREATE_IN_ONE_STATEMENT, {
                "route_id": new.route_id, "datatype_id": new.datatype_id, "parent_id": new.parent_id,
                "author_id": new.author_id, "status": new.status, "now": now, "fields_generation": fields_generation,
                "slug": new.slug, "base": base, **_value_arrays(stored)})
    except CheckAgain:
        known_fields.forget(session.database, new.datatype_id)
        return None


@contextlib.contextmanager
def _slug_taken(slug: str, path) -> Iterator[None]:
    """The unique index on (route_id, tree_path) failing, as SLUG_TAKEN at `path`."""
    try:
        yield
    except UniqueViolation as exc:
        if "tree_path" not in (exc.constraint or ""):
            raise
        raise ModulaError("SLUG_TAKEN", f"slug {slug!r} is already taken among the node's siblings", path) from None


def _base_slug(datatype_fields: dict[int, dict[str, Any]], stored: dict[int, StoredValue]) -> str:
    """The slug of the node's title-like value, before it is made free among its siblings."""
    return content_paths.base_slug(content_paths.title_of(datatype_fields.values(), {i: v.value for i, v in stored.items()}))


async def _derived_slug(session: Session, new: NewContent, base: str) -> str:
    """`base` made free among the node's siblings (`hello-2`): one statement."""
    taken = await session.fetch_all(_SIBLING_SLUGS[new.parent_id is None], {
        "route_id": new.route_id, "parent_id": new.parent_id, "stem": content_paths.stem(base) + "%"})
    return content_paths.free_slug(base, (row["slug"] for row in taken))


def _value_arrays(stored: dict[int, StoredValue]) -> dict[str, list[Any]]:
    """The values as four parallel arrays, for PostgreSQL's unnest."""
    return {"field_ids": list(stored), "texts": [v.value for v in stored.values()],
            "numbers": [v.value_number for v in stored.values()], "times": [v.value_time for v in stored.values()]}


async def update_content(
    session: Session, content_id: int, values: Sequence[FieldValue], *, status: str | None = None,
    slug: str | None = None,
) -> dict[str, Any]:
    """Set the given field values (null clears an optional one); untouched fields keep theirs. A new
    slug changes the node's path and its descendants' paths."""
    if status is not None and status not in STATUSES:
        raise ModulaError("INVALID_VALUE", f"status must be one of {', '.join(STATUSES)}", ("status",))
    if slug is not None:
        content_tree.check_slug(slug, ("slug",))
    async with session.transaction(short=True):
        content = await get_content(session, content_id)
        if content is None:
            raise not_found("content", content_id, ("id",))
        if slug is not None and slug != content["slug"]:
            await content_tree.lock_route(session, content["route_id"])
            await content_tree.rename(session, content_id, slug, ("slug",))
        datatype_fields = await _datatype_fields(session, content["datatype_id"], ("id",))
        stored = await _check_values(session, datatype_fields, values, ("fields",), require_all=False)
        # Every named field loses its old value; the non-null ones get their new value.
        await session.execute(
            sa.delete(t.content_fields).where(
                t.content_fields.c.content_data_id == content_id,
                t.content_fields.c.field_id.in_([v.field_id for v in values]),
            )
        )
        await _insert_values(session, content_id, stored)
        changes: dict[str, Any] = {"updated_at": utcnow()}
        if status is not None:
            changes["status"] = status
        await session.execute(sa.update(t.content_data).where(t.content_data.c.id == content_id).values(**changes))
        return await get_content(session, content_id)


async def delete_content(session: Session, content_id: int) -> list[int]:
    """Delete a node and its whole subtree; returns the ids that were deleted."""
    async with session.transaction():
        content = await get_content(session, content_id)
        if content is None:
            raise not_found("content", content_id, ("id",))
        await content_tree.lock_route(session, content["route_id"])
        content = await get_content(session, content_id)  # as it is now that the tree is ours
        deleted = await content_tree.subtree_ids(session, content_id)
        # ON DELETE CASCADE removes descendants and field values with the node.
        await session.execute(sa.delete(t.content_data).where(t.content_data.c.id == content_id))
        await content_tree.close_gap(session, content["route_id"], content["parent_id"], content["position"])
    return deleted


async def get_content(session: Session, content_id: int) -> dict[str, Any] | None:
    return await session.fetch_one(_CONTENT_BY_ID, {"content_id": content_id})


@dataclass(frozen=True)
class Visibility:
    """The nodes a restricted reader may see: published ones, and/or those `author_id` wrote."""

    published: bool
    author_id: int | None = None

    def condition(self) -> sa.ColumnElement[bool]:
        c = t.content_data.c
        parts = [c.status == "published"] if self.published else []
        if self.author_id is not None:
            parts.append(c.author_id == self.author_id)
        return sa.or_(*parts) if parts else sa.false()


async def list_contents(
    session: Session, *, route_id: int | None, datatype_id: int | None, limit: int, offset: int,
    visible: Visibility | None = None,
) -> list[dict[str, Any]]:
    statement = sa.select(t.content_data).order_by(t.content_data.c.id).limit(limit).offset(offset)
    if visible is not None:
        statement = statement.where(visible.condition())
    if route_id is not None:
        statement = statement.where(t.content_data.c.route_id == route_id)
    if datatype_id is not None:
        statement = statement.where(t.content_data.c.datatype_id == datatype_id)
    return await session.fetch_all(statement)


async def contents_by_ids(session: Session, ids: list[int]) -> list[dict[str, Any]]:
    return await session.fetch_all(sa.select(t.content_data).where(t.content_data.c.id.in_(ids)))


async def children_of(session: Session, parent_ids: list[int]) -> list[dict[str, Any]]:
    statement = (
        sa.select(t.content_data)
        .where(t.content_data.c.parent_id.in_(parent_ids))
        .order_by(t.content_data.c.parent_id, t.content_data.c.position)
    )
    return await session.fetch_all(statement)


async def values_of(session: Session, content_ids: list[int]) -> list[dict[str, Any]]:
    """Field value rows of the given nodes, in their datatype's field order, each with its field
    definition under `field` (one statement for values and definitions)."""
    cf, cd, df, f = t.content_fields, t.content_data, t.datatypes_fields, t.fields
    field_columns = [column.label(f"field__{column.name}") for column in f.c]
    statement = (
        sa.select(cf, *field_columns)
        .join(cd, cd.c.id == cf.c.content_data_id)
        .join(f, f.c.id == cf.c.field_id)
        .outerjoin(df, sa.and_(df.c.datatype_id == cd.c.datatype_id, df.c.field_id == cf.c.field_id))
        .where(cf.c.content_data_id.in_(content_ids))
        .order_by(cf.c.content_data_id, df.c.position, cf.c.id)
    )
    rows = await session.fetch_all(statement)
    for row in rows:
        row["field"] = {name[len("field__"):]: row.pop(name) for name in list(row) if name.startswith("field__")}
    return rows


async def _datatype_fields(session: Session, datatype_id: int, path) -> dict[int, dict[str, Any]]:
    """The datatype's fields by id, in its order (one statement: the datatype and its fields)."""
    return _fields_of(await session.fetch_all(_DATATYPE_FIELDS, {"datatype_id": datatype_id}), datatype_id, path)


def _fields_of(rows: list[dict[str, Any]], datatype_id: int, path) -> dict[int, dict[str, Any]]:
    """Field rows by id from rows of a datatype joined to its fields (no datatype: NOT_FOUND)."""
    if not rows or rows[0]["datatype__id"] is None:
        raise not_found("datatype", datatype_id, path)
    fields: dict[int, dict[str, Any]] = {}
    for row in rows:
        row.pop("datatype__id")
        row.pop("route__id", None)
        if row["id"] is not None:  # a datatype without fields is one row of NULLs
            fields[row["id"]] = row
    return fields


async def _check_parent(session: Session, parent_id: int, route_id: int, path) -> dict[str, Any]:
    parent = await get_content(session, parent_id)
    if parent is None:
        raise not_found("parent content", parent_id, path)
    if parent["route_id"] != route_id:
        raise ModulaError(
            "INVALID_PARENT", f"parent {parent_id} belongs to route {parent['route_id']}, not {route_id}", path
        )
    return parent


async def _check_values(
    session: Session,
    datatype_fields: dict[int, dict[str, Any]],
    values: Sequence[FieldValue],
    path: tuple,
    *,
    require_all: bool,
) -> dict[int, StoredValue]:
    """Validate every value; report all problems at once. Returns field id -> stored value."""
    stored, references, problems = _parsed_values(datatype_fields, values, path, require_all=require_all)
    await _check_references(session, references, path, problems)
    problems.raise_if_any()
    return stored


def _parsed_values(
    datatype_fields: dict[int, dict[str, Any]], values: Sequence[FieldValue], path: tuple, *, require_all: bool,
) -> tuple[dict[int, StoredValue], dict[str, dict[int, list[int]]], Problems]:
    """Every value parsed by its field's type: (field id -> stored value, the references to look
    up: type -> id -> indexes, the problems found)."""
    problems = Problems()
    stored: dict[int, StoredValue] = {}
    seen: dict[int, int] = {}
    references: dict[str, dict[int, list[int]]] = {}
    for index, item in enumerate(values):
        here = (*path, index)
        field = datatype_fields.get(item.field_id)
        if field is None:
            problems.add("UNKNOWN_FIELD", f"field {item.field_id} is not part of this datatype", (*here, "fieldId"))
            continue
        if item.field_id in seen:
            problems.add("DUPLICATE_FIELD", f"field {item.field_id} is already set by {path[-1]}[{seen[item.field_id]}]", (*here, "fieldId"))
            continue
        seen[item.field_id] = index
        if item.value is None:
            if field["required"]:
                problems.add("REQUIRED_FIELD_MISSING", f"field {field['label']!r} is required and cannot be null", (*here, "value"))
            continue
        try:
            value = parse_value(field["type"], item.value)
        except InvalidValue as exc:
            problems.add("INVALID_VALUE", f"field {field['label']!r} ({field['type']}): {exc}", (*here, "value"))
            continue
        if field["required"] and field["type"] in ("text", "richtext") and not value.value.strip():
            problems.add("REQUIRED_FIELD_MISSING", f"field {field['label']!r} is required and cannot be empty", (*here, "value"))
            continue
        stored[item.field_id] = value
        if field["type"] in REFERENCE_TABLES:
            references.setdefault(field["type"], {}).setdefault(int(value.value), []).append(index)
    if require_all:
        for field_id, field in datatype_fields.items():
            if field["required"] and field_id not in seen:
                problems.add("REQUIRED_FIELD_MISSING", f"field {field['label']!r} (id {field_id}) is required", path)
    return stored, references, problems


async def _check_references(session: Session, references, path, problems: Problems) -> None:
    for field_type, by_id in references.items():
        table = getattr(t, REFERENCE_TABLES[field_type])
        found = {
            row["id"] for row in await session.fetch_all(sa.select(table.c.id).where(table.c.id.in_(list(by_id))))
        }
        for ident, indexes in by_id.items():
            if ident not in found:
                for index in indexes:
                    problems.add("NOT_FOUND", f"{field_type} {ident} does not exist", (*path, index, "value"))


async def _insert_values(session: Session, content_id: int, stored: dict[int, StoredValue]) -> None:
    await session.execute_many(
        _INSERT_VALUE,
        [
            {
                "content_data_id": content_id,
                "field_id": field_id,
                "value": value.value,
                "value_number": value.value_number,
                "value_time": value.value_time,
            }
            for field_id, value in stored.items()
        ],
    )


# --- statement templates: built once, compiled once, bound per call (db/statements.py) ---------

def _param(name: str, column: sa.Column) -> sa.BindParameter:
    return sa.bindparam(name, type_=column.type)


_CONTENT_BY_ID = sa.select(t.content_data).where(t.content_data.c.id == _param("content_id", t.content_data.c.id))

_DATATYPE_FIELDS = known_fields.DATATYPE_FIELDS


def _route_and_fields() -> sa.Select:
    """One row per field of the datatype (one row of NULLs when it has none or does not exist),
    each with the route's id, or NULL when there is no such route; the route row is locked on
    PostgreSQL (FOR UPDATE in a CTE, taken whatever the datatype)."""
    r, d, df, f = t.routes, t.datatypes, t.datatypes_fields, t.fields
    locked = sa.select(r.c.id).where(r.c.id == _param("route_id", r.c.id)).with_for_update().cte("locked_route")
    one = sa.select(sa.literal_column("1").label("one")).subquery("one")
    source = (one.outerjoin(d, d.c.id == _param("datatype_id", d.c.id))
              .outerjoin(df, df.c.datatype_id == d.c.id).outerjoin(f, f.c.id == df.c.field_id))
    return (sa.select(sa.select(locked.c.id).scalar_subquery().label("route__id"), d.c.id.label("datatype__id"), *f.c)
            .select_from(source).order_by(df.c.position))


_ROUTE_AND_FIELDS = _route_and_fields()


def _insert_with_values(root: bool) -> sa.TextClause:
    """PostgreSQL: the node (at the end of its siblings) and its values in one statement, the
    values as four arrays (unnest). RETURNING the node as _insert_content does."""
    siblings = "parent_id IS NULL" if root else "parent_id = :new_parent_id"
    returned = ", ".join(t.content_data.c.keys())
    return sa.text(
        "WITH node AS (INSERT INTO content_data (route_id, datatype_id, parent_id, position, author_id, status,"
        " slug, tree_path, created_at, updated_at) VALUES (:new_route_id, :new_datatype_id, :new_parent_id,"
        f" (SELECT coalesce(max(position) + 1, 0) FROM content_data WHERE route_id = :new_route_id AND {siblings}),"
        " :new_author_id, :new_status, :new_slug, :new_tree_path, :new_created_at, :new_updated_at) RETURNING *),"
        " inserted AS (INSERT INTO content_fields (content_data_id, field_id, value, value_number, value_time)"
        " SELECT node.id, v.field_id, v.value, v.value_number, v.value_time FROM node,"
        " unnest(CAST(:field_ids AS integer[]), CAST(:texts AS text[]), CAST(:numbers AS double precision[]),"
        " CAST(:times AS timestamptz[])) AS v(field_id, value, value_number, value_time))"
        f" SELECT {returned} FROM node"
    )


_INSERT_WITH_VALUES = {True: _insert_with_values(True), False: _insert_with_values(False)}

_CREATE_IN_ONE_STATEMENT = sa.text(
    f"SELECT {', '.join(t.content_data.c.keys())} FROM modula_create_content(CAST(:route_id AS integer),"
    " CAST(:datatype_id AS integer), CAST(:parent_id AS integer), CAST(:author_id AS integer), CAST(:status AS text),"
    " CAST(:now AS timestamptz), CAST(:fields_generation AS bigint), CAST(:field_ids AS integer[]), CAST(:texts AS text[]),"
    " CAST(:numbers AS double precision[]), CAST(:times AS timestamptz[]), CAST(:slug AS text), CAST(:base AS text))"
)


def _insert_content(root: bool) -> sa.Insert:
    """INSERT of a node at the end of its siblings: its position is computed in the statement
    (positions are 0..n-1, so max + 1; one index lookup on ix_content_data_siblings)."""
    cd = t.content_data
    parent = _param("new_parent_id", cd.c.parent_id)
    siblings = cd.c.parent_id.is_(None) if root else cd.c.parent_id == parent
    position = (
        sa.select(sa.func.coalesce(sa.func.max(cd.c.position) + 1, 0))
        .where(cd.c.route_id == _param("new_route_id", cd.c.route_id), siblings)
        .scalar_subquery()
    )
    values = {name: _param(f"new_{name}", cd.c[name])
              for name in ("route_id", "datatype_id", "parent_id", "author_id", "status", "slug", "tree_path",
                           "created_at", "updated_at")}
    return cd.insert().values(**values, position=position).returning(*cd.c)


_INSERT_ROOT, _INSERT_CHILD = _insert_content(True), _insert_content(False)


def _sibling_slugs(root: bool) -> sa.Select:
    """The slugs of the would-be siblings that start like a derived slug's candidates."""
    cd = t.content_data
    siblings = cd.c.parent_id.is_(None) if root else cd.c.parent_id == _param("parent_id", cd.c.parent_id)
    return sa.select(cd.c.slug).where(cd.c.route_id == _param("route_id", cd.c.route_id), siblings,
                                      cd.c.slug.like(_param("stem", cd.c.slug)))


_SIBLING_SLUGS = {True: _sibling_slugs(True), False: _sibling_slugs(False)}

_INSERT_VALUE = t.content_fields.insert().values(
    {name: _param(name, t.content_fields.c[name])
     for name in ("content_data_id", "field_id", "value", "value_number", "value_time")}
)
