"""Resolvers of the generated API: root queries and mutations per plugin table, and the
relationship fields, batched per request through DataLoaders (one statement per relationship
and page of parents, never one per row)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, Protocol

import strawberry
from strawberry.dataloader import DataLoader

from modula.db.crud import CrudError, OnConflict, crud_for
from modula.db.errors import DatabaseError
from modula.errors import ModulaError
from modula.plugins.data import ChildLink, NewRow, TableWriter
from modula.schema.dynamic import python_name, resolver
from modula.schema import core_types, naming
from modula.schema.guards import content_visible, forbidden, narrowed, require, row_filter
from modula.schema.filters import COMPARABLE, NUMERIC, UNSET, PageInfo, given, to_order, to_where
from modula.schema.paging import cursor, page, position
from modula.schema.table_types import ArrayRelation, ObjectRelation, TableApi, column_annotation

Fields = dict[str, tuple[Any, Any]]


class Binding(Protocol):
    """What generated resolvers need from the plugin that owns the table."""

    def writing(self, info) -> contextlib.AbstractAsyncContextManager[TableWriter]: ...


# The CRUD builder's parameter names as the GraphQL arguments they came from.
_ARGUMENTS = {"order_by": "orderBy", "on_conflict": "onConflict"}


def _graphql_path(crud_path: tuple) -> tuple:
    if crud_path[:1] in (("rows",), ("key",)):  # positions in one statement's batch, or pk arguments
        crud_path = crud_path[2:] if crud_path[:1] == ("rows",) else crud_path[1:]
    return tuple(_ARGUMENTS.get(part, part) if isinstance(part, str) else part for part in crud_path)


@contextlib.contextmanager
def reported(path: tuple = ()):
    """CRUD and database failures as client errors with the input path they concern."""
    try:
        yield
    except CrudError as exc:
        raise ModulaError(exc.code, exc.message, (*path, *_graphql_path(exc.path))) from None
    except DatabaseError as exc:
        detail = f" ({exc.constraint})" if exc.constraint else ""
        raise ModulaError(exc.code, exc.message + detail, path) from None


def _loader(info, key: tuple, load: Callable) -> DataLoader:
    return info.context.loaders.keyed(key, lambda: DataLoader(load_fn=load))


def _freeze(value: Any) -> Any:
    """A hashable stand-in for filter/order arguments, to share loaders between equal calls."""
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


# --- relationships -------------------------------------------------------------------------


def object_relation_field(rel: ObjectRelation, target: TableApi) -> tuple[str, tuple[Any, Any]]:
    spec = target.spec

    async def resolve(root, info):
        value = root[rel.column]
        if value is None:
            return None
        rule = row_filter(info, "read", spec.name)

        async def load(keys: list) -> list:
            rows = await crud_for(spec).by_keys(info.context.session, rel.target_column, list(keys), where=rule)
            return [(rows.get(k) or [None])[0] for k in keys]

        row = await _loader(info, ("object", spec.name, rel.target_column), load).load(value)
        if row is None and not rel.nullable:
            raise forbidden("read", f"this {spec.name} row")
        return row

    returns = target.object | None if rel.nullable else target.object
    fn = resolver(resolve, {}, returns, name=rel.field)
    return "rel_" + rel.field, (returns, strawberry.field(resolver=fn, name=rel.field))


def array_relation_field(rel: ArrayRelation, child: TableApi) -> tuple[str, tuple[Any, Any]]:
    spec = child.spec

    async def resolve(root, info, where=UNSET, order_by=UNSET, limit=None, offset=None):
        with reported():
            filters = narrowed(to_where(where, child.attributes, ("where",)), row_filter(info, "read", spec.name))
            order = to_order(order_by, child.attributes, ("orderBy",))
        size, start = page(info.context.settings, limit, offset) if limit is not None or offset is not None else (None, 0)

        async def load(keys: list) -> list:
            with reported():
                rows = await crud_for(spec).by_keys(info.context.session, rel.column, list(keys),
                                                    where=filters, order_by=order, limit=size, offset=start)
            return [rows.get(k, []) for k in keys]

        key = ("array", spec.name, rel.column, _freeze(filters), _freeze(order), size, start)
        return await _loader(info, key, load).load(root[rel.parent_column])

    arguments = {
        "where": (child.filter | None, UNSET),
        "order_by": (list[child.order_by] | None, UNSET),
        "limit": (int | None, UNSET),
        "offset": (int | None, UNSET),
    }
    fn = resolver(resolve, arguments, list[child.object], name=rel.field)
    return "rel_" + rel.field, (list[child.object], strawberry.field(resolver=fn, name=rel.field))


# --- root queries ---------------------------------------------------------------------------


def _pk_arguments(api: TableApi) -> dict[str, tuple[Any, Any]]:
    return {python_name(c): (column_annotation(api.spec.column(c), required=True), UNSET) for c in api.spec.primary_key}


def _pk_key(api: TableApi, kwargs: dict) -> dict:
    return {c: kwargs.pop(python_name(c)) for c in api.spec.primary_key}


def _key_where(key: dict) -> dict:
    return {column: {"eq": value} for column, value in key.items()}


def _pk_where(api: TableApi, kwargs: dict) -> dict:
    return _key_where(_pk_key(api, kwargs))


def _require_read_if_returning(info, table: str) -> None:
    """A many-row mutation that selects `returning` needs `read`: checked before anything is
    written (the field checks again, for selections this cannot see, such as fragments)."""
    for selected in info.selected_fields:
        if any(getattr(child, "name", None) == "returning" for child in selected.selections):
            require(info, "read", table)


def _require_create(info, table: str, rows: list[NewRow], on_conflict: Any) -> None:
    """`create` on the table and on every table a nested insert reaches; an upsert that updates
    also needs `update`."""
    require(info, "create", table)
    if given(on_conflict) and on_conflict.update_columns:
        require(info, "update", table)
    for row in rows:
        for link, children in row.children:
            _require_create(info, link.table, children, None)


def query_fields(api: TableApi) -> Fields:
    spec, names = api.spec, api.names
    crud = crud_for(spec)
    numeric = [c.name for c in spec.columns if c.type in NUMERIC]
    comparable = [c.name for c in spec.columns if c.type in COMPARABLE]

    async def rows(root, info, where=UNSET, order_by=UNSET, limit=None, offset=None):
        size, start = page(info.context.settings, limit, offset)
        rule = row_filter(info, "read", spec.name)
        with reported():
            return await crud.find(info.context.session, where=narrowed(to_where(where, api.attributes, ("where",)), rule),
                                   order_by=to_order(order_by, api.attributes, ("orderBy",)), limit=size, offset=start)

    async def connection(root, info, where=UNSET, order_by=UNSET, first=None, after=None):
        size, _ = page(info.context.settings, first, None, names=("first", "offset"))
        start = position(after)
        rule = row_filter(info, "read", spec.name)
        with reported():
            filters = narrowed(to_where(where, api.attributes, ("where",)), rule)
            found = await crud.find(info.context.session, where=filters, order_by=to_order(order_by, api.attributes, ("orderBy",)),
                                    limit=size + 1, offset=start)
        page_rows = found[:size]
        edges = [{"cursor": cursor(start + i), "node": row} for i, row in enumerate(page_rows)]

        async def count() -> int:
            return await crud.count(info.context.session, where=filters)

        info_ = PageInfo(has_next_page=len(found) > size, has_previous_page=start > 0,
                         start_cursor=edges[0]["cursor"] if edges else None, end_cursor=edges[-1]["cursor"] if edges else None)
        return {"edges": edges, "page_info": info_, "count": count}

    async def one(root, info, **kwargs):
        rule = row_filter(info, "read", spec.name)
        if rule is None:
            return await crud.by_pk(info.context.session, _pk_key(api, kwargs))
        found = await crud.find(info.context.session, where=narrowed(_pk_where(api, kwargs), rule), limit=1)
        return found[0] if found else None

    async def aggregate(root, info, where=UNSET):
        rule = row_filter(info, "read", spec.name)
        with reported():
            return await crud.aggregate(info.context.session, where=narrowed(to_where(where, api.attributes, ()), rule),
                                        sum=numeric, avg=numeric, min=comparable, max=comparable)

    listing = {"where": (api.filter | None, UNSET), "order_by": (list[api.order_by] | None, UNSET)}
    fields: Fields = {
        names.list: (list[api.object], strawberry.field(
            resolver=resolver(rows, {**listing, "limit": (int | None, UNSET), "offset": (int | None, UNSET)}, list[api.object], name=names.list),
            name=names.list, description=f"Rows of {spec.name}.")),
        names.connection: (api.connection, strawberry.field(
            resolver=resolver(connection, {**listing, "first": (int | None, UNSET), "after": (str | None, UNSET)}, api.connection, name=names.connection),
            name=names.connection, description=f"Rows of {spec.name} as a Relay connection.")),
        names.aggregate: (api.aggregate, strawberry.field(
            resolver=resolver(aggregate, {"where": (api.filter | None, UNSET)}, api.aggregate, name=names.aggregate),
            name=names.aggregate)),
    }
    if spec.primary_key:
        fields[names.one] = (api.object | None, strawberry.field(
            resolver=resolver(one, _pk_arguments(api), api.object | None, name=names.one), name=names.one,
            description=f"One row of {spec.name} by its primary key, or null."))
    return fields


# --- mutations ------------------------------------------------------------------------------


def new_rows(api: TableApi, apis: dict[str, TableApi], objects: list, path: tuple) -> list[NewRow]:
    rows = []
    for i, obj in enumerate(objects):
        here = (*path, i)
        values = {column: getattr(obj, attribute) for attribute, column in api.attributes.items()
                  if getattr(obj, attribute) is not UNSET}
        row = NewRow(values, here)
        for rel in api.array_relations:
            children = getattr(obj, "rel_" + rel.field)
            if given(children):
                link = ChildLink(rel.child, rel.column, rel.parent_column, rel.field)
                row.children.append((link, new_rows(apis[rel.child], apis, children, (*here, rel.field))))
        rows.append(row)
    return rows


def _set_values(api: TableApi, value: Any) -> dict:
    values = {column: getattr(value, attribute) for attribute, column in api.attributes.items()
              if getattr(value, attribute, UNSET) is not UNSET}
    if not values:
        raise ModulaError("INVALID_INPUT", "give at least one column to set", ("set",))
    return values


def _on_conflict(api: TableApi, value: Any) -> OnConflict | None:
    if not given(value):
        return None
    return OnConflict(
        constraint_columns=tuple(c.value for c in value.columns),
        update_columns=tuple(c.value for c in value.update_columns),
        where=to_where(value.where, api.attributes, ("onConflict", "where")),
    )


def _chosen_rows(where: dict | None, all_rows: bool, field: str) -> dict | None:
    """The filter of an update or delete over many rows: one that matches every row (`{}`, or
    only `and`s of such) is a mistake unless the request says so with `allRows: true`."""
    if not all_rows and _matches_everything(where):
        raise ModulaError("ALL_ROWS_NOT_CONFIRMED", f"{field} with an empty `where` would touch every row: give a"
                          " condition, or add `allRows: true` to mean every row", ("where",))
    return where


def _matches_everything(where: dict | None) -> bool:
    if not where:
        return True
    return set(where) == {"and"} and all(_matches_everything(item) for item in where["and"])


def _count(rows: list[NewRow]) -> int:
    return sum(1 + sum(_count(children) for _, children in row.children) for row in rows)


def mutation_fields(api: TableApi, apis: dict[str, TableApi], binding: Binding) -> Fields:
    spec, names = api.spec, api.names

    async def insert(root, info, objects, on_conflict=UNSET):
        rows = new_rows(api, apis, objects, ("objects",))
        _require_create(info, spec.name, rows, on_conflict)
        _require_read_if_returning(info, spec.name)
        async with binding.writing(info) as writer:
            with reported(("objects",)):
                stored = await writer.insert(spec.name, rows, _on_conflict(api, on_conflict))
        return {"affected_rows": _count(rows) - (len(rows) - len(stored)), "returning": stored}

    async def insert_one(root, info, object, on_conflict=UNSET):
        rows = new_rows(api, apis, [object], ("object",))
        rows[0].path = ("object",)
        _require_create(info, spec.name, rows, on_conflict)
        require(info, "read", spec.name)  # the row comes back
        async with binding.writing(info) as writer:
            with reported(("object",)):
                stored = await writer.insert(spec.name, rows, _on_conflict(api, on_conflict))
        return stored[0] if stored else None

    async def update(root, info, where, set, all_rows=False):
        _require_read_if_returning(info, spec.name)
        values = _set_values(api, set)
        rule = row_filter(info, "update", spec.name)
        chosen = _chosen_rows(to_where(where, api.attributes, ("where",)), all_rows, names.update)
        async with binding.writing(info) as writer:
            with reported():
                changed = await writer.update(spec.name, narrowed(chosen, rule), values, ("where",))
        return {"affected_rows": len(changed), "returning": changed}

    async def update_one(root, info, set, **kwargs):
        require(info, "read", spec.name)  # the row comes back
        values = _set_values(api, set)
        key = _pk_key(api, kwargs)
        async with binding.writing(info) as writer:
            with reported():
                changed = await writer.update(spec.name, narrowed(_key_where(key), row_filter(info, "update", spec.name)), values, ())
        return changed[0] if changed else None

    async def delete(root, info, where, all_rows=False):
        _require_read_if_returning(info, spec.name)
        rule = row_filter(info, "delete", spec.name)
        chosen = _chosen_rows(to_where(where, api.attributes, ("where",)), all_rows, names.delete)
        async with binding.writing(info) as writer:
            with reported():
                gone = await writer.delete(spec.name, narrowed(chosen, rule), ("where",))
        return {"affected_rows": len(gone), "returning": gone}

    async def delete_one(root, info, **kwargs):
        require(info, "read", spec.name)  # the row comes back
        key = _pk_key(api, kwargs)
        async with binding.writing(info) as writer:
            with reported():
                gone = await writer.delete(spec.name, narrowed(_key_where(key), row_filter(info, "delete", spec.name)), ())
        return gone[0] if gone else None

    conflict = {"on_conflict": (api.on_conflict | None, UNSET)} if api.on_conflict else {}
    fields: Fields = {
        names.insert: (api.response, strawberry.mutation(
            resolver=resolver(insert, {"objects": (list[api.insert_input], UNSET), **conflict}, api.response, name=names.insert),
            name=names.insert, description=f"Insert rows into {spec.name}, with their children, in one transaction.")),
        names.insert_one: (api.object | None, strawberry.mutation(
            resolver=resolver(insert_one, {"object": (api.insert_input, UNSET), **conflict}, api.object | None, name=names.insert_one),
            name=names.insert_one)),
        names.delete: (api.response, strawberry.mutation(
            resolver=resolver(delete, {"where": (api.filter, UNSET), "all_rows": (bool, False)}, api.response, name=names.delete),
            name=names.delete, description="Delete the matching rows; every row only with `where: {}, allRows: true`.")),
    }
    if api.set_input is not None:
        fields[names.update] = (api.response, strawberry.mutation(
            resolver=resolver(update, {"where": (api.filter, UNSET), "set": (api.set_input, UNSET), "all_rows": (bool, False)},
                              api.response, name=names.update),
            name=names.update, description="Change the matching rows; every row only with `where: {}, allRows: true`."))
    if spec.primary_key:
        pk = _pk_arguments(api)
        if api.set_input is not None:
            fields[names.update_one] = (api.object | None, strawberry.mutation(
                resolver=resolver(update_one, {**pk, "set": (api.set_input, UNSET)}, api.object | None, name=names.update_one),
                name=names.update_one))
        fields[names.delete_one] = (api.object | None, strawberry.mutation(
            resolver=resolver(delete_one, pk, api.object | None, name=names.delete_one), name=names.delete_one))
    return fields


# Core tables a plugin table may point at, as (resource, the request's loader, the core type).
CORE_TARGETS: dict[str, tuple[str, str, type]] = {
    "routes": ("route", "route", core_types.Route),
    "sites": ("site", "site", core_types.Site),
    "datatypes": ("datatype", "datatype", core_types.Datatype),
    "content_data": ("content", "content", core_types.Content),
}


def core_relation_fields(api: TableApi, taken: set[str]) -> Fields:
    """A foreign key to a core table gives an object field of the core type: `route_id` -> `route: Route`."""
    fields: Fields = {}
    for fk in api.spec.foreign_keys:
        if fk.target_table not in CORE_TARGETS or fk.target_column != "id":
            continue
        resource, loader, cls = CORE_TARGETS[fk.target_table]
        name = naming.object_relation_field(fk.column, fk.target_table, taken)
        taken.add(name)

        async def resolve(root, info, column=fk.column, resource=resource, loader=loader, cls=cls):
            if root[column] is None:
                return None
            require(info, "read", resource)
            row = await getattr(info.context.loaders, loader).load(root[column])
            if row is None or (cls is core_types.Content and not content_visible(info, row)):
                return None
            return cls.from_row(row)

        fields["core_" + name] = (cls | None, strawberry.field(resolver=resolver(resolve, {}, cls | None, name=name), name=name))
    return fields


def relation_fields(api: TableApi, apis: dict[str, TableApi]) -> Fields:
    fields: Fields = {}
    for rel in api.object_relations:
        key, value = object_relation_field(rel, apis[rel.target])
        fields[key] = value
    for rel in api.array_relations:
        key, value = array_relation_field(rel, apis[rel.child])
        fields[key] = value
    taken = {naming.column_field(c.name) for c in api.spec.columns} | {v[1].graphql_name for v in fields.values()}
    return {**fields, **core_relation_fields(api, taken)}

