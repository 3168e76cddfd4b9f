"""The GraphiQL playground: the page and its assets come from the server alone (no CDN), its default
tabs are valid operations of the real API, and in headless Chromium it runs queries, logs in with
the session cookie, shows a plugin's types after the plugin loads and uploads files with its form."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import graphql
import httpx
import pytest

from headless_chromium import chromium_binary, chromium_page
from modula.playground import EXAMPLES as PACKAGED_EXAMPLES
from modula_testing import GraphQLClient, create_test_user, running_app, token_client

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "graphql" / "examples"
BUNDLED_PLUGINS = ROOT / "plugins"

# Documentation links that sit in the bundle's strings (error messages, scalar descriptions); none
# is fetched. Anything else with a scheme would be a resource the page might load from outside.
DOCUMENTATION_LINKS = {
    "https://codemirror.net/5/doc/manual.html#keymaps",
    "https://commonmark.org/",
    "https://en.wikipedia.org/wiki/IEEE_floating_point",
    "https://github.com/graphql/graphiql",
    "https://github.com/graphql/graphiql/blob/master/examples/graphiql-cdn/index.html#L49",
    "https://reactjs.org/docs/error-decoder.html?invariant=",
    "https://yarnpkg.com/en/docs/selective-version-resolutions",
}


@pytest.fixture
async def app(tmp_path: Path):
    """SQLite is enough here (the page does not touch the database); the shop plugin is loaded."""
    shutil.copytree(BUNDLED_PLUGINS / "shop", tmp_path / "plugins" / "shop")
    async with running_app(f"sqlite:///{tmp_path / 'modula.db'}", plugins_dir=tmp_path / "plugins") as app:
        yield app


@pytest.fixture
async def anonymous(app):
    async with GraphQLClient.for_app(app) as client:
        yield client


def asset_urls(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="(/playground/assets/[^"]+)"', page)


@pytest.mark.parametrize("path, accept", [
    ("/playground", "text/html"),
    ("/playground", "*/*"),
    ("/graphql", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),  # a browser's Accept
])
async def test_the_playground_page_is_served_without_external_urls(anonymous, path, accept):
    response = await anonymous.http.get(path, headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert '<div id="graphiql">' in page
    assert "https://" not in page and "http://" not in page and "//cdn" not in page
    assert sorted(asset_urls(page)) == ["/playground/assets/playground.css", "/playground/assets/playground.js",
                                        "/playground/assets/upload.css", "/playground/assets/upload.js"]


async def test_assets_are_served_with_their_content_types_and_load_nothing_external(anonymous):
    page = (await anonymous.http.get("/playground")).text
    types = {}
    for url in asset_urls(page):
        response = await anonymous.http.get(url)
        assert response.status_code == 200, url
        types[url.rsplit(".", 1)[1]] = response.headers["content-type"].split(";")[0]
        body = response.text
        assert "//cdn" not in body
        links = set(re.findall(r"https?://[a-z0-9-]+(?:\.[a-z0-9-]+)+[^\"'`)\s]*", body, re.I))
        xml_namespaces = {link for link in links if link.startswith("http://www.w3.org/")}
        assert links - xml_namespaces <= DOCUMENTATION_LINKS, url
        if url.endswith(".css"):
            assert not re.search(r"url\(\s*['\"]?(https?:)?//", body), "the stylesheet loads a remote file"
            assert "@import" not in body
    assert types == {"js": "text/javascript", "css": "text/css"}
    assert (await anonymous.http.get("/playground/assets/missing.js")).status_code == 404


async def test_an_operation_name_the_document_lacks_is_a_request_error_not_a_crash(anonymous):
    """GraphiQL can send the name of the operation a tab held before its text was replaced."""
    body = {"query": "{ sites { id } }", "operationName": "Login"}
    response = await anonymous.http.post("/graphql", json=body, headers={"Accept": "application/json"})  # as the playground
    assert response.status_code == 200
    assert response.json()["errors"] == [{"message": "the document has no operation named 'Login'"}]
    assert "data" not in response.json()
    strict = await anonymous.http.post("/graphql", json=body, headers={"Accept": "application/graphql-response+json"})
    assert strict.status_code == 400


async def test_get_graphql_with_a_query_still_answers_json(anonymous):
    for accept, media_type in (("application/json", "application/json"),
                               ("text/html,*/*", "application/graphql-response+json")):
        response = await anonymous.http.get("/graphql", params={"query": "{ sites { id } }"}, headers={"Accept": accept})
        assert response.status_code == 200
        assert response.headers["content-type"] == f"{media_type}; charset=utf-8"
        assert response.json()["data"] == {"sites": []}
    response = await anonymous.http.get("/graphql", headers={"Accept": "application/json"})
    assert response.status_code == 400 and response.json()["errors"]


async def test_the_page_inlines_the_example_operations_of_graphql_examples(anonymous):
    page = (await anonymous.http.get("/playground")).text
    config = json.loads(re.search(r'<script id="modula-playground-config" type="application/json">(.*?)</script>',
                                  page, re.S).group(1))
    assert config["endpoint"] == "/graphql"
    operations = sorted(EXAMPLES.glob("*.graphql"))
    assert [tab["query"] for tab in config["tabs"]] == [path.read_text() for path in operations]
    names = " ".join(tab["query"] for tab in config["tabs"])
    for name in ("login(", "createDatatype(", "createRoute(", "createArticle(", "contentByPath(", "shopProducts"):
        assert name in names


def test_the_packaged_examples_match_graphql_examples():
    """The build copies graphql/examples/ into the package; a stale copy means `npm run build` is due."""
    assert {p.name: p.read_text() for p in PACKAGED_EXAMPLES.iterdir()} == {p.name: p.read_text() for p in EXAMPLES.iterdir()}


def example(name: str) -> tuple[str, dict]:
    operation = next(EXAMPLES.glob(f"*-{name}.graphql"))
    variables = operation.with_name(operation.stem + ".variables.json")
    return operation.read_text(), json.loads(variables.read_text()) if variables.exists() else {}


async def test_every_example_validates_against_the_served_schema_and_runs(app, anonymous):
    """In tab order, as a new user would: log in, create the Article datatype (which generates
    the typed API the later tabs use), a route, an article, then read it back by its path."""
    async def check(paths: list[Path]) -> None:
        served = graphql.build_client_schema(await anonymous.data(graphql.get_introspection_query()))
        for path in paths:
            errors = graphql.validate(served, graphql.parse(path.read_text()))
            assert not errors, (path.name, errors)

    tabs = sorted(EXAMPLES.glob("*.graphql"))
    typed = [path for path in tabs if path.name.split("-", 1)[1] in ("createArticle.graphql", "contentByPath.graphql")]
    await check([path for path in tabs if path not in typed])

    await create_test_user(app, "writer", roles=["admin"], password="a playground password")
    query, variables = example("login")
    login = await anonymous.data(query, {**variables, "username": "writer", "password": "a playground password"})
    assert login["login"]["roles"] == ["admin"]

    async with token_client(app, "root", roles=["admin"]) as admin:
        query, variables = example("createDatatype")
        assert (await admin.data(query, variables))["createDatatype"]["type"] == "article"
        await check(typed)  # the datatype's generated types are served now
        query, variables = example("createRoute")
        route = (await admin.data(query, variables))["createRoute"]
        query, variables = example("createArticle")
        variables["input"]["routeId"] = route["id"]
        article = (await admin.data(query, variables))["createArticle"]
        assert article["title"] == "Hello, Modula" and article["path"] == "/blog/hello-modula"
        query, variables = example("contentByPath")
        found = (await anonymous.data(query, variables))["contentByPath"]  # published: anyone may read it
        assert found == {"__typename": "Article", "id": article["id"], "path": "/blog/hello-modula", "ancestors": [],
                         "title": "Hello, Modula", "body": "<p>First post</p>"}
        query, variables = example("shopProducts")
        assert await admin.data(query, variables) == {"shopProducts": []}


# --- In a browser -------------------------------------------------------------------------------

ADMIN_PASSWORD = "a playground password"

PLUGIN_LUA = """
plugin.define_table({name = "atlas_maps", fields = {
    {name = "map_id", type = "integer", primary_key = true},
    {name = "title", type = "text", not_null = true},
}})
"""


def _ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = chromium_binary()
    if binary is None:
        if _ci():
            pytest.fail("chromium is not installed: CI must run the browser tests (.ci/run installs it)")
        pytest.skip("no chromium binary: `apt-get install chromium` to run the browser tests")
    return binary


def _modula(*args: str, cwd: Path, env: dict, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "modula.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60, **kwargs)


@pytest.fixture(scope="module")
def server(chromium, tmp_path_factory):
    """`modula serve` on a free port of 127.0.0.1, on a fresh SQLite file, with an administrator
    made by `modula users create`; yields the base URL and the plugins folder."""
    folder = tmp_path_factory.mktemp("server")
    plugins = folder / "plugins"
    plugins.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{folder / 'modula.db'}", "MODULA_DATABASE_URL": "",
           "MODULA_PLUGINS_DIR": str(plugins)}
    created = _modula("users", "create", "--username", "admin", "--email", "a@b.c", "--admin", cwd=folder, env=env,
                      input=ADMIN_PASSWORD + "\n")
    assert created.returncode == 0, created.stderr
    process = subprocess.Popen([sys.executable, "-m", "modula.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                               cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/health", timeout=2).raise_for_status()
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read()
                assert time.monotonic() < deadline, "modula serve did not start within 30 s"
                time.sleep(0.2)
        yield {"base": base, "plugins": plugins}
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def page(chromium, tmp_path):
    with chromium_page(chromium, tmp_path / "chromium-profile") as page:
        yield page


@contextlib.contextmanager
def _admin_http(base: str):
    """An HTTP client holding the administrator's session cookie."""
    with httpx.Client(base_url=base, timeout=10) as http:
        response = http.post("/graphql", json={"query": 'mutation { login(username: "admin", password: "%s") { id } }'
                                                        % ADMIN_PASSWORD})
        assert not response.json().get("errors"), response.json()
        yield http


