"""The names a plugin table's generated API gets: the inflector on common table names, and the
explicit `define_table{graphql = {type =, list =}}` for the words it cannot know, validated and
checked for clashes like every other name."""

from __future__ import annotations

import pytest

from modula.db.introspection import reflect_tables
from modula.plugins import registry
from modula.plugins.errors import PluginError
from modula.schema.naming import datatype_names, table_names
from test_plugins import write_plugin


@pytest.mark.parametrize("table, type_, list_, one", [
    ("forum_analysis", "ForumAnalysis", "forumAnalysis", "forumAnalysisByPk"),
    ("forum_analyses", "ForumAnalysis", "forumAnalyses", "forumAnalysis"),
    ("forum_data", "ForumData", "forumData", "forumDataByPk"),
    ("forum_metadata", "ForumMetadata", "forumMetadata", "forumMetadataByPk"),
    ("forum_media", "ForumMedia", "forumMedia", "forumMediaByPk"),
    ("forum_status", "ForumStatus", "forumStatus", "forumStatusByPk"),
    ("forum_statuses", "ForumStatus", "forumStatuses", "forumStatus"),
    ("forum_news", "ForumNews", "forumNews", "forumNewsByPk"),
    ("forum_series", "ForumSeries", "forumSeries", "forumSeriesByPk"),
    ("forum_people", "ForumPerson", "forumPeople", "forumPerson"),
    ("forum_criteria", "ForumCriterion", "forumCriteria", "forumCriterion"),
    ("forum_indices", "ForumIndex", "forumIndices", "forumIndex"),
    ("forum_aliases", "ForumAlias", "forumAliases", "forumAlias"),
    ("forum_campus", "ForumCampus", "forumCampus", "forumCampusByPk"),
    ("forum_menus", "ForumMenu", "forumMenus", "forumMenu"),  # a plural in -us stays a plural
    ("forum_ideas", "ForumIdea", "forumIdeas", "forumIdea"),
    ("shop_categories", "ShopCategory", "shopCategories", "shopCategory"),
    ("shop_product_attributes", "ShopProductAttribute", "shopProductAttributes", "shopProductAttribute"),
])
def test_common_table_names_get_sensible_types(table, type_, list_, one):
    names = table_names(table)
    assert (names.type, names.list, names.one) == (type_, list_, one)
    assert names.insert == "insert" + list_[:1].upper() + list_[1:]


def test_datatype_lists_of_uncountable_and_latin_words():
    assert (datatype_names("data").table.list, datatype_names("data").create) == ("data", "createData")
    assert datatype_names("status").table.list == "statuses"
    assert datatype_names("analysis").table.list == "analyses"
    assert datatype_names("person").table.list == "people"


def test_explicit_names_replace_the_inflected_ones():
    names = table_names("forum_analysis", "ForumAnalysis", "forumAnalyses")
    assert (names.type, names.list, names.one, names.connection, names.aggregate) == (
        "ForumAnalysis", "forumAnalyses", "forumAnalysis", "forumAnalysesConnection", "forumAnalysesAggregate")
    assert (names.insert, names.insert_one, names.update_one, names.delete) == (
        "insertForumAnalyses", "insertForumAnalysis", "updateForumAnalysis", "deleteForumAnalyses")
    only_type = table_names("forum_analysis", "Study")
    assert (only_type.type, only_type.list, only_type.one) == ("Study", "forumAnalysis", "study")


ANALYSIS = """
plugin.define_table{name = "forum_threads", fields = {
  {name = "thread_id", type = "integer", primary_key = true},
  {name = "title", type = "text"}}}
plugin.define_table{name = "forum_analysis", graphql = {type = "ForumAnalysis", list = "forumAnalyses"}, fields = {
  {name = "analysis_id", type = "integer", primary_key = true},
  {name = "summary", type = "text", not_null = true},
  {name = "thread_id", type = "integer", foreign_key = "forum_threads"}}}
"""


