"""The GraphiQL playground: the HTML page a browser gets from /playground (and from GET /graphql
when it asks for HTML), with a small form that uploads files (which GraphiQL cannot send), and the
assets it loads, all served from this package."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

ASSETS = Path(__file__).parent / "playground_assets"
EXAMPLES = ASSETS / "examples"

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="/playground/assets/playground.css">
<link rel="stylesheet" href="/playground/assets/upload.css">
<style>html, body, #graphiql {{ height: 100%; margin: 0; }}</style>
</head>
<body>
<div id="graphiql">Loading the playground…</div>
<details id="modula-upload">
<summary>Upload files</summary>
<form id="modula-upload-form">
<p>GraphiQL cannot send files: this form sends them to <code>/graphql</code> as a GraphQL multipart request
(<code>uploadMedia</code>, or <code>uploadMediaItems</code> for several), as the user signed in with the Login tab.</p>
<label>Files <input type="file" name="files" multiple required></label>
<label>Alt text <input type="text" name="alt"></label>
<label>Folder <input type="text" name="folder"></label>
<button type="submit">Upload</button>
<pre id="modula-upload-result" aria-live="polite"></pre>
</form>
</details>
<script id="modula-playground-config" type="application/json">{config}</script>
<script src="/playground/assets/playground.js"></script>
<script src="/playground/assets/upload.js"></script>
</body>
</html>
"""


def example_tabs(folder: Path = EXAMPLES) -> list[dict[str, Any]]:
    """One tab per `NAME.graphql` of `folder`, in file-name order, with `NAME.variables.json` if any."""
    tabs = []
    for operation in sorted(folder.glob("*.graphql")):
        variables = operation.with_name(operation.stem + ".variables.json")
        tabs.append({"query": operation.read_text(),
                     **({"variables": variables.read_text()} if variables.exists() else {})})
    return tabs


def playground_page(endpoint: str = "/graphql") -> str:
    config = json.dumps({"endpoint": endpoint, "tabs": example_tabs()})
    # "</" inside the inline JSON would end the script element early.
    return PAGE.format(title=html.escape("Modula playground"), config=config.replace("</", "<\\/"))


async def playground(request: Request) -> HTMLResponse:
    return HTMLResponse(playground_page())


def wants_playground(request: Request) -> bool:
    """A browser navigating to GET /graphql (or asking HEAD of it): it accepts HTML and sends no operation."""
    return (request.method in ("GET", "HEAD") and "query" not in request.query_params
            and "text/html" in request.headers.get("accept", ""))


assets = StaticFiles(directory=ASSETS)
