"""Datatypes and their fields: the shapes content is written in."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from modula.cms.field_types import FIELD_TYPES
from modula.db import field_names
from modula.db.connection import Session
from modula.db.core_tables import datatypes, datatypes_fields, fields
from modula.plugins.registry import bump_generation
from modula.db.types import utcnow
from modula.errors import Problems

_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_FIELDS = 200


@dataclass(frozen=True)
class NewField:
    label: str
    type: str
    required: bool = False
    data: Any = None
    name: str | None = None  # the machine name; None: derived from the label


async def create_datatype(session: Session, *, label: str, type: str, new_fields: list[NewField]) -> dict[str, Any]:
    """Insert the datatype, its fields and the join rows in one transaction (which also moves the
    schema generation on)."""
    problems = Problems()
    if not label.strip():
        problems.add("INVALID_VALUE", "a datatype needs a label", ("input", "label"))
    if not _TYPE_NAME.match(type):
        problems.add("INVALID_VALUE", f"{type!r} is not a type name: use lowercase letters, digits and '_'", ("input", "type"))
    if len(new_fields) > MAX_FIELDS:
        problems.add("INVALID_VALUE", f"a datatype has at most {MAX_FIELDS} fields", ("input", "fields"))
    seen: dict[str, int] = {}
    for index, field in enumerate(new_fields):
        path = ("input", "fields", index)
        if not field.label.strip():
            problems.add("INVALID_VALUE", "a field needs a label", (*path, "label"))
        elif field.label.strip().lower() in seen:
            problems.add("DUPLICATE_FIELD", f"label {field.label!r} is used by fields[{seen[field.label.strip().lower()]}] too", (*path, "label"))
        else:
            seen[field.label.strip().lower()] = index
        if field.type not in FIELD_TYPES:
            problems.add("INVALID_VALUE", f"unknown field type {field.type!r}; use one of {', '.join(FIELD_TYPES)}", (*path, "type"))
    names = _field_names(new_fields, problems)
    if not problems and (other := await session.fetch_one(sa.select(datatypes).where(datatypes.c.type == type))):
        problems.add("NAME_TAKEN", f"type {type!r} is already used by datatype {other['id']} ({other['label']})", ("input", "type"))
    problems.raise_if_any()

    now = utcnow()
    async with session.transaction():
        datatype = await session.insert(datatypes, {"label": label.strip(), "type": type, "created_at": now, "updated_at": now})
        created = await session.insert_many(
            fields,
            [
                {
                    "label": f.label.strip(),
                    "type": f.type,
                    "required": f.required,
                    "data": None if f.data is None else json.dumps(f.data),
                    "name": name,
                    "created_at": now,
                }
                for f, name in zip(new_fields, names)
            ],
        )
        await session.insert_rows(
            datatypes_fields,
            [{"datatype_id": datatype["id"], "field_id": f["id"], "position": i} for i, f in enumerate(created)],
        )
        # The datatype has a generated GraphQL type: every server process rebuilds its schema.
        await bump_generation(session)
    return datatype


def _field_names(new_fields: list[NewField], problems: Problems) -> list[str]:
    """Each field's machine name: the one given (checked) or one derived from its label."""
    given: dict[str, int] = {}  # name -> the first field that asks for it
    for index, field in enumerate(new_fields):
        if field.name is not None:
            given.setdefault(field.name, index)
    names: list[str] = []
    for index, field in enumerate(new_fields):
        path = ("input", "fields", index, "name")
        if field.name is None:
            names.append(field_names.derive(field.label, [*given, *names]))
            continue
        if not field_names.FIELD_NAME.match(field.name):
            problems.add("INVALID_VALUE", f"{field.name!r} is not a field name: a lowercase letter, then letters and digits "
                         f"(camelCase, at most {field_names.MAX_LENGTH})", path)
        elif field.name in field_names.RESERVED:
            problems.add("RESERVED_NAME", f"{field.name!r} is a field every content node has; choose another name", path)
        elif given[field.name] != index:
            problems.add("DUPLICATE_FIELD", f"name {field.name!r} is used by fields[{given[field.name]}] too", path)
        names.append(field.name)
    return names


async def list_datatypes(session: Session) -> list[dict[str, Any]]:
    return await session.fetch_all(sa.select(datatypes).order_by(datatypes.c.id))


async def datatypes_by_ids(session: Session, ids: list[int]) -> list[dict[str, Any]]:
    return await session.fetch_all(sa.select(datatypes).where(datatypes.c.id.in_(ids)))


async def fields_of_datatypes(session: Session, datatype_ids: list[int]) -> list[dict[str, Any]]:
    """Field rows with their `datatype_id`, in each datatype's field order."""
    statement = (
        sa.select(fields, datatypes_fields.c.datatype_id)
        .join(datatypes_fields, datatypes_fields.c.field_id == fields.c.id)
        .where(datatypes_fields.c.datatype_id.in_(datatype_ids))
        .order_by(datatypes_fields.c.datatype_id, datatypes_fields.c.position)
    )
    return await session.fetch_all(statement)
