"""A datatype's fields as this process last read them, with the fields generation they were read
at (PostgreSQL).

createContent checks its values against these in the process and hands the generation to the
database, whose `modula_create_content` (sql/postgresql/0017) compares it, under the route's lock,
with `fields_state.generation`, which triggers move with every change to a field or to a
datatype's list of fields: a change made by any process since is seen there, never assumed. The
fields and their generation are read in one statement, so they always describe the same moment.
"""

from __future__ import annotations

import weakref
from typing import Any

import sqlalchemy as sa

from modula.db import core_tables as t
from modula.db.connection import Database, Session

Fields = dict[int, dict[str, Any]]

_KNOWN: weakref.WeakKeyDictionary[Database, dict[int, tuple[Fields, int]]] = weakref.WeakKeyDictionary()


async def fields_with_generation(session: Session, datatype_id: int) -> tuple[Fields, int] | None:
    """The datatype's fields by id (in its order) and the fields generation; None when there is no such
    datatype. Read once per process until `forget`."""
    known = _KNOWN.setdefault(session.database, {})
    found = known.get(datatype_id)
    if found is None:
        rows = await session.fetch_all(_FIELDS_WITH_GENERATION, {"datatype_id": datatype_id})
        if not rows or rows[0]["datatype__id"] is None:
            return None
        generation = rows[0]["fields_generation"]
        fields = {row["id"]: {name: row[name] for name in t.fields.c.keys()} for row in rows if row["id"] is not None}
        found = known[datatype_id] = (fields, generation)
    return found


def forget(database: Database, datatype_id: int) -> None:
    """The database said the fields are no longer what was known: read them again next time."""
    _KNOWN.get(database, {}).pop(datatype_id, None)


DATATYPE_FIELDS = (
    sa.select(t.datatypes.c.id.label("datatype__id"), *t.fields.c)
    .select_from(
        t.datatypes.outerjoin(t.datatypes_fields, t.datatypes_fields.c.datatype_id == t.datatypes.c.id)
        .outerjoin(t.fields, t.fields.c.id == t.datatypes_fields.c.field_id)
    )
    .where(t.datatypes.c.id == sa.bindparam("datatype_id", type_=t.datatypes.c.id.type))
    .order_by(t.datatypes_fields.c.position)
)
"""One row per field of the datatype, in its order (one row of NULLs when it has none; none when
there is no such datatype)."""

_FIELDS_STATE = sa.table("fields_state", sa.column("id"), sa.column("generation"))  # PostgreSQL only

_FIELDS_WITH_GENERATION = DATATYPE_FIELDS.add_columns(
    sa.select(_FIELDS_STATE.c.generation).where(_FIELDS_STATE.c.id == 1).scalar_subquery().label("fields_generation"))