QUERY_EDITOR = "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror"
RESULT = "(document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror.getValue() || '')"


def open_playground(page, url: str) -> None:
    page.goto(url)
    page.wait_for(f"!!document.querySelector('.graphiql-query-editor .CodeMirror')", what="GraphiQL to render")


def run_in_playground(page, operation: str) -> dict:
    """Type `operation` (a named one) into the query editor, press the run button, and return the result pane's JSON."""
    page.evaluate(f"{QUERY_EDITOR}.setValue(''); {QUERY_EDITOR}.focus()")
    page.evaluate(f"window.__previousResult = {RESULT}")
    page.insert_text(operation)
    assert page.evaluate(f"{QUERY_EDITOR}.getValue()") == operation
    # The editor reads the operation's name after a short debounce; the tab title shows it then.
    name = re.match(r"\s*(?:query|mutation)\s+(\w+)", operation).group(1)
    page.wait_for(f"document.querySelector('.graphiql-tab-active').textContent.includes('{name}')",
                  what=f"the tab to take the name {name}")
    page.evaluate("document.querySelector('.graphiql-execute-button').click()")
    text = page.wait_for(f"{RESULT} !== window.__previousResult && {RESULT}.trim().startsWith('{{') && {RESULT}",
                         what="the result pane to show the answer")
    return json.loads(text)