async def test_a_table_serves_under_the_names_the_plugin_gave(app, client, tmp_path):
    write_plugin(tmp_path / "plugins", "forum", ANALYSIS)
    report = await app.state.schemas.load_plugin("forum")
    assert report.failures == {}
    inserted = await client.data('mutation { insertForumAnalyses(objects: [{summary: "a"}, {summary: "b"}]) '
                                 "{ affectedRows returning { analysisId } } }")
    assert inserted["insertForumAnalyses"]["affectedRows"] == 2
    assert await client.data("{ forumAnalyses(orderBy: [{summary: ASC}]) { summary __typename } }") == {
        "forumAnalyses": [{"summary": "a", "__typename": "ForumAnalysis"}, {"summary": "b", "__typename": "ForumAnalysis"}]}
    one = inserted["insertForumAnalyses"]["returning"][0]["analysisId"]
    assert (await client.data(f"{{ forumAnalysis(analysisId: {one}) {{ summary }} }}")) == {"forumAnalysis": {"summary": "a"}}
    errors = (await client.execute("{ forumAnalysisByPk(analysisId: 1) { summary } }"))["errors"]
    assert "Cannot query field 'forumAnalysisByPk'" in errors[0]["message"]  # the inflected form is not served
    assert await client.count("forum_analysis") == 2

    # a parent lists its children, and takes them in a nested insert, by the list name they chose
    nested = await client.data('mutation { insertForumThreads(objects: [{title: "t", forumAnalyses: [{summary: "c"}]}]) '
                               "{ returning { title forumAnalyses { summary thread { title } } } } }")
    assert nested["insertForumThreads"]["returning"] == [
        {"title": "t", "forumAnalyses": [{"summary": "c", "thread": {"title": "t"}}]}]
    assert await client.count("forum_analysis") == 3


@pytest.mark.parametrize("graphql, message", [
    ('{type = "forumAnalysis"}', "graphql type 'forumAnalysis' must be a GraphQL name starting with an upper-case letter"),
    ('{list = "ForumAnalyses"}', "graphql list 'ForumAnalyses' must be a GraphQL name starting with a lower-case letter"),
    ('{type = "Forum-Analysis"}', "graphql type 'Forum-Analysis' must be a GraphQL name"),
    ('{type = "__Analysis"}', "graphql type '__Analysis' must be a GraphQL name"),
    ('{type = 3}', "graphql type 3 must be a GraphQL name"),
    ('{name = "ForumAnalysis"}', "table 'forum_analysis' graphql: unknown key(s) name; allowed: list, type"),
    ('"ForumAnalysis"', "graphql must be a table such as"),
])
async def test_an_unfit_graphql_name_is_refused_with_its_line_and_nothing_is_created(app, tmp_path, graphql, message):
    lua = ("plugin.define_table{name = \"forum_threads\", fields = {{name = \"thread_id\", type = \"integer\", primary_key = true}}}\n"
           f"plugin.define_table{{name = \"forum_analysis\", graphql = {graphql},\n"
           "  fields = {{name = \"analysis_id\", type = \"integer\", primary_key = true}}}\n")
    folder = write_plugin(tmp_path / "src", "forum", lua)
    with pytest.raises(PluginError) as caught:
        await app.state.plugins.install(folder)
    assert caught.value.location == "init.lua:2"
    assert message in caught.value.message
    assert await reflect_tables(app.state.database.url, prefix="forum_") == {}
    async with app.state.database.session() as session:
        assert await registry.get_plugin(session, "forum") is None


async def test_two_tables_may_not_choose_one_name(app, tmp_path):
    lua = ('plugin.define_table{name = "forum_threads", graphql = {list = "posts"}, fields = {\n'
           '  {name = "thread_id", type = "integer", primary_key = true}}}\n'
           'plugin.define_table{name = "forum_topics", graphql = {type = "Topic", list = "posts"}, fields = {\n'
           '  {name = "topic_id", type = "integer", primary_key = true}}}\n')
    with pytest.raises(PluginError) as caught:
        await app.state.plugins.install(write_plugin(tmp_path / "src", "forum", lua))
    assert caught.value.location == "init.lua:3"
    assert "graphql list 'posts' is already the name of table 'forum_threads'" in caught.value.message
    assert await reflect_tables(app.state.database.url, prefix="forum_") == {}


async def test_a_chosen_name_that_another_table_generates_is_refused(app, client, tmp_path):
    lua = ('plugin.define_table{name = "forum_threads", fields = {\n'
           '  {name = "thread_id", type = "integer", primary_key = true}}}\n'
           'plugin.define_table{name = "forum_topics", graphql = {list = "forumThreads"}, fields = {\n'
           '  {name = "topic_id", type = "integer", primary_key = true}}}\n')
    write_plugin(tmp_path / "plugins", "forum", lua)
    report = await app.state.schemas.load_plugin("forum")
    assert "tables forum_threads and forum_topics would both generate forumThreads" in report.failures["forum"]
    assert "(init.lua:3)" in report.failures["forum"]
    assert "forumThreads" not in app.state.live_schema.current.schema._schema.query_type.fields


async def test_a_chosen_name_taken_by_the_core_is_refused(app, client, tmp_path):
    lua = ('plugin.define_table{name = "forum_pages", graphql = {type = "Content", list = "contents"}, fields = {\n'
           '  {name = "page_id", type = "integer", primary_key = true}}}\n')
    write_plugin(tmp_path / "plugins", "forum", lua)
    report = await app.state.schemas.load_plugin("forum")
    assert "generates names already in use: Content (from the core schema)" in report.failures["forum"]
    assert (await client.data("{ contents { id } }")) == {"contents": []}  # the core's field still answers
