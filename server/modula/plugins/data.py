"""Writes to plugin tables for the generated API: nested inserts, updates and deletes, with the
plugin's hooks run inside the same transaction.

A nested insert goes level by level: the rows of one table in one statement, then each child
table's rows (with the parent's generated key filled in) in one statement, and so on. Hooks see
every row: `before_*` may return a changed row or raise to veto the whole mutation; `after_*`
see the stored row; `after_commit` is queued in the outbox with the row, to run once it commits.
Any failure rolls everything back: the caller holds the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modula.db import column_values
from modula.db import outbox
from modula.db.connection import Session
from modula.db.crud import OnConflict, crud_for
from modula.db.introspection import TableSpec
from modula.errors import ModulaError
from modula.lua.declarations import HookDecl

Row = dict[str, Any]
Path = tuple[str | int, ...]


@dataclass(frozen=True)
class ChildLink:
    table: str
    column: str  # the child's foreign key
    parent_column: str
    field: str  # the GraphQL field that carried the children (for error paths)


@dataclass
class NewRow:
    values: Row
    path: Path
    children: list[tuple[ChildLink, list[NewRow]]] = field(default_factory=list)


class TableHooks:
    """A plugin's hooks on its tables, run for every row written through the table API: the
    generated mutations and Lua's own `insert` (raw SQL runs none)."""

    def __init__(self, hooks: list[HookDecl], run_hook) -> None:
        self._hooks = hooks
        self._run_hook = run_hook  # async (hook, row, path) -> returned value

    def of(self, event: str, table: str) -> list[HookDecl]:
        return [h for h in self._hooks if h.event == event and h.table == table]

    async def before(self, spec: TableSpec, event: str, row: Row, path: Path) -> Row:
        """The row as the `before_*` hooks leave it (each may return a changed row, or raise)."""
        for hook in self.of(event, spec.name):
            returned = await self._run_hook(hook, row, path)
            if returned is not None:
                if not isinstance(returned, dict):
                    raise ModulaError("PLUGIN_ERROR", f"the {event} hook of {spec.name} must return the row or nil", path)
                row = coerce_row(spec, returned, path)
        return row

    async def after(self, spec: TableSpec, event: str, row: Row, path: Path, queue=None) -> None:
        """The `after_*` hooks, then, when the table has `after_commit` hooks, the change queued by
        `queue` (async, payload -> None: the outbox, in the writer's transaction) for the outbox
        worker to run them once it commits."""
        for hook in self.of(event, spec.name):
            await self._run_hook(hook, row, path)
        if queue is not None and self.of("after_commit", spec.name):
            await queue({"table": spec.name, "change": event.removeprefix("after_"), "row": row})


class TableWriter:
    """One mutation's writes to one plugin's tables, on `session` (already in a transaction)."""

    def __init__(self, session: Session, specs: dict[str, TableSpec], hooks: list[HookDecl], run_hook, *,
                 plugin: str = "") -> None:
        self.session = session
        self.plugin = plugin  # whose after_commit hooks are queued in the outbox
        self.specs = specs
        self._table_hooks = TableHooks(hooks, run_hook)
        self._before = self._table_hooks.before

    async def _after(self, spec: TableSpec, event: str, row: Row, path: Path) -> None:
        await self._table_hooks.after(spec, event, row, path, queue=self._queue)

    async def _queue(self, payload: dict) -> None:
        await outbox.enqueue(self.session, self.plugin, "hook", payload)

    def hooks(self, event: str, table: str) -> list[HookDecl]:
        return self._table_hooks.of(event, table)

    async def insert(self, table: str, rows: list[NewRow], on_conflict: OnConflict | None = None) -> list[Row]:
        if not rows:
            return []
        spec = self.specs[table]
        values = []
        for row in rows:
            self._check_required(spec, row)
            values.append(await self._before(spec, "before_insert", row.values, row.path))
        stored = await crud_for(spec).insert(self.session, values, on_conflict=on_conflict)
        if len(stored) != len(rows) and any(row.children for row in rows):
            raise ModulaError("INVALID_INPUT", "an upsert that skips rows cannot also insert their children", ("objects",))
        for row, result in zip(rows, stored):
            await self._after(spec, "after_insert", result, row.path)
        await self._insert_children(rows, stored)
        return stored

    async def _insert_children(self, parents: list[NewRow], stored: list[Row]) -> None:
        batches: dict[ChildLink, list[NewRow]] = {}
        for parent, parent_row in zip(parents, stored):
            for link, children in parent.children:
                for child in children:
                    child.values[link.column] = parent_row[link.parent_column]
                    batches.setdefault(link, []).append(child)
        for link, children in batches.items():
            await self.insert(link.table, children)

    async def update(self, table: str, where: dict | None, values: Row, path: Path) -> list[Row]:
        spec = self.specs[table]
        crud = crud_for(spec)
        if not any(self.hooks(event, table) for event in ("before_update", "after_update", "after_commit")):
            return await crud.update(self.session, where=where, set=values)
        updated = []
        for i, old in enumerate(await crud.find(self.session, where=where, lock=True)):
            new = await self._before(spec, "before_update", {**old, **values}, (*path, i))
            changes = {k: v for k, v in new.items() if k not in spec.primary_key and old.get(k) != v}
            row = await crud.update_by_pk(self.session, _key(spec, old), changes) if changes else old
            await self._after(spec, "after_update", row, (*path, i))
            updated.append(row)
        return updated

    async def delete(self, table: str, where: dict | None, path: Path) -> list[Row]:
        spec = self.specs[table]
        crud = crud_for(spec)
        if not any(self.hooks(event, table) for event in ("before_delete", "after_delete", "after_commit")):
            return await crud.delete(self.session, where=where)
        deleted = []
        for i, old in enumerate(await crud.find(self.session, where=where, lock=True)):
            await self._before(spec, "before_delete", old, (*path, i))
            row = await crud.delete_by_pk(self.session, _key(spec, old))
            if row is not None:
                await self._after(spec, "after_delete", row, (*path, i))
                deleted.append(row)
        return deleted

    def _check_required(self, spec: TableSpec, row: NewRow) -> None:
        for column in spec.columns:
            if not column.nullable and not column.has_default and row.values.get(column.name) is None:
                raise ModulaError("REQUIRED", f"{column.name} needs a value (here or through a nested insert)", row.path)


def _key(spec: TableSpec, row: Row) -> Row:
    return {name: row[name] for name in spec.primary_key}


def coerce_row(spec: TableSpec, row: Row, path: Path = ()) -> Row:
    """A row from Lua (a hook's or a handler's result) in the column types the database expects."""
    out: Row = {}
    for name, value in row.items():
        column = spec.column(name)
        if column is None:
            raise ModulaError("PLUGIN_ERROR", f"the row names {name!r}, which is not a column of {spec.name}", path)
        out[name] = coerce_value(column.type, value, (*path, name))
    return out


def coerce_value(column_type: str, value: Any, path: Path = ()) -> Any:
    try:
        return column_values.from_plain(column_type, value)
    except ValueError as exc:
        raise ModulaError("INVALID_VALUE", f"not a valid {column_type}: {exc}", path) from None
