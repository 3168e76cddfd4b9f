"""Machine names of datatype fields (`publishedOn` for "Published on"): the rule, and the one-time
backfill of fields made before fields had names. It lives in `db` because a migration runs it."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

import sqlalchemy as sa

FIELD_NAME = re.compile(r"^[a-z][A-Za-z0-9]{0,62}$")
MAX_LENGTH = 63
# The generated type's own fields (and its filter's logic words): a datatype field may not take them.
RESERVED = frozenset({
    "id", "slug", "path", "status", "position", "createdAt", "updatedAt", "route", "routeId", "parent", "parentId",
    "children", "ancestors", "descendants", "siblings", "author", "authorId", "datatype", "datatypeId", "fields",
    "nodeId", "ref", "refs", "treePath", "and", "or", "not",
})


def derive(label: str, taken: Iterable[str] = ()) -> str:
    """A valid name from a label, neither reserved nor one of `taken`: "Published on" -> publishedOn,
    a clash -> `…2`."""
    ascii_text = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    words = [w for w in re.split(r"[^A-Za-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", ascii_text)) if w]
    name = "".join([words[0].lower(), *(w[:1].upper() + w[1:].lower() for w in words[1:])]) if words else "field"
    if not name[0].isalpha():
        name = "field" + name[:1].upper() + name[1:]
    name = name[:MAX_LENGTH]
    taken = set(taken) | RESERVED
    candidate, number = name, 2
    while candidate in taken:
        suffix = str(number)
        candidate, number = name[:MAX_LENGTH - len(suffix)] + suffix, number + 1
    return candidate


async def backfill(session) -> None:
    """Name every unnamed field from its label, unique within each of its datatypes."""
    fields = sa.table("fields", sa.column("id"), sa.column("label"), sa.column("name"))
    links = sa.table("datatypes_fields", sa.column("datatype_id"), sa.column("field_id"), sa.column("position"))
    rows = await session.fetch_all(
        sa.select(fields.c.id, fields.c.label, fields.c.name, links.c.datatype_id)
        .select_from(fields.outerjoin(links, links.c.field_id == fields.c.id))
        .order_by(links.c.datatype_id, links.c.position, fields.c.id))
    taken: dict[object, set[str]] = {}
    for row in rows:
        if row["name"] is not None:
            taken.setdefault(row["datatype_id"], set()).add(row["name"])
    named: dict[int, str] = {}
    for row in rows:
        if row["name"] is not None or row["id"] in named:
            continue
        used = taken.setdefault(row["datatype_id"], set())
        named[row["id"]] = derive(row["label"], used)
        used.add(named[row["id"]])
    for field_id, name in named.items():
        await session.execute(sa.update(fields).where(fields.c.id == field_id).values(name=name))
