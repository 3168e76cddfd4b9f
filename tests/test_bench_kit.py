"""The peer benchmark (tests/bench) compares equal work: Modula's generated API answers its three
operations exactly as the benchmark sends them, and the hand-written floor app gives the same rows
on the same data. Both dialects for Modula; the floor is SQLite only."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from bench import floor_app, peer_data, peer_servers
from modula_testing import running_app, token_client

BENCH = Path(__file__).parent / "bench"
PRODUCTS = 300


def expected_window(products: list[tuple], low: float, high: float) -> list[float]:
    """q1's prices: the 20 cheapest in [low, high], cheapest first."""
    return sorted(price for _, _, price, _, _ in products if low <= price <= high)[:20]


async def answers(post, queries: dict[str, str], paths: dict[str, list[str]]) -> dict:
    """q1, q2 and q3 as the benchmark sends them; each answer dug out along the server's paths."""
    variables = {"q1": {"min": 100, "max": 400}, "q2": {"id": 42},
                 "q3": {"name": "bench insert", "price": 0.5, "cat": peer_data.BENCH_CATEGORY}}
    found = {}
    for operation, path in paths.items():
        body = await post(queries[operation], variables[operation])
        assert not body.get("errors"), body
        value = body["data"]
        for key in path[:-1] if operation == "q2" else path:  # q2: the product, attributes and all
            value = value[key]
        found[operation] = value
    return found


def check(found: dict, products: list[tuple], attributes: list[tuple], key: str, attributes_key: str) -> None:
    by_id = {row[0]: row for row in products}
    window = found["q1"]
    assert [row["price"] for row in window] == expected_window(products, 100, 400)
    assert all(by_id[row[key]][1:4] == (row["name"], row["price"], row["category"]) for row in window)
    product = found["q2"]
    assert (product[key], product["name"], product["createdAt"]) == (42, by_id[42][1], by_id[42][4])
    assert sorted((a["key"], a["value"]) for a in product[attributes_key]) == \
        sorted((k, v) for _, pid, k, v in attributes if pid == 42)
    assert int(found["q3"]) == PRODUCTS + 1


async def test_modula_answers_the_benchmark_operations(database_url: str, tmp_path: Path):
    shutil.copytree(BENCH / "bench_plugin", tmp_path / "plugins" / "bench")
    products, attributes = peer_data.generate(PRODUCTS)
    async with running_app(database_url, plugins_dir=tmp_path / "plugins") as app:
        assert app.state.schemas.last_report.failures == {}
        if database_url.startswith("sqlite"):
            peer_data.load_sqlite(database_url.removeprefix("sqlite:///"), products, attributes)
        else:
            await peer_data.load_postgres(database_url, products, attributes)
        async with token_client(app, "bench", roles=["admin"]) as client:
            found = await answers(client.execute, peer_servers.MODULA_QUERIES, peer_servers.MODULA_PATHS)
            check(found, products, attributes, "productId", "benchProductAttributes")
            assert await client.count("bench_products") == PRODUCTS + 1


async def test_the_floor_answers_like_modula(tmp_path: Path):
    path = tmp_path / "floor.db"
    shutil.copytree(BENCH / "bench_plugin", tmp_path / "plugins" / "bench")
    async with running_app(f"sqlite:///{path}", plugins_dir=tmp_path / "plugins") as app:  # makes the tables
        assert app.state.schemas.last_report.failures == {}
    products, attributes = peer_data.generate(PRODUCTS)
    peer_data.load_sqlite(str(path), products, attributes)
    floor_app.db = floor_app.connect(str(path))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=floor_app.app), base_url="http://floor") as http:
            async def post(query: str, variables: dict) -> dict:
                return (await http.post("/graphql", json={"query": query, "variables": variables})).json()

            found = await answers(post, peer_servers.FLOOR_QUERIES, peer_servers.FLOOR_PATHS)
    finally:
        floor_app.db.close()
    check(found, products, attributes, "id", "attributes")
