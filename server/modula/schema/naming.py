"""The names the generated API gives a plugin table: predictable from the table and column names.

For `shop_products` (primary key `product_id`): type `ShopProduct`, list `shopProducts`, one row
`shopProduct`, `shopProductsConnection`, `shopProductsAggregate`, `insertShopProducts` /
`insertShopProduct`, `updateShopProducts` / `updateShopProduct`, `deleteShopProducts` /
`deleteShopProduct`; columns in camelCase (`stock_count` -> `stockCount`). The last word of the
table name is singularised for the type (inflect). A datatype `blog_post` is named as the table
`blog_posts` would be (`BlogPost`, `blogPosts`, `blogPost`), its writes `createBlogPost`,
`updateBlogPost`, `deleteBlogPost`. When singular and plural are the same word
(`shop_news`), the one-row forms end in `ByPk` (and `insert…One`) so they stay distinct.
A plugin may name a table's type and list itself (`define_table{graphql = {type =, list =}}`);
every other name is then derived from those two, as above.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass


@functools.cache
def _english():
    """inflect's engine, made on first use. inflect wraps its methods in typeguard's @typechecked,
    which re-reads and re-parses inflect's whole source once per method when inflect is imported:
    2 s of CPU, 8 s on a busy machine, most of a server's start-up after a restart. It is imported
    with that decorator made a no-op, as under `python -O`; only typeguard's checks of the
    arguments we pass (table names, always str) are lost."""
    import typeguard

    checked = typeguard.typechecked
    typeguard.typechecked = _unchecked
    try:
        import inflect
    finally:
        typeguard.typechecked = checked
    return inflect.engine()


def _unchecked(target=None, **_options):
    return _unchecked if target is None else target


def camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def pascal(snake: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in snake.split("_"))


# Words inflect gets wrong as table names. Uncountable: one word for one and many (`forum_data`
# is `ForumData`, not `ForumDatum`; `shop_media` stays `ShopMedia`). Irregular: the singular of
# plurals inflect only strips (`indices` -> `indice`).
UNCOUNTABLE = frozenset({"analytics", "data", "equipment", "feedback", "information", "media", "metadata", "news",
                         "series", "software", "species", "staff"})
IRREGULAR_SINGULAR = {"indices": "index", "matrices": "matrix", "vertices": "vertex", "appendices": "appendix"}
# Singular words ending in s that inflect would cut (`status` -> `statu`, `analysis` -> `analysi`):
# every word ending in -sis, and these (a plural may end in -us or -as too: `menus`, `ideas`).
SINGULAR_AS_IS = frozenset({
    "alias", "apparatus", "atlas", "bias", "bonus", "bus", "cactus", "campus", "canvas", "census", "chorus", "circus",
    "consensus", "corpus", "focus", "fungus", "gas", "genus", "minus", "nexus", "octopus", "onus", "opus", "plus",
    "prospectus", "radius", "sinus", "status", "stimulus", "surplus", "syllabus", "thesaurus", "virus"})


def singular_word(word: str) -> str:
    """The singular of one lower-case English word, for a table's type name."""
    if word in UNCOUNTABLE:
        return word
    if word in IRREGULAR_SINGULAR:
        return IRREGULAR_SINGULAR[word]
    if word in SINGULAR_AS_IS or word.endswith("sis"):
        return word
    return _english().singular_noun(word) or word


def plural_word(word: str) -> str:
    """The plural of one lower-case English word, for a datatype's list name."""
    if word in UNCOUNTABLE:
        return word
    return _english().plural_noun(word) or word


@functools.cache
def singular(table: str) -> str:
    """`shop_product_attributes` -> `shop_product_attribute` (only the last word changes)."""
    head, _, last = table.rpartition("_")
    one = singular_word(last)
    return f"{head}_{one}" if head else one


@functools.cache
def plural(word: str) -> str:
    """`blog_post` -> `blog_posts` (only the last word changes)."""
    head, _, last = word.rpartition("_")
    many = plural_word(last)
    return f"{head}_{many}" if head else many


@dataclass(frozen=True)
class TableNames:
    table: str
    type: str  # ShopProduct
    list: str  # shopProducts
    one: str  # shopProduct
    connection: str
    aggregate: str
    insert: str
    insert_one: str
    update: str
    update_one: str
    delete: str
    delete_one: str

    def derived(self, suffix: str) -> str:
        """A helper type's name: `ShopProductFilter`, `ShopProductInsertInput`, …"""
        return self.type + suffix


@functools.cache
def table_names(table: str, type: str | None = None, list: str | None = None) -> TableNames:
    """The names of `table`'s generated API; `type` (`ForumAnalysis`) and `list` (`forumAnalyses`)
    replace the inflected ones when a plugin gives them."""
    one_type = type or pascal(singular(table))
    many = list or camel(table)
    many_pascal = many[:1].upper() + many[1:]
    same = one_type == many_pascal
    one_suffix = "ByPk" if same else ""
    return TableNames(
        table=table,
        type=one_type,
        list=many,
        one=one_type[:1].lower() + one_type[1:] + one_suffix,
        connection=many + "Connection",
        aggregate=many + "Aggregate",
        insert="insert" + many_pascal,
        insert_one="insert" + one_type + ("One" if same else ""),
        update="update" + many_pascal,
        update_one="update" + one_type + one_suffix,
        delete="delete" + many_pascal,
        delete_one="delete" + one_type + one_suffix,
    )


@dataclass(frozen=True)
class DatatypeNames:
    """What a datatype's content is called: the table names of its plural, and its typed writes."""

    table: TableNames
    create: str
    update: str
    delete: str

    def roots(self) -> list[str]:
        t = self.table
        return [t.list, t.one, t.connection, t.aggregate, self.create, self.update, self.delete]

    def types(self) -> list[str]:
        return [self.table.type, *(self.table.derived(suffix) for suffix in DATATYPE_SUFFIXES)]


# The helper types of a datatype's generated type: ArticleFilter, ArticleOrderBy, ...
DATATYPE_SUFFIXES = ("Filter", "OrderBy", "CreateInput", "SetInput", "Edge", "Connection", "Aggregate", "SumFields",
                     "AvgFields", "MinMaxFields")


@functools.cache
def datatype_names(datatype_type: str) -> DatatypeNames:
    names = table_names(plural(datatype_type))
    if names.type != pascal(datatype_type):  # inflect did not find the way back: keep the given word
        same = camel(datatype_type) == names.list
        names = dataclasses.replace(names, type=pascal(datatype_type), one=camel(datatype_type) + ("ByPk" if same else ""))
    kind = names.type
    return DatatypeNames(names, create="create" + kind, update="update" + kind, delete="delete" + kind)


def column_field(column: str) -> str:
    return camel(column)


def column_enum_value(column: str) -> str:
    return column.upper()


def object_relation_field(fk_column: str, target_table: str, taken: set[str]) -> str:
    """`product_id` -> `product`; when that is taken (or the column has no `_id`), the target's
    singular camelCase name (`shopProduct`), then `<column>Object`."""
    if fk_column.endswith("_id") and len(fk_column) > 3:
        name = camel(fk_column[:-3])
        if name not in taken:
            return name
    name = camel(singular(target_table))
    return name if name not in taken else camel(fk_column) + "Object"


def array_relation_field(child_table: str, fk_column: str, ambiguous: bool, child_list: str | None = None) -> str:
    """The parent's list of children: `shopProductAttributes` (or the list name the child table
    chose); with two foreign keys from the same child table to the parent, `shopOrderItemsByProductId`."""
    name = child_list or camel(child_table)
    return name + "By" + pascal(fk_column) if ambiguous else name
