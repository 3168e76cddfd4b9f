"""Automatic persisted queries, as Apollo Client's persisted-queries link speaks them: a request may
send `extensions.persistedQuery = {version: 1, sha256Hash}` instead of its document; the server
answers PERSISTED_QUERY_NOT_FOUND for a hash it has not seen, and the client sends the document
once with its hash, which is checked and kept. Documents are kept per schema (so per generation:
a swap starts afresh) in a bounded LRU."""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from typing import Any

_HASH = re.compile(r"^[0-9a-f]{64}$")


class PersistedQueryError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def error(self) -> dict[str, Any]:
        return {"message": self.message, "extensions": {"code": self.code}}


class PersistedQueries:
    def __init__(self, maxsize: int = 1000) -> None:
        self.maxsize = maxsize
        self._documents: OrderedDict[str, str] = OrderedDict()

    def resolve(self, params: dict[str, Any]) -> dict[str, Any]:
        """The operation's parameters with its document: as sent, or found by its hash."""
        persisted = (params.get("extensions") or {}).get("persistedQuery")
        if persisted is None:
            return params
        if not isinstance(persisted, dict) or persisted.get("version") != 1:
            raise PersistedQueryError("PERSISTED_QUERY_NOT_SUPPORTED",
                                      "only version 1 of automatic persisted queries is supported")
        digest = persisted.get("sha256Hash")
        if not isinstance(digest, str) or not _HASH.match(digest):
            raise PersistedQueryError("INVALID_PERSISTED_QUERY", "persistedQuery.sha256Hash must be 64 lowercase hex digits")
        query = params.get("query")
        if query is None:
            found = self._documents.get(digest)
            if found is None:
                # Apollo's link looks for this message (and code) to send the document
                raise PersistedQueryError("PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound")
            self._documents.move_to_end(digest)
            return {**params, "query": found}
        if hashlib.sha256(query.encode("utf-8", "surrogatepass")).hexdigest() != digest:
            raise PersistedQueryError("INVALID_PERSISTED_QUERY", "provided sha does not match query")
        self._documents[digest] = query
        while len(self._documents) > self.maxsize:
            self._documents.popitem(last=False)
        return params
