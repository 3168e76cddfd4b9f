"""The README says what is true: its tour's GraphQL blocks run in order against a fresh server that
has loaded the bundled plugins and leave the data the tour describes, and its configuration table
names every environment variable the server reads."""

from __future__ import annotations

import io
import re
import shlex
import shutil
from pathlib import Path

from PIL import Image

from modula_testing import GraphQLClient, running_app, token_client
from test_plugins import BUNDLED

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def tour_operations() -> list[str]:
    text = README.read_text()
    start = text.index("\n## A tour")
    end = text.index("\n## ", start + 1)
    return re.findall(r"```graphql\n(.*?)```", text[start:end], re.S)


def tour_upload() -> tuple[str, str]:
    """The `operations` and `map` of the tour's curl upload, as the shell passes them to curl."""
    text = README.read_text()
    block = re.search(r"```sh\n(curl[^`]*?uploadMedia[^`]*?)```", text[text.index("\n## A tour"):], re.S)[1]
    arguments = shlex.split(block.replace("\\\n", " "))
    fields = dict(argument.split("=", 1) for argument in arguments if argument.startswith(("operations=", "map=")))
    return fields["operations"], fields["map"]


def test_the_tour_covers_what_the_issue_asks_for():
    operations = "\n".join(tour_operations())
    for name in ("createDatatype", "createContent", "createArticle", "contentByPath", "approvePluginGrants", "insertShopProducts", "shopProducts",
                 "placeOrder"):
        assert name in operations, f"the README tour no longer shows {name}"


async def test_every_graphql_block_of_the_tour_runs_in_order_without_errors(database_url: str, tmp_path: Path):
    for name in ("shop", "webhooks"):
        shutil.copytree(BUNDLED / name, tmp_path / "plugins" / name)
    async with running_app(database_url, plugins_dir=tmp_path / "plugins", media_dir=tmp_path / "media",
                           upload_dir=tmp_path / "uploads") as app, \
            token_client(app, "admin", roles=["admin"]) as admin:
        # The tour's curl upload, as the same multipart request (the only media of the tour: id 1).
        operations, mapping = tour_upload()
        image = io.BytesIO()
        Image.new("RGB", (1200, 800), (120, 90, 60)).save(image, "JPEG")
        uploaded = await admin.http.post("/graphql", data={"operations": operations, "map": mapping},
                                         files={"0": ("cat.jpg", image.getvalue(), "image/jpeg")})
        assert uploaded.json()["data"]["uploadMedia"]["width"] == 1200, uploaded.text
        answers = []
        for number, operation in enumerate(tour_operations(), 1):
            body = await admin.execute(operation)
            assert not body.get("errors"), f"tour block {number} failed: {body['errors']}\n{operation}"
            answers.append(body["data"])

        content = answers[2]["createContent"]
        assert content["route"] == {"slug": "blog"}
        assert [f["value"] for f in content["fields"]] == ["Hello, Modula", "42", "2026-11-25"]
        assert content["path"] == "/blog/hello-modula"
        found = next(a["contentByPath"] for a in answers if "contentByPath" in a)
        assert found == {"__typename": "Article", "id": content["id"] + 1, "path": "/blog/paths-and-trees",
                         "status": "PUBLISHED", "title": "Paths and trees", "views": 7, "publishedOn": "2026-12-03",
                         "ancestors": [], "siblings": [{"path": "/blog/hello-modula"}]}
        cover = next(a["updateContent"] for a in answers if "updateContent" in a)["fields"][-1]
        assert cover["field"] == {"label": "Cover"} and cover["media"]["mimeType"] == "image/jpeg"
        assert [d["name"] for d in cover["media"]["dimensions"]] == ["thumbnail", "medium"]
        async with GraphQLClient.for_app(app) as visitor:  # the image of published content is public
            assert (await visitor.http.get(cover["media"]["url"])).status_code == 200
        products = next(a["shopProducts"] for a in answers if "shopProducts" in a)
        assert [p["name"] for p in products] == ["notebook", "pen"]  # price < 10, most expensive first
        assert products[1]["shopProductAttributes"] == [{"key": "color", "value": "blue"}]
        order = next(a["placeOrder"] for a in answers if "placeOrder" in a)
        assert order["total"] == 9.0  # 2 pens at 2.50 and a notebook at 4
        orders = answers[-1]["shopOrders"]
        assert [(i["quantity"], i["product"]["name"], i["product"]["stockCount"]) for i in orders[0]["shopOrderItems"]] \
            == [(2, "pen", 8), (1, "notebook", 2)]
        assert await admin.counts("content_data", "shop_products", "shop_orders", "shop_order_items") == {
            "content_data": 2, "shop_products": 2, "shop_orders": 1, "shop_order_items": 2}

        # The grants the tour approves let a visitor read the catalogue, not the orders.
        async with GraphQLClient.for_app(app) as anonymous:
            assert len((await anonymous.data("{ shopProducts { name } }"))["shopProducts"]) == 2
            assert (await anonymous.execute("{ shopOrders { total } }"))["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_every_environment_variable_the_server_reads_is_in_the_configuration_table():
    source = (ROOT / "server" / "modula" / "config.py").read_text()
    read = set(re.findall(r"MODULA_[A-Z_]+", source)) | {f"MODULA_{name.upper()}" for name in
                                                         re.findall(r'"(max_[a-z_]+)"', source)}
    text = README.read_text()
    table = text[text.index("\n## Configuration"):text.index("\n## ", text.index("\n## Configuration") + 1)]
    assert read, "no environment variables found in config.py"
    assert sorted(name for name in read if name not in table) == []


def graphql_readme_uploads() -> list[tuple[str, str, dict[str, str]]]:
    """The `operations`, `map` and files (part name -> file name) of each curl upload in graphql/README.md's
    Media section."""
    text = (ROOT / "graphql" / "README.md").read_text()
    start = text.index("\n## Media")
    section = text[start:text.index("\n## ", start + 1)]
    uploads = []
    for block in re.findall(r"```sh\n(curl[^`]*?)```", section, re.S):
        arguments = shlex.split(block.replace("\\\n", " "))
        fields = dict(argument.split("=", 1) for argument in arguments if "=" in argument and not argument.startswith("-"))
        files = {name: value.removeprefix("@") for name, value in fields.items() if value.startswith("@")}
        uploads.append((fields["operations"], fields["map"], files))
    return uploads


async def test_the_curl_uploads_of_graphql_readme_run_as_documented(database_url: str, tmp_path: Path):
    uploads = graphql_readme_uploads()
    assert len(uploads) >= 3, "graphql/README.md shows one file, several with uploadMediaItems and several uploadMedia"
    async with running_app(database_url, plugins_dir=tmp_path / "plugins", media_dir=tmp_path / "media",
                           upload_dir=tmp_path / "uploads") as app, \
            token_client(app, "admin", roles=["admin"]) as admin:
        stored = 0
        for number, (operations, mapping, files) in enumerate(uploads):
            parts = {}
            for shade, (part, name) in enumerate(files.items()):
                image = io.BytesIO()
                Image.new("RGB", (64, 48), (number * 40, shade * 90, 30)).save(image, "JPEG")
                parts[part] = (name, image.getvalue(), "image/jpeg")
            response = await admin.http.post("/graphql", data={"operations": operations, "map": mapping}, files=parts)
            body = response.json()
            assert response.status_code == 200 and not body.get("errors"), (number, body)
            stored += len(files)
            assert await admin.count("media") == stored
