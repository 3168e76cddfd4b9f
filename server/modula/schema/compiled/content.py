"""Core content on the fast path: `contents(routeId, datatypeId, limit, offset)` and `content(id:)`
selecting a node's id, position and status and its field values (id, value, field { id name label
type required }) become one subquery of the statement, with the checks and row order of core_schema.py,
guards.py and cms/content.py (`list_contents`, `values_of`); any other selection falls back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphql import FieldNode

from modula.db import core_tables as t
from modula.schema.compiled.plan import MAX_FIELDS, Planner
from modula.schema.compiled.sql import Renderer, literal, quote
from modula.schema.compiled.tree import Fallback, Getter, viewer_id

CONTENT, VALUES, FIELDS, POSITIONS = t.content_data, t.content_fields, t.fields, t.datatypes_fields


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # as the fast path's renderers serialise it: integer, text or boolean; status: ContentStatus's name


# GraphQL field -> the column Strawberry serialises it from, per core type. Every other field
# (createdAt, updatedAt, data, route, datatype, parent, children) is not here: it falls back.
_COLUMNS = {
    "ContentNode": {"id": Column("id", "integer"), "position": Column("position", "integer"), "status": Column("status", "status"),
                "slug": Column("slug", "text")},
    "ContentField": {"id": Column("id", "integer"), "value": Column("value", "text")},
    "Field": {"id": Column("id", "integer"), "name": Column("name", "text"), "label": Column("label", "text"),
              "type": Column("type", "text"), "required": Column("required", "boolean")},
}
_NESTED = {"ContentNode": ("fields", "ContentField"), "ContentField": ("field", "Field")}


@dataclass
class NodeType:
    """`__typename` of a ContentNode: its datatype's generated type (`Article`), else `Content`."""

    by_datatype: dict[int, str]

    def render(self, alias: str) -> str:
        arms = "".join(f" WHEN {int(datatype_id)} THEN {literal(name)}" for datatype_id, name in sorted(self.by_datatype.items()))
        column = f"{alias}.{quote('datatype_id')}"
        return f"CASE {column}{arms} ELSE 'Content' END" if arms else "'Content'"


@dataclass
class Shape:
    """A selection on one core type: (response key, a Column | a __typename string | a nested Shape)."""

    type_name: str
    fields: list[tuple[str, Any]]


@dataclass
class ContentRoot:
    """`contents` (many) or `content(id:)` as a JSON value of the statement."""

    shape: Shape
    many: bool
    equal: list[tuple[str, Getter]] = field(default_factory=list)  # column = value, all of them
    visibility: tuple[bool, bool] | None = None  # (published ones, the viewer's own ones); None: all
    limit: Getter | None = None
    offset: Getter | None = None

    def render(self, r: Renderer) -> str:
        c = r._alias()
        obj = _content_object(r, self.shape, c)
        conditions = [f"{c}.{quote(column)} = {r.bind(getter)}" for column, getter in self.equal]
        if self.visibility is not None:
            conditions.append(_visible(r, c, *self.visibility))
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        source = f"{quote(CONTENT.name)} AS {c}"
        if not self.many:
            return r.nested(f"(SELECT {obj} FROM {source}{where})")
        page = f" LIMIT {r.bind(self.limit)}"
        if self.offset is not None:
            page += f" OFFSET {r.bind(self.offset)}"
        return r.nested(r.array(obj, source, where, f" ORDER BY {c}.{quote('id')}", page))


# --- planning -------------------------------------------------------------------------------


def plan_contents(planner: Planner, nodes: list[FieldNode]) -> ContentRoot:
    """core_schema.py `contents`: page(), then content_visibility(); by id order."""
    args = planner._arguments(nodes[0])
    if "where" in args or "orderBy" in args:  # filtered and ordered listings run through Strawberry
        raise Fallback
    root = ContentRoot(_shape(planner, "ContentNode", nodes), many=True)
    root.limit, root.offset = planner._page(args.get("limit"), args.get("offset"))
    for argument, column in (("routeId", "route_id"), ("datatypeId", "datatype_id")):
        if args.get(argument) is not None:
            root.equal.append((column, planner._int(args[argument], _any)))
    root.visibility = _visibility(planner.viewer)
    return root


