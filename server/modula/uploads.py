"""The GraphQL multipart request (github.com/jaydenseric/graphql-multipart-request-spec), as Apollo
Upload Client, urql and graphql-request send it: a `multipart/form-data` POST whose first part,
`operations`, is the usual JSON request with null where each file goes, whose second part, `map`,
says where (`{"0": ["variables.file"]}`), and whose other parts are the files.

The body is read once, as it arrives: each file goes to a staged file on disk, hashed and counted
on the way, so no file is ever whole in memory. What is wrong is refused with its status: a body
over the upload limit with 413 as soon as the limit is passed (without reading the rest); a
truncated body, parts out of order, a `map` naming a file the body lacks or a file the map does not
name, more files than allowed, with 400. The staged files are removed when the request ends
(`StagedUploads.close`), whatever happened.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from modula.media.names import safe_filename
from modula.media.sniffing import HEAD_BYTES
from modula.media.storage import Blob

MULTIPART = "multipart/form-data"


class MalformedUpload(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(eq=False)  # hashable by identity, as the fast path's look at variables wants
class UploadedFile:
    """One file of the request, staged on disk: the value an `Upload` argument receives."""

    field_name: str
    filename: str  # sanitised; the client's name never becomes a path
    declared_type: str | None
    blob: Blob
    head: bytes  # the first HEAD_BYTES, for sniffing the type


@dataclass
class StagedUploads:
    files: dict[str, UploadedFile] = field(default_factory=dict)
    paths: list[Path] = field(default_factory=list)  # every file staged, complete or not

    def close(self) -> None:
        for path in self.paths:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def human_bytes(size: int) -> str:
    return f"{size // (1024 * 1024)} MiB" if size % (1024 * 1024) == 0 else f"{size} bytes"


async def read_multipart(headers: Any, stream: AsyncIterable[bytes], staged: StagedUploads, *, staging_dir: Path,
                         max_bytes: int, max_files: int, max_field_bytes: int) -> Any:
    """The operations (an object, or a list for a batch) with each mapped file in its place;
    staged files are recorded in `staged` as they are opened, for the caller to close."""
    too_large = MalformedUpload(f"the upload is larger than the server's limit of {human_bytes(max_bytes)} "
                                f"({max_bytes} bytes, MODULA_MAX_UPLOAD_BYTES): send a smaller file", status=413)
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    _, parameters = parse_options_header(headers.get("content-type", ""))
    boundary = parameters.get(b"boundary")
    if not boundary:
        raise MalformedUpload("the multipart Content-Type has no boundary parameter")
    reader = _PartReader(staged, staging_dir, max_files, max_field_bytes)
    parser = MultipartParser(boundary, reader.callbacks())
    size = 0
    try:
        async for chunk in stream:
            size += len(chunk)
            if size > max_bytes:
                raise too_large
            parser.write(chunk)
            if reader.problem:
                raise reader.problem
    except MultipartParseError as exc:
        raise MalformedUpload(f"the multipart body is malformed: {exc}") from None
    finally:
        reader.close_current()
    if not reader.ended:
        raise MalformedUpload("the multipart body is truncated: it ends before its closing boundary")
    if reader.operations is None:
        raise MalformedUpload("the multipart request has no 'operations' part: send the GraphQL request as JSON in it")
    if reader.mapping is None:
        raise MalformedUpload("the multipart request has no 'map' part: send which variable each file is, "
                              'e.g. {"0": ["variables.file"]}')
    missing = [key for key in reader.mapping if key not in staged.files]
    if missing:
        raise MalformedUpload(f"'map' names file {missing[0]!r} but the request has no part named {missing[0]!r}")
    operations = reader.operations
    for key, paths in reader.mapping.items():
        for path in paths:
            operations = _put(operations, path, staged.files[key], key)
    return operations


class _PartReader:
    """python-multipart's callbacks: headers, then `operations`, `map` and the files in that order."""

    def __init__(self, staged: StagedUploads, staging_dir: Path, max_files: int, max_field_bytes: int) -> None:
        self.staged, self.staging_dir = staged, staging_dir
        self.max_files, self.max_field_bytes = max_files, max_field_bytes
        self.operations: Any = None
        self.mapping: dict[str, list[str]] | None = None
        self.ended = False
        self.problem: MalformedUpload | None = None
        self._header_name = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name: str | None = None
        self._field: bytearray | None = None
        self._file: BinaryIO | None = None
        self._upload: UploadedFile | None = None
        self._hash = hashlib.sha256()
        self._size = 0
        self._head = bytearray()

    def callbacks(self) -> dict[str, Any]:
        return {"on_part_begin": self._part_begin, "on_header_field": self._header_field,
                "on_header_value": self._header_value_data, "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
                "on_part_end": self._part_end, "on_end": self._end}

    def _fail(self, message: str) -> None:
        if self.problem is None:
            self.problem = MalformedUpload(message)

    def _part_begin(self) -> None:
        self._headers = {}
        self._name = None

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header_name.strip().lower()] = self._header_value.strip()
        self._header_name, self._header_value = b"", b""

    def _headers_finished(self) -> None:
        if self.problem:
            return
        disposition, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name")
        if disposition != b"form-data" or name is None:
            return self._fail("a multipart part has no Content-Disposition: form-data with a name")
        self._name = name.decode("utf-8", "replace")
        if self.operations is None:
            if self._name != "operations":
                return self._fail(f"the first part must be 'operations', not {self._name!r} "
                                  "(the GraphQL multipart request sends operations, then map, then the files)")
            self._field = bytearray()
        elif self.mapping is None:
            if self._name != "map":
                return self._fail(f"the second part must be 'map', not {self._name!r} "
                                  "(the GraphQL multipart request sends operations, then map, then the files)")
            self._field = bytearray()
        else:
            self._begin_file(options)

    def _begin_file(self, options: dict[bytes, bytes]) -> None:
        assert self.mapping is not None
        if self._name not in self.mapping:
            return self._fail(f"the request has a file part {self._name!r} that 'map' does not name")
        if self._name in self.staged.files:
            return self._fail(f"the request has two parts named {self._name!r}")
        if len(self.staged.files) >= self.max_files:
            return self._fail(f"the request has more than {self.max_files} files, the server's limit "
                              "(MODULA_MAX_UPLOAD_FILES): send fewer in one request")
        raw_name = options.get(b"filename", b"").decode("utf-8", "replace")
        declared = self._headers.get(b"content-type", b"").decode("latin-1") or None
        descriptor, path = tempfile.mkstemp(prefix="upload-", dir=self.staging_dir)
        self.staged.paths.append(Path(path))
        self._file = os.fdopen(descriptor, "wb")
        self._hash, self._size, self._head = hashlib.sha256(), 0, bytearray()
        self._upload = UploadedFile(self._name, safe_filename(raw_name), declared, Blob(Path(path), "", 0), b"")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self.problem:
            return
        piece = data[start:end]
        if self._field is not None:
            if len(self._field) + len(piece) > self.max_field_bytes:
                return self._fail(f"the '{self._name}' part is larger than {self.max_field_bytes} bytes "
                                  "(MODULA_MAX_BODY_BYTES)")
            self._field += piece
        elif self._file is not None:
            self._file.write(piece)
            self._hash.update(piece)
            self._size += len(piece)
            if len(self._head) < HEAD_BYTES:
                self._head += piece[:HEAD_BYTES - len(self._head)]

    def _part_end(self) -> None:
        if self.problem:
            return
        if self._field is not None:
            text, self._field = bytes(self._field), None
            if self.operations is None:
                self.operations = _json(text, "operations")
                if not isinstance(self.operations, (dict, list)):
                    self._fail("'operations' must be a JSON object (or an array of them, a batch)")
            else:
                self._read_map(_json(text, "map"))
        elif self._file is not None and self._upload is not None:
            self.close_current()
            upload = self._upload
            upload.blob = Blob(upload.blob.path, self._hash.hexdigest(), self._size)
            upload.head = bytes(self._head)
            self.staged.files[upload.field_name] = upload
            self._upload = None

    def _read_map(self, mapping: Any) -> None:
        if not isinstance(mapping, dict) or not all(
                isinstance(paths, list) and paths and all(isinstance(p, str) for p in paths) for paths in mapping.values()):
            return self._fail('\'map\' must be a JSON object of file names to lists of paths, e.g. {"0": ["variables.file"]}')
        self.mapping = mapping

    def _end(self) -> None:
        self.ended = True

    def close_current(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _json(text: bytes, part: str) -> Any:
    try:
        return json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise MalformedUpload(f"the '{part}' part is not valid JSON in UTF-8") from None


def _put(operations: Any, path: str, upload: UploadedFile, key: str) -> Any:
    """`operations` with `upload` at the dotted `path` (`variables.file`, `0.variables.files.1`),
    which must hold null."""
    bad = MalformedUpload(f"'map' path {path!r} of file {key!r} does not name a null in 'operations'")
    parts = path.split(".")
    target = operations
    for part in parts[:-1]:
        target = _step(target, part, bad)
    last = parts[-1]
    if isinstance(target, dict) and target.get(last, ...) is None and last in target:
        target[last] = upload
    elif isinstance(target, list) and last.isdigit() and int(last) < len(target) and target[int(last)] is None:
        target[int(last)] = upload
    else:
        raise bad
    return operations


def _step(target: Any, part: str, bad: MalformedUpload) -> Any:
    if isinstance(target, dict) and part in target:
        return target[part]
    if isinstance(target, list) and part.isdigit() and int(part) < len(target):
        return target[int(part)]
    raise bad
