"""The floor: a hand-written GraphQL app doing the peer benchmark's three queries over the `bench`
plugin's SQLite tables, as a competent developer would write it by hand.

Strawberry + Starlette + uvicorn with Strawberry's ParserCache and ValidationCache on (each distinct
document is parsed and validated once), one plain sqlite3 connection in WAL mode with
synchronous=NORMAL, sync resolvers, no access log. Modula's generated API must reach it (issue 11).
bench_peers.py runs it with Modula's interpreter, so both get the same uvicorn, event loop and HTTP
parser (uvloop and httptools only if installed).

    python tests/bench/floor_app.py --db bench.db --port 8010

Its operations (field names are its own; bench_peers.py sends these):
    q1 query q1($min:Float!,$max:Float!){ products(minPrice:$min, maxPrice:$max, limit:20){ id name price category } }
    q2 query q2($id:Int!){ product(id:$id){ id name price category createdAt attributes { key value } } }
    q3 mutation q3($name:String!,$price:Float!,$cat:String!){ createProduct(name:$name, price:$price, category:$cat){ id } }
"""

from __future__ import annotations

import argparse
import sqlite3
from typing import Optional

import strawberry
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache

PRODUCT = "SELECT product_id, name, price, category, created_at FROM bench_products"


def connect(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    return connection


db: sqlite3.Connection  # opened by main(), before uvicorn serves


@strawberry.type
class Attribute:
    key: str
    value: Optional[str]


@strawberry.type
class Product:
    id: int
    name: str
    price: float
    category: str
    created_at: Optional[str]

    @strawberry.field
    def attributes(self) -> list[Attribute]:
        rows = db.execute("SELECT key, value FROM bench_product_attributes WHERE product_id = ? ORDER BY attribute_id",
                          (self.id,))
        return [Attribute(key=key, value=value) for key, value in rows]


def product(row: tuple) -> Product:
    return Product(id=row[0], name=row[1], price=row[2], category=row[3], created_at=row[4])


@strawberry.type
class Query:
    @strawberry.field
    def products(self, min_price: float, max_price: float, limit: int = 20) -> list[Product]:
        rows = db.execute(f"{PRODUCT} WHERE price >= ? AND price <= ? ORDER BY price, product_id LIMIT ?",
                          (min_price, max_price, limit))
        return [product(row) for row in rows]

    @strawberry.field
    def product(self, id: int) -> Optional[Product]:
        row = db.execute(f"{PRODUCT} WHERE product_id = ?", (id,)).fetchone()
        return product(row) if row else None


@strawberry.type
class Mutation:
    @strawberry.mutation
    def create_product(self, name: str, price: float, category: str) -> Product:
        row = db.execute("INSERT INTO bench_products (name, price, category, created_at)"
                         " VALUES (?, ?, ?, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))"
                         " RETURNING product_id, name, price, category, created_at", (name, price, category)).fetchone()
        return product(row)


# Passed as classes, as Strawberry asks: an instance per request, sharing one process-wide cache.
schema = strawberry.Schema(query=Query, mutation=Mutation, extensions=[ParserCache, ValidationCache])
app = Starlette(routes=[Route("/graphql", GraphQL(schema, graphql_ide=None))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="SQLite file with the bench plugin's tables")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8010)
    args = parser.parse_args()
    global db
    db = connect(args.db)
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
