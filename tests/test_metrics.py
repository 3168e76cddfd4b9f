"""/metrics: off unless enabled; then the Prometheus text format with requests by operation type
and outcome, SQL statements, schema builds, Lua calls and overruns per plugin, the outbox and the database pool."""

from __future__ import annotations

import json

from prometheus_client.parser import text_string_to_metric_families

from modula.metrics import operation_type, outcome
from modula_testing import GraphQLClient, deliver_outbox, running_app, token_client
from outbox_fixtures import Receiver, write_relay

SPIN_LUA = """
plugin.query{ name = "spin", returns = "Int", handler = function(args, ctx) while true do end end }
"""


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_the_operation_type_is_read_from_the_document():
    assert operation_type("{ me { id } }", None) == "query"
    assert operation_type("# hi\n  mutation M { x }", None) == "mutation"
    assert operation_type("query A { a } mutation B { b }", "B") == "mutation"
    assert outcome({"data": {"x": 1}}, 200) == "ok"
    assert outcome({"data": {"x": None}, "errors": [{}]}, 200) == "partial"
    assert outcome({"errors": [{}]}, 400) == "refused"
    assert outcome({"errors": [{}]}, 500) == "failed"


async def test_metrics_are_not_served_unless_enabled(database_url, tmp_path):
    async with running_app(database_url, plugins_dir=tmp_path / "plugins") as app, GraphQLClient.for_app(app) as client:
        assert (await client.http.get("/metrics")).status_code == 404


async def test_metrics_count_requests_statements_builds_lua_calls_and_the_outbox(database_url, tmp_path):
    plugins = tmp_path / "plugins"
    write_relay(plugins)
    (plugins / "spin").mkdir()
    (plugins / "spin" / "plugin.json").write_text(json.dumps({"name": "spin", "version": "1.0.0", "api": 1}))
    (plugins / "spin" / "init.lua").write_text(SPIN_LUA)
    receiver = Receiver().start()
    receiver.status = 503
    try:
        async with running_app(database_url, plugins_dir=plugins, metrics=True, lua_instructions=200_000) as app, \
                token_client(app, "admin", roles=["admin"]) as admin:
            await admin.data("{ sites { id } }")
            await admin.execute("{ nosuchfield }")
            spun = await admin.execute("{ spin }")
            assert spun["errors"][0]["extensions"]["code"] == "BUDGET_EXCEEDED"
            await admin.data('mutation($url: String!) { relay(url: $url, labels: ["a", "b"]) }', {"url": receiver.url})
            await deliver_outbox(app, timeout=0.5)  # the receiver refuses: both attempts fail
            response = await admin.http.get("/metrics")
            assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
            samples = _samples(response.text)
    finally:
        receiver.stop()

    def value(name, **labels):
        return samples.get((name, tuple(sorted(labels.items()))))

    assert value("modula_graphql_requests_total", operation_type="query", outcome="ok") >= 1
    assert value("modula_graphql_requests_total", operation_type="query", outcome="refused") == 1
    assert value("modula_graphql_requests_total", operation_type="query", outcome="partial") == 1  # spin
    assert value("modula_graphql_requests_total", operation_type="mutation", outcome="ok") == 1
    assert value("modula_graphql_request_duration_seconds_count", operation_type="mutation", outcome="ok") == 1
    assert value("modula_sql_statements_total", kind="select") > 0
    assert value("modula_sql_statements_total", kind="insert") > 0
    assert value("modula_schema_builds_total") >= 1 and value("modula_schema_build_seconds_total") > 0
    assert value("modula_lua_calls_total", plugin="relay") == 1
    assert value("modula_lua_overruns_total", plugin="spin") == 1 and value("modula_lua_overruns_total", plugin="relay") == 0
    assert value("modula_outbox_deliveries", status="pending") == 2
    assert value("modula_outbox_deliveries", status="delivered") == 0
    assert value("modula_outbox_failures_total", plugin="relay") >= 2
    assert value("modula_db_pool_connections", state="open") >= 1  # the scrape's own, at least
    assert value("modula_db_pool_connections", state="size") >= value("modula_db_pool_connections", state="open")
    assert value("modula_db_pool_connections", state="waiting") == 0