def plan_content(planner: Planner, nodes: list[FieldNode]) -> ContentRoot:
    """core_schema.py `content`: require read, then the node if content_visible() (else null)."""
    args = planner._arguments(nodes[0])
    root = ContentRoot(_shape(planner, "ContentNode", nodes), many=False)
    root.equal.append(("id", planner._int(args.get("id"), _any)))
    root.visibility = _visibility(planner.viewer)
    return root


ROOTS = {"contents": plan_contents, "content": plan_content}


def _any(value: Any) -> None:
    """Every Int is a valid id or filter (no such node: no rows)."""


def _visibility(viewer: Any) -> tuple[bool, bool] | None:
    """guards.py `content_visibility` / `content_visible` for reading: FORBIDDEN falls back."""
    if not viewer.can("read", "content"):
        raise Fallback
    rule = viewer.row_rule("read", "content")
    if rule is None:
        return None
    parts = set(rule.split("|"))
    return "published" in parts, "own" in parts and viewer.user_id is not None


def _shape(planner: Planner, type_name: str, nodes: list[FieldNode]) -> Shape:
    merged: dict[str, list[FieldNode]] = {}
    for node in nodes:
        if node.selection_set is None:
            raise Fallback
        planner._collect(node.selection_set, type_name, merged)
    if len(merged) > MAX_FIELDS:
        raise Fallback
    columns = _COLUMNS[type_name]
    nested, nested_type = _NESTED.get(type_name, (None, None))
    fields: list[tuple[str, Any]] = []
    for key, field_nodes in merged.items():
        name = field_nodes[0].name.value
        if name == "__typename":
            fields.append((key, NodeType(planner.catalog.content_types) if type_name == "ContentNode" else type_name))
        elif name in columns:
            fields.append((key, columns[name]))
        elif name == nested:
            fields.append((key, _shape(planner, nested_type, field_nodes)))
        else:
            raise Fallback
    return Shape(type_name, fields)


# --- SQL ------------------------------------------------------------------------------------


def _pairs(r: Renderer, shape: Shape, alias: str, nested: Any) -> list[tuple[str, str]]:
    pairs = []
    for key, item in shape.fields:
        if isinstance(item, str):
            pairs.append((key, literal(item)))
        elif isinstance(item, NodeType):
            pairs.append((key, item.render(alias)))
        elif isinstance(item, Column) and item.kind == "status":  # stored lowercase, named in capitals
            pairs.append((key, r.column_value(f"upper({alias}.{quote(item.name)})", "text")))
        elif isinstance(item, Column):
            pairs.append((key, r.column_value(f"{alias}.{quote(item.name)}", item.kind)))
        else:
            pairs.append((key, nested(item)))
    return pairs


def _content_object(r: Renderer, shape: Shape, c: str) -> str:
    return r.object(_pairs(r, shape, c, lambda values: r.nested(_values(r, values, c))))


def _values(r: Renderer, shape: Shape, c: str) -> str:
    """values_of(): the node's value rows joined to their field (always there: a foreign key) and
    ordered by the field's position in the node's datatype, then id; a value of a field the
    datatype no longer lists has no position and sorts where each database puts NULL, as there."""
    v, f, d = r._alias(), r._alias(), r._alias()
    obj = r.object(_pairs(r, shape, v, lambda definition: r.object(_pairs(r, definition, f, None))))
    source = (f"{quote(VALUES.name)} AS {v} JOIN {quote(FIELDS.name)} AS {f} ON {f}.{quote('id')} = {v}.{quote('field_id')}"
              f" LEFT JOIN {quote(POSITIONS.name)} AS {d} ON {d}.{quote('datatype_id')} = {c}.{quote('datatype_id')}"
              f" AND {d}.{quote('field_id')} = {v}.{quote('field_id')}")
    where = f" WHERE {v}.{quote('content_data_id')} = {c}.{quote('id')}"
    order = f" ORDER BY {d}.{quote('position')}, {v}.{quote('id')}"
    return r.array(obj, source, where, order, "")


def _visible(r: Renderer, c: str, published: bool, own: bool) -> str:
    """cms/content.py `Visibility.condition`: published and/or the viewer's own; neither: none."""
    parts = [f"{c}.{quote('status')} = 'published'"] if published else []
    if own:
        parts.append(f"{c}.{quote('author_id')} = {r.bind(viewer_id)}")
    return "(" + " OR ".join(parts) + ")" if parts else "1 = 0"
