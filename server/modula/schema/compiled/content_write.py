"""`createContent` on the fast path: the request's values go straight from the variables to the
coupled write of cms/content.py, and the answer (the new node's own columns) is written here,
without Strawberry's argument conversion and execution. The checks are core_schema.py's
`create_content`: the same permission, the same service, the same after-insert event; an input
this module does not take as it is (a default to apply, an unknown key, a value of another type)
and every error the write reports fall back, and Strawberry answers (a failed write wrote nothing).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from graphql import FieldNode

from modula.cms import content
from modula.db.errors import DatabaseError
from modula.errors import ModulaError
from modula.schema.compiled.plan import MAX_FIELDS, Planner
from modula.schema.compiled.tree import Enum, Fallback, Getter, VarRef, constant

# Content's fields that are its own columns, as Strawberry serialises them (DateTime: isoformat).
_COLUMNS = {"id": "id", "position": "position", "status": "status", "slug": "slug", "createdAt": "created_at",
            "updatedAt": "updated_at"}
_INPUT_KEYS = frozenset({"routeId", "datatypeId", "parentId", "fields", "status", "slug"})
_STATUSES = {"DRAFT": "draft", "PUBLISHED": "published"}  # ContentStatus: GraphQL name -> stored value
_VALUE_KEYS = frozenset({"fieldId", "value"})
INPUTS = frozenset({"CreateContentInput", "FieldValueInput"})  # input types a variable may have


@dataclass(frozen=True)
class ContentCreate:
    """One planned createContent: getters for every input value, and the selection to answer."""

    key: str
    route_id: Getter
    datatype_id: Getter
    parent_id: Getter
    status: Getter
    slug: Getter
    fields: tuple[tuple[Getter, Getter], ...]  # (fieldId, value)
    selection: tuple[tuple[str, str | None, str | None], ...]  # (key, column, or __typename's value)

    async def run(self, variables: dict, context: Any) -> bytes | None:
        """The answer's `data` as JSON, or None for Strawberry to answer (nothing was written)."""
        viewer = context.viewer
        try:
            new = content.NewContent(
                route_id=self.route_id(variables, viewer),
                datatype_id=self.datatype_id(variables, viewer),
                parent_id=self.parent_id(variables, viewer),
                fields=[content.FieldValue(field_id=field_id(variables, viewer), value=value(variables, viewer))
                        for field_id, value in self.fields],
                status=self.status(variables, viewer),
                author_id=viewer.user_id,
                slug=self.slug(variables, viewer),
            )
        except Fallback:
            return None
        try:
            async with context.core_change("content") as record:
                row = await content.create_content(context.session, new)
                await record("insert", row)
        except (ModulaError, DatabaseError):
            return None  # rolled back: Strawberry runs it again and reports the error with its path
        await context.core_event("after_insert", "content", row, "createContent")
        answer = {key: typename if column is None else _serialised(column, row[column]) for key, column, typename in self.selection}
        return json.dumps({self.key: answer}, ensure_ascii=False, separators=(",", ":")).encode()


def plan_create_content(planner: Planner, key: str, nodes: list[FieldNode]) -> ContentCreate:
    """core_schema.py `create_content`: require create on content, then the service."""
    planner._require("create", "content")
    args = planner._arguments(nodes[0])
    given = args.get("input")
    if set(args) != {"input"} or not isinstance(given, dict) or not given.keys() <= _INPUT_KEYS:
        raise Fallback
    if given.get("routeId") is None or given.get("datatypeId") is None:
        raise Fallback
    if "status" in given:
        if given["status"] is None:
            raise Fallback  # ContentStatus! with a default: null is an error
        status = _status(given["status"])
    else:
        status = constant("draft")
    slug = given.get("slug")
    items = given.get("fields", [])
    if not isinstance(items, list) or len(items) > 1000:
        raise Fallback
    values = []
    for item in items:
        if not isinstance(item, dict) or not item.keys() <= _VALUE_KEYS or item.get("fieldId") is None:
            raise Fallback
        value = item.get("value")  # left out: null, as Strawberry takes it
        values.append((planner._int(item["fieldId"], _any), constant(None) if value is None else _string(value)))
    parent = given.get("parentId")
    return ContentCreate(
        key=key,
        route_id=planner._int(given["routeId"], _any),
        datatype_id=planner._int(given["datatypeId"], _any),
        parent_id=constant(None) if parent is None else planner._int(parent, _any),
        status=status,
        slug=constant(None) if slug is None else _string(slug),
        fields=tuple(values),
        selection=_selection(planner, nodes),
    )


WRITES = {"createContent": plan_create_content}


def _selection(planner: Planner, nodes: list[FieldNode]) -> tuple[tuple[str, str | None, str | None], ...]:
    merged: dict[str, list[FieldNode]] = {}
    for node in nodes:
        if node.selection_set is None:
            raise Fallback
        planner._collect(node.selection_set, "Content", merged)
    if len(merged) > MAX_FIELDS:
        raise Fallback
    out = []
    for key, field_nodes in merged.items():
        name = field_nodes[0].name.value
        if name == "__typename":
            out.append((key, None, "Content"))
        elif name in _COLUMNS:
            out.append((key, _COLUMNS[name], None))
        else:
            raise Fallback  # route, datatype, parent, children, fields, …: Strawberry resolves them
    return tuple(out)


def _string(value: Any) -> Getter:
    if isinstance(value, VarRef):
        if not isinstance(value.value, str):
            raise Fallback
        return value.getter("String", str)
    if not isinstance(value, str):
        raise Fallback
    return constant(value)


def _status(value: Any) -> Getter:
    """A ContentStatus, inline (an enum value) or from a variable (its name as a string)."""
    if isinstance(value, Enum) and value.name in _STATUSES:
        return constant(_STATUSES[value.name])
    if isinstance(value, VarRef) and value.value in _STATUSES:
        def known(name: Any) -> None:
            if name not in _STATUSES:
                raise Fallback
        return value.getter("String", _STATUSES.get, known)
    raise Fallback


def _any(value: Any) -> None:
    """Every Int is a valid id to look for (the service reports one that does not exist)."""


def _serialised(column: str, value: Any) -> Any:
    if column == "status":
        return value.upper()  # ContentStatus's name
    return value.isoformat() if isinstance(value, dt.datetime) else value
