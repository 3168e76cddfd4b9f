"""Writes to plugin tables for the generated API: nested inserts, updates and deletes, with the
plugin's hooks run inside the same transaction.

A nested insert goes level by level: the rows of one table in one statement, then each child
table's rows (with the parent's generated key filled in) in one statement, and so on. Hooks see
every row: `before_*` may return a changed row or raise to veto the whole mutation; `after_*`
see the stored row; `after_commit` is queued in the outbox with the row, to run once it commits.
Any failure rolls everything back: the caller holds the transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

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


class TableWriter:
    """One mutation's writes to one plugin's tables, on `session` (already in a transaction)."""

    def __init__(self, session: Session, specs: dict[str, TableSpec], hooks: list[HookDecl], run_hook, *,
                 plugin: str = "") -> None:
        self.session = session
        self.plugin = plugin  # whose after_commit hooks are queued in the outbox
        self.specs = specs
        self._hooks = hooks
        self._run_hook = run_hook  # async (hook, row, path) -> returned value

    def hooks(self, event: str, table: str) -> list[HookDecl]:
        return [h for h in self._hooks if h.event == event and h.table == table]

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

    async def _before(self, spec: TableSpec, event: str, row: Row, path: Path) -> Row:
        for hook in self.hooks(event, spec.name):
            returned = await self._run_hook(hook, row, path)
            if returned is not None:
                if not isinstance(returned, dict):
                    raise ModulaError("PLUGIN_ERROR", f"the {event} hook of {spec.name} must return the row or nil", path)
                row = coerce_row(spec, returned, path)
        return row

    async def _after(self, spec: TableSpec, event: str, row: Row, path: Path) -> None:
        for hook in self.hooks(event, spec.name):
            await self._run_hook(hook, row, path)
        if self.hooks("after_commit", spec.name):  # run by the outbox worker once this commits
            change = event.removeprefix("after_")
            await outbox.enqueue(self.session, self.plugin, "hook", {"table": spec.name, "change": change, "row": row})

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
    if value is None:
        return None
    try:
        if column_type == "integer" and isinstance(value, float) and value.is_integer():
            return int(value)
        if column_type == "real" and isinstance(value, (int, Decimal)) and not isinstance(value, bool):
            return float(value)
        if column_type == "numeric" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return Decimal(str(value))
        if column_type == "datetime" and isinstance(value, str):
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)
        if column_type == "date" and isinstance(value, str):
            return dt.date.fromisoformat(value[:10])
        if column_type == "boolean" and isinstance(value, int):
            return bool(value)
        if column_type == "blob" and isinstance(value, str):  # Lua strings that were valid UTF-8
            return value.encode("utf-8")
    except ValueError as exc:
        raise ModulaError("INVALID_VALUE", f"not a valid {column_type}: {exc}", path) from None
    return value