def test_the_playground_runs_a_typed_query_and_shows_the_result(server, page):
    with _admin_http(server["base"]) as admin:
        site = admin.post("/graphql", json={"query": 'mutation { createSite(input: {name: "Browser site"}) { id } }'}).json()
    site_id = site["data"]["createSite"]["id"]

    open_playground(page, f"{server['base']}/graphql")  # what a browser opening the endpoint gets
    assert page.evaluate("document.querySelectorAll('.graphiql-tab').length") == len(list(EXAMPLES.glob("*.graphql")))
    result = run_in_playground(page, "query Sites { sites { id name } }")
    assert {"id": site_id, "name": "Browser site"} in result["data"]["sites"]
    outside = [url for url in page.requested_urls
               if not url.startswith((server["base"] + "/", "data:", "about:", "blob:"))]
    assert outside == [], "the playground requested resources outside the server"


def test_a_plugin_type_shows_in_the_docs_explorer_after_it_loads_and_the_page_reloads(server, page):
    open_playground(page, f"{server['base']}/playground")
    # Log in from the playground itself: the session cookie (HttpOnly) rides on the next requests.
    login = run_in_playground(page, 'mutation SignIn { login(username: "admin", password: "%s") { username roles } }'
                              % ADMIN_PASSWORD)
    assert login.get("data", {}).get("login") == {"username": "admin", "roles": ["admin"]}, login
    assert page.evaluate("document.cookie") == ""  # HttpOnly: not readable by scripts

    before = run_in_playground(page, 'query Before { __type(name: "AtlasMap") { name } }')
    assert before["data"] == {"__type": None}

    (server["plugins"] / "atlas").mkdir()
    (server["plugins"] / "atlas" / "plugin.json").write_text(json.dumps(
        {"name": "atlas", "version": "1.0.0", "api": 1, "permissions": {}}))
    (server["plugins"] / "atlas" / "init.lua").write_text(PLUGIN_LUA)
    swap = run_in_playground(page, 'mutation Load { loadPlugin(name: "atlas") { loadedPlugins failures { message } } }')
    assert "atlas" in swap["data"]["loadPlugin"]["loadedPlugins"], swap

    page.reload()
    page.wait_for("!!document.querySelector('[aria-label=\"Show Documentation Explorer\"]')", what="the docs button")
    page.evaluate("document.querySelector('[aria-label=\"Show Documentation Explorer\"]').click()")
    search = "document.querySelector('.graphiql-doc-explorer-search-input input')"
    page.wait_for(f"!!{search}", what="the docs explorer's search box (the schema loaded)")
    page.evaluate(f"{search}.focus()")
    page.insert_text("AtlasMap")
    page.wait_for("[...document.querySelectorAll('.graphiql-doc-explorer-search [role=option], "
                  ".graphiql-doc-explorer-search li')].some(e => e.textContent.includes('AtlasMap'))",
                  what="AtlasMap among the docs explorer's search results")


