"""Media test helpers: real image bytes, GraphQL multipart uploads as a client sends them, and what
the database and the storage hold afterwards."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
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


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3 implementation on a free local port: moto's server, started once, stopped by pid;
    yields its endpoint with one bucket made."""
    import boto3

    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(endpoint, timeout=1)
                break
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.05)
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **S3_KEYS)
        client.create_bucket(Bucket=S3_BUCKET)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


S3_BUCKET = "modula-test"
S3_KEYS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(params=["database", "filesystem", "s3"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def storage_settings(backend: str, tmp_path: Path, request) -> dict:
    """The settings of a test app storing media with `backend` (s3: a key prefix of the test's own)."""
    settings = {"media_storage": backend, "media_dir": str(tmp_path / "media"), "upload_dir": str(tmp_path / "uploads")}
    if backend == "s3":
        settings.update(s3_endpoint_url=request.getfixturevalue("s3_server"), s3_bucket=S3_BUCKET,
                        s3_prefix=f"{uuid.uuid4().hex}/", s3_region="us-east-1",
                        s3_access_key_id=S3_KEYS["aws_access_key_id"],
                        s3_secret_access_key=S3_KEYS["aws_secret_access_key"])
    return settings


@pytest.fixture
async def media_app(database_url: str, tmp_path: Path, storage_settings: dict):
    settings = {**storage_settings, "media_dir": Path(storage_settings["media_dir"]),
                "upload_dir": Path(storage_settings["upload_dir"])}
    async with running_app(database_url, plugins_dir=tmp_path / "plugins", **settings) as app:
        yield app


@pytest.fixture
async def admin(media_app) -> GraphQLClient:
    async with token_client(media_app, "admin", roles=["admin"]) as client:
        yield client
