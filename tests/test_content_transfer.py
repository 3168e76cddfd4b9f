"""`modula content import` and `export` as a CMS user runs them, on SQLite and PostgreSQL: JSON Lines
in, nodes with their fields, parents and status out; a bad line is named by number and field and
leaves the database as it was; export then import into a fresh database gives the same content."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from modula.cms import content, content_tree, datatypes, routes
from modula.cms.datatypes import NewField
from modula.cms.transfer import ImportFailed, import_content, read_records
from modula.db import core_tables as t
from modula.db.connection import Database
from modula_testing import create_test_database, drop_test_database, migrated_session

ARTICLE = [
    NewField("Title", "text", required=True),
    NewField("Body", "richtext"),
    NewField("Views", "integer"),
    NewField("Rating", "number"),
    NewField("Featured", "boolean"),
    NewField("Published on", "date"),
    NewField("Updated", "datetime"),
    NewField("Meta", "json"),
    NewField("Cover", "media"),
    NewField("Related", "content"),
]


def _modula(*args: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "modula.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, input=stdin, env={**os.environ, "DATABASE_URL": "", "MODULA_DATABASE_URL": ""})


def _jsonl(path: Path, *records: dict) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


async def _prepare(url: str) -> dict:
    """Migrate, and create what an import names: routes blog and site, datatypes Article and Page."""
    async with migrated_session(url) as session:
        for slug in ("blog", "site"):
            await routes.create_route(session, slug=slug, title=slug.title(), site_id=None)
        article = await datatypes.create_datatype(session, label="Article", type="article", new_fields=ARTICLE)
        await datatypes.create_datatype(session, label="Page", type="page", new_fields=[NewField("Title", "text")])
        fields = await datatypes.fields_of_datatypes(session, [article["id"]])
    return {"article": article["id"], "fields": {row["label"]: row["id"] for row in fields}}


async def _query(url: str, statement) -> list[dict]:
    async with migrated_session(url) as session:
        return await session.fetch_all(statement)


async def _counts(url: str) -> tuple[int, int]:
    rows = await _query(url, sa.select(sa.select(sa.func.count()).select_from(t.content_data).scalar_subquery().label("nodes"),
                                       sa.select(sa.func.count()).select_from(t.content_fields).scalar_subquery().label("values")))
    return rows[0]["nodes"], rows[0]["values"]


def _assert_import_failed(result: subprocess.CompletedProcess, message: str, fix: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    error, fix_line = result.stderr.rstrip("\n").split("\n")[-2:]
    assert error.startswith("modula: error: ") and message in error, result.stderr
    assert fix_line.startswith("  fix: ") and fix in fix_line and fix_line.endswith("nothing was imported"), result.stderr


HOME = {"ref": "home", "route": "blog", "datatype": "Article", "fields": {"Title": "Home", "Views": 3}}


async def test_import_creates_every_node_with_its_fields_parent_and_status(database_url, tmp_path):
    await _prepare(database_url)
    file = _jsonl(tmp_path / "pages.jsonl",
                  {**HOME, "fields": {"Title": "Home", "Views": 3, "Featured": True, "Rating": 4.5, "Meta": {"tags": ["a"]}}},
                  {"ref": "about", "parent": "home", "route": "blog", "datatype": "article", "status": "draft",
                   "fields": {"title": "About us", "Related": {"ref": "home"}}},
                  {"route": "site", "datatype": "Page", "fields": {"Title": "Landing"}})
    result = _modula("content", "import", str(file), "--database-url", database_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"imported 3 content node(s) from {file}\n"

    nodes = await _query(database_url, sa.select(t.content_data).order_by(t.content_data.c.id))
    home, about, landing = nodes
    assert (about["parent_id"], about["status"], home["status"]) == (home["id"], "draft", "published")
    assert landing["route_id"] != home["route_id"] and landing["parent_id"] is None
    values = await _query(database_url, sa.select(t.content_fields.c.content_data_id, t.fields.c.label, t.content_fields.c.value)
                          .join(t.fields, t.fields.c.id == t.content_fields.c.field_id).order_by(t.content_fields.c.id))
    stored = {(row["content_data_id"], row["label"]): row["value"] for row in values}
    assert stored == {
        (home["id"], "Title"): "Home", (home["id"], "Views"): "3", (home["id"], "Featured"): "true",
        (home["id"], "Rating"): "4.5", (home["id"], "Meta"): '{"tags":["a"]}',
        (about["id"], "Title"): "About us", (about["id"], "Related"): str(home["id"]),
        (landing["id"], "Title"): "Landing",
    }


async def test_a_bad_value_names_the_line_and_the_field_and_nothing_is_imported(database_url, tmp_path):
    await _prepare(database_url)
    assert _modula("content", "import", str(_jsonl(tmp_path / "first.jsonl", HOME)), "--database-url", database_url,
                   cwd=tmp_path).returncode == 0
    before = await _counts(database_url)
    file = _jsonl(tmp_path / "more.jsonl", *[{"route": "blog", "datatype": "Article", "fields": {"Title": f"n{i}"}} for i in range(3)],
                  {"route": "blog", "datatype": "Article", "fields": {"Title": "bad", "Views": "many"}})
    result = _modula("content", "import", str(file), "--database-url", database_url, cwd=tmp_path)
    _assert_import_failed(result, "line 4: field 'Views' (integer): expected an integer such as 42, got 'many'",
                          f"correct {file} there and import it again")
    assert await _counts(database_url) == before == (1, 2)


async def test_problems_found_while_writing_roll_back_the_nodes_written_before_them(database_url, tmp_path):
    # A missing required field and an unknown media id are found by create_content itself, after
    # lines 1-3 were written in the same transaction.
    await _prepare(database_url)
    file = _jsonl(tmp_path / "pages.jsonl", HOME,
                  {"ref": "a", "parent": "home", "route": "blog", "datatype": "Article", "fields": {"Title": "A"}},
                  {"ref": "b", "parent": "home", "route": "blog", "datatype": "Article", "fields": {"Title": "B"}},
                  {"route": "blog", "datatype": "Article", "fields": {"Views": 1}},
                  {"route": "blog", "datatype": "Article", "fields": {"Title": "C", "Cover": 999}})
    result = _modula("content", "import", str(file), "--database-url", database_url, cwd=tmp_path)
    _assert_import_failed(result, "line 4: field 'Title' (id ", "import it again")
    assert "is required (and 1 more problem(s), at lines 5)" in result.stderr
    assert await _counts(database_url) == (0, 0)

    fixed = _jsonl(tmp_path / "fixed.jsonl", *[json.loads(line) for line in file.read_text().splitlines()[:3]],
                   {"route": "blog", "datatype": "Article", "fields": {"Title": "C", "Cover": 999}})
    result = _modula("content", "import", str(fixed), "--database-url", database_url, cwd=tmp_path)
    _assert_import_failed(result, "line 4: field 'Cover': media 999 does not exist", "import it again")
    assert await _counts(database_url) == (0, 0)


async def test_names_that_do_not_resolve_are_reported_with_their_line_and_fix(database_url):
    await _prepare(database_url)
    lines = [
        {"route": "news", "datatype": "Article", "fields": {"Title": "x"}},
        {"route": "blog", "datatype": "Articles", "fields": {}},
        {"route": "blog", "datatype": "Article", "fields": {"Titel": "x"}},
        {"route": "blog", "datatype": "Article", "parent": "nowhere", "fields": {"Title": "x"}},
        {"route": "blog", "datatype": "Article", "parent": "later", "fields": {"Title": "x"}},
        {"ref": "later", "route": "blog", "datatype": "Article", "fields": {"Title": "x"}},
        {"ref": "later", "route": "blog", "datatype": "Article", "fields": {"Title": "x"}},
        {"route": "blog", "datatype": "Article", "state": "draft", "fields": {"Title": "x"}},
        {"route": "blog", "datatype": "Article", "status": "archived", "fields": {"Title": "x"}},
        ["not", "an", "object"],
        {"ref": 7, "route": "blog", "datatype": "Article", "fields": {"Title": "x", "title": "y", "Related": {"ref": "gone"}}},
    ]
    database = Database(database_url)
    await database.connect()
    try:
        async with database.session() as session:
            with pytest.raises(ImportFailed) as failed:
                await import_content(session, read_records("\n".join(json.dumps(line) for line in lines), "pages.jsonl"))
            count = await session.fetch_value(sa.select(sa.func.count()).select_from(t.content_data))
    finally:
        await database.disconnect()
    problems = [(p.where, p.message, p.fix) for p in failed.value.problems]
    assert problems == [
        ("line 1", "route 'news' does not exist", "create the route 'news' first (the createRoute mutation creates routes)"),
        ("line 2", "datatype 'Articles' does not exist (datatypes: Article, Page)",
         "create it first with the createDatatype mutation, or correct the label"),
        ("line 3", "field 'Titel': datatype 'Article' has no such field (its fields: Title, Body, Views, Rating, Featured, "
                   "Published on, Updated, Meta, Cover, Related)", None),
        ("line 4", "parent 'nowhere' is not the ref of any line", None),
        ("line 5", "parent 'later' is defined on line 6, after this one", "move line 6 above this line"),
        ("line 7", "ref 'later' is already used by line 6", None),
        ("line 8", "unknown key 'state'; a line has ref, route, datatype, status, slug, parent, fields", None),
        ("line 9", "'status' must be one of draft, published, got 'archived'", None),
        ("line 10", "expected a JSON object such as {\"route\": ..., \"datatype\": ..., \"fields\": {...}}, got list", None),
        ("line 11", "'ref' must be a non-empty string such as \"home\" that other lines can name, got 7", None),
        ("line 11", "field 'title' is given twice (also as 'Title')", None),
        ("line 11", "field 'Related': 'gone' is not the ref of any line", None),
    ]
    assert str(failed.value).startswith("line 1: route 'news' does not exist (and 11 more problem(s), at lines 2, 3, 4")
    assert str(failed.value).endswith("at lines 2, 3, 4, 5, 7, 8, 9, 10, 11)")
    assert count == 0


def test_text_that_is_not_json_is_named_by_its_line():
    with pytest.raises(ImportFailed) as failed:
        read_records('{"route": "blog"}\n\n{"route": blog}\n', "pages.jsonl")
    assert str(failed.value) == "line 3: not valid JSON: Expecting value (column 11)"
    assert failed.value.fix == "correct pages.jsonl there and import it again; nothing was imported"


async def test_a_required_reference_to_a_later_line_asks_to_move_that_line(database_url):
    await _prepare(database_url)
    database = Database(database_url)
    await database.connect()
    try:
        async with database.session() as session:
            await datatypes.create_datatype(session, label="Link", type="link",
                                            new_fields=[NewField("Target", "content", required=True)])
            records = read_records(json.dumps({"route": "blog", "datatype": "Link", "fields": {"Target": {"ref": "home"}}})
                                   + "\n" + json.dumps(HOME), "links.jsonl")
            with pytest.raises(ImportFailed) as failed:
                await import_content(session, records)
    finally:
        await database.disconnect()
    assert str(failed.value) == "line 1: field 'Target' is required and names 'home', defined later on line 2"
    assert failed.value.fix.startswith("move line 2 above this line")


async def test_a_json_array_file_and_standard_input_import_too(database_url, tmp_path):
    await _prepare(database_url)
    (tmp_path / "pages.json").write_text(json.dumps([HOME, {"parent": "home", "route": "blog", "datatype": "Article",
                                                            "fields": {"Title": "Child"}}], indent=2))
    result = _modula("content", "import", "pages.json", "--database-url", database_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "imported 2 content node(s) from pages.json\n"
    piped = _modula("content", "import", "-", "--database-url", database_url, cwd=tmp_path,
                    stdin=json.dumps({**HOME, "ref": "other"}) + "\n")
    assert piped.stdout == "imported 1 content node(s) from standard input\n", piped.stderr
    assert (await _counts(database_url))[0] == 3


async def test_import_shows_progress_on_stderr_and_the_result_on_stdout(database_url, tmp_path):
    await _prepare(database_url)
    file = _jsonl(tmp_path / "many.jsonl", *[{"route": "blog", "datatype": "Article", "fields": {"Title": f"n{i}"}}
                                            for i in range(40)])
    result = _modula("content", "import", str(file), "--database-url", database_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"imported 40 content node(s) from {file}\n"
    assert result.stderr.splitlines()[-1].startswith("importing: 40/40 nodes in ")


@pytest.fixture
async def fresh_database_url(dialect, tmp_path):
    """A second empty database of the same dialect, to import an export into."""
    if dialect == "sqlite":
        yield f"sqlite:///{tmp_path / 'copy.db'}"
        return
    admin_url = os.environ["MODULA_TEST_POSTGRES_URL"]
    name = f"modula_test_{uuid.uuid4().hex[:12]}"
    url = await create_test_database(admin_url, name)
    try:
        yield url
    finally:
        await drop_test_database(admin_url, name)


async def _write_site(url: str) -> None:
    """Content made through the services: trees whose sibling order differs from id order, every
    field type but media, a draft, and references forward and back in export order."""
    made = await _prepare(url)
    f = made["fields"]
    database = Database(url)
    await database.connect()
    try:
        async with database.session() as session:
            blog, site = [row["id"] for row in await routes.list_routes(session)]
            page = (await datatypes.list_datatypes(session))[1]["id"]
            page_title = (await datatypes.fields_of_datatypes(session, [page]))[0]["id"]

            async def node(route, datatype, values, parent=None, status="published"):
                new = content.NewContent(route, datatype, parent, [content.FieldValue(k, v) for k, v in values.items()], status)
                return (await content.create_content(session, new))["id"]

            a = await node(blog, made["article"], {f["Title"]: "A", f["Body"]: "<p>Hi</p>", f["Views"]: "12",
                                                    f["Rating"]: "4.25", f["Featured"]: "false", f["Published on"]: "2024-05-01",
                                                    f["Updated"]: "2024-05-01T12:30:00Z", f["Meta"]: '{"tags": ["x", 1]}'})
            c = await node(blog, made["article"], {f["Title"]: "C", f["Related"]: str(a)}, parent=a)
            d = await node(blog, made["article"], {f["Title"]: "D"}, parent=a, status="draft")
            await content_tree.move_content(session, d, a, 0)  # siblings now D, C
            await content.update_content(session, a, [content.FieldValue(f["Related"], str(c))])  # forward in export order
            await node(blog, made["article"], {f["Title"]: "B"})
            await node(site, page, {page_title: "Landing"})
            await node(blog, made["article"], {f["Title"]: "E", f["Rating"]: "0.1"}, parent=c)
    finally:
        await database.disconnect()


def _by_position(records: list[dict]) -> list[dict]:
    """Records with every ref replaced by the record's place in the export: ids differ between databases."""
    place = {record["ref"]: str(index) for index, record in enumerate(records)}
    out = []
    for record in records:
        fields = {k: ({"ref": place[v["ref"]]} if isinstance(v, dict) and set(v) == {"ref"} else v)
                  for k, v in record["fields"].items()}
        out.append({**record, "ref": place[record["ref"]], "fields": fields,
                    **({"parent": place[record["parent"]]} if "parent" in record else {})})
    return out


