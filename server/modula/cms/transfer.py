"""Bulk import and export of content nodes as JSON Lines, in names a CMS user knows: routes by slug,
datatypes and fields by label, parents and content references by a `ref` given on another line.

One line is one node::

    {"ref": "home", "route": "site", "datatype": "Page", "status": "published",
     "fields": {"Title": "Welcome", "Views": 3, "Meta": {"tags": ["a"]}}}
    {"ref": "about", "parent": "home", "route": "site", "datatype": "Page", "fields": {"Title": "About us"}}

An import is all or nothing: every line is checked first, then every node is created through
`content.create_content` in one transaction; any problem leaves the database as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from modula.cms import content, datatypes, routes
from modula.cms.field_types import InvalidValue, parse_value
from modula.db import core_tables as t
from modula.db.content_paths import is_slug
from modula.db.connection import Session
from modula.errors import CommandError, ModulaError

KEYS = ("ref", "route", "datatype", "status", "slug", "parent", "fields")
MAX_PROBLEMS = 20  # enough to fix a batch of lines at once; past it, the rest is likely the same mistake
VALUE_CHUNK = 1000  # content ids per statement when exporting (well under both dialects' bind limits)


@dataclass(frozen=True)
class Record:
    """One node as read from the file; `where` is "line 17" (JSON Lines) or "item 17" (a JSON array)."""

    where: str
    data: Any


@dataclass(frozen=True)
class LineProblem:
    where: str
    message: str
    fix: str | None = None  # when the problem has a remedy of its own (e.g. create the route first)


class ImportFailed(CommandError):
    """Problems found in an import file; nothing was imported. The first leads, the others are counted."""

    def __init__(self, problems: list[LineProblem], source: str, *, more: bool = False) -> None:
        first = problems[0]
        message = f"{first.where}: {first.message}"
        others = problems[1:]
        if others:
            numbers = list(dict.fromkeys(p.where.split()[-1] for p in others))  # a line with two problems is named once
            places = ", ".join(numbers[:10]) + (", ..." if len(numbers) > 10 else "")
            count = f"{len(others)}{'+' if more else ''}"
            message += f" (and {count} more problem(s), at {others[0].where.split()[0]}s {places})"
        fix = first.fix or f"correct {source} there"
        super().__init__(message, f"{fix} and import it again; nothing was imported", code="IMPORT_FAILED")
        self.problems = problems


def read_records(text: str, source: str) -> list[Record]:
    """The records of JSON Lines text (blank lines skipped), or of text holding one JSON array;
    `source` names the file in problems."""
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text, parse_float=Decimal)
        except ValueError as exc:
            raise ImportFailed([LineProblem(f"line {exc.lineno}", f"not valid JSON: {exc.msg} (column {exc.colno})")], source) from None
        return [Record(f"item {i}", item) for i, item in enumerate(items, 1)]
    records, problems = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(Record(f"line {number}", json.loads(line, parse_float=Decimal)))
        except ValueError as exc:
            problems.append(LineProblem(f"line {number}", f"not valid JSON: {exc.msg} (column {exc.colno})"))
            if len(problems) >= MAX_PROBLEMS:
                break
    if problems:
        raise ImportFailed(problems, source, more=len(problems) >= MAX_PROBLEMS)
    return records


@dataclass
class _Node:
    """A record resolved to ids, ready for `create_content`; refs stay names until their nodes exist."""

    where: str
    ref: str | None
    route_id: int
    datatype_id: int
    status: str
    parent: str | int | None  # a ref (str) or the id of a node already in the database (int)
    slug: str | None  # None: derived from the title, as createContent does
    values: list[tuple[str, dict, Any]] = field(default_factory=list)  # (key as written, field row, text or ref)


@dataclass(frozen=True)
class _Ref:
    """A content-field value naming another line's node."""

    name: str


