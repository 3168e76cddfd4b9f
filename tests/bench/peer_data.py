"""The peer benchmark's dataset: deterministic products and their attributes, loaded into the
`bench` plugin's tables (bench_plugin/) on SQLite and PostgreSQL.

Prices are uniform in 1..1000 (q1's windows of 100 always hold far more than 20 rows); every
product has three attributes (color, size, material). The same seed gives the same rows.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import datetime, timedelta, timezone

CATEGORIES = ["books", "electronics", "garden", "toys", "kitchen", "sports", "beauty", "automotive", "music",
              "office", "pets", "baby", "tools", "health", "grocery", "jewelry", "shoes", "outdoor", "furniture",
              "software"]
ADJECTIVES = ["Red", "Compact", "Deluxe", "Eco", "Smart", "Classic", "Ultra", "Mini", "Pro", "Vintage"]
NOUNS = ["Lamp", "Kettle", "Backpack", "Headphones", "Chair", "Drill", "Novel", "Blender", "Jacket", "Speaker"]
ATTRIBUTES = {"color": ["black", "white", "red", "blue", "green", "silver"], "size": ["XS", "S", "M", "L", "XL"],
              "material": ["steel", "cotton", "plastic", "wood", "glass"]}
PRODUCT_COLUMNS = ("product_id", "name", "price", "category", "created_at")
ATTRIBUTE_COLUMNS = ("attribute_id", "product_id", "key", "value")
PRODUCTS = 100_000  # q2 asks for random keys in 1..PRODUCTS
BENCH_CATEGORY = "zz_bench"  # what q3 inserts: outside every category above, price 0.5 outside every q1 window


def generate(products: int = PRODUCTS, seed: int = 42) -> tuple[list[tuple], list[tuple]]:
    """`products` product rows and three attribute rows for each, as tuples in column order."""
    rnd = random.Random(seed)
    start = datetime(2022, 1, 1, tzinfo=timezone.utc)
    span = int(timedelta(days=3 * 365).total_seconds())
    product_rows, attribute_rows = [], []
    for product_id in range(1, products + 1):
        created = (start + timedelta(seconds=rnd.randrange(span))).strftime("%Y-%m-%dT%H:%M:%SZ")
        name = f"{rnd.choice(ADJECTIVES)} {rnd.choice(NOUNS)} {rnd.randint(100, 9999)}"
        product_rows.append((product_id, name, round(rnd.uniform(1.0, 1000.0), 2), rnd.choice(CATEGORIES), created))
        for key, values in ATTRIBUTES.items():
            attribute_rows.append((len(attribute_rows) + 1, product_id, key, rnd.choice(values)))
    return product_rows, attribute_rows


def load_sqlite(path: str, products: list[tuple], attributes: list[tuple]) -> None:
    """Fill the plugin's (empty) tables in the SQLite file at `path`, then ANALYZE."""
    connection = sqlite3.connect(path)
    try:
        with connection:
            connection.executemany(f"INSERT INTO bench_products ({', '.join(PRODUCT_COLUMNS)}) VALUES (?, ?, ?, ?, ?)",
                                   products)
            connection.executemany(f"INSERT INTO bench_product_attributes ({', '.join(ATTRIBUTE_COLUMNS)})"
                                   " VALUES (?, ?, ?, ?)", attributes)
        connection.execute("ANALYZE")
    finally:
        connection.close()


async def load_postgres(url: str, products: list[tuple], attributes: list[tuple]) -> None:
    """Fill the plugin's (empty) tables in the PostgreSQL database at `url` with COPY, move the key
    sequences past the loaded keys, then VACUUM ANALYZE."""
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        await connection.copy_records_to_table("bench_products", records=products, columns=PRODUCT_COLUMNS)
        await connection.copy_records_to_table("bench_product_attributes", records=attributes,
                                               columns=ATTRIBUTE_COLUMNS)
        for table, key in (("bench_products", "product_id"), ("bench_product_attributes", "attribute_id")):
            sequence = await connection.fetchval("SELECT pg_get_serial_sequence($1, $2)", table, key)
            if sequence:  # an identity or serial key: new rows must not collide with the loaded ones
                await connection.execute(f"SELECT setval('{sequence}', (SELECT max({key}) FROM {table}))")
            await connection.execute(f"VACUUM ANALYZE {table}")
    finally:
        await connection.close()


def delete_inserted_sqlite(path: str) -> int:
    """Remove the rows q3 inserted (so every run starts from the same table)."""
    connection = sqlite3.connect(path, timeout=30)
    try:
        with connection:
            return connection.execute("DELETE FROM bench_products WHERE category = ?", (BENCH_CATEGORY,)).rowcount
    finally:
        connection.close()


async def delete_inserted_postgres(url: str) -> int:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        status = await connection.execute("DELETE FROM bench_products WHERE category = $1", BENCH_CATEGORY)
        await connection.execute("VACUUM ANALYZE bench_products")
        return int(status.split()[-1])
    finally:
        await connection.close()