async def test_export_then_import_into_a_fresh_database_gives_the_same_content(database_url, fresh_database_url, tmp_path):
    await _write_site(database_url)
    exported = _modula("content", "export", "--database-url", database_url, cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    records = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [r["fields"]["Title"] for r in records] == ["A", "D", "C", "E", "B", "Landing"]  # trees, siblings in order
    assert records[0]["fields"]["Meta"] == {"tags": ["x", 1]} and records[0]["fields"]["Views"] == 12
    assert records[0]["fields"]["Related"] == {"ref": records[2]["ref"]}

    await _prepare(fresh_database_url)
    (tmp_path / "site.jsonl").write_text(exported.stdout)
    imported = _modula("content", "import", "site.jsonl", "--database-url", fresh_database_url, cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    again = _modula("content", "export", "--database-url", fresh_database_url, cwd=tmp_path)
    assert _by_position([json.loads(line) for line in again.stdout.splitlines()]) == _by_position(records)
    assert await _counts(fresh_database_url) == await _counts(database_url)


async def test_slugs_are_imported_as_given_or_derived_and_a_taken_or_bad_one_imports_nothing(database_url, tmp_path):
    await _prepare(database_url)
    taken = _jsonl(tmp_path / "taken.jsonl", {**HOME, "slug": "start"},
                   {"route": "blog", "datatype": "Article", "slug": "start", "fields": {"Title": "Again"}})
    _assert_import_failed(_modula("content", "import", str(taken), "--database-url", database_url, cwd=tmp_path),
                          "line 2: slug 'start' is already taken among the node's siblings", "")
    bad = _jsonl(tmp_path / "bad.jsonl", {**HOME, "slug": "Not A Slug"})
    _assert_import_failed(_modula("content", "import", str(bad), "--database-url", database_url, cwd=tmp_path),
                          "line 1: 'slug' must be lowercase letters, digits and '-'", "")
    assert await _counts(database_url) == (0, 0)
    good = _jsonl(tmp_path / "good.jsonl", {**HOME, "slug": "start"},
                  {"parent": "home", "route": "blog", "datatype": "Article", "fields": {"Title": "Über uns"}})
    assert _modula("content", "import", str(good), "--database-url", database_url, cwd=tmp_path).returncode == 0
    nodes = await _query(database_url, sa.select(t.content_data.c.slug, t.content_data.c.tree_path).order_by(t.content_data.c.id))
    assert [(n["slug"], n["tree_path"]) for n in nodes] == [("start", "start"), ("uber-uns", "start/uber-uns")]
    exported = _modula("content", "export", "--database-url", database_url, cwd=tmp_path)
    assert [json.loads(line)["slug"] for line in exported.stdout.splitlines()] == ["start", "uber-uns"]