class _Catalog:
    """Routes, datatypes and their fields, read once, looked up by the names a file uses."""

    def __init__(self, route_rows: list[dict], datatype_rows: list[dict], field_rows: list[dict]) -> None:
        self.routes = {row["id"]: row for row in route_rows}
        self.datatypes = {row["id"]: row for row in datatype_rows}
        self.fields: dict[int, list[dict]] = {}
        for row in field_rows:
            self.fields.setdefault(row["datatype_id"], []).append(row)

    @classmethod
    async def load(cls, session: Session) -> _Catalog:
        datatype_rows = await datatypes.list_datatypes(session)
        field_rows = await datatypes.fields_of_datatypes(session, [row["id"] for row in datatype_rows])
        return cls(await routes.list_routes(session), datatype_rows, field_rows)

    def route(self, name: Any) -> tuple[int | None, LineProblem | None]:
        if isinstance(name, int) and not isinstance(name, bool):
            return (name, None) if name in self.routes else (None, _problem(f"route {name} does not exist",
                                                                                             "give an existing route's slug or id"))
        if not isinstance(name, str) or not name:
            return None, _problem("'route' must be a route's slug (or id)")
        found = [row for row in self.routes.values() if row["slug"] == name]
        if not found:
            return None, _problem(f"route {name!r} does not exist", f"create the route {name!r} first ({_ROUTE_FIX})")
        if len(found) > 1:
            return None, _problem(f"route {name!r} exists on {len(found)} sites (ids {', '.join(str(r['id']) for r in found)})",
                                  "give the route's id instead of its slug")
        return found[0]["id"], None

    def datatype(self, name: Any) -> tuple[int | None, LineProblem | None]:
        if isinstance(name, int) and not isinstance(name, bool):
            return (name, None) if name in self.datatypes else (None, _problem(f"datatype {name} does not exist", _DATATYPE_FIX))
        if not isinstance(name, str) or not name:
            return None, _problem("'datatype' must be a datatype's label (or id)")
        found = [row for row in self.datatypes.values() if row["label"].casefold() == name.strip().casefold()]
        if not found:
            known = ", ".join(sorted(row["label"] for row in self.datatypes.values())) or "none yet"
            return None, _problem(f"datatype {name!r} does not exist (datatypes: {known})", _DATATYPE_FIX)
        if len(found) > 1:
            return None, _problem(f"{len(found)} datatypes are labelled {name!r} (ids {', '.join(str(r['id']) for r in found)})",
                                  "give the datatype's id instead of its label")
        return found[0]["id"], None

    def field(self, datatype_id: int, key: str) -> dict | None:
        wanted = key.strip().casefold()
        return next((row for row in self.fields.get(datatype_id, []) if row["label"].casefold() == wanted), None)


_ROUTE_FIX = "the createRoute mutation creates routes"  # GraphQL: the CLI has no command for routes
_DATATYPE_FIX = "create it first with the createDatatype mutation, or correct the label"


def _problem(message: str, fix: str | None = None) -> LineProblem:
    return LineProblem("", message, fix)  # `where` is filled in by the caller that knows the line


async def import_content(session: Session, records: list[Record], *, source: str = "the file",
                         advance: Callable[[int], None] | None = None) -> int:
    """Create every record's node, or none: problems raise ImportFailed and the transaction rolls
    back. Returns how many nodes were created; `advance(1)` is called after each."""
    if not records:
        raise ImportFailed([LineProblem("line 1", "the file holds no content nodes")], source)
    catalog = await _Catalog.load(session)
    nodes, problems = _resolve(records, catalog)
    if problems:
        raise ImportFailed(problems[:MAX_PROBLEMS], source, more=len(problems) > MAX_PROBLEMS)
    async with session.transaction():
        created, problems = await _create(session, nodes, advance)
        if problems:
            raise ImportFailed(problems[:MAX_PROBLEMS], source, more=len(problems) > MAX_PROBLEMS)
    return created


def _resolve(records: list[Record], catalog: _Catalog) -> tuple[list[_Node], list[LineProblem]]:
    """Check every record against the catalog and each other, without touching the database."""
    nodes: list[_Node] = []
    problems: list[LineProblem] = []
    defined: dict[str, tuple[int, str, int]] = {}  # ref -> (index, where, route id): lines may name later lines
    duplicates: dict[int, LineProblem] = {}
    for index, record in enumerate(records):
        ref = record.data.get("ref") if isinstance(record.data, dict) else None
        if isinstance(ref, str) and ref:
            if ref in defined:
                duplicates[index] = _problem(f"ref {ref!r} is already used by {defined[ref][1]}")
            route_id = catalog.route(record.data.get("route"))[0]
            defined.setdefault(ref, (index, record.where, route_id))
    for index, record in enumerate(records):
        found: list[LineProblem] = [duplicates[index]] if index in duplicates else []
        node = _resolve_one(record, index, catalog, defined, found)
        problems.extend(LineProblem(record.where, p.message, p.fix) for p in found)
        if node is not None and not found:
            nodes.append(node)
        if len(problems) > MAX_PROBLEMS:
            break
    return nodes, problems


