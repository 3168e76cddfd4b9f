"""A GraphQL client that calls the ASGI app directly, for benchmarks that compare the server's own
work with raw SQL: the request still goes through every layer of the server (Starlette, the
GraphQL endpoint, the fast path or Strawberry, the services, the database), but not through an
HTTP client's request building, cookie jar and response parsing (httpx's in-process transport
costs about as much CPU per request as the server's own HTTP handling)."""

from __future__ import annotations

import json
from typing import Any


class DirectClient:
    """`execute(query, variables)` like modula.testing.GraphQLClient, with the same headers."""

    def __init__(self, app, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = [(b"content-type", b"application/json"), (b"accept", b"application/graphql-response+json")]
        self.headers += [(name.lower().encode(), value.encode()) for name, value in headers.items()
                         if name.lower() == "authorization"]

    @classmethod
    def like(cls, client) -> DirectClient:
        """The same app and credentials as a modula.testing.GraphQLClient."""
        return cls(client.app, dict(client.http.headers))

    async def execute(self, query: str, variables: dict | None = None) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables}).encode()
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/graphql", "raw_path": b"/graphql", "query_string": b"",
                 "root_path": "", "headers": [*self.headers, (b"content-length", str(len(body)).encode())],
                 "client": ("127.0.0.1", 50000), "server": ("modula.test", 80)}
        sent = False
        chunks: list[bytes] = []
        status = 0

        async def receive() -> dict:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        if not chunks:
            raise RuntimeError(f"the server answered {status} with no body")
        return json.loads(b"".join(chunks))
