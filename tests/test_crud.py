"""The generic CRUD builder over introspected tables: the same answers on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import datetime as dt
from decimal import Decimal

import pytest

from modula.db.connection import Database
from modula.db.crud import CrudError, OnConflict, TableCrud
from modula.db.errors import UniqueViolation
from modula.db.introspection import reflect_tables

UTC = dt.timezone.utc

DDL = """
CREATE TABLE t_items (
    id {pk},
    name TEXT NOT NULL UNIQUE,
    price {real},
    stock BIGINT NOT NULL DEFAULT 0,
    active BOOLEAN,
    released DATE,
    updated_at {datetime},
    attrs JSON,
    cost NUMERIC,
    payload {blob}
);
CREATE TABLE t_reviews (
    id {pk},
    item_id INTEGER NOT NULL REFERENCES t_items (id),
    stars INTEGER NOT NULL,
    body TEXT
);
CREATE TABLE t_counters (
    id {pk},
    hits INTEGER NOT NULL DEFAULT 0
);
"""
DIALECT_TYPES = {
    "sqlite": dict(pk="INTEGER PRIMARY KEY", real="REAL", datetime="DATETIME", blob="BLOB"),
    "postgresql": dict(pk="SERIAL PRIMARY KEY", real="DOUBLE PRECISION", datetime="TIMESTAMPTZ", blob="BYTEA"),
}

FRUIT = [
    {"name": "Apple", "price": 1.5, "stock": 10, "active": True},
    {"name": "apricot", "price": None, "stock": 3, "active": False},
    {"name": "Banana", "price": 0.5, "stock": 0, "active": None},
    {"name": "cherry", "price": 3.0, "stock": 7, "active": True},
    {"name": "100%_pure", "price": 1.5, "stock": 1, "active": False},
]


@pytest.fixture
async def database(database_url: str, dialect: str):
    database = Database(database_url)
    await database.connect()
    async with database.session() as session:
        await session.execute_script(DDL.format(**DIALECT_TYPES[dialect]))
    try:
        yield database
    finally:
        await database.disconnect()


@pytest.fixture
async def session(database: Database):
    async with database.session() as session:
        yield session


@pytest.fixture
async def items(database: Database) -> TableCrud:
    return TableCrud((await reflect_tables(database.url, prefix="t_"))["t_items"])


@pytest.fixture
async def reviews(database: Database) -> TableCrud:
    return TableCrud((await reflect_tables(database.url, prefix="t_"))["t_reviews"])


@pytest.fixture
async def fruit(items: TableCrud, session) -> list[dict]:
    return await items.insert(session, FRUIT)


@contextlib.contextmanager
def statements(database: Database):
    seen: list[str] = []
    stop = database.observe(seen.append)
    try:
        yield seen
    finally:
        stop()


def names(rows: list[dict]) -> list[str]:
    return [row["name"] for row in rows]


async def test_a_row_round_trips_identically_through_every_statement(items, session):
    full = {
        "name": "Full", "price": 2.25, "stock": 5, "active": True, "released": dt.date(2024, 2, 29),
        "updated_at": dt.datetime(2024, 3, 1, 14, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        "attrs": {"tags": ["a", "ü"], "n": 1, "ok": None}, "cost": Decimal("12.5"), "payload": b"\x00\xffbin",
    }
    empty = {"name": "Empty", "price": None, "active": None, "released": None, "updated_at": None,
             "attrs": None, "cost": None, "payload": None}
    inserted = await items.insert(session, [full, empty])
    expected = [
        {"id": 1, **full, "updated_at": dt.datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)},
        {"id": 2, **empty, "stock": 0},
    ]
    assert inserted == expected
    assert await items.find(session) == expected
    assert await items.by_pk(session, {"id": 1}) == expected[0]
    assert await items.update(session, where={"id": {"eq": 2}}, set={"stock": 1}) == [{**expected[1], "stock": 1}]
    assert await items.delete_by_pk(session, {"id": 1}) == expected[0]
    assert [str(r["cost"]) for r in await items.insert(session, [
        {"name": "a", "cost": Decimal("1.10")}, {"name": "b", "cost": Decimal("100.00")}, {"name": "c", "cost": Decimal("-0.5")},
    ])] == ["1.1", "100", "-0.5"]  # SQLite cannot keep trailing zeros, so neither dialect returns them
    row = inserted[0]
    assert type(row["active"]) is bool and type(row["released"]) is dt.date and type(row["cost"]) is Decimal
    assert row["updated_at"].tzinfo == UTC and type(row["payload"]) is bytes and type(row["price"]) is float


@pytest.mark.parametrize("where, expected", [
    ({"name": {"eq": "Apple"}}, ["Apple"]),
    ({"stock": {"neq": 0}}, ["Apple", "apricot", "cherry", "100%_pure"]),
    ({"price": {"gt": 1.5}}, ["cherry"]),
    ({"price": {"gte": 1.5}}, ["Apple", "cherry", "100%_pure"]),
    ({"price": {"lt": 1.5}}, ["Banana"]),
    ({"price": {"lte": 1.5, "gt": 0.5}}, ["Apple", "100%_pure"]),
    ({"price": {"gt": 1, "lt": 3}}, ["Apple", "100%_pure"]),
    ({"name": {"in": ["cherry", "Apple", "nope"]}}, ["Apple", "cherry"]),
    ({"stock": {"nin": [0, 10]}}, ["apricot", "cherry", "100%_pure"]),
    ({"active": {"eq": False}}, ["apricot", "100%_pure"]),
    ({"price": {"isNull": True}}, ["apricot"]),
    ({"active": {"isNull": False}}, ["Apple", "apricot", "cherry", "100%_pure"]),
    ({"active": {"neq": True}}, ["apricot", "100%_pure"]),  # SQL: neq never matches NULL
], ids=lambda v: str(v) if isinstance(v, dict) else "")
async def test_each_operator_selects_the_matching_rows(items, session, fruit, where, expected):
    assert names(await items.find(session, where=where)) == expected
    assert await items.count(session, where=where) == len(expected)


@pytest.mark.parametrize("where, expected", [
    ({"name": {"like": "A%"}}, ["Apple"]),
    ({"name": {"like": "a%"}}, ["apricot"]),
    ({"name": {"like": "_pple"}}, ["Apple"]),
    ({"name": {"like": "%E"}}, []),
    ({"name": {"ilike": "a%"}}, ["Apple", "apricot"]),
    ({"name": {"ilike": "%ANA"}}, ["Banana"]),
    ({"name": {"like": "100\\%\\_%"}}, ["100%_pure"]),
    ({"name": {"like": "1__\\%%"}}, ["100%_pure"]),
    ({"name": {"like": "%\\_%"}}, ["100%_pure"]),
    ({"name": {"ilike": "%\\%%"}}, ["100%_pure"]),
    ({"name": {"like": "[A]%"}}, []),  # brackets are literal, not a GLOB class
], ids=lambda v: str(v) if isinstance(v, dict) else "")
async def test_like_is_case_sensitive_and_ilike_is_not_on_both_dialects(items, session, fruit, where, expected):
    assert names(await items.find(session, where=where)) == expected


async def test_dates_and_datetimes_compare_as_instants_whatever_the_offset(items, session):
    paris = dt.timezone(dt.timedelta(hours=1))
    await items.insert(session, [
        {"name": "early", "released": dt.date(2024, 1, 31), "updated_at": dt.datetime(2024, 1, 31, 23, 30, tzinfo=paris)},
        {"name": "late", "released": dt.date(2024, 2, 1), "updated_at": dt.datetime(2024, 2, 1, 0, 30, tzinfo=UTC)},
    ])
    after = await items.find(session, where={"updated_at": {"gt": dt.datetime(2024, 1, 31, 22, 45, tzinfo=UTC)}})
    assert names(after) == ["late"]
    assert names(await items.find(session, where={"updated_at": {"eq": dt.datetime(2024, 1, 31, 22, 30, tzinfo=UTC)}})) == ["early"]
    assert names(await items.find(session, where={"released": {"gte": dt.date(2024, 2, 1)}})) == ["late"]
    assert names(await items.find(session, order_by=[("updated_at", "desc")])) == ["late", "early"]


async def test_empty_in_matches_nothing_and_empty_nin_everything(items, session, fruit):
    assert await items.find(session, where={"name": {"in": []}}) == []
    assert len(await items.find(session, where={"price": {"nin": []}})) == 5  # NULL price included
    assert await items.count(session, where={}) == await items.count(session, where=None) == 5


async def test_and_or_not_nest(items, session, fruit):
    where = {
        "or": [
            {"and": [{"active": {"eq": True}}, {"not": {"name": {"eq": "Apple"}}}]},
            {"price": {"isNull": True}},
        ],
        "stock": {"gt": 0},
    }
    assert names(await items.find(session, where=where)) == ["apricot", "cherry"]
    assert names(await items.find(session, where={"not": {"or": [{"stock": {"lt": 5}}, {"price": {"gt": 2}}]}})) == ["Apple"]
    assert await items.count(session, where={"and": []}) == 5
    assert await items.count(session, where={"or": []}) == 0


async def test_nulls_sort_as_smallest_and_the_primary_key_breaks_ties(items, session, fruit):
    ascending = await items.find(session, order_by=[("price", "asc")])
    assert names(ascending) == ["apricot", "Banana", "Apple", "100%_pure", "cherry"]
    descending = await items.find(session, order_by=[("price", "desc")])
    assert names(descending) == ["cherry", "Apple", "100%_pure", "Banana", "apricot"]
    by_active = await items.find(session, order_by=[("active", "desc"), ("price", "asc")])
    assert names(by_active) == ["Apple", "cherry", "apricot", "100%_pure", "Banana"]


async def test_limit_and_offset_page_through_a_stable_order(items, session, fruit):
    pages = [await items.find(session, order_by=[("price", "asc")], limit=2, offset=o) for o in (0, 2, 4)]
    assert [names(p) for p in pages] == [["apricot", "Banana"], ["Apple", "100%_pure"], ["cherry"]]
    assert names(await items.find(session, offset=3)) == ["cherry", "100%_pure"]
    assert await items.find(session, limit=0) == []


async def test_aggregate_is_one_statement_with_values_in_column_types(items, database, session, fruit):
    await items.update(session, where={"name": {"eq": "Apple"}}, set={"cost": Decimal("2.5"), "released": dt.date(2024, 5, 1)})
    await items.update(session, where={"name": {"eq": "cherry"}}, set={"cost": Decimal("1.25"), "released": dt.date(2023, 1, 2)})
    with statements(database) as seen:
        result = await items.aggregate(session, where={"stock": {"gt": 0}}, sum=["stock", "price", "cost"],
                                       avg=["stock"], min=["name", "released", "price"], max=["released", "cost"])
    assert len(seen) == 1
    assert result == {
        "count": 4,
        "sum": {"stock": 21, "price": 6.0, "cost": Decimal("3.75")},
        "avg": {"stock": 5.25},
        "min": {"name": "100%_pure", "released": dt.date(2023, 1, 2), "price": 1.5},
        "max": {"released": dt.date(2024, 5, 1), "cost": Decimal("2.5")},
    }
    assert type(result["sum"]["stock"]) is int and type(result["avg"]["stock"]) is float
    assert type(result["max"]["released"]) is dt.date
    empty = await items.aggregate(session, where={"stock": {"gt": 100}}, sum=["stock"], max=["name"])
    assert empty == {"count": 0, "sum": {"stock": None}, "avg": {}, "min": {}, "max": {"name": None}}


async def test_aggregate_refuses_columns_of_the_wrong_type(items, session):
    with pytest.raises(CrudError) as refused:
        await items.aggregate(session, sum=["stock", "name"])
    assert refused.value.path == ("sum", 1)
    with pytest.raises(CrudError) as refused:
        await items.aggregate(session, max=["attrs"])
    assert refused.value.path == ("max", 0)


async def test_by_pk_finds_one_row_or_none(items, session, fruit):
    assert (await items.by_pk(session, {"id": 4}))["name"] == "cherry"
    assert await items.by_pk(session, {"id": 99}) is None
    with pytest.raises(CrudError) as refused:
        await items.by_pk(session, {})
    assert refused.value.path == ("key", "id")
    with pytest.raises(CrudError) as refused:
        await items.by_pk(session, {"id": 1, "name": "Apple"})
    assert refused.value.path == ("key", "name")


async def _seed_reviews(reviews, session, parents: int) -> None:
    await reviews.insert(session, [
        {"item_id": item, "stars": stars, "body": None if stars == 3 else f"{item}/{stars}"}
        for item in range(1, parents + 1) for stars in range(1, (item % 4) + 1)
    ])


async def test_by_keys_groups_children_of_100_parents_in_one_statement(items, reviews, database, session):
    await items.insert(session, [{"name": f"item {n}"} for n in range(100)])
    await _seed_reviews(reviews, session, 100)
    keys = list(range(1, 101)) + [500]
    with statements(database) as seen:
        groups = await reviews.by_keys(session, "item_id", keys, order_by=[("stars", "desc")])
    assert len(seen) == 1
    assert list(groups) == keys and groups[500] == [] and groups[4] == []
    assert [r["stars"] for r in groups[3]] == [3, 2, 1]
    assert all(r["item_id"] == key for key, rows in groups.items() for r in rows)


async def test_by_keys_applies_limit_and_offset_per_key_in_one_statement(items, reviews, database, session):
    await items.insert(session, [{"name": f"item {n}"} for n in range(100)])
    await _seed_reviews(reviews, session, 100)
    with statements(database) as seen:
        groups = await reviews.by_keys(session, "item_id", list(range(1, 101)), order_by=[("body", "desc")],
                                       limit=1, offset=1, where={"stars": {"lt": 3}})
    assert len(seen) == 1
    assert [r["body"] for r in groups[3]] == ["3/1"]  # 3/2 first, then 3/1 (stars 3 filtered out)
    assert groups[1] == [] and groups[2][0]["stars"] == 1
    firsts = await reviews.by_keys(session, "item_id", [3, 7], order_by=[("body", "asc")], limit=2)
    assert [[r["body"] for r in rows] for rows in firsts.values()] == [[None, "3/1"], [None, "7/1"]]


async def test_insert_many_is_one_statement_with_defaults_and_keys_in_input_order(items, database, session):
    rows = [{"name": f"n{i}", "price": float(i)} if i % 2 else {"name": f"n{i}"} for i in range(50)]
    with statements(database) as seen:
        inserted = await items.insert(session, rows)
    assert len(seen) == 1
    assert [r["id"] for r in inserted] == list(range(1, 51))
    assert names(inserted) == [f"n{i}" for i in range(50)]
    assert {r["stock"] for r in inserted} == {0}  # the server default, not NULL
    assert inserted[3]["price"] == 3.0 and inserted[4]["price"] is None


async def test_insert_with_different_defaulted_columns_keeps_input_order(items, database, session):
    rows = [{"name": "a"}, {"name": "b", "stock": 4}, {"name": "c", "id": 40}, {"name": "d"}, {"name": "e", "stock": 9}]
    with statements(database) as seen:
        inserted = await items.insert(session, rows)
    assert names(inserted) == ["a", "b", "c", "d", "e"]
    assert [r["id"] for r in await items.insert(session, [{"id": 50, "name": "f"}, {"id": 45, "name": "g"}])] == [50, 45]
    assert await items.insert(session, []) == []
    assert [r["stock"] for r in inserted] == [0, 4, 0, 0, 9]
    assert inserted[2]["id"] == 40
    assert len([s for s in seen if s.startswith("INSERT")]) == 3  # one per set of given defaulted columns


async def test_rows_that_give_no_column_get_every_default(database, session):
    counters = TableCrud((await reflect_tables(database.url, prefix="t_"))["t_counters"])
    assert await counters.insert(session, [{}, {}, {"hits": 5}]) == [
        {"id": 1, "hits": 0}, {"id": 2, "hits": 0}, {"id": 3, "hits": 5}]


async def test_upsert_updates_clashing_rows_and_returns_all_in_input_order(items, session, fruit):
    upserted = await items.insert(
        session,
        [{"name": "Kiwi", "stock": 2}, {"name": "cherry", "stock": 70, "price": 9.0}, {"name": "Apple", "stock": 11}],
        on_conflict=OnConflict(("name",), ("stock",)),
    )
    assert [(r["id"], r["name"], r["stock"]) for r in upserted] == [(6, "Kiwi", 2), (4, "cherry", 70), (1, "Apple", 11)]
    assert upserted[1]["price"] == 3.0  # only update_columns change
    guarded = await items.insert(
        session, [{"name": "Apple", "stock": 0}, {"name": "Banana", "stock": 5}],
        on_conflict=OnConflict(("name",), ("stock",), where={"stock": {"lt": 5}}),
    )
    assert [(r["name"], r["stock"]) for r in guarded] == [("Banana", 5)]  # Apple has 11: not updated, not returned
    assert (await items.by_pk(session, {"id": 1}))["stock"] == 11


async def test_upsert_on_the_primary_key_may_mix_existing_rows_and_new_ones(items, database, session, fruit):
    with statements(database) as seen:
        saved = await items.insert(session, [{"name": "Kiwi"}, {"id": 2, "name": "Apricot"}, {"name": "Lime"}],
                                   on_conflict=OnConflict(("id",), ("name",)))
    assert [(r["id"], r["name"]) for r in saved] == [(6, "Kiwi"), (2, "Apricot"), (7, "Lime")]
    assert len([s for s in seen if s.startswith("INSERT")]) == 2  # rows with and without an id


async def test_upsert_do_nothing_returns_only_the_rows_it_inserted(items, session, fruit):
    inserted = await items.insert(session, [{"name": "Apple", "stock": 99}, {"name": "Fig"}],
                                  on_conflict=OnConflict(("name",)))
    assert names(inserted) == ["Fig"]
    assert (await items.by_pk(session, {"id": 1}))["stock"] == 10
    by_key = await items.insert(session, [{"id": 1, "name": "Other"}, {"id": 50, "name": "Date"}],
                                on_conflict=OnConflict(("id",)))
    assert [(r["id"], r["name"]) for r in by_key] == [(50, "Date")]


@pytest.mark.parametrize("rows, on_conflict, path", [
    ([{"name": "x"}], OnConflict(("price",), ("stock",)), ("on_conflict", "constraint_columns")),
    ([{"name": "x"}], OnConflict(("name",), ("colour",)), ("on_conflict", "update_columns", 0)),
    ([{"name": "x"}, {"stock": 1}], OnConflict(("name",), ("stock",)), ("rows", 1, "name")),
    ([{"name": "x"}, {"name": "x"}], OnConflict(("name",), ("stock",)), ("rows", 1)),
    ([{"name": "x"}], OnConflict(("name",), (), {"stock": {"gt": 1}}), ("on_conflict", "where")),
    ([{"name": "x"}, {"name": "y", "stock": 1}], OnConflict(("name",), ("stock",), {"colour": {"eq": 1}}),
     ("on_conflict", "where", "colour")),
], ids=["not unique", "unknown update column", "missing key", "same key twice", "where without update", "bad where"])
async def test_bad_upserts_are_refused_before_any_sql(items, database, session, rows, on_conflict, path):
    with statements(database) as seen, pytest.raises(CrudError) as refused:
        await items.insert(session, rows, on_conflict=on_conflict)
    assert refused.value.path == path
    assert seen == []


async def test_update_and_delete_return_the_rows_they_touched(items, session, fruit):
    updated = await items.update(session, where={"active": {"eq": False}}, set={"stock": 0, "price": None})
    assert [(r["name"], r["stock"], r["price"]) for r in sorted(updated, key=lambda r: r["id"])] == [
        ("apricot", 0, None), ("100%_pure", 0, None)]
    assert (await items.update_by_pk(session, {"id": 1}, {"active": False}))["active"] is False
    assert await items.update_by_pk(session, {"id": 99}, {"active": False}) is None
    deleted = await items.delete(session, where={"stock": {"eq": 0}})
    assert sorted(names(deleted)) == ["100%_pure", "Banana", "apricot"]
    assert names(await items.find(session)) == ["Apple", "cherry"]
    assert (await items.delete_by_pk(session, {"id": 4}))["name"] == "cherry"
    assert await items.delete_by_pk(session, {"id": 4}) is None


@pytest.mark.parametrize("call, path", [
    (lambda t, s: t.find(s, where={"and": [{"name": {"eq": "a"}}, {"price": {"gt": 1, "between": 2}}]}),
     ("where", "and", 1, "price", "between")),
    (lambda t, s: t.find(s, where={"or": [{"not": {"colour": {"eq": "red"}}}]}), ("where", "or", 0, "not", "colour")),
    (lambda t, s: t.find(s, where={"name": {"eq": None}}), ("where", "name", "eq")),
    (lambda t, s: t.find(s, where={"name": {"nin": ["a", None]}}), ("where", "name", "nin")),
    (lambda t, s: t.find(s, where={"price": {"like": "1%"}}), ("where", "price", "like")),
    (lambda t, s: t.find(s, where={"name": {"ilike": "ends in \\"}}), ("where", "name", "ilike")),
    (lambda t, s: t.find(s, where={"attrs": {"eq": {}}}), ("where", "attrs", "eq")),
    (lambda t, s: t.find(s, where={"price": {}}), ("where", "price")),
    (lambda t, s: t.find(s, order_by=[("name", "asc"), ("colour", "asc")]), ("order_by", 1)),
    (lambda t, s: t.find(s, order_by=[("name", "up")]), ("order_by", 0)),
    (lambda t, s: t.find(s, limit=-1), ("limit",)),
    (lambda t, s: t.update(s, where={}, set={}), ("set",)),
    (lambda t, s: t.update(s, where={}, set={"colour": "red"}), ("set", "colour")),
    (lambda t, s: t.insert(s, [{"name": "a"}, {"name": "b", "colour": "red"}]), ("rows", 1, "colour")),
    (lambda t, s: t.by_keys(s, "colour", [1]), ("column",)),
], ids=["unknown operator", "unknown column", "eq null", "null in nin", "like on a number", "dangling escape", "eq on json",
        "no operator", "order unknown column", "order direction", "negative limit", "empty set", "set unknown column",
        "insert unknown column", "by_keys unknown column"])
async def test_bad_input_raises_crud_error_with_the_input_path(items, database, session, call, path):
    with statements(database) as seen, pytest.raises(CrudError) as refused:
        await call(items, session)
    assert refused.value.path == path and refused.value.code == "INVALID_INPUT"
    assert seen == []


async def test_values_are_bound_never_written_into_the_sql(items, database, session):
    tricky = "O'Brien\"; DROP TABLE t_items; --"
    with statements(database) as seen:
        await items.insert(session, [{"name": tricky}])
        found = await items.find(session, where={"name": {"in": [tricky]}, "or": [{"name": {"like": "O'%"}}]})
    assert names(found) == [tricky]
    assert not any("Brien" in sql for sql in seen)


async def test_find_can_lock_the_rows_it_reads_for_update(items, database, session, fruit, dialect):
    with statements(database) as seen:
        async with session.transaction():
            locked = await items.find(session, where={"stock": {"gt": 5}}, lock=True)
    assert names(locked) == ["Apple", "cherry"]
    assert any("FOR UPDATE" in sql for sql in seen) == (dialect == "postgresql")


async def test_a_failing_insert_in_a_transaction_leaves_nothing_written(items, session, fruit):
    with pytest.raises(UniqueViolation):
        async with session.transaction():
            await items.insert(session, [{"name": "Kiwi"}])
            await items.insert(session, [{"name": "Lime"}, {"name": "Apple"}])
    assert await items.count(session) == 5
    assert await items.find(session, where={"name": {"in": ["Kiwi", "Lime"]}}) == []


async def test_an_insert_of_several_statements_is_all_or_nothing(items, session, fruit):
    with pytest.raises(UniqueViolation):
        await items.insert(session, [{"name": "Kiwi"}, {"name": "Apple", "stock": 1}])
    assert await items.count(session) == 5