def _resolve_one(record: Record, index: int, catalog: _Catalog, defined: dict, problems: list[LineProblem]) -> _Node | None:
    data = record.data
    if not isinstance(data, dict):
        problems.append(_problem(f"expected a JSON object such as {{\"route\": ..., \"datatype\": ..., \"fields\": {{...}}}}, got {type(data).__name__}"))
        return None
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        problems.append(_problem(f"unknown key {unknown[0]!r}; a line has {', '.join(KEYS)}"))
    ref = data.get("ref")
    if ref is not None and not (isinstance(ref, str) and ref):
        # Not a number: a number as `parent` names a node already in the database.
        problems.append(_problem(f"'ref' must be a non-empty string such as \"home\" that other lines can name, got {ref!r}"))
    if "route" not in data or "datatype" not in data:
        problems.append(_problem("'route' (a slug) and 'datatype' (a label) are required"))
        return None
    route_id, problem = catalog.route(data["route"])
    problems.extend([problem] if problem else [])
    datatype_id, problem = catalog.datatype(data["datatype"])
    problems.extend([problem] if problem else [])
    status = data.get("status", "published")
    if status not in content.STATUSES:
        problems.append(_problem(f"'status' must be one of {', '.join(content.STATUSES)}, got {status!r}"))
    slug = data.get("slug")
    if slug is not None and not (isinstance(slug, str) and is_slug(slug)):
        problems.append(_problem(f"'slug' must be lowercase letters, digits and '-' such as \"hello-world\", got {slug!r}"))
    parent = data.get("parent")
    if isinstance(parent, str):
        target = defined.get(parent)
        if target is None:
            problems.append(_problem(f"parent {parent!r} is not the ref of any line"))
        elif target[0] >= index:
            problems.append(_problem(f"parent {parent!r} is defined on {target[1]}, after this one",
                                     f"move {target[1]} above this line"))
        elif route_id is not None and target[2] is not None and target[2] != route_id:
            problems.append(_problem(f"parent {parent!r} ({target[1]}) is in another route"))
    elif parent is not None and not (isinstance(parent, int) and not isinstance(parent, bool)):
        problems.append(_problem("'parent' must be the ref of an earlier line (or the id of a node in the database)"))
    values = data.get("fields", {})
    if not isinstance(values, dict):
        problems.append(_problem("'fields' must be an object of field label -> value"))
        return None
    if route_id is None or datatype_id is None:
        return None
    node = _Node(record.where, ref if isinstance(ref, str) else None, route_id, datatype_id, status, parent, slug)
    keys_by_field: dict[int, str] = {}
    for key, raw in values.items():
        row = catalog.field(datatype_id, key)
        if row is None:
            labels = ", ".join(f["label"] for f in catalog.fields.get(datatype_id, [])) or "none"
            problems.append(_problem(f"field {key!r}: datatype {catalog.datatypes[datatype_id]['label']!r} has no such field (its fields: {labels})"))
            continue
        if row["id"] in keys_by_field:  # labels match regardless of case: "Title" and "title" are one field
            problems.append(_problem(f"field {key!r} is given twice (also as {keys_by_field[row['id']]!r})"))
            continue
        keys_by_field[row["id"]] = key
        try:
            value = _field_text(row, raw)
        except InvalidValue as exc:
            problems.append(_problem(f"field {key!r} ({row['type']}): {exc}"))
            continue
        if isinstance(value, _Ref):
            target = defined.get(value.name)
            if target is None:
                problems.append(_problem(f"field {key!r}: {value.name!r} is not the ref of any line"))
                continue
            if target[0] >= index and row["required"]:
                problems.append(_problem(f"field {key!r} is required and names {value.name!r}, defined later on {target[1]}",
                                         f"move {target[1]} above this line"))
                continue
        node.values.append((key, row, value))
    return node


def _field_text(row: dict, raw: Any) -> str | _Ref | None:
    """A JSON value from the file as the text `create_content` takes, checked against the field's
    type now so that every bad value is reported before anything is written."""
    kind = row["type"]
    if raw is None:
        return None
    if kind == "json":
        text = json.dumps(raw, default=float)
    elif kind == "content" and isinstance(raw, dict):
        if set(raw) != {"ref"} or not isinstance(raw["ref"], (str, int)) or isinstance(raw["ref"], bool):
            raise InvalidValue('expected {"ref": "<a line\'s ref>"} or the id of a content node')
        return _Ref(str(raw["ref"]))
    elif isinstance(raw, bool):
        text = "true" if raw else "false"
    elif isinstance(raw, (int, Decimal)):
        text = str(raw)
    elif isinstance(raw, str):
        text = raw
    else:
        raise InvalidValue(f"expected a {kind} value, got a JSON {'object' if isinstance(raw, dict) else 'array'}")
    parse_value(kind, text)
    return text


