"""`/metrics` in the Prometheus text format (prometheus-client), off unless `settings.metrics`:
requests by operation type and outcome, SQL statements, schema builds, Lua calls per plugin, and
the outbox and the database pool. Each app has its own registry; the figures are this process's (no multiprocess
mode under `--workers` yet: scrape each worker, or run one process per port)."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from modula.db import outbox

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_FIRST_KEYWORD = re.compile(r"(?:\s|,|#[^\n]*\n?)*(query|mutation|subscription|\{)")
_STATEMENT_KINDS = ("select", "insert", "update", "delete", "begin", "commit", "rollback", "savepoint", "release")


def operation_type(query: str | None, operation_name: str | None) -> str:
    """query, mutation or subscription, as the document says (the named operation's, if named)."""
    text = query or ""
    if operation_name:
        named = re.search(rf"\b(query|mutation|subscription)\s+{re.escape(operation_name)}\b", text)
        if named:
            return named.group(1)
    first = _FIRST_KEYWORD.match(text)
    return first.group(1) if first and first.group(1) != "{" else "query"


def outcome(body: dict, status: int) -> str:
    """ok (no error), partial (data with field errors), refused (a request error), failed (the server's)."""
    if status >= 500:
        return "failed"
    if status >= 400 or "data" not in body:
        return "refused"
    return "partial" if body.get("errors") else "ok"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("modula_graphql_requests", "GraphQL operations answered",
                                ["operation_type", "outcome"], registry=self.registry)
        self.request_seconds = Histogram("modula_graphql_request_duration_seconds", "Time to answer one GraphQL operation",
                                         ["operation_type", "outcome"], registry=self.registry)
        self.statements = Counter("modula_sql_statements", "SQL statements run, by their first word",
                                  ["kind"], registry=self.registry)
        self._state = _StateCollector()
        self.registry.register(self._state)

    def observe_request(self, kind: str, result: str, seconds: float) -> None:
        self.requests.labels(kind, result).inc()
        self.request_seconds.labels(kind, result).observe(seconds)

    def observe_statement(self, sql: str) -> None:
        word = sql.lstrip().split(None, 1)[0].lower() if sql.strip() else ""
        self.statements.labels(word if word in _STATEMENT_KINDS else "other").inc()

    def watch(self, app_state) -> None:
        """Read schema builds, Lua calls and the outbox from the running app at each scrape."""
        self._state.state = app_state
        app_state.database.observe(self.observe_statement)

    async def endpoint(self, request: Request) -> Response:
        state = request.app.state
        async with state.database.session() as session:
            self._state.outbox_counts = await outbox.counts(session)
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE)


class _StateCollector(Collector):
    """Figures the app keeps itself, read when scraped."""

    def __init__(self) -> None:
        self.state = None
        self.outbox_counts: dict[str, int] = {}

    def describe(self):
        return []

    def collect(self):
        state = self.state
        if state is None:
            return
        builds = CounterMetricFamily("modula_schema_builds", "Schemas built by this process")
        builds.add_metric([], state.schemas.builds)
        yield builds
        build_seconds = CounterMetricFamily("modula_schema_build_seconds", "Seconds spent building schemas")
        build_seconds.add_metric([], state.schemas.build_seconds)
        yield build_seconds
        calls = CounterMetricFamily("modula_lua_calls", "Calls into plugin handlers", labels=["plugin"])
        overruns = CounterMetricFamily("modula_lua_overruns", "Plugin calls stopped by their budget", labels=["plugin"])
        seconds = CounterMetricFamily("modula_lua_call_seconds", "Seconds spent in plugin calls", labels=["plugin"])
        for plugin, stats in sorted(state.plugins.call_stats.items()):
            calls.add_metric([plugin], stats.calls)
            overruns.add_metric([plugin], stats.overruns)
            seconds.add_metric([plugin], stats.seconds)
        yield from (calls, overruns, seconds)
        depth = GaugeMetricFamily("modula_outbox_deliveries", "Outbox deliveries by status (the whole database's)",
                                  labels=["status"])
        for status, count in sorted(self.outbox_counts.items()):
            depth.add_metric([status], count)
        yield depth
        pool = GaugeMetricFamily("modula_db_pool_connections", "The host pool's connections: size, open, idle "
                                 "(open, not lent), waiting (tasks waiting for one)", labels=["state"])
        for name, count in sorted(state.database.pool_usage().items()):
            pool.add_metric([name], count)
        yield pool
        failures = CounterMetricFamily("modula_outbox_failures", "Failed delivery attempts in this process",
                                       labels=["plugin"])
        for plugin, count in sorted(state.outbox.failures.items()):
            failures.add_metric([plugin], count)
        yield failures
