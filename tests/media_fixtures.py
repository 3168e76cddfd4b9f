"""Media test helpers: real image bytes, GraphQL multipart uploads as a client sends them, and what
the database and the storage hold afterwards."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image

from modula_testing import GraphQLClient, running_app, token_client

UPLOAD = """mutation($file: Upload!, $alt: String, $folder: String) {
  uploadMedia(file: $file, alt: $alt, folder: $folder) {
    id name url mimeType size width height alt folder contentHash dimensions { name url width height mimeType }
  }
}"""
UPLOAD_ITEMS = """mutation($items: [MediaUploadInput!]!) {
  uploadMediaItems(items: $items) { id name mimeType size }
}"""
PREFLIGHT = {"GraphQL-Require-Preflight": "1"}


def png(width: int = 300, height: int = 200, color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def jpeg(width: int = 640, height: int = 480) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(out, "JPEG")
    return out.getvalue()


async def post_upload(client: GraphQLClient, files: dict[str, tuple[str, bytes, str]], *, query: str = UPLOAD,
                      variables: dict | None = None, mapping: dict | None = None):
    """A GraphQL multipart request: operations, map, then the files (file key -> (name, bytes, type))."""
    variables = {"file": None} if variables is None else variables
    mapping = {"0": ["variables.file"]} if mapping is None else mapping
    data = {"operations": json.dumps({"query": query, "variables": variables}), "map": json.dumps(mapping)}
    return await client.http.post("/graphql", data=data, files=files)


def raw_multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "modula-test-boundary"
                  ) -> tuple[bytes, dict[str, str]]:
    """A multipart body written byte for byte (names unescaped, as any client may send them) and
    its Content-Type header; a part is (name, file name or None, bytes)."""
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), {"content-type": f"multipart/form-data; boundary={boundary}"}


async def upload(client: GraphQLClient, name: str = "cat.png", body: bytes | None = None, type_: str = "image/png",
                 **variables) -> dict:
    response = await post_upload(client, {"0": (name, png() if body is None else body, type_)},
                                 variables={"file": None, **variables}, mapping={"0": ["variables.file"]})
    payload = response.json()
    assert response.status_code == 200 and not payload.get("errors"), payload
    return payload["data"]["uploadMedia"]


class Held:
    """What the storage of a test app holds: blobs (by digest) and staged files."""

    def __init__(self, app) -> None:
        self.app = app
        self.storage = app.state.media_storage

    async def digests(self) -> set[str]:
        async with self.app.state.database.session() as session:
            return set(await self.storage.digests(session, older_than=-1e9))

    def staged(self) -> list[Path]:
        return [path for path in self.storage.staging_dir.iterdir() if path.is_file()]

    async def chunk_rows(self) -> int:
        async with self.app.state.database.session() as session:
            return len(await session.fetch_all(sa.text("SELECT seq FROM media_chunks")))

    async def nothing(self) -> bool:
        return not await self.digests() and not self.staged() and not await self.chunk_rows()


@pytest.fixture(params=["database", "filesystem"])
def backend(request) -> str:
    return request.param


@pytest.fixture
async def media_app(database_url: str, tmp_path: Path, backend: str):
    async with running_app(database_url, plugins_dir=tmp_path / "plugins", media_storage=backend,
                           media_dir=tmp_path / "media", upload_dir=tmp_path / "uploads") as app:
        yield app


@pytest.fixture
async def admin(media_app) -> GraphQLClient:
    async with token_client(media_app, "admin", roles=["admin"]) as client:
        yield client