async def _create(session: Session, nodes: list[_Node], advance) -> tuple[int, list[LineProblem]]:
    """Create the nodes in file order, each in a savepoint so that one failure does not hide the
    next; content references to later lines are set once their nodes exist."""
    ids: dict[str, int] = {}  # ref -> id of the node created for it
    failed: set[str] = set()  # refs of lines that could not be created: lines naming them are skipped
    later: list[tuple[_Node, int, str, dict, str]] = []  # (node, its id, key, field row, ref)
    problems: list[LineProblem] = []
    created = 0
    for node in nodes:
        names = [node.parent] if isinstance(node.parent, str) else []
        names += [value.name for _, _, value in node.values if isinstance(value, _Ref)]
        if any(name in failed for name in names):
            failed.update([node.ref] if node.ref else [])  # the problem is reported on the line it names
            continue
        keys, values, deferred = [], [], []
        for key, row, value in node.values:
            if isinstance(value, _Ref) and value.name not in ids:
                deferred.append((key, row, value.name))  # a later line (or this one): set once it exists
                continue
            keys.append(key)
            values.append(content.FieldValue(row["id"], str(ids[value.name]) if isinstance(value, _Ref) else value))
        parent_id = ids[node.parent] if isinstance(node.parent, str) else node.parent
        new = content.NewContent(route_id=node.route_id, datatype_id=node.datatype_id, parent_id=parent_id,
                                 fields=values, status=node.status, slug=node.slug)
        try:
            row = await content.create_content(session, new)
        except ModulaError as exc:
            problems.extend(_service_problems(node.where, exc, keys))
            failed.update([node.ref] if node.ref else [])
            if len(problems) > MAX_PROBLEMS:
                break
            continue
        created += 1
        if node.ref is not None:
            ids[node.ref] = row["id"]
        later.extend((node, row["id"], *item) for item in deferred)
        if advance:
            advance(1)
    for node, content_id, key, row, ref in later:
        if ref not in ids:
            continue  # the line it names failed, and that is reported
        try:
            await content.update_content(session, content_id, [content.FieldValue(row["id"], str(ids[ref]))])
        except ModulaError as exc:
            problems.extend(_service_problems(node.where, exc, [key]))
    return created, problems


def _service_problems(where: str, exc: ModulaError, keys: list[str]) -> Iterable[LineProblem]:
    """The service's problems with a node, named by the line and the field key as the file wrote it."""
    for problem in getattr(exc, "problems", [exc]):
        path = problem.path
        reason = problem.reason
        if len(path) >= 3 and path[-3] == "fields" and isinstance(path[-2], int) and path[-2] < len(keys):
            key = keys[path[-2]]
            yield LineProblem(where, reason if reason.startswith("field ") else f"field {key!r}: {reason}")
        elif path and path[-1] == "parentId":
            yield LineProblem(where, f"parent: {reason}")
        else:
            yield LineProblem(where, reason)


async def export_content(session: Session, *, advance: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Every content node as an import record, parents before children and siblings in order; a
    node's ref is its id, so content references point at refs in the same export."""
    catalog = await _Catalog.load(session)
    rows = await session.fetch_all(sa.select(t.content_data).order_by(t.content_data.c.id))
    values: dict[int, list[dict]] = {}
    for start in range(0, len(rows), VALUE_CHUNK):
        for value in await content.values_of(session, [row["id"] for row in rows[start:start + VALUE_CHUNK]]):
            values.setdefault(value["content_data_id"], []).append(value)
    exported_ids = {row["id"] for row in rows}
    records = []
    for row in _tree_order(rows):
        record: dict[str, Any] = {
            "ref": str(row["id"]),
            "route": catalog.routes[row["route_id"]]["slug"],
            "datatype": catalog.datatypes[row["datatype_id"]]["label"],
            "status": row["status"],
            "slug": row["slug"],
        }
        if row["parent_id"] is not None:
            record["parent"] = str(row["parent_id"])
        record["fields"] = {v["field"]["label"]: _field_json(v["field"]["type"], v["value"], exported_ids)
                            for v in values.get(row["id"], [])}
        records.append(record)
        if advance:
            advance(1)
    return records


def _tree_order(rows: list[dict]) -> list[dict]:
    """Each route's nodes depth first, siblings by position: importing them in this order rebuilds
    the same trees, since a new node goes last among its siblings."""
    children: dict[tuple[int, int | None], list[dict]] = {}
    for row in rows:
        children.setdefault((row["route_id"], row["parent_id"]), []).append(row)
    for siblings in children.values():
        siblings.sort(key=lambda r: (r["position"], r["id"]))
    ordered: list[dict] = []
    for route_id in sorted({row["route_id"] for row in rows}):
        stack = list(reversed(children.get((route_id, None), [])))
        while stack:
            row = stack.pop()
            ordered.append(row)
            stack.extend(reversed(children.get((route_id, row["id"]), [])))
    return ordered


def _field_json(kind: str, text: str, exported_ids: set[int]) -> Any:
    """A stored value as the JSON an import reads back to the same stored value."""
    if kind == "integer":
        return int(text)
    if kind == "number":
        number = float(text)
        return number if parse_value("number", repr(number)).value == text else text  # a string keeps every digit
    if kind == "boolean":
        return text == "true"
    if kind == "json":
        return json.loads(text)
    if kind == "content":
        return {"ref": text} if int(text) in exported_ids else int(text)
    if kind == "media":
        return int(text)
    return text