VARIABLES_EDITOR = "document.querySelector('.graphiql-editor-tool .CodeMirror')?.CodeMirror"


def test_the_first_tab_runs_as_shipped_on_a_fresh_browser(server, page):
    """A new user's first click: the Login tab with its variables, in a profile that never saw the page."""
    open_playground(page, f"{server['base']}/playground")
    first = json.loads((EXAMPLES / "1-login.variables.json").read_text())
    shown = page.wait_for(f"{VARIABLES_EDITOR} && {VARIABLES_EDITOR}.getValue()", what="the variables of the first tab")
    assert json.loads(shown) == first
    titles = page.evaluate("[...document.querySelectorAll('.graphiql-tab')].map(t => t.textContent.trim())")
    assert all(title and "untitled" not in title.lower() for title in titles), titles
    page.evaluate(f"window.__previousResult = {RESULT}")
    page.evaluate("document.querySelector('.graphiql-execute-button').click()")
    text = page.wait_for(f"{RESULT} !== window.__previousResult && {RESULT}.trim().startsWith('{{') && {RESULT}",
                         what="the result pane to show the answer")
    answer = json.loads(text)
    # The shipped password is a placeholder: the login itself refuses it, the variables arrived.
    assert answer.get("errors") and "was not provided" not in json.dumps(answer), answer
    assert answer["errors"][0]["path"] == ["login"], answer


def test_the_upload_form_sends_files_as_a_multipart_request_and_shows_the_answer(server, page):
    import base64
    import io

    from PIL import Image

    image = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 90)).save(image, "PNG")
    data = image.getvalue()
    open_playground(page, f"{server['base']}/playground")
    login = run_in_playground(page, 'mutation SignIn { login(username: "admin", password: "%s") { id } }' % ADMIN_PASSWORD)
    assert login.get("data", {}).get("login"), login

    page.evaluate("document.getElementById('modula-upload').open = true")
    # What choosing files does: the input's FileList holds them (a DataTransfer is how a script makes one).
    page.evaluate(f"""(() => {{
        const bytes = Uint8Array.from(atob('{base64.b64encode(data).decode()}'), c => c.charCodeAt(0));
        const chosen = new DataTransfer();
        chosen.items.add(new File([bytes], 'green café.png', {{type: 'image/png'}}));
        const form = document.getElementById('modula-upload-form');
        form.elements.files.files = chosen.files;
        form.elements.alt.value = 'A green square';
        form.querySelector('button').click();
    }})()""")
    text = page.wait_for("(document.getElementById('modula-upload-result').textContent.trim().startsWith('{') "
                         "&& document.getElementById('modula-upload-result').textContent)", what="the upload's answer")
    media = json.loads(text)["data"]["uploadMedia"]
    assert (media["name"], media["mimeType"], media["width"], media["height"], media["alt"]) == \
        ("green café.png", "image/png", 40, 30, "A green square")
    with _admin_http(server["base"]) as admin:
        assert admin.get(media["url"]).content == data

    # Two files: uploadMediaItems, and a bad one makes the answer say so with nothing kept.
    page.evaluate(f"""(() => {{
        const bytes = Uint8Array.from(atob('{base64.b64encode(data).decode()}'), c => c.charCodeAt(0));
        const chosen = new DataTransfer();
        chosen.items.add(new File([bytes], 'again.png', {{type: 'image/png'}}));
        chosen.items.add(new File(['<!doctype html><script>alert(1)</script>'], 'page.png', {{type: 'image/png'}}));
        const form = document.getElementById('modula-upload-form');
        form.elements.files.files = chosen.files;
        document.getElementById('modula-upload-result').textContent = '';
        form.querySelector('button').click();
    }})()""")
    text = page.wait_for("(document.getElementById('modula-upload-result').textContent.trim().startsWith('{') "
                         "&& document.getElementById('modula-upload-result').textContent)", what="the second answer")
    error = json.loads(text)["errors"][0]
    assert error["extensions"] == {"code": "UNSUPPORTED_MEDIA_TYPE", "inputPath": ["items", 1, "file"]}
    with _admin_http(server["base"]) as admin:
        names = admin.post("/graphql", json={"query": "{ mediaItems { name } }"}).json()["data"]["mediaItems"]
    assert names == [{"name": "green café.png"}]
