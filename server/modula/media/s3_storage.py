"""The `s3` storage backend: any S3-compatible store (AWS, MinIO, Ceph, R2…), one object per
sha-256 under a key prefix, through boto3 in worker threads. An object appears whole or not at all
(S3 semantics), so no half file is ever served; uploads go up from the staged file in parts."""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from modula.db.connection import Database, Session
from modula.media.storage import Blob

READ_SIZE = 256 * 1024


class S3Storage:
    name = "s3"
    transactional = False

    def __init__(self, bucket: str, *, prefix: str = "", endpoint_url: str | None = None, region: str | None = None,
                 access_key_id: str | None = None, secret_access_key: str | None = None,
                 staging_dir: Path | None = None) -> None:
        import boto3  # only a server that stores in S3 needs it loaded

        self.bucket, self.prefix = bucket, prefix
        # Credentials left out come from boto3's usual chain (AWS_* variables, ~/.aws, instance roles).
        self.client: Any = boto3.client("s3", endpoint_url=endpoint_url, region_name=region,
                                        aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key)
        self.staging_dir = Path(staging_dir) if staging_dir else Path(tempfile.gettempdir()) / "modula-uploads"
        self.staging_dir.mkdir(parents=True, exist_ok=True)

    def _key(self, digest: str) -> str:
        return f"{self.prefix}{digest}"

    async def store(self, session: Session, blob: Blob) -> None:
        await asyncio.to_thread(self._store, blob)

    def _store(self, blob: Blob) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(blob.digest))
            return
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise
        self.client.upload_file(str(blob.path), self.bucket, self._key(blob.digest))

    async def read(self, database: Database, digest: str, start: int, end: int) -> AsyncIterator[bytes]:
        if end <= start:
            return
        answer = await asyncio.to_thread(self.client.get_object, Bucket=self.bucket, Key=self._key(digest),
                                         Range=f"bytes={start}-{end - 1}")
        body = answer["Body"]
        try:
            left = end - start
            while left > 0:
                piece = await asyncio.to_thread(body.read, min(READ_SIZE, left))
                if not piece:
                    raise FileNotFoundError(f"media bytes {digest} end before offset {end}")
                yield piece
                left -= len(piece)
        finally:
            body.close()

    async def discard(self, session: Session, digest: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=self._key(digest))

    async def digests(self, session: Session, older_than: float) -> list[str]:
        return await asyncio.to_thread(self._digests, older_than)

    def _digests(self, older_than: float) -> list[str]:
        now = time.time()
        found = []
        cutoff = dt.datetime.fromtimestamp(now - older_than, dt.timezone.utc)
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                name = item["Key"][len(self.prefix):]
                if len(name) == 64 and "/" not in name and item["LastModified"] < cutoff:
                    found.append(name)
        return found
